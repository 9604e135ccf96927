"""The access matrix: API switch, client allow-list, proxies, login required, who may log in,
and what happens to a session when its admin changes in the directory."""

import re

import ldap3
import pytest
import sqlalchemy as sa

from iredapi_ldap.store import tables
from tests.conftest import (
    GLOBAL_ADMIN,
    GLOBAL_ADMIN_PASSWORD,
    SUFFIX,
    ApiClient,
    _ssha,
    domain_dn,
    failed,
    read_entry,
    user_dn,
)

COOKIE = "iRedAdmin-LDAP"


def session_rows(app):
    with app.services.admin_store.transaction() as conn:
        return conn.execute(sa.select(tables.api_sessions)).mappings().all()


def add_standalone_admin(conn, mail, password, *, status="active", is_global=False, domains=()):
    dn = f"mail={mail},o=domainAdmins,{SUFFIX}"
    attributes = {"objectClass": ["mailAdmin"], "mail": [mail], "userPassword": [_ssha(password)],
                  "accountStatus": [status]}
    if is_global:
        attributes["domainGlobalAdmin"] = ["yes"]
    status_, result, _, _ = conn.add(dn, attributes=attributes)
    assert result["result"] == 0, result
    for domain in domains:
        conn.modify(domain_dn(domain), {"domainAdmin": [(ldap3.MODIFY_ADD, [mail])]})
    return dn


def add_mail_user(conn, domain, local, password, *, admin=False, manages=(), **extra):
    mail = f"{local}@{domain}"
    dn = f"mail={mail},ou=Users,{domain_dn(domain)}"
    services = ["mail", "deliver"] + (["domainadmin"] if admin else [])
    attributes = {"objectClass": ["inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount"],
                  "mail": [mail], "uid": [local], "cn": [local], "sn": [local], "userPassword": [_ssha(password)],
                  "accountStatus": ["active"], "enabledService": services,
                  "homeDirectory": [f"/var/vmail/vmail1/{domain}/{local}/"]}
    attributes.update(extra)
    status, result, _, _ = conn.add(dn, attributes=attributes)
    assert result["result"] == 0, result
    for managed in manages:
        conn.modify(domain_dn(managed), {"domainAdmin": [(ldap3.MODIFY_ADD, [mail])]})
    return mail, dn


def login(client, username, password):
    return client.post("/api/login", {"username": username, "password": password})


def all_routes(app):
    """(template, path) of every route the app has, with sample values for the URL fields."""
    samples = {"domain": "example.com", "mail": "user@example.com", "days": "30"}
    found = []

    def walk(nodes):
        for node in nodes:
            if node.method_map:
                path = re.sub(r"{(\w+)}", lambda m: samples.get(m.group(1), "x"), node.uri_template)
                found.append((node.uri_template, path))
            walk(node.children)

    walk(app._router._roots)
    return found


METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


# -- ENABLE_RESTFUL_API -------------------------------------------------------------------

def test_api_disabled_refuses_every_url_logged_in_or_not(make_app):
    enabled = ApiClient(make_app()).login()  # a session in the shared store
    disabled_app = make_app(ENABLE_RESTFUL_API=False)
    paths = [path for _, path in all_routes(disabled_app)] + ["/api/nothing", "/api/", "/"]
    assert "/api/login" in paths and "/api/domains" in paths
    for cookies in ({}, dict(enabled.cookies)):
        client = ApiClient(disabled_app)
        client.cookies.update(cookies)
        for path in paths:
            for method in METHODS:
                result = client.request(method, path)
                assert result.status_code == 403, (method, path, result.text)
                assert result.json["success"] is False and result.json["msg"] == "API_DISABLED", (method, path)
    # even with the right password no session is made
    result = login(ApiClient(disabled_app), GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD)
    assert result.status_code == 403 and "Set-Cookie" not in result.headers
    assert len(session_rows(disabled_app)) == 1  # only the enabled app's


# -- RESTRICT_API_ACCESS + RESTFUL_API_CLIENTS ----------------------------------------------

CLIENTS = ["192.0.2.10", "198.51.100.0/24", "2001:db8::5", "2001:db8:1::/48"]


@pytest.mark.parametrize("address", [
    "192.0.2.10", "198.51.100.1", "198.51.100.254", "2001:db8::5", "2001:db8:1::1", "2001:db8:1:ffff::9",
    "::ffff:192.0.2.10",  # an IPv4 client seen through a dual-stack socket
])
def test_allowed_clients_may_log_in_and_work(make_app, address):
    client = ApiClient(make_app(RESTRICT_API_ACCESS=True, RESTFUL_API_CLIENTS=CLIENTS), remote_addr=address)
    result = login(client, GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD)
    assert result.status_code == 200, result.text
    assert client.get("/api/domains").status_code == 200


@pytest.mark.parametrize("address", [
    "192.0.2.11", "198.51.101.1", "127.0.0.1", "2001:db8::6", "2001:db8:2::1", "::1", "::ffff:192.0.2.11",
    "not-an-address", "",
])
def test_other_clients_are_not_authorized_and_get_no_session(make_app, address):
    app = make_app(RESTRICT_API_ACCESS=True, RESTFUL_API_CLIENTS=CLIENTS)
    client = ApiClient(app, remote_addr=address)
    result = login(client, GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD)
    assert result.status_code == 403
    assert result.json == failed("NOT_AUTHORIZED", detail="this client address may not use the API")
    assert "Set-Cookie" not in result.headers and session_rows(app) == []
    # a session obtained from an allowed address does not help either
    allowed = ApiClient(app, remote_addr="192.0.2.10").login()
    client.cookies.update(allowed.cookies)
    for path in ("/api/domains", "/api/domain/example.com", "/api/logout", "/api/nothing"):
        result = client.get(path) if path != "/api/logout" else client.post(path)
        assert result.status_code == 403 and result.json["msg"] == "NOT_AUTHORIZED", path
    assert len(session_rows(app)) == 1  # the refused logout ended nothing


def test_restricted_with_an_empty_list_allows_nobody(make_app):
    client = ApiClient(make_app(RESTRICT_API_ACCESS=True, RESTFUL_API_CLIENTS=[]))
    result = login(client, GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD)
    assert result.status_code == 403 and result.json["msg"] == "NOT_AUTHORIZED"


def test_the_list_is_not_enforced_unless_restricted(make_app):
    # iRedAdmin's seed: RESTFUL_API_CLIENTS only counts with RESTRICT_API_ACCESS = True
    client = ApiClient(make_app(RESTRICT_API_ACCESS=False, RESTFUL_API_CLIENTS=["192.0.2.10"]),
                       remote_addr="203.0.113.1")
    assert login(client, GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD).status_code == 200


# -- X-Forwarded-For and TRUSTED_PROXIES ------------------------------------------------------

@pytest.mark.parametrize("peer,forwarded,allowed", [
    ("10.0.0.1", "192.0.2.10", True),                     # a trusted proxy vouches for the client
    ("203.0.113.5", "192.0.2.10", False),                 # spoofed by an untrusted peer: ignored
    ("192.0.2.10", "203.0.113.5", True),                  # ... both ways: the peer itself counts
    ("10.0.0.1", "192.0.2.10, 203.0.113.9", False),       # the rightmost untrusted hop is the client
    ("10.0.0.1", "203.0.113.9, 192.0.2.10", True),        # anything left of it is the client's own claim
    ("10.0.0.1", "192.0.2.10, 10.0.0.2", True),           # trusted hops are skipped, right to left
    ("10.0.0.1", "192.0.2.10, 10.0.0.2, 10.0.0.3", True),
    ("10.0.0.1", "203.0.113.9, 10.0.0.2", False),
    ("10.0.0.1", "10.0.0.2, 10.0.0.3", False),            # only proxies: the peer (not listed) counts
    ("10.0.0.1", "192.0.2.10:4711", False),               # malformed: the header is not believed
    ("10.0.0.1", "192.0.2.10, garbage", False),
    ("10.0.0.1", "", False),
    ("10.0.0.1", None, False),
    ("::ffff:10.0.0.1", "192.0.2.10", True),              # the proxy via a dual-stack socket
])
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(make_app, peer, forwarded, allowed):
    app = make_app(RESTRICT_API_ACCESS=True, RESTFUL_API_CLIENTS=["192.0.2.10"],
                   TRUSTED_PROXIES=["10.0.0.0/24"])
    client = ApiClient(app, remote_addr=peer)
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    result = client.post("/api/login", {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD},
                         headers=headers)
    if allowed:
        assert result.status_code == 200, result.text
    else:
        assert result.status_code == 403 and result.json["msg"] == "NOT_AUTHORIZED", result.text
        assert session_rows(app) == []


def test_x_forwarded_for_is_ignored_without_trusted_proxies(make_app):
    client = ApiClient(make_app(RESTRICT_API_ACCESS=True, RESTFUL_API_CLIENTS=["192.0.2.10"]),
                       remote_addr="127.0.0.1")
    result = client.post("/api/login", {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD},
                         headers={"X-Forwarded-For": "192.0.2.10"})
    assert result.status_code == 403 and result.json["msg"] == "NOT_AUTHORIZED"


# -- login required --------------------------------------------------------------------------

def test_every_endpoint_but_login_requires_a_session(make_app):
    app = make_app()
    routes = all_routes(app)
    templates = [t for t, _ in routes]
    assert {"/api/login", "/api/logout", "/api/domains", "/api/domain/{domain}"} <= set(templates)
    client = ApiClient(app)
    for template, path in routes:
        if template.endswith("/api/login"):
            continue
        for method in METHODS:
            result = client.request(method, path)
            assert result.status_code == 401, (method, path, result.text)
            assert result.json == {"_success": False, "success": False, "_msg": "LOGIN_REQUIRED",
                                   "msg": "LOGIN_REQUIRED"}, (method, path)
            assert int(result.headers["X-Directory-Round-Trips"]) == 0
    # /api/login itself answers without a session (here: a missing parameter, not a login demand)
    result = client.post("/api/login", {})
    assert result.status_code == 400 and result.json["param"] == "username"


@pytest.mark.parametrize("cookie", ["", "garbage", "x" * 101, "x" * 5000, "é", "a;b", "%00"])
def test_a_bad_session_cookie_is_login_required(make_app, cookie):
    client = ApiClient(make_app())
    result = client.get("/api/domains", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert result.status_code == 401 and result.json["msg"] == "LOGIN_REQUIRED"


def test_a_cookie_under_another_name_is_not_a_session(make_app):
    app = make_app()
    client = ApiClient(app).login()
    token = client.cookies[COOKIE]
    result = ApiClient(app).get("/api/domains", headers={"Cookie": f"iRedAdmin-MYSQL={token}"})
    assert result.status_code == 401
    renamed = make_app(SESSION_COOKIE_NAME="custom-cookie")
    assert ApiClient(renamed).get("/api/domains", headers={"Cookie": f"custom-cookie={token}"}).status_code == 200
    assert ApiClient(renamed).get("/api/domains", headers={"Cookie": f"{COOKIE}={token}"}).status_code == 401


# -- who may log in --------------------------------------------------------------------------

def test_mail_user_promoted_to_domain_admin(api, make_app, root_connection, new_domain):
    home, managed, other = new_domain(), new_domain(), new_domain()
    for domain in (home, managed, other):
        api.post(f"/api/domain/{domain}")
    mail, _ = add_mail_user(root_connection, home, "boss", "Boss-Secret-1", admin=True, manages=[home, managed])
    client = ApiClient(make_app())
    result = login(client, mail, "Boss-Secret-1")
    assert result.status_code == 200, result.text
    assert sorted(client.get("/api/domains", params={"name_only": "yes"}).json["_data"]) == sorted([home, managed])
    assert client.get(f"/api/domain/{managed}").status_code == 200
    assert client.put(f"/api/domain/{managed}", {"cn": "Managed"}).status_code == 200
    before = read_entry(root_connection, domain_dn(other))
    for result in (client.get(f"/api/domain/{other}"), client.put(f"/api/domain/{other}", {"cn": "mine now"}),
                   client.delete(f"/api/domain/{other}"), client.post(f"/api/domain/{new_domain()}")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert read_entry(root_connection, domain_dn(other)) == before


def test_mail_user_global_admin_reaches_every_domain(api, make_app, root_connection, new_domain):
    home, other = new_domain(), new_domain()
    api.post(f"/api/domain/{home}")
    api.post(f"/api/domain/{other}", {"cn": "Other"})
    mail, _ = add_mail_user(root_connection, home, "chief", "Chief-Secret-1", domainGlobalAdmin=["yes"])
    client = ApiClient(make_app())
    assert login(client, mail, "Chief-Secret-1").status_code == 200
    assert client.get(f"/api/domain/{other}").json["_data"]["cn"] == ["Other"]


def test_domain_admin_listed_nowhere_manages_nothing(api, make_app, root_connection, new_domain):
    home = new_domain()
    api.post(f"/api/domain/{home}")
    mail, _ = add_mail_user(root_connection, home, "idle", "Idle-Secret-1", admin=True)
    client = ApiClient(make_app())
    assert login(client, mail, "Idle-Secret-1").status_code == 200
    assert client.get("/api/domains", params={"name_only": "yes"}).json["_data"] == []
    assert client.get(f"/api/domain/{home}").status_code == 403


def test_refused_logins_are_byte_identical(api, make_app, root_connection, new_domain):
    """Wrong password, unknown user, disabled admin, plain mail user, user of a disabled domain:
    one answer, so the API never tells which accounts exist or what they are."""
    domain, dead = new_domain(), new_domain()
    api.post(f"/api/domain/{domain}")
    api.post(f"/api/domain/{dead}")
    disabled_admin = f"off@{domain}"
    add_standalone_admin(root_connection, disabled_admin, "Off-Secret-1", status="disabled", domains=[domain])
    user, _ = add_mail_user(root_connection, domain, "plain", "Plain-Secret-1")
    boss, _ = add_mail_user(root_connection, domain, "boss", "Boss-Secret-1", admin=True, manages=[domain])
    dead_boss, _ = add_mail_user(root_connection, dead, "boss", "Boss-Secret-1", admin=True, manages=[dead])
    assert api.put(f"/api/domain/{dead}", {"accountStatus": "disabled"}).status_code == 200
    assert read_entry(root_connection, f"mail={dead_boss},ou=Users,{domain_dn(dead)}")["domainStatus"] == [
        "disabled"]

    app = make_app()
    sessions_before = session_rows(app)  # the `api` fixture's, in the same store
    attempts = {
        "wrong password": (GLOBAL_ADMIN, "Wrong-Secret-1"),
        "unknown user": (f"nobody@{domain}", GLOBAL_ADMIN_PASSWORD),
        "unknown domain": ("nobody@no-such-domain.test", GLOBAL_ADMIN_PASSWORD),
        "disabled admin, right password": (disabled_admin, "Off-Secret-1"),
        "mail user without admin rights, right password": (user, "Plain-Secret-1"),
        "mail-user admin, wrong password": (boss, "Wrong-Secret-1"),
        "mail-user admin of a disabled domain, right password": (dead_boss, "Boss-Secret-1"),
    }
    results = {what: ApiClient(app).post("/api/login", {"username": u, "password": p})
               for what, (u, p) in attempts.items()}
    reference = results["wrong password"]
    assert reference.status_code == 401
    assert reference.content == (b'{"_success": false, "success": false, "_msg": "INVALID_CREDENTIALS", '
                                 b'"msg": "INVALID_CREDENTIALS"}')
    for what, result in results.items():
        assert result.status_code == 401, what
        assert result.content == reference.content, what
        assert dict(result.headers) == dict(reference.headers), what  # no round-trip count either
        assert "Set-Cookie" not in result.headers, what
    assert session_rows(app) == sessions_before
    # the same accounts with the right settings do log in
    assert login(ApiClient(app), boss, "Boss-Secret-1").status_code == 200


def test_disabled_admin_loses_access_at_the_next_recheck(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"admin@{domain}"
    dn = add_standalone_admin(root_connection, mail, "Admin-Secret-2", domains=[domain])
    app = make_app(SESSION_RECHECK_INTERVAL=0)
    client = ApiClient(app).login(mail, "Admin-Secret-2")
    assert client.get(f"/api/domain/{domain}").status_code == 200
    token = client.cookies[COOKIE]

    root_connection.modify(dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["disabled"])]})
    before = read_entry(root_connection, domain_dn(domain))
    result = client.put(f"/api/domain/{domain}", {"cn": "too late"})
    assert result.status_code == 401 and result.json["msg"] == "LOGIN_REQUIRED"
    assert read_entry(root_connection, domain_dn(domain)) == before
    assert [r for r in session_rows(app) if r["username"] == mail] == []  # gone, not just refused once

    root_connection.modify(dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["active"])]})
    client.cookies[COOKIE] = token
    assert client.get(f"/api/domain/{domain}").status_code == 401  # re-enabling does not revive it


def test_recheck_happens_once_the_interval_has_passed(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"admin@{domain}"
    dn = add_standalone_admin(root_connection, mail, "Admin-Secret-3", domains=[domain])
    app = make_app(SESSION_RECHECK_INTERVAL=60)
    client = ApiClient(app).login(mail, "Admin-Secret-3")
    root_connection.modify(dn, {"accountStatus": [(ldap3.MODIFY_REPLACE, ["disabled"])]})
    # within the interval the session is trusted: the domain read and its catch-all's, no recheck
    result = client.get(f"/api/domain/{domain}")
    assert result.status_code == 200 and result.headers["X-Directory-Round-Trips"] == "2"
    with app.services.admin_store.transaction() as conn:
        conn.execute(sa.update(tables.api_sessions).values(checked_at=tables.api_sessions.c.checked_at - 61))
    result = client.get(f"/api/domain/{domain}")
    assert result.status_code == 401 and result.json["msg"] == "LOGIN_REQUIRED"


def test_demoted_global_admin_loses_global_rights_at_the_recheck(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail = f"global@{new_domain()}"
    dn = add_standalone_admin(root_connection, mail, "Global-Secret-1", is_global=True)
    client = ApiClient(make_app(SESSION_RECHECK_INTERVAL=0)).login(mail, "Global-Secret-1")
    assert client.get(f"/api/domain/{domain}").status_code == 200
    root_connection.modify(dn, {"domainGlobalAdmin": [(ldap3.MODIFY_DELETE, [])]})
    result = client.get(f"/api/domain/{domain}")
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED"
    assert client.post(f"/api/domain/{new_domain()}").status_code == 403


def test_mail_user_admin_loses_access_when_the_domain_is_disabled(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail, _ = add_mail_user(root_connection, domain, "boss", "Boss-Secret-1", admin=True, manages=[domain])
    client = ApiClient(make_app(SESSION_RECHECK_INTERVAL=0)).login(mail, "Boss-Secret-1")
    assert client.get(f"/api/domain/{domain}").status_code == 200
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "disabled"}).status_code == 200
    assert client.get(f"/api/domain/{domain}").status_code == 401
    assert login(ApiClient(client.app), mail, "Boss-Secret-1").status_code == 401
    # and the domain's re-enabling lets it back in
    assert api.put(f"/api/domain/{domain}", {"accountStatus": "active"}).status_code == 200
    assert login(ApiClient(client.app), mail, "Boss-Secret-1").status_code == 200


def test_mail_user_admin_loses_access_when_domainadmin_service_is_removed(api, make_app, root_connection,
                                                                          new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail, dn = add_mail_user(root_connection, domain, "boss", "Boss-Secret-1", admin=True, manages=[domain])
    client = ApiClient(make_app(SESSION_RECHECK_INTERVAL=0)).login(mail, "Boss-Secret-1")
    root_connection.modify(dn, {"enabledService": [(ldap3.MODIFY_DELETE, ["domainadmin"])]})
    assert client.get(f"/api/domain/{domain}").status_code == 401


# -- what a domain admin may do to accounts that hold admin rights (issue 10, items 2 and 10) -------


@pytest.fixture
def takeover(api, make_app, root_connection, new_domain):
    """a.test's admin, and boss@a.test who also administers b.test (the issue's set-up)."""
    a, b = new_domain(), new_domain()
    for domain in (a, b):
        assert api.post(f"/api/domain/{domain}").status_code == 201
    assert api.post(f"/api/user/victim@{b}", {"password": "Victim-Secret-1"}).status_code == 201
    for local in ("plain", "doomed", "coadmin"):
        assert api.post(f"/api/user/{local}@{a}", {"password": "Plain-Secret-1"}).status_code == 201
    boss, _ = add_mail_user(root_connection, a, "boss", "Boss-Secret-1", admin=True, manages=[a, b])
    admin = f"admin@{a}"
    add_standalone_admin(root_connection, admin, "Admin-Secret-4", domains=[a])
    # a co-admin of a.test only: no right beyond the acting admin's
    root_connection.modify(domain_dn(a), {"domainAdmin": [(ldap3.MODIFY_ADD, [f"coadmin@{a}"])]})
    app = make_app()
    return {"a": a, "b": b, "boss": boss, "app": app, "admin": ApiClient(app).login(admin, "Admin-Secret-4")}


def test_domain_admin_cannot_take_over_an_admin_of_another_domain(api, root_connection, takeover):
    a, b, boss, client = takeover["a"], takeover["b"], takeover["boss"], takeover["admin"]
    before = read_entry(root_connection, user_dn(boss))
    victim = read_entry(root_connection, user_dn(f"victim@{b}"))
    # the attack: reset boss's password, log in as boss, change a b.test user
    result = client.put(f"/api/user/{boss}", {"password": "Taken-Over-1"})
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert login(ApiClient(takeover["app"]), boss, "Taken-Over-1").status_code == 401
    # nor any other way in: forwarding, addresses, status, services, a ready hash, deletion
    for form in ({"forwarding": f"admin@{a}"}, {"addForwarding": "spy@ext.test"}, {"addAlias": f"boss2@{a}"},
                 {"accountStatus": "disabled"}, {"removeService": "domainadmin"},
                 {"password_hash": _ssha("Taken-Over-1")}, {"cn": "Boss"}):
        result = client.put(f"/api/user/{boss}", form)
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", (form, result.text)
    for result in (client.delete(f"/api/user/{boss}"), client.delete(f"/api/user/{boss}/keep_mailbox_days/0")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert read_entry(root_connection, user_dn(boss)) == before
    assert read_entry(root_connection, user_dn(f"victim@{b}")) == victim
    # the same admin still manages plain users, and co-admins of its own domain only
    for mail in (f"plain@{a}", f"coadmin@{a}"):
        result = client.put(f"/api/user/{mail}", {"password": "Reset-Secret-1", "addForwarding": "x@ext.test"})
        assert result.status_code == 200, (mail, result.text)
    assert client.delete(f"/api/user/doomed@{a}").status_code == 200
    assert read_entry(root_connection, user_dn(f"doomed@{a}")) is None
    # and a global admin may reset boss, who then works in b.test
    assert api.put(f"/api/user/{boss}", {"password": "Reset-By-Root-1"}).status_code == 200
    as_boss = ApiClient(takeover["app"]).login(boss, "Reset-By-Root-1")
    assert as_boss.put(f"/api/user/victim@{b}", {"cn": "Changed by boss"}).status_code == 200

    # the same holds when b.test names boss by one of its alias addresses
    root_connection.modify(domain_dn(b), {"domainAdmin": [(ldap3.MODIFY_DELETE, [boss])]})
    assert api.put(f"/api/user/{boss}", {"addAlias": f"chief@{a}"}).status_code == 200
    root_connection.modify(domain_dn(b), {"domainAdmin": [(ldap3.MODIFY_ADD, [f"chief@{a}"])]})
    result = client.put(f"/api/user/{boss}", {"password": "Taken-Over-1"})
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text


@pytest.mark.parametrize("form,param", [
    ({"addService": "domainadmin"}, "addService"),
    ({"services": "mail,deliver,domainadmin"}, "services"),
])
def test_domain_admin_cannot_grant_admin_rights(api, root_connection, takeover, form, param):
    a, client = takeover["a"], takeover["admin"]
    before = read_entry(root_connection, user_dn(f"plain@{a}"))
    result = client.put(f"/api/user/plain@{a}", form)
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert result.json["param"] == param
    assert read_entry(root_connection, user_dn(f"plain@{a}")) == before
    assert api.put(f"/api/user/plain@{a}", form).status_code == 200  # a global admin may
    assert "domainadmin" in read_entry(root_connection, user_dn(f"plain@{a}"))["enabledService"]


@pytest.mark.parametrize("form,param", [
    ({"removeService": "domainadmin"}, "removeService"),
    ({"services": "mail,deliver"}, "services"),
])
def test_domain_admin_cannot_take_admin_rights_away(api, root_connection, takeover, form, param):
    a, client = takeover["a"], takeover["admin"]
    assert api.put(f"/api/user/coadmin@{a}", {"addService": "domainadmin"}).status_code == 200
    before = read_entry(root_connection, user_dn(f"coadmin@{a}"))
    result = client.put(f"/api/user/coadmin@{a}", form)
    assert result.status_code == 403 and result.json["param"] == param, result.text
    assert read_entry(root_connection, user_dn(f"coadmin@{a}")) == before
    # keeping the service in a reset is no change of rights
    kept = client.put(f"/api/user/coadmin@{a}", {"services": "mail,deliver,domainadmin"})
    assert kept.status_code == 200, kept.text
    assert sorted(read_entry(root_connection, user_dn(f"coadmin@{a}"))["enabledService"]) == [
        "deliver", "domainadmin", "mail"]
    assert api.put(f"/api/user/coadmin@{a}", form).status_code == 200  # a global admin may
    assert "domainadmin" not in read_entry(root_connection, user_dn(f"coadmin@{a}"))["enabledService"]


def test_password_change_disable_and_delete_end_the_admins_sessions(api, make_app, root_connection, new_domain):
    domain = new_domain()
    api.post(f"/api/domain/{domain}")
    mail, _ = add_mail_user(root_connection, domain, "boss", "Boss-Secret-1", admin=True, manages=[domain])
    app = make_app()  # the default SESSION_RECHECK_INTERVAL: a stale session would live on for a minute
    boss = ApiClient(app).login(mail, "Boss-Secret-1")
    assert boss.get(f"/api/domain/{domain}").status_code == 200
    assert api.put(f"/api/user/{mail}", {"password": "Boss-Secret-2"}).status_code == 200
    result = boss.get(f"/api/domain/{domain}")
    assert result.status_code == 401 and result.json["msg"] == "LOGIN_REQUIRED"
    assert [r for r in session_rows(app) if r["username"] == mail] == []

    # its own password change keeps the session it used, and ends its others
    boss, other = ApiClient(app).login(mail, "Boss-Secret-2"), ApiClient(app).login(mail, "Boss-Secret-2")
    assert boss.put(f"/api/user/{mail}", {"password": "Boss-Secret-3"}).status_code == 200
    assert boss.get(f"/api/domain/{domain}").status_code == 200
    assert other.get(f"/api/domain/{domain}").status_code == 401

    # disabled, then deleted: at once, too
    assert api.put(f"/api/user/{mail}", {"accountStatus": "disabled"}).status_code == 200
    assert boss.get(f"/api/domain/{domain}").status_code == 401
    assert api.put(f"/api/user/{mail}", {"accountStatus": "active"}).status_code == 200
    boss = ApiClient(app).login(mail, "Boss-Secret-3")
    assert api.delete(f"/api/user/{mail}").status_code == 200
    assert boss.get(f"/api/domain/{domain}").status_code == 401
    # other admins' sessions are untouched
    assert api.get(f"/api/domain/{domain}").status_code == 200
