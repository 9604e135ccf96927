"""Domain admins: PUT/GET /api/domain/admins/<domain>, and PUT /api/user/<mail> isGlobalAdmin
(issue 14), on the real slapd."""

import uuid

import pytest

from tests.conftest import GLOBAL_ADMIN, SUFFIX, ApiClient, domain_dn, failed, read_entry, user_dn

PASSWORD = "Admin-Secret-2!"


def admin_dn(mail):
    return f"mail={mail},o=domainAdmins,{SUFFIX}"


@pytest.fixture
def setup(api, new_domain):
    """Two domains with two users each, and a standalone admin."""
    domains = [new_domain(), new_domain()]
    for domain in domains:
        assert api.post(f"/api/domain/{domain}").status_code == 201
        for user in ("u1", "u2"):
            assert api.post(f"/api/user/{user}@{domain}", {"password": PASSWORD}).status_code == 201
    standalone = f"s{uuid.uuid4().hex[:8]}@admins.test"
    assert api.post(f"/api/admin/{standalone}", {"password": PASSWORD}).status_code == 201
    return domains, standalone


def admins_of(conn, domain):
    return sorted(read_entry(conn, domain_dn(domain)).get("domainAdmin", []))


def services(conn, mail):
    return read_entry(conn, user_dn(mail))["enabledService"]


def test_add_list_and_remove_admins(api, setup, root_connection):
    (one, two), standalone = setup
    user = f"u1@{one}"
    result = api.put(f"/api/domain/admins/{one}", {"addAdmin": f"{standalone},{user}"})
    assert result.status_code == 200, result.text
    assert admins_of(root_connection, one) == sorted([standalone, user])
    assert api.get(f"/api/domain/admins/{one}").json["_data"] == sorted([standalone, user])
    assert "domainadmin" in services(root_connection, user)
    # the mail user logs in as an admin of that domain
    admin = ApiClient(api.app).login(user, PASSWORD)
    assert admin.get("/api/domains", params={"name_only": "yes"}).json["_data"] == [one]
    # admin of a second domain; removed from the first it keeps the service
    assert api.put(f"/api/domain/admins/{two}", {"addAdmin": user}).status_code == 200
    assert api.put(f"/api/domain/admins/{one}", {"removeAdmin": user}).status_code == 200
    assert admins_of(root_connection, one) == [standalone]
    assert "domainadmin" in services(root_connection, user)
    # removed from the last one, it loses it, and its session ends
    assert api.put(f"/api/domain/admins/{two}", {"removeAllAdmins": ""}).status_code == 200
    assert admins_of(root_connection, two) == []
    assert "domainadmin" not in services(root_connection, user)
    assert admin.get("/api/domains").status_code == 401
    assert ApiClient(api.app).post("/api/login", {"username": user, "password": PASSWORD}).status_code == 401
    # removeAllAdmins with addAdmin: those named only
    assert api.put(f"/api/domain/admins/{one}", {"removeAllAdmins": "", "addAdmin": f"u2@{one}"}).status_code == 200
    assert admins_of(root_connection, one) == [f"u2@{one}"]


def test_a_stale_value_can_be_removed(api, setup, root_connection):
    import ldap3

    (one, _), _ = setup
    root_connection.modify(domain_dn(one), {"domainAdmin": [(ldap3.MODIFY_ADD, ["gone@nowhere.test"])]})
    assert api.put(f"/api/domain/admins/{one}", {"removeAdmin": "gone@nowhere.test"}).status_code == 200
    assert admins_of(root_connection, one) == []


@pytest.mark.parametrize("form, param, code", [
    ({"addAdmin": "nobody@{one}"}, "addAdmin", "NO_SUCH_ACCOUNT"),
    ({"addAdmin": "u1@{one},nobody@{one}"}, "addAdmin", "NO_SUCH_ACCOUNT"),
    ({"removeAdmin": "nobody@{one}"}, "removeAdmin", "NO_SUCH_ACCOUNT"),
    ({"addAdmin": "not-an-address"}, "addAdmin", "INVALID_MAIL"),
    ({"addAdmin": "u1@{one}", "removeAdmin": "u1@{one}"}, "removeAdmin", "CONFLICTING_PARAMETERS"),
    ({}, "addAdmin", "INVALID_PARAMETER"),
])
def test_bad_input_changes_nothing(api, setup, root_connection, form, param, code):
    (one, _), _ = setup
    form = {k: v.format(one=one) for k, v in form.items()}
    before = read_entry(root_connection, domain_dn(one)), read_entry(root_connection, user_dn(f"u1@{one}"))
    result = api.put(f"/api/domain/admins/{one}", form)
    assert result.status_code == 400 and result.json["_msg"] == code and result.json["param"] == param, result.text
    if code == "NO_SUCH_ACCOUNT":
        assert "nobody@" in result.json["detail"]
    assert (read_entry(root_connection, domain_dn(one)), read_entry(root_connection, user_dn(f"u1@{one}"))) == before


def test_missing_domain(api):
    assert api.put("/api/domain/admins/missing.test", {"addAdmin": GLOBAL_ADMIN}).json == failed(
        "NO_SUCH_DOMAIN", detail="missing.test")
    assert api.get("/api/domain/admins/missing.test").status_code == 404


def test_what_a_domain_admin_may_do(api, setup, root_connection):
    (one, two), standalone = setup
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": f"u1@{one}"}).status_code == 200
    admin = ApiClient(api.app).login(f"u1@{one}", PASSWORD)
    # its own domain's users: yes
    assert admin.put(f"/api/domain/admins/{one}", {"addAdmin": f"u2@{one}"}).status_code == 200
    assert admin.get(f"/api/domain/admins/{one}").json["_data"] == [f"u1@{one}", f"u2@{one}"]
    assert admin.put(f"/api/domain/admins/{one}", {"removeAdmin": f"u2@{one}"}).status_code == 200
    before = [read_entry(root_connection, domain_dn(d)) for d in (one, two)]
    for path, form, param in [
        (f"/api/domain/admins/{two}", {"addAdmin": f"u1@{two}"}, None),  # another domain
        (f"/api/domain/admins/{one}", {"addAdmin": f"u1@{two}"}, "addAdmin"),  # a user of another domain
        (f"/api/domain/admins/{one}", {"addAdmin": standalone}, "addAdmin"),  # a standalone admin
        (f"/api/domain/admins/{one}", {"removeAllAdmins": ""}, "removeAllAdmins"),
    ]:
        result = admin.put(path, form)
        assert result.status_code == 403 and result.json["_msg"] == "PERMISSION_DENIED", (path, form, result.text)
        assert result.json.get("param") == param
    assert admin.get(f"/api/domain/admins/{two}").status_code == 403
    assert [read_entry(root_connection, domain_dn(d)) for d in (one, two)] == before


def test_is_global_admin_on_a_mail_user(api, setup, root_connection):
    (one, _), _ = setup
    user = f"u1@{one}"
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    entry = read_entry(root_connection, user_dn(user))
    assert entry["domainGlobalAdmin"] == ["yes"] and "domainadmin" in entry["enabledService"]
    boss = ApiClient(api.app).login(user, PASSWORD)
    assert boss.get("/api/admins").status_code == 200
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "no"}).status_code == 200
    entry = read_entry(root_connection, user_dn(user))
    assert "domainGlobalAdmin" not in entry and "domainadmin" not in entry["enabledService"]
    assert boss.get("/api/admins").status_code == 401  # its session ended
    # demoted while it administers a domain: it keeps the service
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": user}).status_code == 200
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "no"}).status_code == 200
    assert "domainadmin" in services(root_connection, user)
    assert ApiClient(api.app).login(user, PASSWORD).get("/api/admins").status_code == 403


def test_is_global_admin_refusals(api, setup, root_connection):
    (one, _), _ = setup
    user = f"u2@{one}"
    before = read_entry(root_connection, user_dn(user))
    result = api.put(f"/api/user/{user}", {"isGlobalAdmin": "maybe"})
    assert result.status_code == 400 and result.json["param"] == "isGlobalAdmin"
    # a global mail user cannot demote itself
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    boss = ApiClient(api.app).login(user, PASSWORD)
    result = boss.put(f"/api/user/{user}", {"isGlobalAdmin": "no"})
    assert result.status_code == 403 and result.json["param"] == "isGlobalAdmin"
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "no"}).status_code == 200
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": f"u1@{one}"}).status_code == 200
    admin = ApiClient(api.app).login(f"u1@{one}", PASSWORD)
    result = admin.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"})
    assert result.status_code == 403 and result.json["param"] == "isGlobalAdmin"
    assert read_entry(root_connection, user_dn(user)) == before


def test_deleting_the_last_domain_it_manages_unmarks_a_mail_user(api, setup, root_connection):
    (one, two), _ = setup
    user = f"u1@{two}"
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": user}).status_code == 200
    admin = ApiClient(api.app).login(user, PASSWORD)
    assert "domainadmin" in services(root_connection, user)
    assert api.delete(f"/api/domain/{one}").status_code == 200
    assert "domainadmin" not in services(root_connection, user)
    assert admin.get("/api/domains").status_code == 401


def test_a_domain_delete_that_died_after_the_entry_went_left_the_admins_unmarked(api, setup, root_connection,
                                                                                  monkeypatch):
    """A domain delete that dies once its entry is gone: the mail users of other domains that
    administered only it have lost enabledService domainadmin and their sessions already (a
    repeat would answer 404 and could no longer find them)."""
    from iredapi_ldap import provisioning

    (one, two), _ = setup
    user = f"u1@{two}"
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": user}).status_code == 200
    admin = ApiClient(api.app).login(user, PASSWORD)
    real = provisioning.domain_directory.delete_domain

    def delete_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(provisioning.domain_directory, "delete_domain", delete_then_die)
    assert api.delete(f"/api/domain/{one}").status_code == 500
    monkeypatch.undo()
    assert api.delete(f"/api/domain/{one}").status_code == 404
    assert "domainadmin" not in services(root_connection, user)
    assert admin.get("/api/domains").status_code == 401


def test_a_domain_delete_that_died_while_unmarking_is_finished_by_a_repeat(api, setup, root_connection,
                                                                           monkeypatch):
    from iredapi_ldap import provisioning

    (one, two), _ = setup
    users = [f"u1@{two}", f"u2@{two}"]
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": ",".join(users)}).status_code == 200
    sessions = [ApiClient(api.app).login(user, PASSWORD) for user in users]
    real = provisioning.domain_admins.unmark_if_idle
    calls = []

    def die_on_the_second(directory, user, *args, **kwargs):
        calls.append(user)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(directory, user, *args, **kwargs)

    monkeypatch.setattr(provisioning.domain_admins, "unmark_if_idle", die_on_the_second)
    assert api.delete(f"/api/domain/{one}").status_code == 500
    monkeypatch.undo()
    assert api.delete(f"/api/domain/{one}").status_code == 200
    for user, session in zip(users, sessions, strict=True):
        assert "domainadmin" not in services(root_connection, user)
        assert session.get("/api/domains").status_code == 401


def test_deleting_a_domain_ends_the_sessions_of_its_users(api, setup, root_connection):
    """A global admin that is a mail user of a deleted domain is out at its next request, not
    after SESSION_RECHECK_INTERVAL; a standalone admin whose address is in that domain keeps its
    session."""
    (one, _), _ = setup
    user = f"u1@{one}"
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    boss = ApiClient(api.app).login(user, PASSWORD)
    standalone = f"boss@{one}"
    assert api.post(f"/api/admin/{standalone}", {"password": PASSWORD, "isGlobalAdmin": "yes"}).status_code == 201
    other = ApiClient(api.app).login(standalone, PASSWORD)
    assert other.delete(f"/api/domain/{one}").status_code == 200
    assert boss.get("/api/admins").status_code == 401
    assert other.get("/api/admins").status_code == 200


def test_a_mail_user_at_a_standalone_admins_address_takes_no_admin_with_it(api, setup, root_connection):
    """A domain admin may not remove a standalone admin from its domain (global admins' job);
    nor by creating a mail user (or an alias address of one) at the standalone admin's address
    and deleting it: the delete takes out of domainAdmin the user's own rights only."""
    (one, _), _ = setup
    colleague = f"boss@{one}"
    assert api.post(f"/api/admin/{colleague}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": f"{colleague},u1@{one}"}).status_code == 200
    attacker = ApiClient(api.app).login(f"u1@{one}", PASSWORD)
    assert attacker.put(f"/api/domain/admins/{one}", {"removeAdmin": colleague}).status_code == 403
    assert attacker.post(f"/api/user/{colleague}", {"password": PASSWORD}).status_code == 201
    assert attacker.delete(f"/api/user/{colleague}").status_code == 200
    assert attacker.put(f"/api/user/u2@{one}", {"addAlias": colleague}).status_code == 200
    assert attacker.delete(f"/api/user/u2@{one}").status_code == 200
    assert admins_of(root_connection, one) == sorted([colleague, f"u1@{one}"])
    # the standalone admin named by a global admin: a mail user at its address is not marked
    assert attacker.post(f"/api/user/{colleague}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{one}", {"removeAdmin": colleague}).status_code == 200
    assert api.put(f"/api/domain/admins/{one}", {"addAdmin": colleague}).status_code == 200
    assert "domainadmin" not in services(root_connection, colleague)


def test_mail_user_admin_sessions_end_even_if_the_request_died_after_its_write(make_app, new_domain,
                                                                               monkeypatch):
    """isGlobalAdmin=no and a user delete that died after their write: the repeat (which sees no
    change, or answers 404) leaves no session with the old rights; a global admin taking the
    domainadmin service away ends the user's sessions at once."""
    from iredapi_ldap import provisioning
    from iredapi_ldap.resources import user as user_resource

    app = make_app(SESSION_RECHECK_INTERVAL=3600)
    api = ApiClient(app).login()
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    users = [f"u{n}@{domain}" for n in range(3)]
    for user in users:
        assert api.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
        assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    demoted, deleted, unserviced = (ApiClient(app).login(user, PASSWORD) for user in users)

    def dying(real):
        def run(*args, **kwargs):
            real(*args, **kwargs)
            raise RuntimeError("killed")
        return run

    monkeypatch.setattr(user_resource.admin_directory, "set_global_admin",
                        dying(user_resource.admin_directory.set_global_admin))
    monkeypatch.setattr(provisioning.user_directory, "delete_user_entry",
                        dying(provisioning.user_directory.delete_user_entry))
    assert api.put(f"/api/user/{users[0]}", {"isGlobalAdmin": "no"}).status_code == 500
    assert api.delete(f"/api/user/{users[1]}").status_code == 500
    monkeypatch.undo()
    assert api.put(f"/api/user/{users[0]}", {"isGlobalAdmin": "no"}).status_code == 200
    assert demoted.get("/api/admins").status_code == 401
    assert api.delete(f"/api/user/{users[1]}").status_code == 404
    assert deleted.get("/api/domains").status_code == 401
    assert api.put(f"/api/domain/admins/{domain}", {"addAdmin": users[2]}).status_code == 200
    assert api.put(f"/api/user/{users[2]}", {"isGlobalAdmin": "no"}).status_code == 200
    unserviced = ApiClient(app).login(users[2], PASSWORD)  # the admin of its domain
    assert unserviced.get("/api/domains").status_code == 200
    assert api.put(f"/api/user/{users[2]}", {"removeService": "domainadmin"}).status_code == 200
    assert unserviced.get("/api/domains").status_code == 401


def test_disabling_a_domain_ends_its_admins_sessions(make_app, new_domain):
    app = make_app(SESSION_RECHECK_INTERVAL=3600)
    api = ApiClient(app).login()
    domain, other = new_domain(), new_domain()
    for name in (domain, other):
        assert api.post(f"/api/domain/{name}").status_code == 201
        assert api.post(f"/api/user/boss@{name}", {"password": PASSWORD}).status_code == 201
        assert api.put(f"/api/user/boss@{name}", {"isGlobalAdmin": "yes"}).status_code == 200
    boss, other_boss = (ApiClient(app).login(f"boss@{name}", PASSWORD) for name in (domain, other))
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert boss.get("/api/admins").status_code == 401
    assert other_boss.get("/api/admins").status_code == 200


def test_a_remove_admin_that_died_before_unmarking_is_finished_by_a_repeat(make_app, new_domain, root_connection,
                                                                           monkeypatch):
    """removeAdmin wrote domainAdmin and died before it took enabledService domainadmin away, or
    before it ended the sessions: the repeat, which finds the address no longer listed, finishes."""
    from iredapi_ldap.directory import domain_admins as directory

    app = make_app(SESSION_RECHECK_INTERVAL=3600)
    api = ApiClient(app).login()
    domain = new_domain()
    assert api.post(f"/api/domain/{domain}").status_code == 201
    users = [f"u1@{domain}", f"u2@{domain}"]
    for user in users:
        assert api.post(f"/api/user/{user}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/domain/admins/{domain}", {"addAdmin": ",".join(users)}).status_code == 200
    sessions = [ApiClient(app).login(user, PASSWORD) for user in users]

    def die(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(directory, "unmark_if_idle", die)
    assert api.put(f"/api/domain/admins/{domain}", {"removeAdmin": users[0]}).status_code == 500
    monkeypatch.undo()
    monkeypatch.setattr(app.services.sessions, "end_sessions", die)
    assert api.put(f"/api/domain/admins/{domain}", {"removeAdmin": users[1]}).status_code == 500
    monkeypatch.undo()
    assert admins_of(root_connection, domain) == []
    for user, session in zip(users, sessions, strict=True):
        assert api.put(f"/api/domain/admins/{domain}", {"removeAdmin": user}).status_code == 200
        assert "domainadmin" not in services(root_connection, user)
        assert session.get("/api/domains").status_code == 401


def test_a_mail_user_admin_cannot_disable_or_delete_itself(api, setup, root_connection):
    """As a standalone admin cannot (403; the last global admin could not be restored through
    the API): a global mail user disabling or deleting its own account."""
    (one, _), _ = setup
    user = f"u1@{one}"
    assert api.put(f"/api/user/{user}", {"isGlobalAdmin": "yes"}).status_code == 200
    boss = ApiClient(api.app).login(user, PASSWORD)
    before = read_entry(root_connection, user_dn(user))
    result = boss.put(f"/api/user/{user}", {"accountStatus": "disabled"})
    assert result.status_code == 403 and result.json["param"] == "accountStatus"
    assert boss.delete(f"/api/user/{user}").status_code == 403
    assert read_entry(root_connection, user_dn(user)) == before
    assert boss.put(f"/api/user/{user}", {"accountStatus": "active", "cn": "Boss"}).status_code == 200
    assert boss.get("/api/admins").status_code == 200
