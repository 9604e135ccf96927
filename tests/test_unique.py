"""One address, one account: slapd's unique overlay, its set-up, and the API under real races.

The API checks that an address is free before it writes, but the check and the write are
two operations; the overlay (configured by ``install_schema``) makes slapd refuse the write
that would duplicate a ``mail`` or ``shadowAddress`` of a user, alias or list, whoever writes.
"""

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import ldap
import ldap3
import pytest

from iredapi_ldap.cli import main
from iredapi_ldap.directory import setup as directory_setup
from iredapi_ldap.localslapd import LocalSlapd, free_port
from tests.conftest import SUFFIX, VMAILADMIN_PASSWORD, ApiClient, count_entries, domain_dn, read_entry
from tests.test_gunicorn import COOKIE, gunicorn, login, request, wait_until_answering

BASEDN = f"o=domains,{SUFFIX}"
PASSWORD = "Secret-pw1!"
COUNTERS = ("domainCurrentUserNumber", "domainCurrentAliasNumber", "domainCurrentListNumber",
            "domainCurrentQuotaSize")
KINDS = {"user": "Users", "alias": "Aliases", "maillist": "Groups"}


def entry_dn(kind, mail):
    return f"mail={mail},ou={KINDS[kind]},{domain_dn(mail.split('@')[1])}"


@pytest.fixture
def domain(api, new_domain):
    name = new_domain()
    assert api.post(f"/api/domain/{name}").status_code == 201
    return name


@pytest.fixture
def other_tool(ldap_server):
    """Another program writing the directory with the API's own bind DN (as iRedAdmin would)."""
    conn = ldap.initialize(ldap_server.ldap_uri)
    conn.simple_bind_s(f"cn=vmailadmin,{SUFFIX}", VMAILADMIN_PASSWORD)
    yield conn
    conn.unbind_s()


def add(conn, dn, attributes):
    conn.add_s(dn, [(name, [v.encode() for v in values]) for name, values in attributes.items()])


def alias_entry(mail):
    return {"objectClass": ["mailAlias"], "mail": [mail], "accountStatus": ["active"]}


def counters(conn, domain):
    entry = read_entry(conn, domain_dn(domain))
    return {name: int(entry.get(name, ["0"])[0]) for name in COUNTERS}


def holders(conn, address):
    """DNs of the users, aliases and lists that have ``address`` as mail or shadowAddress."""
    flt = (f"(&(|(objectClass=mailUser)(objectClass=mailAlias)(objectClass=mailList))"
           f"(|(mail={address})(shadowAddress={address})))")
    _, _, response, _ = conn.search(BASEDN, flt, attributes=["1.1"])
    return sorted(r["dn"] for r in response if r.get("type") == "searchResEntry")


# -- set-up ---------------------------------------------------------------------------------


def test_check_and_install_on_a_fresh_slapd(tmp_path, capsys):
    server = LocalSlapd(tmp_path / "slapd", SUFFIX).start()
    settings = tmp_path / "settings.py"
    settings.write_text(f'ldap_basedn = "{BASEDN}"\nldap_domainadmin_dn = "o=domainAdmins,{SUFFIX}"\n'
                        f'ldap_bind_dn = "cn=vmailadmin,{SUFFIX}"\nldap_bind_password = "unused"\n')
    cli = ["--config", str(settings)]
    try:
        assert main([*cli, "check", "--ldapi", server.ldapi_uri]) == 1
        out = capsys.readouterr().out
        assert "module unique" in out and "unique overlay" in out and "schema iredmail" in out

        assert main([*cli, "schema-install", "--ldapi", server.ldapi_uri]) == 0
        assert "unique overlay" in capsys.readouterr().out
        assert main([*cli, "check", "--ldapi", server.ldapi_uri]) == 0
        assert "unique overlay are in place" in capsys.readouterr().out
        conn = directory_setup.open_external(server.ldapi_uri)
        try:
            assert directory_setup.install_schema(conn, SUFFIX) == []
            overlay = _unique_overlay(conn)
            assert overlay["olcUniqueURI"] == [directory_setup.unique_uri(BASEDN)]

            # Without a rootDN the overlay's search fails and slapd refuses every address:
            # install and check say so instead of going ahead.
            conn.modify("olcDatabase={1}mdb,cn=config", {"olcRootDN": [(ldap3.MODIFY_DELETE, [])]})
            with pytest.raises(directory_setup.SetupError, match="olcRootDN"):
                directory_setup.install_schema(conn, SUFFIX)
        finally:
            conn.unbind()
        assert main([*cli, "check", "--ldapi", server.ldapi_uri]) == 1
        assert "no rootDN" in capsys.readouterr().err
        # A private slapd (iredapi-ldap dev) whose database has no rootDN gets one back at start.
        server.stop()
        server.start()
        assert main([*cli, "check", "--ldapi", server.ldapi_uri]) == 0
    finally:
        server.stop()


def _unique_overlay(conn):
    _, _, response, _ = conn.search("olcDatabase={1}mdb,cn=config", "(objectClass=olcUniqueConfig)",
                                    search_scope=ldap3.LEVEL, attributes=["olcUniqueURI"])
    found = [r["attributes"] for r in response if r.get("type") == "searchResEntry"]
    assert len(found) == 1
    return found[0]


def test_the_test_slapd_has_the_overlay(ldap_server, root_connection):
    assert _unique_overlay(root_connection)["olcUniqueURI"] == [directory_setup.unique_uri(BASEDN)]


# -- what slapd refuses, whoever writes -----------------------------------------------------------


def test_slapd_refuses_another_tools_duplicate(api, other_tool, root_connection, domain):
    ann, bob = f"ann@{domain}", f"bob@{domain}"
    for mail in (ann, bob):
        assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    assert api.put(f"/api/user/{ann}", {"addAlias": f"x@{domain}"}).status_code == 200

    with pytest.raises(ldap.CONSTRAINT_VIOLATION):  # a user's mail as an alias
        add(other_tool, entry_dn("alias", ann), alias_entry(ann))
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):  # differently cased: caseIgnoreIA5Match
        add(other_tool, entry_dn("maillist", ann).replace("ann@", "ANN@"),
            {"objectClass": ["mailList"], "mail": [ann.upper()]})
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):  # another user's shadowAddress
        other_tool.modify_s(entry_dn("user", bob), [(ldap.MOD_ADD, "shadowAddress", [f"x@{domain}".encode()])])
    # The catch-all is a mailUser too.
    catch_all = f"@{domain}"
    add(other_tool, entry_dn("user", catch_all), {"objectClass": ["inetOrgPerson", "mailUser"], "mail": [catch_all],
                                                  "uid": ["catchall"], "cn": ["catchall"], "sn": ["catchall"]})
    with pytest.raises(ldap.CONSTRAINT_VIOLATION):
        add(other_tool, entry_dn("alias", catch_all), alias_entry(catch_all))
    assert holders(root_connection, ann) == [entry_dn("user", ann)]
    assert holders(root_connection, f"x@{domain}") == [entry_dn("user", ann)]
    assert holders(root_connection, catch_all) == [entry_dn("user", catch_all)]


def test_what_the_overlay_leaves_alone(api, other_tool, root_connection, domain, new_domain):
    ann, bob = f"ann@{domain}", f"bob@{domain}"
    for mail in (ann, bob):
        assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    # An entry keeps its own values: a change of cn only, a second and third shadowAddress,
    # re-stating the whole list.
    assert api.put(f"/api/user/{ann}", {"cn": "Ann"}).status_code == 200
    assert api.put(f"/api/user/{ann}", {"addAlias": f"a1@{domain}"}).status_code == 200
    assert api.put(f"/api/user/{ann}", {"addAlias": f"a2@{domain}"}).status_code == 200
    assert api.put(f"/api/user/{ann}", {"aliases": f"a1@{domain},a2@{domain}", "cn": "A"}).status_code == 200
    # One external address in two lists: each list has its own mailExternalUser entry.
    outside = f"ext@{new_domain()}"
    for name in ("l1", "l2"):
        assert api.post(f"/api/maillist/{name}@{domain}", {"members": outside}).status_code == 201
    assert count_entries(root_connection, BASEDN, f"(&(objectClass=mailExternalUser)(mail={outside}))") == 2
    # Other attributes: forwarding to, and membership of, another account's address.
    assert api.put(f"/api/user/{bob}", {"forwarding": f"{ann},{bob}"}).status_code == 200
    other_tool.modify_s(entry_dn("user", bob), [(ldap.MOD_ADD, "mailForwardingAddress", [b"a1@" + domain.encode()])])
    # A standalone admin may have a user's address.
    admin_dn = f"mail={ann},o=domainAdmins,{SUFFIX}"
    add(other_tool, admin_dn, {"objectClass": ["mailAdmin"], "mail": [ann], "accountStatus": ["active"]})
    other_tool.delete_s(admin_dn)
    # What the overlay cannot see: a mail against another entry's shadowAddress.  slapd takes
    # it (the overlay compares each attribute with itself); the API's own check refuses it.
    result = api.post(f"/api/alias/a1@{domain}")
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS"
    add(other_tool, entry_dn("alias", f"a1@{domain}"), alias_entry(f"a1@{domain}"))
    assert len(holders(root_connection, f"a1@{domain}")) == 2
    other_tool.delete_s(entry_dn("alias", f"a1@{domain}"))


# -- the API losing a race: 409, counters given back ------------------------------------------------


@pytest.fixture
def interloper(make_app, other_tool, monkeypatch):
    """arm(dn, planted_dn, planted) -> (client, armed): an app whose first add or modify of ``dn``
    comes right after another writer added ``planted`` at ``planted_dn``: a lost race, every time."""

    def arm(dn, planted_dn, planted):
        app = make_app()
        ldap_client = app.services.directory.client
        armed = {"done": False}
        for name in ("add", "modify"):
            real = getattr(ldap_client, name)

            def wrapper(target, *args, _real=real):
                if target.lower() == dn.lower() and not armed["done"]:
                    armed["done"] = True
                    add(other_tool, planted_dn, planted)
                return _real(target, *args)

            monkeypatch.setattr(ldap_client, name, wrapper)
        return ApiClient(app).login(), armed

    return arm


@pytest.mark.parametrize("kind", ["user", "alias", "maillist"])
def test_a_create_that_loses_the_race_is_409_and_gives_its_counters_back(
        interloper, root_connection, domain, kind):
    mail = f"race@{domain}"
    planted_kind = "alias" if kind != "alias" else "maillist"
    planted = alias_entry(mail) if planted_kind == "alias" else {"objectClass": ["mailList"], "mail": [mail]}
    client, armed = interloper(entry_dn(kind, mail), entry_dn(planted_kind, mail), planted)
    before = counters(root_connection, domain)
    form = {"password": PASSWORD, "mailQuota": "5"} if kind == "user" else {}
    result = client.post(f"/api/{kind}/{mail}", form)
    assert armed["done"]
    assert result.status_code == 409, result.text
    assert result.json["msg"] == "ALREADY_EXISTS" and mail in result.json.get("detail", "")
    assert counters(root_connection, domain) == before
    assert holders(root_connection, mail) == [entry_dn(planted_kind, mail)]


def test_an_alias_address_that_loses_the_race_is_409_and_gives_the_quota_back(
        interloper, api, root_connection, domain):
    bob, wanted = f"bob@{domain}", f"both@{domain}"
    assert api.post(f"/api/user/{bob}", {"password": PASSWORD, "mailQuota": "10"}).status_code == 201
    before = counters(root_connection, domain)
    # Between the API's check and its modify of bob, another writer gives the address to a user.
    client, armed = interloper(entry_dn("user", bob), f"mail=planted-{wanted},ou=Users,{domain_dn(domain)}",
                               {"objectClass": ["inetOrgPerson", "mailUser"], "mail": [f"planted-{wanted}"],
                                "uid": ["p"], "cn": ["p"], "sn": ["p"], "shadowAddress": [wanted]})
    result = client.put(f"/api/user/{bob}", {"addAlias": wanted, "mailQuota": "30"})
    assert armed["done"]
    assert result.status_code == 409, result.text
    assert result.json["msg"] == "ALREADY_EXISTS" and result.json.get("detail") == wanted
    entry = read_entry(root_connection, entry_dn("user", bob))
    assert "shadowAddress" not in entry and entry["mailQuota"] == [str(10 * 1024 * 1024)]
    assert counters(root_connection, domain) == before  # the 20 MB reserved for the new quota came back


# -- mail against shadowAddress: the overlay compares each attribute with itself only, so the API
# looks again after its write, and the one that finds the other yields --------------------------


@pytest.mark.parametrize("kind", ["user", "alias", "maillist"])
def test_a_create_racing_an_alias_address_yields(interloper, root_connection, domain, kind):
    mail = f"raced@{domain}"
    planted_dn = f"mail=holder-{mail},ou=Users,{domain_dn(domain)}"
    planted = {"objectClass": ["inetOrgPerson", "mailUser"], "mail": [f"holder-{mail}"], "uid": ["h"],
               "cn": ["h"], "sn": ["h"], "shadowAddress": [mail]}
    client, armed = interloper(entry_dn(kind, mail), planted_dn, planted)
    before = counters(root_connection, domain)
    form = {"password": PASSWORD, "mailQuota": "5"} if kind == "user" else {}
    result = client.post(f"/api/{kind}/{mail}", form)
    assert armed["done"]
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
    assert holders(root_connection, mail) == [planted_dn]  # our entry is gone again
    assert counters(root_connection, domain) == before


def test_an_alias_address_racing_a_create_yields_and_changes_nothing(interloper, api, root_connection, domain):
    bob, wanted = f"bob@{domain}", f"taken-later@{domain}"
    assert api.post(f"/api/user/{bob}", {"password": PASSWORD, "mailQuota": "10", "cn": "Bob"}).status_code == 201
    before_bob, before_counters = read_entry(root_connection, entry_dn("user", bob)), counters(root_connection, domain)
    # Between the API's look and its write, another writer creates an alias with that address.
    client, armed = interloper(entry_dn("user", bob), entry_dn("alias", wanted), alias_entry(wanted))
    result = client.put(f"/api/user/{bob}", {"addAlias": wanted, "cn": "Changed", "mailQuota": "20"})
    assert armed["done"]
    assert result.status_code == 409 and result.json["msg"] == "ALREADY_EXISTS", result.text
    assert result.json["param"] == "addAlias" and result.json["detail"] == wanted
    assert read_entry(root_connection, entry_dn("user", bob)) == before_bob
    assert counters(root_connection, domain) == before_counters
    assert holders(root_connection, wanted) == [entry_dn("alias", wanted)]


# -- real concurrency: two servers, two workers each --------------------------------------------


@pytest.fixture
def two_servers(ldap_server, tmp_path):
    """Two API servers (gunicorn, 2 worker processes each) on the test slapd; yields [(port, cookie)]."""
    with contextlib.ExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            port = free_port()
            proc, _ = stack.enter_context(gunicorn(ldap_server, folder, f"127.0.0.1:{port}", workers=2, threads=4))
            servers.append((port, proc))
        for port, proc in servers:
            wait_until_answering(port, proc, time.monotonic() + 30)
        yield [(port, login(port)) for port, _ in servers]


def _call(server, method, path, form=None):
    port, cookie = server
    status, _, body = request(port, method, path, body=urlencode(form or {}),
                              headers={"Cookie": f"{COOKIE}={cookie}",
                                       "Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    return status, json.loads(body)


def _all_at_once(calls):
    """Run the calls in parallel threads, released together; their (status, body) in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return _call(*call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


ROUNDS = 10


def test_concurrent_creates_of_one_address_one_wins(two_servers, api, root_connection, domain):
    for n in range(ROUNDS):
        mail = f"r{n}@{domain}"
        # user, alias and list, each sent to both servers: six requests, four processes.
        calls = [(server, "POST", f"/api/{kind}/{mail}", {"password": PASSWORD, "mailQuota": "1"}
                  if kind == "user" else None) for kind in KINDS for server in two_servers]
        results = _all_at_once(calls)
        statuses = sorted(status for status, _ in results)
        assert statuses == [201, 409, 409, 409, 409, 409], (mail, results)
        assert all(body["msg"] == "ALREADY_EXISTS" for status, body in results if status == 409), results
        assert len(holders(root_connection, mail)) == 1
    counted = {
        "domainCurrentUserNumber": count_entries(root_connection, f"ou=Users,{domain_dn(domain)}",
                                                 "(objectClass=mailUser)"),
        "domainCurrentAliasNumber": count_entries(root_connection, f"ou=Aliases,{domain_dn(domain)}",
                                                  "(objectClass=mailAlias)"),
        "domainCurrentListNumber": count_entries(root_connection, f"ou=Groups,{domain_dn(domain)}",
                                                 "(objectClass=mailList)"),
    }
    counted["domainCurrentQuotaSize"] = counted["domainCurrentUserNumber"] * 1024 * 1024
    assert sum(counted[name] for name in COUNTERS[:3]) == ROUNDS
    assert counters(root_connection, domain) == counted


def test_concurrent_add_alias_of_one_address_on_two_users_one_wins(two_servers, api, root_connection, domain):
    users = [f"u{i}@{domain}" for i in range(2)]
    for mail in users:
        assert api.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    for n in range(ROUNDS):
        wanted = f"shared{n}@{domain}"
        results = _all_at_once([(server, "PUT", f"/api/user/{mail}", {"addAlias": wanted})
                                for server, mail in zip(two_servers, users if n % 2 else users[::-1], strict=True)])
        assert sorted(status for status, _ in results) == [200, 409], (wanted, results)
        assert len(holders(root_connection, wanted)) == 1
