"""PUT /api/users/<domain>: accountStatus, password, language, transport for every user at once."""

import ldap3
import pytest

from iredapi_ldap.directory import users as user_directory
from tests.conftest import SUFFIX, ApiClient, _ssha, domain_dn, failed, read_entry, user_dn

PASSWORD = "Secret-pw1!"
NEW_PASSWORD = "Bulk-Secret-2!"
USERS = 7


@pytest.fixture
def domain(api, root_connection, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    for i in range(USERS):
        assert api.post(f"/api/user/u{i}@{name}", {"password": PASSWORD}).status_code == 201
    # the catch-all (iRedMail's mail=@domain under ou=Users) is not a user
    root_connection.add(f"mail=@{name},ou=Users,{domain_dn(name)}", attributes={
        "objectClass": ["inetOrgPerson", "mailUser"], "mail": [f"@{name}"], "cn": ["catch-all"],
        "sn": ["catch-all"], "uid": ["catch-all"], "accountStatus": ["active"],
        "mailForwardingAddress": [f"u0@{name}"]})
    return name


def _users(root_connection, domain, attribute):
    return [(read_entry(root_connection, user_dn(f"u{i}@{domain}")) or {}).get(attribute) for i in range(USERS)]


def _snapshot(root_connection, domain):
    _, _, response, _ = root_connection.search(domain_dn(domain), "(objectClass=*)", search_scope=ldap3.SUBTREE,
                                               attributes=["*"])
    return sorted((r["dn"], sorted((k, sorted(map(str, v))) for k, v in r["raw_attributes"].items()))
                  for r in response if r.get("type") == "searchResEntry")


def test_bulk_update_sets_every_user_and_a_repeat_changes_nothing(api, root_connection, domain):
    result = api.put(f"/api/users/{domain}", {"accountStatus": "disabled", "language": "fr_FR",
                                              "transport": "smtp:[relay.test]:25"})
    assert result.status_code == 200, result.text
    assert result.json["_data"] == {"changed": USERS, "skipped": []}
    assert _users(root_connection, domain, "accountStatus") == [["disabled"]] * USERS
    assert _users(root_connection, domain, "preferredLanguage") == [["fr_FR"]] * USERS
    assert _users(root_connection, domain, "mtaTransport") == [["smtp:[relay.test]:25"]] * USERS
    catch_all = read_entry(root_connection, f"mail=@{domain},ou=Users,{domain_dn(domain)}")
    assert catch_all["accountStatus"] == ["active"] and "mtaTransport" not in catch_all
    assert api.put(f"/api/users/{domain}", {"accountStatus": "disabled", "language": "fr_FR"}).json["_data"] == {
        "changed": 0, "skipped": []}
    # an empty transport removes the users' own
    assert api.put(f"/api/users/{domain}", {"transport": ""}).json["_data"]["changed"] == USERS
    assert _users(root_connection, domain, "mtaTransport") == [None] * USERS


def test_bulk_password_is_one_hash_checked_once(api, root_connection, domain):
    assert api.put(f"/api/users/{domain}", {"password": NEW_PASSWORD}).json["_data"]["changed"] == USERS
    hashes = _users(root_connection, domain, "userPassword")
    assert len({tuple(h) for h in hashes}) == 1
    client = api.app.services.directory.client
    for i in range(USERS):
        assert client.credentials_valid(user_dn(f"u{i}@{domain}"), NEW_PASSWORD)
        assert not client.credentials_valid(user_dn(f"u{i}@{domain}"), PASSWORD)


def test_bad_bulk_input_is_refused_and_changes_nothing(api, root_connection, domain, new_domain):
    snapshot = _snapshot(root_connection, domain)
    for form, status, body in [
        ({"accountStatus": "sleeping"}, 400, failed("INVALID_ACCOUNT_STATUS", param="accountStatus")),
        ({"language": "xx_YY", "accountStatus": "disabled"}, 400, failed("INVALID_LANGUAGE", param="language")),
        ({"transport": "bad transport", "accountStatus": "disabled"}, 400,
         failed("INVALID_TRANSPORT", param="transport")),
        ({"password": "short", "accountStatus": "disabled"}, 400, None),
        ({}, 400, failed("INVALID_PARAMETER", param="accountStatus")),
    ]:
        result = api.put(f"/api/users/{domain}", form)
        assert result.status_code == status, (form, result.text)
        if body is None:
            assert result.json["_msg"].startswith("PW_") and result.json["param"] == "password", result.text
        else:
            assert {k: v for k, v in result.json.items() if k != "detail"} == body, result.text
    assert _snapshot(root_connection, domain) == snapshot
    assert api.put(f"/api/users/{new_domain()}", {"accountStatus": "disabled"}).status_code == 404


def test_domain_admins_bulk_update_their_domains_and_not_other_admins(api, make_app, root_connection, domain,
                                                                      new_domain):
    other = new_domain()
    api.post(f"/api/domain/{other}")
    api.post(f"/api/user/x@{other}", {"password": PASSWORD})
    # u0 is a global admin, u1 administers the other domain: a domain admin of `domain` cannot change them
    root_connection.modify(user_dn(f"u0@{domain}"), {"domainGlobalAdmin": [(ldap3.MODIFY_ADD, ["yes"])]})
    root_connection.modify(domain_dn(other), {"domainAdmin": [(ldap3.MODIFY_ADD, [f"u1@{domain}"])]})
    admin = f"bulk@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    client = ApiClient(make_app()).login(admin, "Admin-Pw-9")
    snapshot = _snapshot(root_connection, other)
    assert client.put(f"/api/users/{other}", {"accountStatus": "disabled"}).json == failed(
        "PERMISSION_DENIED", detail="you do not manage this domain")
    assert _snapshot(root_connection, other) == snapshot
    result = client.put(f"/api/users/{domain}", {"password": NEW_PASSWORD})
    assert result.json["_data"] == {"changed": USERS - 2, "skipped": [f"u0@{domain}", f"u1@{domain}"]}
    ldap = api.app.services.directory.client
    assert ldap.credentials_valid(user_dn(f"u0@{domain}"), PASSWORD)
    assert ldap.credentials_valid(user_dn(f"u1@{domain}"), PASSWORD)
    assert ldap.credentials_valid(user_dn(f"u2@{domain}"), NEW_PASSWORD)


def test_a_bulk_update_that_died_half_way_is_finished_by_repeating_it(api, root_connection, domain, monkeypatch):
    ldap = api.app.services.directory.client
    real, writes = ldap.modify, []

    def crash_after_three(dn, changes, **kw):
        if len(writes) == 3:
            raise RuntimeError("worker killed")
        writes.append(dn)
        return real(dn, changes, **kw)

    monkeypatch.setattr(ldap, "modify", crash_after_three)
    assert api.put(f"/api/users/{domain}", {"accountStatus": "disabled"}).status_code == 500
    monkeypatch.undo()
    assert _users(root_connection, domain, "accountStatus").count(["disabled"]) == 3
    assert api.put(f"/api/users/{domain}", {"accountStatus": "disabled"}).json["_data"]["changed"] == USERS - 3
    assert _users(root_connection, domain, "accountStatus") == [["disabled"]] * USERS


def test_bulk_update_goes_page_by_page(api, domain):
    directory = api.app.services.directory
    pages = []
    real = directory.client.paged_search

    def paged_search(*args, **kwargs):
        pages.append(args[-1] if len(args) > 4 else kwargs.get("page_size"))
        return real(*args, **kwargs)

    directory.client.paged_search = paged_search
    try:
        changed, skipped, _ = user_directory.update_all_users(directory, domain, {"preferredLanguage": "de_DE"},
                                                              page_size=2)
    finally:
        del directory.client.paged_search
    assert (changed, skipped, pages) == (USERS, [], [2])


def test_a_bulk_password_change_ends_the_sessions_of_admins_among_the_users(api, make_app, root_connection, domain):
    root_connection.modify(user_dn(f"u3@{domain}"), {"enabledService": [(ldap3.MODIFY_ADD, ["domainadmin"])]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [f"u3@{domain}"])]})
    session = ApiClient(make_app()).login(f"u3@{domain}", PASSWORD)
    assert session.get(f"/api/user/u4@{domain}").status_code == 200
    assert api.put(f"/api/users/{domain}", {"password": NEW_PASSWORD}).status_code == 200
    assert session.get(f"/api/user/u4@{domain}").status_code == 401


def test_a_bulk_disable_leaves_the_admins_own_mailbox_alone(make_app, root_connection, domain):
    """A global admin whose mailbox is in the domain disables the domain's users, not itself."""
    me = f"u5@{domain}"
    root_connection.modify(user_dn(me), {"domainGlobalAdmin": [(ldap3.MODIFY_ADD, ["yes"])],
                                         "enabledService": [(ldap3.MODIFY_ADD, ["domainadmin"])]})
    client = ApiClient(make_app()).login(me, PASSWORD)
    result = client.put(f"/api/users/{domain}", {"accountStatus": "disabled"})
    assert result.json["_data"] == {"changed": USERS - 1, "skipped": [me]}
    assert read_entry(root_connection, user_dn(me))["accountStatus"] == ["active"]
    assert client.get(f"/api/user/{me}").status_code == 200  # still logged in
    # other changes include it
    assert client.put(f"/api/users/{domain}", {"language": "de_DE"}).json["_data"]["changed"] == USERS


def test_a_look_alike_users_password_change_or_delete_leaves_the_standalone_admins_sessions(make_app, new_domain):
    """A standalone admin and a mail user may share an address (o=domainAdmins is outside slapd's
    unique overlay): what ends the user's sessions (a password change, single or bulk, a disable,
    a delete) leaves the standalone admin's alone, or a domain admin could log a global admin out
    at will by making a user at its address."""
    from tests.conftest import ApiClient

    api = ApiClient(make_app()).login()
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    shared = f"shared@{domain}"
    assert api.post(f"/api/admin/{shared}", {"password": "Secret-pw1!", "isGlobalAdmin": "yes"}).status_code == 201
    standalone = ApiClient(api.app).login(shared, "Secret-pw1!")
    assert api.post(f"/api/user/{shared}", {"password": "Secret-pw1!"}).status_code == 201
    for change in (lambda: api.put(f"/api/user/{shared}", {"password": "Other-pw2!"}),
                   lambda: api.put(f"/api/user/{shared}", {"accountStatus": "disabled"}),
                   lambda: api.put(f"/api/users/{domain}", {"password": "Third-pw3!"}),
                   lambda: api.delete(f"/api/user/{shared}")):
        assert change().status_code == 200
        assert standalone.get(f"/api/admin/{shared}").status_code == 200


def test_a_bulk_disable_that_died_before_ending_sessions_ends_them_when_repeated(api, make_app, root_connection,
                                                                                  domain, monkeypatch):
    """The repeat finds the admin disabled already and writes nothing; its sessions end all the
    same (not only at the next recheck), as a single PUT's repeat does."""
    admin = f"u3@{domain}"
    root_connection.modify(user_dn(admin), {"enabledService": [(ldap3.MODIFY_ADD, ["domainadmin"])]})
    root_connection.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    session = ApiClient(make_app(SESSION_RECHECK_INTERVAL=3600)).login(admin, PASSWORD)
    sessions = api.app.services.sessions

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(sessions, "end_sessions", killed)
    assert api.put(f"/api/users/{domain}", {"accountStatus": "disabled"}).status_code == 500
    monkeypatch.undo()
    assert read_entry(root_connection, user_dn(admin))["accountStatus"] == ["disabled"]
    assert api.put(f"/api/users/{domain}", {"accountStatus": "disabled"}).json["_data"]["changed"] == 0
    assert session.get(f"/api/user/u4@{domain}").status_code == 401
