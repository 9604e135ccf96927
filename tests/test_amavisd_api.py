"""/api/spampolicy/... and /api/wblist/... end to end, on SQLite, MariaDB and PostgreSQL.

The store is tested in test_store_amavisd.py (rows, Amavisd's lookup, races); here: URLs, scope,
parameters, refusals that write nothing, permissions and the clean-up on account deletes."""

import time

import pytest

from tests.conftest import ApiClient
from tests.sql_backends import amavisd_database, amavisd_store_fixture  # noqa: F401 (fixtures)
from tests.test_store_amavisd import inbound_rows, outbound_rows, query, users_rows

PASSWORD = "Secret-pw1!"


@pytest.fixture
def url(amavisd_store):
    return amavisd_store.url.render_as_string(hide_password=False)


@pytest.fixture
def client(make_app, url):
    return ApiClient(make_app(amavisd_db_url=url)).login()


@pytest.fixture
def domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    assert client.post(f"/api/user/user@{name}", {"password": PASSWORD}).status_code == 201
    return name


def listed(client, path):
    result = client.get(path)
    assert result.status_code == 200, result.text
    return result.json["_data"]


# -- white/blacklists -----------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
@pytest.mark.parametrize("listname", ["whitelist", "blacklist"])
def test_wblist_each_scope(client, amavisd_store, domain, direction, listname):
    mail = f"user@{domain}"
    for target, account in (("global", "@."), (domain, f"@{domain}"), (mail, mail)):
        path = f"/api/wblist/{direction}/{listname}/{target}"
        assert listed(client, path) == []
        result = client.post(path, {"addresses": "1.2.3.4, 10.0.0.0/8,Friend@Other.org,@other.org,@.other.org,@."})
        assert result.status_code == 200, result.text
        everything = sorted(["1.2.3.4", "10.0.0.0/8", "friend@other.org", "@other.org", "@.other.org", "@."])
        assert listed(client, path) == everything
        assert client.post(path, {"addresses": "1.2.3.4"}).status_code == 200  # twice: no error
        assert client.put(path, {"addresses": "1.2.3.4,absent@other.org"}).status_code == 200
        assert listed(client, path) == [e for e in everything if e != "1.2.3.4"]
        rows = inbound_rows(amavisd_store) if direction == "inbound" else outbound_rows(amavisd_store)
        assert {(u, wb) for u, _, wb in rows if u == account} == {(account, listname[0].upper())}
        assert client.delete(path).status_code == 200
        assert listed(client, path) == []
    assert {e for e, _, _ in users_rows(amavisd_store)} == {"@.", f"@{domain}", mail}


def test_wblist_invalid_entries_are_refused_and_nothing_is_written(client, amavisd_store, domain):
    path = f"/api/wblist/inbound/blacklist/{domain}"
    result = client.post(path, {"addresses": "good@x.org,not-an-address,192.168.1.*"})
    assert result.status_code == 400
    assert result.json["msg"] == "INVALID_PARAMETER" and result.json["param"] == "addresses"
    assert "not-an-address, 192.168.1.*" in result.json["detail"]
    assert client.post(path, {}).json["param"] == "addresses"
    assert users_rows(amavisd_store) == [] and query(amavisd_store, "SELECT COUNT(*) FROM mailaddr") == [(0,)]


def test_wblist_urls_and_targets(client, amavisd_store, domain, new_domain):
    assert client.get(f"/api/wblist/sideways/whitelist/{domain}").status_code == 404
    assert client.get(f"/api/wblist/inbound/greylist/{domain}").status_code == 404
    assert client.post(f"/api/wblist/inbound/whitelist/{new_domain()}", {"addresses": "1.2.3.4"}).status_code == 404
    result = client.post(f"/api/wblist/inbound/whitelist/ghost@{domain}", {"addresses": "1.2.3.4"})
    assert result.json["msg"] == "NO_SUCH_ACCOUNT"
    assert client.post("/api/wblist/inbound/whitelist/bad_domain", {"addresses": "1.2.3.4"}).status_code == 400
    assert users_rows(amavisd_store) == []
    # A JSON list, as current clients send lists.
    path = f"/api/wblist/outbound/whitelist/user@{domain}"
    assert client.post(path, json={"addresses": ["a@x.org", "192.0.2.1"]}).status_code == 200
    assert listed(client, path) == ["192.0.2.1", "a@x.org"]
    # Also under iRedAdmin-Pro's mount point.
    assert client.post(f"/iredadmin/api/wblist/inbound/whitelist/{domain}", {"addresses": "1.2.3.4"}).status_code == 200


# -- spam policy ----------------------------------------------------------------------------------

FULL = {"bypass_spam_checks": "no", "bypass_virus_checks": "no", "bypass_banned_checks": "yes",
        "bypass_header_checks": "no", "quarantine_spam": "yes", "quarantine_virus": "yes",
        "quarantine_banned": "no", "quarantine_bad_header": "no", "prefix_spam_in_subject": "yes",
        "always_insert_x_spam_headers": "no", "spam_score": "4.5", "banned_rulenames": "ALLOW_MS_WORD,ALLOW_MS_EXCEL"}


def test_spampolicy_each_scope(client, amavisd_store, domain):
    for path in ("global", f"domain/{domain}", f"user/user@{domain}"):
        assert listed(client, f"/api/spampolicy/{path}")["spam_score"] is None
        assert client.put(f"/api/spampolicy/{path}", FULL).status_code == 200
        data = listed(client, f"/api/spampolicy/{path}")
        assert data == {**FULL, "spam_score": 4.5}
        assert client.put(f"/api/spampolicy/{path}", {"spam_score": "6.2"}).status_code == 200
        # Amavisd's levels are single-precision (FLOAT, REAL): 6.2 comes back as 6.2.
        assert listed(client, f"/api/spampolicy/{path}") == {**FULL, "spam_score": 6.2}
    assert sorted(n for (n,) in query(amavisd_store, "SELECT policy_name FROM policy")) == sorted(
        ["@.", f"@{domain}", f"user@{domain}"])
    assert client.delete(f"/api/spampolicy/domain/{domain}").status_code == 200
    assert client.delete(f"/api/spampolicy/domain/{domain}").status_code == 200  # nothing left: no error
    assert set(listed(client, f"/api/spampolicy/domain/{domain}").values()) == {None, "no"}
    assert sorted(n for (n,) in query(amavisd_store, "SELECT policy_name FROM policy")) == sorted(
        ["@.", f"user@{domain}"])


@pytest.mark.parametrize(("form", "code", "param"), [
    ({"spam_score": "lots"}, "INVALID_NUMBER", "spam_score"),
    ({"spam_score": "nan"}, "INVALID_NUMBER", "spam_score"),
    ({"spam_score": "1e6"}, "INVALID_NUMBER", "spam_score"),
    ({"quarantine_spam": "maybe"}, "INVALID_PARAMETER", "quarantine_spam"),
    ({"banned_rulenames": "ALLOW MS WORD"}, "INVALID_PARAMETER", "banned_rulenames"),
    ({"banned_rulenames": ",".join(["ALLOW_MS_OFFICE"] * 1 + [f"R{i:02}" for i in range(20)])},
     "INVALID_PARAMETER", "banned_rulenames"),
    ({"bypass_spam_checks": "yes", "spam_score": "x"}, "INVALID_NUMBER", "spam_score"),
])
def test_spampolicy_bad_parameters_write_nothing(client, amavisd_store, domain, form, code, param):
    result = client.put(f"/api/spampolicy/domain/{domain}", form)
    assert result.status_code == 400 and result.json["msg"] == code and result.json["param"] == param, result.text
    assert query(amavisd_store, "SELECT COUNT(*) FROM policy") == [(0,)] and users_rows(amavisd_store) == []


def test_spampolicy_put_needs_a_parameter(client, amavisd_store, domain):
    result = client.put(f"/api/spampolicy/domain/{domain}", {})
    assert result.status_code == 400 and result.json["msg"] == "INVALID_PARAMETER"
    assert users_rows(amavisd_store) == []


# -- life-cycle, permissions, outages --------------------------------------------------------------


def fill(client, target, scope):
    assert client.put(f"/api/spampolicy/{scope}/{target}", {"spam_score": "5"}).status_code == 200
    assert client.post(f"/api/wblist/inbound/blacklist/{target}", {"addresses": "bad@spam.org"}).status_code == 200
    assert client.post(f"/api/wblist/outbound/whitelist/{target}", {"addresses": "ok@x.org"}).status_code == 200


def test_deleting_a_user_or_domain_removes_its_rows(client, amavisd_store, domain):
    mail = f"user@{domain}"
    fill(client, mail, "user")
    fill(client, domain, "domain")
    assert client.put("/api/spampolicy/global", {"spam_score": "8"}).status_code == 200
    assert client.delete(f"/api/user/{mail}").status_code == 200
    assert {e for e, _, _ in users_rows(amavisd_store)} == {"@.", f"@{domain}"}
    assert {u for u, _, _ in inbound_rows(amavisd_store) + outbound_rows(amavisd_store)} == {f"@{domain}"}
    assert client.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    fill(client, mail, "user")
    assert client.delete(f"/api/domain/{domain}").status_code == 200
    assert [e for e, _, _ in users_rows(amavisd_store)] == ["@."]
    assert query(amavisd_store, "SELECT policy_name FROM policy") == [("@.",)]
    assert inbound_rows(amavisd_store) == [] and outbound_rows(amavisd_store) == []
    assert ("bad@spam.org",) in [(e.decode() if isinstance(e, bytes) else e,)
                                 for (e,) in query(amavisd_store, "SELECT email FROM mailaddr")]


@pytest.fixture
def scoped(client, make_app, url, domain, root_connection):
    """A domain admin of ``domain``; a global admin's mailbox in it; another domain."""
    from tests.test_access import add_mail_user, add_standalone_admin

    other = f"o{domain}"
    assert client.post(f"/api/domain/{other}").status_code == 201
    chief, _ = add_mail_user(root_connection, domain, "chief", PASSWORD, domainGlobalAdmin=["yes"])
    admin = f"tadmin@{domain}"
    add_standalone_admin(root_connection, admin, "Admin-Pw-9", domains=[domain])
    return {"da": ApiClient(make_app(amavisd_db_url=url)).login(admin, "Admin-Pw-9"), "other": other,
            "chief": chief, "user": f"user@{domain}"}


def test_domain_admin_scope(client, amavisd_store, domain, scoped):
    da, user = scoped["da"], scoped["user"]
    fill(da, domain, "domain")
    fill(da, user, "user")
    for path in ("/api/spampolicy/global", f"/api/spampolicy/domain/{scoped['other']}",
                 f"/api/spampolicy/user/user@{scoped['other']}"):
        for result in (da.get(path), da.put(path, {"spam_score": "1"}), da.delete(path)):
            assert result.status_code == 403, (path, result.text)
    for target in ("global", scoped["other"]):
        path = f"/api/wblist/inbound/whitelist/{target}"
        for result in (da.get(path), da.post(path, {"addresses": "1.2.3.4"}), da.put(path, {"addresses": "1.2.3.4"}),
                       da.delete(path)):
            assert result.status_code == 403, (path, result.text)
    # A global admin's mailbox in its domain is as protected as the rest of that entry.
    result = da.post(f"/api/wblist/inbound/whitelist/{scoped['chief']}", {"addresses": "1.2.3.4"})
    assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE"
    assert {e for e, _, _ in users_rows(amavisd_store)} == {f"@{domain}", user}


@pytest.mark.parametrize("part", ["spampolicy", "wblist"])
@pytest.mark.parametrize("switch", ["disabledDomainProfile", "disabledUserProfile"])
def test_global_admin_can_reserve_parts(client, amavisd_store, domain, scoped, root_connection, part, switch):
    import ldap3

    from tests.conftest import SUFFIX

    root_connection.modify(f"domainName={domain},o=domains,{SUFFIX}",
                           {"accountSetting": [(ldap3.MODIFY_ADD, [f"{switch}:{part}"])]})
    da = scoped["da"]
    reserved, open_ = (domain, scoped["user"]) if switch == "disabledDomainProfile" else (scoped["user"], domain)

    def requests(target):
        if part == "spampolicy":
            path = f"/api/spampolicy/{'user' if '@' in target else 'domain'}/{target}"
            return [lambda: da.put(path, {"spam_score": "3"}), lambda: da.delete(path)]
        path = f"/api/wblist/inbound/blacklist/{target}"
        return [lambda: da.post(path, {"addresses": "1.2.3.4"}), lambda: da.put(path, {"addresses": "1.2.3.4"}),
                lambda: da.delete(path)]

    for send in requests(reserved):
        result = send()
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert users_rows(amavisd_store) == []
    for send in requests(open_):
        assert send().status_code == 200
    assert client.post(f"/api/wblist/inbound/blacklist/{reserved}", {"addresses": "1.2.3.4"}).status_code == 200


def test_unreachable_database_is_503_and_other_endpoints_work(make_app, new_domain):
    from iredapi_ldap.localslapd import free_port

    app = make_app(amavisd_db_url=f"mysql+pymysql://root@127.0.0.1:{free_port()}/amavisd", SQL_TIMEOUT=2)
    client = ApiClient(app).login()
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    started = time.monotonic()
    for result in (client.get(f"/api/spampolicy/domain/{name}"), client.get(f"/api/wblist/inbound/whitelist/{name}")):
        assert result.status_code == 503 and result.json["msg"] == "SQL_SERVER_DOWN"
    assert time.monotonic() - started < 10
    assert client.get(f"/api/domain/{name}").status_code == 200
    assert client.get(f"/api/throttle/{name}/inbound").status_code == 200


def test_concurrent_posts_of_the_same_new_entries(client, make_app, url, amavisd_store, domain):
    """Requests in several threads (each its own app, so its own SQL connections) creating the same
    users and mailaddr rows at once: all succeed, one row each."""
    import threading

    clients = [ApiClient(make_app(amavisd_db_url=url)).login() for _ in range(4)]
    barrier, results = threading.Barrier(len(clients)), []
    path = f"/api/wblist/inbound/whitelist/user@{domain}"

    def run(api):
        barrier.wait()
        results.append(api.post(path, {"addresses": "r1@race.org,r2@race.org,192.0.2.7"}).status_code)

    threads = [threading.Thread(target=run, args=(api,)) for api in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * len(clients)
    assert listed(client, path) == ["192.0.2.7", "r1@race.org", "r2@race.org"]
    assert [e for e, _, _ in users_rows(amavisd_store)] == [f"user@{domain}"]


def test_entries_longer_than_amavisds_column_are_refused(client, amavisd_store, domain):
    """Amavisd's mailaddr.email is varbinary(255) (MySQL): a longer entry is a 400 naming it with
    nothing written, not a 500 from MariaDB."""
    mail = "u" * 64 + "@" + ".".join(["b" * 63] * 3) + ".org"
    result = client.post(f"/api/wblist/inbound/whitelist/{domain}", {"addresses": f"1.2.3.4,{mail}"})
    assert result.status_code == 400 and result.json["param"] == "addresses" and mail in result.json["detail"]
    assert users_rows(amavisd_store) == [] and query(amavisd_store, "SELECT COUNT(*) FROM mailaddr") == [(0,)]


def test_rows_written_while_a_domain_or_user_is_deleted_go_too(client, amavisd_store, domain, monkeypatch):
    """A request that passed its checks before the delete writes its rows while the accounts are
    being deleted: they go too (a later account at that address would inherit them)."""
    from iredapi_ldap import provisioning

    mail = f"user@{domain}"
    real_user = provisioning.user_directory.delete_user_entry
    real_accounts = provisioning.domain_directory.delete_accounts

    def racing(real, target, scope):
        def run(*args, **kwargs):
            monkeypatch.undo()  # the racing request runs the real code
            fill(client, target, scope)
            real(*args, **kwargs)
        return run

    monkeypatch.setattr(provisioning.user_directory, "delete_user_entry", racing(real_user, mail, "user"))
    assert client.delete(f"/api/user/{mail}").status_code == 200
    assert users_rows(amavisd_store) == []
    assert client.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    monkeypatch.setattr(provisioning.domain_directory, "delete_accounts", racing(real_accounts, mail, "user"))
    assert client.delete(f"/api/domain/{domain}").status_code == 200
    assert users_rows(amavisd_store) == [] and query(amavisd_store, "SELECT COUNT(*) FROM policy") == [(0,)]
    assert inbound_rows(amavisd_store) == [] and outbound_rows(amavisd_store) == []


# -- alias domains ----------------------------------------------------------------------------------


def test_spam_policies_apply_at_the_alias_domain_addresses(client, amavisd_store, domain, new_domain):
    """Amavisd's own lookup (its SELECT, the keys it builds from the recipient address) for the
    addresses in an alias domain finds the domain's and the users' policies, in step with every
    change."""
    from tests.amavisd_lookup import field

    def scores(*addresses):
        with amavisd_store.engine.connect() as conn:
            return tuple(field(conn, a, "spam_kill_level") for a in addresses)

    def accounts():
        return {e for e, _, _ in users_rows(amavisd_store)}

    user, two, alias = f"user@{domain}", f"two@{domain}", new_domain()
    for path, score in (("global", 8), (f"domain/{domain}", 6), (f"user/{user}", 4)):
        assert client.put(f"/api/spampolicy/{path}", {"spam_score": score}).status_code == 200
    assert client.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    assert scores(f"user@{alias}", f"nobody@{alias}") == (4.0, 6.0)
    assert accounts() == {"@.", f"@{domain}", user, f"@{alias}", f"user@{alias}"}  # no row per user
    # A user's policy written after the alias domain: linked at once.
    assert client.post(f"/api/user/{two}", {"password": PASSWORD}).status_code == 201
    assert client.put(f"/api/spampolicy/user/{two}", {"spam_score": "3"}).status_code == 200
    assert scores(f"two@{alias}") == (3.0,)
    # GET answers the account's own policy, as before; the alias addresses are no targets.
    assert listed(client, f"/api/spampolicy/user/{user}")["spam_score"] == 4.0
    before = users_rows(amavisd_store)
    assert client.get(f"/api/spampolicy/domain/{alias}").status_code == 404
    assert client.put(f"/api/spampolicy/user/user@{alias}", {"spam_score": "1"}).status_code == 404
    assert client.post(f"/api/wblist/inbound/whitelist/user@{alias}", {"addresses": "1.2.3.4"}).status_code == 404
    assert client.post(f"/api/wblist/inbound/whitelist/{alias}", {"addresses": "1.2.3.4"}).status_code == 404
    assert users_rows(amavisd_store) == before and inbound_rows(amavisd_store) == []
    # A rename takes the alias address along.
    assert client.post(f"/api/user/{user}/change_email/renamed@{domain}").status_code == 200
    assert scores(f"renamed@{alias}", f"user@{alias}") == (4.0, 6.0)
    assert f"user@{alias}" not in accounts()
    # DELETE of a policy: its alias rows go; the domain's policy applies there again.
    assert client.delete(f"/api/spampolicy/user/renamed@{domain}").status_code == 200
    assert scores(f"renamed@{alias}") == (6.0,) and f"renamed@{alias}" not in accounts()
    # The alias domain removed: its rows go; added again: back.
    assert client.put(f"/api/domain/{domain}", {"removeAliasDomain": alias}).status_code == 200
    assert scores(f"two@{alias}", f"nobody@{alias}") == (8.0, 8.0)
    assert accounts() == {"@.", f"@{domain}", f"renamed@{domain}", two}
    assert client.put(f"/api/domain/{domain}", {"aliasDomains": alias}).status_code == 200
    assert scores(f"two@{alias}", f"nobody@{alias}") == (3.0, 6.0)
    # Deletes take them.
    assert client.delete(f"/api/user/{two}").status_code == 200
    assert f"two@{alias}" not in accounts() and scores(f"two@{alias}") == (6.0,)
    assert client.delete(f"/api/domain/{domain}").status_code == 200
    assert accounts() == {"@."}
    assert query(amavisd_store, "SELECT policy_name FROM policy") == [("@.",)]


def test_a_policy_put_racing_an_alias_domain_change_ends_in_step(client, amavisd_store, domain, new_domain,
                                                                 monkeypatch):
    """The policy PUT read the alias domains (none) before a domain PUT added one and linked the
    domain's policies; its own link, with what it read, comes last and takes the row away: it reads
    the alias domains once more, sees the change, and links again."""
    from iredapi_ldap import provisioning
    from tests.amavisd_lookup import field

    alias, user = new_domain(), f"user@{domain}"
    real = provisioning.amavisd.link_alias_domains
    calls = []

    def link(store, name, names, accounts=None):
        calls.append(list(names))
        if len(calls) == 1:  # the racing domain PUT, between this request's read and its link
            monkeypatch.setattr(provisioning.amavisd, "link_alias_domains", real)
            assert client.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
            monkeypatch.setattr(provisioning.amavisd, "link_alias_domains", link)
        return real(store, name, names, accounts)

    monkeypatch.setattr(provisioning.amavisd, "link_alias_domains", link)
    assert client.put(f"/api/spampolicy/user/{user}", {"spam_score": "4"}).status_code == 200
    with amavisd_store.engine.connect() as conn:
        assert field(conn, f"user@{alias}", "spam_kill_level") == 4.0
    assert calls == [[], [alias]]


@pytest.mark.parametrize("reuse", ["domain", "alias"])
def test_a_removed_alias_domains_rows_lost_by_a_crash_do_not_follow_it_to_its_next_owner(
        client, amavisd_store, domain, new_domain, monkeypatch, reuse):
    """The alias domain removed, its link lost (a crash between the LDAP write and the SQL): its
    rows stay linked to the old domain's policies.  When the name is then created as a domain (or
    claimed as another domain's alias domain), Amavisd's own lookup at its addresses must not find
    the old domain's or its users' policies (nor may a policy PUT there start from them)."""
    from iredapi_ldap import provisioning
    from tests.amavisd_lookup import field

    def score(address):
        with amavisd_store.engine.connect() as conn:
            return field(conn, address, "spam_kill_level")

    alias, user = new_domain(), f"user@{domain}"
    assert client.put("/api/spampolicy/global", {"spam_score": 8}).status_code == 200
    assert client.put(f"/api/spampolicy/domain/{domain}", {"spam_score": 6, "bypass_virus_checks": "yes"}
                      ).status_code == 200
    assert client.put(f"/api/spampolicy/user/{user}", {"spam_score": 4}).status_code == 200
    assert client.put(f"/api/domain/{domain}", {"addAliasDomain": alias}).status_code == 200
    assert (score(f"user@{alias}"), score(f"x@{alias}")) == (4.0, 6.0)
    monkeypatch.setattr(provisioning, "link_spam_policy_aliases", lambda *a, **k: None)  # the crash
    assert client.put(f"/api/domain/{domain}", {"removeAliasDomain": alias}).status_code == 200
    monkeypatch.undo()
    assert score(f"user@{alias}") == 4.0  # left behind
    if reuse == "domain":
        assert client.post(f"/api/domain/{alias}").status_code == 201
    else:
        other = new_domain()
        assert client.post(f"/api/domain/{other}").status_code == 201
        assert client.put(f"/api/domain/{other}", {"addAliasDomain": alias}).status_code == 200
    assert (score(f"user@{alias}"), score(f"x@{alias}")) == (8.0, 8.0)
    if reuse == "domain":
        assert client.put(f"/api/spampolicy/domain/{alias}", {"spam_score": 5}).status_code == 200
        assert listed(client, f"/api/spampolicy/domain/{alias}")["bypass_virus_checks"] is None
    # the old domain's own rows are untouched
    assert (score(user), score(f"x@{domain}")) == (4.0, 6.0)


# (path of the write, its body, the store function it calls, whose module the resource reads)
_RACING_WRITES = {
    "spampolicy": ("/api/spampolicy/{kind}/{target}", {"spam_score": "4"}, "iredapi_ldap.store.amavisd",
                   "set_policy"),
    "wblist": ("/api/wblist/inbound/blacklist/{target}", {"addresses": "1.2.3.4"}, "iredapi_ldap.store.amavisd",
               "add_entries"),
    "throttle": ("/api/throttle/{target}/outbound", {"period": "60", "max_msgs": "5"}, "iredapi_ldap.store.throttle",
                 "set_setting"),
    "greylisting": ("/api/greylisting/{target}", {"status": "enable"}, "iredapi_ldap.store.greylisting",
                    "set_setting"),
    "greylisting_whitelists": ("/api/greylisting/{target}/whitelists", {"senders": "1.2.3.4"},
                               "iredapi_ldap.store.greylisting", "update_whitelists"),
}


@pytest.mark.parametrize("scope", ["user", "domain"])
@pytest.mark.parametrize("feature", sorted(_RACING_WRITES))
def test_a_write_whose_account_was_deleted_after_its_check_leaves_nothing(client, amavisd_store, domain, monkeypatch,
                                                                          feature, scope):
    """The account existed when the request checked it; its delete (both clean-up passes) ran
    before the request's SQL write.  The rows would be a later account's at that name (its spam
    policy, blacklist, throttling or greylisting): the request finds the account gone, removes
    what it wrote, and answers 404."""
    import importlib

    path, body, module_name, function = _RACING_WRITES[feature]
    mail = f"user@{domain}"
    target = mail if scope == "user" else domain
    account = mail if scope == "user" else f"@{domain}"
    module = importlib.import_module(module_name)
    real = getattr(module, function)

    def write(*args, **kwargs):
        monkeypatch.setattr(module, function, real)
        assert client.delete(f"/api/{'user' if scope == 'user' else 'domain'}/{target}").status_code == 200
        return real(*args, **kwargs)

    monkeypatch.setattr(module, function, write)
    result = client.post(path.format(kind=scope, target=target), body) if feature != "spampolicy" else \
        client.put(path.format(kind=scope, target=target), body)
    assert result.status_code == 404, result.text
    services = client.app.services
    from iredapi_ldap.store import greylisting, throttle

    assert [r for r in users_rows(amavisd_store) if r[0] == account] == []
    assert query(amavisd_store, "SELECT COUNT(*) FROM policy WHERE policy_name = :n", n=account) == [(0,)]
    assert throttle.get_setting(services.iredapd_store, account, "outbound") in (None, {})
    assert greylisting.get_setting(services.iredapd_store, account) in (None, {})
    assert greylisting.get_whitelists(services.iredapd_store, account) in ([], None, {})
