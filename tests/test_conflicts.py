"""Compare-and-set under a real conflict: another writer changes the entry between our read and our write.

The threads of one worker take turns on a domain's counters, so the "parallel" tests elsewhere
never make a compare-and-set fail.  Here another writer — a second application on its own LDAP
connection, as another gunicorn worker or API host would be — writes to the entry at the moment
the application under test has read it and is about to write (its LDAP client is wrapped for
that one call).  Each test checks that the write was retried against what is there now: no
lost update, counters exact, limits still enforced.
"""

import ldap3
import pytest

from iredapi_ldap.directory import limits
from tests.conftest import SUFFIX, ApiClient, account_dn, domain_dn, read_entry

BASEDN = f"o=domains,{SUFFIX}"
PASSWORD = "Secret-pw1!"
MB = 1024 * 1024


def counters(conn, domain):
    entry = read_entry(conn, domain_dn(domain))
    return {name: int(entry[name][0]) for name in limits.COUNTERS}


class Interloper:
    """Makes ``write()`` (another writer's change) happen just before the application's first
    ``method`` call (modify or add) on ``dn`` whose changes touch ``attribute``, and counts the
    application's calls on ``dn`` (a second one means it tried again)."""

    def __init__(self, monkeypatch, app, method, dn, write, attribute=None):
        client = app.services.directory.client
        self.real = getattr(client, method)
        self.dn, self.write, self.attribute = dn.lower(), write, attribute
        self.calls = 0
        self.fired = False
        monkeypatch.setattr(client, method, self)

    def __call__(self, dn, changes, **options):
        if dn.lower() == self.dn:
            self.calls += 1
            if not self.fired and (self.attribute is None or self.attribute in changes):
                self.fired = True
                self.write()
        return self.real(dn, changes, **options)


@pytest.fixture
def other_worker(make_app):
    """A logged-in client of a second application: its own LDAP connection and counter state."""
    return ApiClient(make_app()).login()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return ApiClient(app).login()


def make_domain(api, name, **settings):
    assert api.post(f"/api/domain/{name}", {k: str(v) for k, v in settings.items()}).status_code == 201
    return name


# -- limits.adjust_counters -------------------------------------------------------------------


def test_a_counter_changed_between_read_and_write_is_read_again_and_counted_exactly(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), numberOfUsers=5, quota=100)
    assert api.post(f"/api/user/u0@{domain}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    created = []

    def another_create():
        created.append(other_worker.post(f"/api/user/o1@{domain}", {"password": PASSWORD, "mailQuota": "20"}))

    spy = Interloper(monkeypatch, app, "modify", domain_dn(domain), another_create, limits.USERS)
    result = client.post(f"/api/user/u1@{domain}", {"password": PASSWORD, "mailQuota": "10"})
    assert result.status_code == 201, result.text
    assert created[0].status_code == 201
    assert spy.calls == 2  # the compare-and-set failed once and was retried
    found = counters(root_connection, domain)
    assert (found[limits.USERS], found[limits.QUOTA_BYTES]) == (3, 40 * MB)


@pytest.mark.parametrize(("kind", "setting", "counter", "ou"), [
    ("user", "numberOfUsers", limits.USERS, "Users"),
    ("alias", "numberOfAliases", limits.ALIASES, "Aliases"),
    ("maillist", "numberOfLists", limits.LISTS, "Groups"),
])
def test_when_another_writer_takes_the_last_slot_meanwhile_the_create_is_refused(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain, kind, setting, counter, ou):
    domain = make_domain(api, new_domain(), **{setting: 2})
    form = {"password": PASSWORD} if kind == "user" else {}
    assert api.post(f"/api/{kind}/a0@{domain}", form).status_code == 201
    created = []

    def another_create():
        created.append(other_worker.post(f"/api/{kind}/o1@{domain}", form))

    spy = Interloper(monkeypatch, app, "modify", domain_dn(domain), another_create, counter)
    result = client.post(f"/api/{kind}/a1@{domain}", form)
    assert created[0].status_code == 201
    assert (result.status_code, result.json["msg"]) == (403, "EXCEEDED_DOMAIN_ACCOUNT_LIMIT")
    assert spy.calls == 1  # the retry read the new count and stopped at the limit
    assert read_entry(root_connection, account_dn(f"a1@{domain}", ou)) is None
    assert counters(root_connection, domain)[counter] == 2


def test_when_another_writer_uses_up_the_domain_quota_meanwhile_the_create_is_refused(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), quota=100)
    assert api.post(f"/api/user/u0@{domain}", {"password": PASSWORD, "mailQuota": "50"}).status_code == 201
    created = []

    def another_create():
        created.append(other_worker.post(f"/api/user/o1@{domain}", {"password": PASSWORD, "mailQuota": "30"}))

    Interloper(monkeypatch, app, "modify", domain_dn(domain), another_create, limits.QUOTA_BYTES)
    result = client.post(f"/api/user/u1@{domain}", {"password": PASSWORD, "mailQuota": "40"})
    assert created[0].status_code == 201
    assert (result.status_code, result.json["msg"]) == (403, "EXCEEDED_DOMAIN_QUOTA_SIZE")
    assert read_entry(root_connection, account_dn(f"u1@{domain}")) is None
    found = counters(root_connection, domain)
    assert (found[limits.USERS], found[limits.QUOTA_BYTES]) == (2, 80 * MB)


# -- limits.recount ------------------------------------------------------------------------------


def test_a_recount_that_meets_a_concurrent_create_counts_again(
        api, app, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain())
    for i in range(3):
        assert api.post(f"/api/user/u{i}@{domain}", {"password": PASSWORD, "mailQuota": "5"}).status_code == 201
    # counters another tool left wrong
    root_connection.modify(domain_dn(domain), {name: [(ldap3.MODIFY_REPLACE, ["0"])] for name in limits.COUNTERS})
    created = []

    def another_create():
        created.append(other_worker.post(f"/api/user/o1@{domain}", {"password": PASSWORD, "mailQuota": "5"}))

    spy = Interloper(monkeypatch, app, "modify", domain_dn(domain), another_create)
    counted = limits.recount(app.services.directory, domain)
    assert created[0].status_code == 201
    assert spy.calls == 2
    expected = {limits.USERS: 4, limits.ALIASES: 0, limits.LISTS: 0, limits.QUOTA_BYTES: 20 * MB}
    assert counted == expected
    assert counters(root_connection, domain) == expected


# -- users.update_user ---------------------------------------------------------------------------


def test_a_quota_changed_between_read_and_write_is_read_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), quota=100)
    for name in ("a", "b"):
        assert api.post(f"/api/user/{name}@{domain}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/user/b@{domain}", {"mailQuota": "20"}))

    spy = Interloper(monkeypatch, app, "modify", account_dn(f"b@{domain}"), another_update, "mailQuota")
    result = client.put(f"/api/user/b@{domain}", {"mailQuota": "30", "cn": "Bee"})
    assert result.status_code == 200, result.text
    assert changed[0].status_code == 200
    assert spy.calls == 2
    entry = read_entry(root_connection, account_dn(f"b@{domain}"))
    assert (entry["mailQuota"], entry["cn"]) == ([str(30 * MB)], ["Bee"])
    # the first reservation (20 MB, against the 10 MB read) was given back, the second kept
    assert counters(root_connection, domain)[limits.QUOTA_BYTES] == 40 * MB


def test_a_quota_raise_that_no_longer_fits_after_a_concurrent_change_is_refused(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), quota=100)
    for name in ("a", "b"):
        assert api.post(f"/api/user/{name}@{domain}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    changed = []

    def other_updates():  # within the room our reservation leaves: 20 + 50 reserved - 9 + 31 = 92 MB
        changed.append(other_worker.put(f"/api/user/b@{domain}", {"mailQuota": "1"}))
        changed.append(other_worker.put(f"/api/user/a@{domain}", {"mailQuota": "41"}))

    Interloper(monkeypatch, app, "modify", account_dn(f"b@{domain}"), other_updates, "mailQuota")
    result = client.put(f"/api/user/b@{domain}", {"mailQuota": "60"})
    assert [r.status_code for r in changed] == [200, 200]
    # read again: b has 1 MB, so 60 MB means +59 MB on 42 MB: over 100
    assert (result.status_code, result.json["msg"]) == (403, "EXCEEDED_DOMAIN_QUOTA_SIZE")
    assert read_entry(root_connection, account_dn(f"b@{domain}"))["mailQuota"] == [str(1 * MB)]
    assert counters(root_connection, domain)[limits.QUOTA_BYTES] == 42 * MB


@pytest.mark.parametrize("with_quota", [False, True])
def test_a_forwarding_added_meanwhile_by_another_request_is_no_error(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain, with_quota):
    domain = make_domain(api, new_domain())
    assert api.post(f"/api/user/f@{domain}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/user/f@{domain}", {"addForwarding": "x@out.test"}))

    spy = Interloper(monkeypatch, app, "modify", account_dn(f"f@{domain}"), another_update)
    form = {"addForwarding": "x@out.test,y@out.test", "cn": "Eff"}
    if with_quota:
        form["mailQuota"] = "20"
    result = client.put(f"/api/user/f@{domain}", form)
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 2
    entry = read_entry(root_connection, account_dn(f"f@{domain}"))
    assert sorted(entry["mailForwardingAddress"]) == ["x@out.test", "y@out.test"]
    assert entry["cn"] == ["Eff"]
    assert entry["mailQuota"] == [str((20 if with_quota else 10) * MB)]
    assert counters(root_connection, domain)[limits.QUOTA_BYTES] == (20 if with_quota else 10) * MB


@pytest.mark.parametrize(("form", "attribute", "stored"), [
    ({"services": "mail,Mail,imap"}, "enabledService", ["imap", "mail"]),
    ({"telephoneNumber": "123,1 23,1-23"}, "telephoneNumber", ["123"]),
    ({"mobile": "+49 (0) 1,+49 (0)1"}, "mobile", ["+49 (0) 1"]),
])
def test_values_slapd_takes_for_one_are_written_once_not_taken_for_a_conflict(
        api, root_connection, new_domain, form, attribute, stored):
    # slapd refuses a modify that names one value twice (as its matching rule compares them)
    # with the result a concurrent change gives; the request must not retry it until 409.
    domain = make_domain(api, new_domain())
    assert api.post(f"/api/user/s@{domain}", {"password": PASSWORD}).status_code == 201
    result = api.put(f"/api/user/s@{domain}", form)
    assert result.status_code == 200, result.text
    assert result.headers["X-Directory-Round-Trips"] == "3"
    assert sorted(read_entry(root_connection, account_dn(f"s@{domain}"))[attribute]) == stored


# -- domains.update_domain -----------------------------------------------------------------------


def test_a_setting_changed_between_read_and_write_is_read_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), numberOfUsers=5, quota=100)
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/domain/{domain}", {"numberOfUsers": "7", "maxUserQuota": "50"}))

    spy = Interloper(monkeypatch, app, "modify", domain_dn(domain), another_update, "accountSetting")
    result = client.put(f"/api/domain/{domain}", {"numberOfUsers": "10", "cn": "Tenant"})
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 2
    entry = read_entry(root_connection, domain_dn(domain))
    assert sorted(entry["accountSetting"]) == ["domainQuota:100:MB", "maxUserQuota:50", "numberOfUsers:10"]
    assert entry["cn"] == ["Tenant"]


def test_a_setting_both_requests_add_ends_with_one_value(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    # no old value to delete by exact value: the compare-and-set has to assert the key's absence
    domain = make_domain(api, new_domain())
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/domain/{domain}", {"maxUserQuota": "60"}))

    spy = Interloper(monkeypatch, app, "modify", domain_dn(domain), another_update, "accountSetting")
    result = client.put(f"/api/domain/{domain}", {"maxUserQuota": "50"})
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 2
    assert read_entry(root_connection, domain_dn(domain))["accountSetting"] == ["maxUserQuota:50"]


def test_a_password_length_the_check_relied_on_changed_meanwhile_is_checked_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain(), minPasswordLength=6, maxPasswordLength=12)
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/domain/{domain}", {"maxPasswordLength": "8"}))

    Interloper(monkeypatch, app, "modify", domain_dn(domain), another_update, "accountSetting")
    result = client.put(f"/api/domain/{domain}", {"minPasswordLength": "10"})
    assert changed[0].status_code == 200
    assert (result.status_code, result.json["msg"], result.json["param"]) == (
        400, "INVALID_NUMBER", "minPasswordLength")
    assert sorted(read_entry(root_connection, domain_dn(domain))["accountSetting"]) == [
        "maxPasswordLength:8", "minPasswordLength:6"]

# -- aliases.update_alias ------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs", "members"), [
    ({"addMember": "a@out.test,b@out.test"}, {"addMember": "a@out.test"}, ["a@out.test", "b@out.test", "x@out.test"]),
    ({"removeMember": "x@out.test"}, {"removeMember": "x@out.test"}, []),
])
def test_alias_members_changed_between_read_and_write_are_read_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain, ours, theirs, members):
    domain = make_domain(api, new_domain())
    mail = f"team@{domain}"
    assert api.post(f"/api/alias/{mail}", {"members": "x@out.test"}).status_code == 201
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/alias/{mail}", theirs))

    spy = Interloper(monkeypatch, app, "modify", account_dn(mail, "Aliases"), another_update)
    result = client.put(f"/api/alias/{mail}", {**ours, "cn": "Team"})
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 2
    entry = read_entry(root_connection, account_dn(mail, "Aliases"))
    assert sorted(entry.get("mailForwardingAddress", [])) == members
    assert entry["cn"] == ["Team"]


# -- lists.update_list ---------------------------------------------------------------------------


def test_list_members_changed_between_read_and_write_are_read_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain())
    for name in ("b", "c"):
        assert api.post(f"/api/user/{name}@{domain}", {"password": PASSWORD}).status_code == 201
    mail = f"list@{domain}"
    assert api.post(f"/api/maillist/{mail}").status_code == 201
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/maillist/{mail}", {"addMember": f"b@{domain}"}))

    spy = Interloper(monkeypatch, app, "modify", account_dn(mail, "Groups"), another_update, "member")
    result = client.put(f"/api/maillist/{mail}", {"addMember": f"b@{domain},c@{domain}", "cn": "All"})
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 2
    entry = read_entry(root_connection, account_dn(mail, "Groups"))
    assert sorted(v.lower() for v in entry["member"]) == [account_dn(f"{n}@{domain}").lower() for n in ("b", "c")]
    assert entry["cn"] == ["All"]
    for name in ("b", "c"):
        assert read_entry(root_connection, account_dn(f"{name}@{domain}"))["memberOfGroup"] == [mail]


def test_an_external_members_entry_added_meanwhile_is_read_again(
        api, app, client, other_worker, root_connection, monkeypatch, new_domain):
    domain = make_domain(api, new_domain())
    mail = f"list@{domain}"
    assert api.post(f"/api/maillist/{mail}").status_code == 201
    externals = f"memberOfGroup={mail},ou=Externals,{domain_dn(domain)}"
    changed = []

    def another_update():
        changed.append(other_worker.put(f"/api/maillist/{mail}", {"addMember": "e2@out.test"}))

    spy = Interloper(monkeypatch, app, "add", externals, another_update)
    result = client.put(f"/api/maillist/{mail}", {"addMember": "e1@out.test"})
    assert changed[0].status_code == 200
    assert result.status_code == 200, result.text
    assert spy.calls == 1  # the add met the other's entry; the retry added to it
    assert sorted(read_entry(root_connection, externals)["mail"]) == ["e1@out.test", "e2@out.test"]

