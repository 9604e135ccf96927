"""Proof that users made through the API work in Debian's real Dovecot and Postfix.

The lookups are iRedMail's own (tests/mailstack, compared with upstream's in
test_mailstack_configs.py), bound as cn=vmail against the test slapd.
"""

import pytest

PASSWORD = "Secret-pw1!"
NEW_PASSWORD = "Other-Secret-2"


@pytest.fixture
def user(api, new_domain):
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    mail = f"alice@{domain}"
    assert api.post(f"/api/user/{mail}", {"password": PASSWORD, "mailQuota": "512"}).status_code == 201
    return mail


def home_of(api, mail):
    return api.get(f"/api/user/{mail}").json["_data"]["homeDirectory"][0]


def test_new_user_logs_in_and_resolves(api, mailstack, user):
    domain = user.split("@")[1]
    home = home_of(api, user)
    assert mailstack.dovecot.auth_ok(user, PASSWORD)
    assert mailstack.dovecot.auth_ok(user, PASSWORD, service="pop3")
    assert not mailstack.dovecot.auth_ok(user, "wrong-" + PASSWORD)
    lookup = mailstack.dovecot.user(user)
    assert lookup["home"] == home
    assert lookup["quota_rule"] == f"*:bytes={512 * 1024 * 1024}"
    assert mailstack.postfix.lookup("virtual_mailbox_domains", domain) == [domain]
    assert mailstack.postfix.lookup("virtual_mailbox_maps", user) == [home + "/Maildir/"]
    assert mailstack.postfix.lookup("sender_login_maps", user) == [user]


def test_forwarding_and_shadow_addresses_resolve(api, mailstack, user):
    domain = user.split("@")[1]
    assert api.put(f"/api/user/{user}", {"forwarding": f"{user},copy@elsewhere.test",
                                         "aliases": f"al@{domain}"}).status_code == 200
    assert sorted(mailstack.postfix.lookup("virtual_alias_maps", user)) == sorted([user, "copy@elsewhere.test"])
    assert mailstack.postfix.lookup("virtual_mailbox_maps", f"al@{domain}") == [home_of(api, user) + "/Maildir/"]
    assert mailstack.postfix.lookup("sender_login_maps", f"al@{domain}") == [user]
    assert mailstack.dovecot.auth_ok(f"al@{domain}", PASSWORD)


def test_password_change_takes_effect(api, mailstack, user):
    assert api.put(f"/api/user/{user}", {"password": NEW_PASSWORD}).status_code == 200
    assert mailstack.dovecot.auth_ok(user, NEW_PASSWORD)
    assert not mailstack.dovecot.auth_ok(user, PASSWORD)


def test_disabled_user_neither_logs_in_nor_resolves(api, mailstack, user):
    assert api.put(f"/api/user/{user}", {"accountStatus": "disabled"}).status_code == 200
    assert not mailstack.dovecot.auth_ok(user, PASSWORD)
    assert mailstack.postfix.lookup("virtual_mailbox_maps", user) == []
    assert mailstack.postfix.lookup("sender_login_maps", user) == []
    assert api.put(f"/api/user/{user}", {"accountStatus": "active"}).status_code == 200
    assert mailstack.dovecot.auth_ok(user, PASSWORD)


def test_disabled_domain_stops_its_users(api, mailstack, user):
    domain = user.split("@")[1]
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert not mailstack.dovecot.auth_ok(user, PASSWORD)
    assert mailstack.postfix.lookup("virtual_mailbox_domains", domain) == []
    assert mailstack.postfix.lookup("virtual_mailbox_maps", user) == []
    # a user created while the domain is disabled is disabled with it
    api.post(f"/api/user/late@{domain}", {"password": PASSWORD})
    assert not mailstack.dovecot.auth_ok(f"late@{domain}", PASSWORD)
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "active"}).status_code == 200
    assert mailstack.dovecot.auth_ok(user, PASSWORD)
    assert mailstack.dovecot.auth_ok(f"late@{domain}", PASSWORD)


def test_deleted_user_resolves_nowhere(api, mailstack, user):
    assert api.delete(f"/api/user/{user}").status_code == 200
    assert not mailstack.dovecot.auth_ok(user, PASSWORD)
    assert mailstack.dovecot.user(user) is None
    for table in ("virtual_mailbox_maps", "virtual_alias_maps", "sender_login_maps"):
        assert mailstack.postfix.lookup(table, user) == []


@pytest.mark.parametrize("scheme", ["SSHA", "BCRYPT", "SHA512-CRYPT"])
def test_other_schemes_log_in_through_slapd(make_app, mailstack, new_domain, scheme):
    from tests.conftest import ApiClient

    client = ApiClient(make_app(DEFAULT_PASSWORD_SCHEME=scheme)).login()
    domain = new_domain()
    client.post(f"/api/domain/{domain}")
    client.post(f"/api/user/s@{domain}", {"password": PASSWORD})
    assert mailstack.dovecot.auth_ok(f"s@{domain}", PASSWORD)
