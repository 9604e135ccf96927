"""A request that reserved room in its domain's counters and then failed gives the room back,
whatever the failure: not only an LDAP error, also text the LDAP library cannot encode (a lone
surrogate) or a directory that stopped answering (503).

The failure is made to happen at the write that follows the reservation (the application's LDAP
client is wrapped), so that the parameter checks, which another change makes stricter, cannot
refuse the request first.
"""

import pytest

from iredapi_ldap import errors
from iredapi_ldap.directory import limits
from tests.conftest import SUFFIX, account_dn, domain_dn, read_entry

BASEDN = f"o=domains,{SUFFIX}"
PASSWORD = "Secret-pw1!"
MB = 1024 * 1024

FAILURES = {
    # what python-ldap's encoding of a value with a lone surrogate raises
    "unencodable": (lambda: UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), 500),
    # what the client raises when slapd does not answer within ldap_timeout
    "timeout": (lambda: errors.BackendUnavailable(errors.SERVER_DOWN, detail="the directory did not answer"), 503),
}


def counters(conn, domain):
    entry = read_entry(conn, domain_dn(domain))
    return {name: int(entry[name][0]) for name in limits.COUNTERS}


class Failing:
    """Makes the application's ``method`` (modify or add) on ``dn`` raise ``failure()`` instead
    of writing, while ``failing`` is true; other calls go through."""

    def __init__(self, monkeypatch, api, method, dn, failure):
        client = api.app.services.directory.client
        self.real = getattr(client, method)
        self.dn, self.failure = dn.lower(), failure
        self.failing = True
        self.raised = 0
        monkeypatch.setattr(client, method, self)

    def __call__(self, dn, changes, **options):
        if self.failing and dn.lower() == self.dn:
            self.raised += 1
            raise self.failure()
        return self.real(dn, changes, **options)


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}", {"quota": "300"}).status_code == 201
    for user in ("a", "b"):
        assert api.post(f"/api/user/{user}@{name}", {"password": PASSWORD, "mailQuota": "50"}).status_code == 201
    return name


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_quota_change_gives_its_reservation_back(api, root_connection, domain, monkeypatch, failure):
    make, status = FAILURES[failure]
    before = counters(root_connection, domain)
    spy = Failing(monkeypatch, api, "modify", account_dn(f"b@{domain}"), make)
    result = api.put(f"/api/user/b@{domain}", {"mailQuota": "120", "cn": "Bee"})
    assert result.status_code == status, result.text
    assert spy.raised == 1
    assert read_entry(root_connection, account_dn(f"b@{domain}"))["mailQuota"] == [str(50 * MB)]
    assert counters(root_connection, domain) == before


@pytest.mark.parametrize("failure", FAILURES)
def test_ten_failed_quota_changes_leave_the_counter_exact(api, root_connection, domain, monkeypatch, failure):
    make, status = FAILURES[failure]
    spy = Failing(monkeypatch, api, "modify", account_dn(f"b@{domain}"), make)
    for i in range(10):  # raises and cuts: a leak either way would move the counter
        result = api.put(f"/api/user/b@{domain}", {"mailQuota": "200" if i % 2 else "1"})
        assert result.status_code == status, result.text
    assert spy.raised == 10
    assert counters(root_connection, domain)[limits.QUOTA_BYTES] == 100 * MB
    # and the room is all there: 50 + 250 = the domain's 300 MB
    spy.failing = False
    assert api.put(f"/api/user/b@{domain}", {"mailQuota": "250"}).status_code == 200
    assert counters(root_connection, domain)[limits.QUOTA_BYTES] == 300 * MB


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize(("kind", "ou", "form", "counter"), [
    ("user", "Users", {"password": PASSWORD, "mailQuota": "20"}, limits.USERS),
    ("alias", "Aliases", {"members": "x@out.test"}, limits.ALIASES),
    ("maillist", "Groups", {"members": "x@out.test"}, limits.LISTS),
])
def test_a_failed_create_gives_its_reservation_back(api, root_connection, domain, monkeypatch, failure, kind, ou,
                                                    form, counter):
    make, status = FAILURES[failure]
    before = counters(root_connection, domain)
    mail = f"new@{domain}"
    spy = Failing(monkeypatch, api, "add", account_dn(mail, ou), make)
    for _ in range(10):
        result = api.post(f"/api/{kind}/{mail}", form)
        assert result.status_code == status, result.text
    assert spy.raised == 10
    assert read_entry(root_connection, account_dn(mail, ou)) is None
    assert counters(root_connection, domain) == before
    spy.failing = False
    assert api.post(f"/api/{kind}/{mail}", form).status_code == 201
    after = counters(root_connection, domain)
    assert after[counter] == before[counter] + 1
    assert after[limits.QUOTA_BYTES] == before[limits.QUOTA_BYTES] + (20 * MB if kind == "user" else 0)
