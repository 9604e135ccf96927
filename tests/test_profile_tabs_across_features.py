"""The profile switches the domain-routing feature writes (PUT /api/domain/<domain>
disableDomainProfile / disableUserProfile) are the ones the throttle, greylisting, spam-policy and
white/blacklist endpoints honour: a domain admin is refused what a global admin withheld, and
allowed again once it is given back."""

import uuid

import pytest

from tests.conftest import ApiClient
from tests.test_access import add_standalone_admin

PASSWORD = "Secret-pw1!"
ADMIN_PASSWORD = "Admin-Pw-9"


@pytest.fixture
def world(api, make_app, root_connection, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    user = f"user@{domain}"
    assert api.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    admin = f"da{uuid.uuid4().hex[:6]}@admins.test"
    add_standalone_admin(root_connection, admin, ADMIN_PASSWORD, domains=[domain])
    return domain, user, ApiClient(make_app()).login(admin, ADMIN_PASSWORD)


def _writes(target):
    """tab -> a write of that tab's feature for ``target`` (a domain or a user)."""
    scope = "user" if "@" in target else "domain"
    return {
        "throttle": ("POST", f"/api/throttle/{target}/inbound", {"period": "60", "max_msgs": "10"}),
        "greylisting": ("POST", f"/api/greylisting/{target}", {"status": "disable"}),
        "spampolicy": ("PUT", f"/api/spampolicy/{scope}/{target}", {"spam_score": "5"}),
        "wblist": ("POST", f"/api/wblist/inbound/whitelist/{target}", {"addresses": "192.0.2.1"}),
    }


@pytest.mark.parametrize("switch", ["DomainProfile", "UserProfile"])
@pytest.mark.parametrize("tab", ["throttle", "greylisting", "spampolicy", "wblist"])
def test_a_withheld_tab_is_refused_to_domain_admins(api, world, switch, tab):
    domain, user, domain_admin = world
    target = domain if switch == "DomainProfile" else user
    method, path, form = _writes(target)[tab]
    assert api.put(f"/api/domain/{domain}", {f"disable{switch}": tab}).status_code == 200
    result = domain_admin.request(method, path, form=form)
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    # the other scope stays open, and so does the tab once it is given back
    other = user if switch == "DomainProfile" else domain
    other_method, other_path, other_form = _writes(other)[tab]
    assert domain_admin.request(other_method, other_path, form=other_form).status_code == 200
    assert api.put(f"/api/domain/{domain}", {f"enable{switch}": tab}).status_code == 200
    assert domain_admin.request(method, path, form=form).status_code == 200
