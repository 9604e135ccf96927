"""/api/greylisting/... end to end, on SQLite, MariaDB and PostgreSQL.

Rows are checked against the shape iRedAPD's own tools write (libs/greylisting.py); that
iRedAPD acts on them is proven in test_iredapd_greylisting.py.
"""

import pytest
import sqlalchemy as sa

from iredapi_ldap.store.tables import (
    greylisting,
    greylisting_tracking,
    greylisting_whitelist_domain_spf,
    greylisting_whitelist_domains,
    greylisting_whitelists,
)
from tests.conftest import ApiClient, failed

PASSWORD = "Secret-pw1!"
TABLES = (greylisting, greylisting_whitelists, greylisting_whitelist_domains, greylisting_whitelist_domain_spf,
          greylisting_tracking)


@pytest.fixture
def client(make_app, sql_store):
    app = make_app(iredapd_db_url=sql_store.url.render_as_string(hide_password=False))
    return ApiClient(app).login()


@pytest.fixture
def domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    return name


@pytest.fixture
def user(client, domain):
    mail = f"grey@{domain}"
    assert client.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    return mail


def rows(store, table=greylisting):
    with store.transaction() as conn:
        found = conn.execute(sa.select(table).order_by(table.c.id)).mappings()
        return [{k: v for k, v in r.items() if k != "id"} for r in found]


def snapshot(store):
    return {table.name: rows(store, table) for table in TABLES}


def whitelisted(store):
    return sorted((r["account"], r["sender"]) for r in rows(store, greylisting_whitelists))


def test_post_get_and_delete_each_scope(client, sql_store, domain, user):
    for target, account, priority in (("global", "@.", 0), (domain, f"@{domain}", 60), (user, user, 100)):
        assert client.get(f"/api/greylisting/{target}").json["_data"] == {}
        for status, active in (("enable", 1), ("disable", 0), ("enable", 1)):
            result = client.post(f"/api/greylisting/{target}", {"status": status})
            assert result.status_code == 200, result.text
            # as iRedAPD's enable_greylisting()/disable_greylisting() write it, one row per account
            assert [r for r in rows(sql_store) if r["account"] == account] == [
                {"account": account, "priority": priority, "sender": "@.", "sender_priority": 0, "comment": "",
                 "active": active}]
            assert client.get(f"/api/greylisting/{target}").json["_data"] == {
                "account": account, "sender": "@.", "status": status, "priority": priority, "sender_priority": 0,
                "comment": ""}
    listed = client.get("/api/greylisting/all").json["_data"]
    assert [s["account"] for s in listed] == [user, f"@{domain}", "@."]  # iRedAPD's order: priority DESC
    assert client.delete(f"/api/greylisting/{domain}").status_code == 200
    assert sorted(r["account"] for r in rows(sql_store)) == sorted(["@.", user])
    assert client.delete(f"/api/greylisting/{domain}").status_code == 200  # nothing left: still fine
    assert client.get(f"/api/greylisting/{domain}").json["_data"] == {}


def test_delete_keeps_rows_for_other_senders(client, sql_store, domain):
    with sql_store.transaction() as conn:  # as `greylisting_admin.py --disable --from @gmail.com --to @d` writes
        conn.execute(greylisting.insert().values(account=f"@{domain}", priority=60, sender="@gmail.com",
                                                 sender_priority=60, active=0))
    client.post(f"/api/greylisting/{domain}", {"status": "enable"})
    client.delete(f"/api/greylisting/{domain}")
    assert [r["sender"] for r in rows(sql_store)] == ["@gmail.com"]
    assert client.get("/api/greylisting/all").json["_data"][0]["status"] == "disable"


@pytest.mark.parametrize("form,param", [({}, "status"), ({"status": "on"}, "status"),
                                        ({"status": "enable,disable"}, "status")])
def test_bad_status_is_refused(client, sql_store, domain, form, param):
    result = client.post(f"/api/greylisting/{domain}", form)
    assert result.status_code == 400 and result.json["param"] == param, result.text
    assert rows(sql_store) == []


def test_unknown_targets(client, sql_store, domain):
    assert client.get(f"/api/greylisting/nobody@{domain}").status_code == 404
    assert client.post(f"/api/greylisting/nobody@{domain}", {"status": "enable"}).status_code == 404
    assert client.post(f"/api/greylisting/x{domain}", {"status": "enable"}).status_code == 404
    assert client.post("/api/greylisting/not_a_domain", {"status": "enable"}).status_code == 400
    assert client.post(f"/api/greylisting/{domain}/whitelists", {"addSenders": "1.2.3.4"}).status_code == 200
    assert client.post(f"/api/greylisting/nobody@{domain}/whitelists", {"addSenders": "1.2.3.4"}).status_code == 404
    assert rows(sql_store) == [] and whitelisted(sql_store) == [(f"@{domain}", "1.2.3.4")]


# -- whitelists --------------------------------------------------------------------------------


def test_whitelists_reset_add_remove(client, sql_store, domain, user):
    for target, account in (("global", "@."), (domain, f"@{domain}"), (user, user)):
        path = f"/api/greylisting/{target}/whitelists"
        senders = "192.168.1.0/24, 172.16.10.1,@Example.COM,@.example.org,Someone@Example.net,2001:DB8::1,@."
        assert client.post(path, {"senders": senders}).status_code == 200
        expected = ["172.16.10.1", "192.168.1.0/24", "2001:db8::1", "@.", "@.example.org", "@example.com",
                    "someone@example.net"]
        assert client.get(path).json["_data"] == sorted(expected)
        assert client.post(path, {"addSenders": "10.0.0.0/8,172.16.10.1", "removeSenders": "@.,@example.com,1.1.1.1"}
                           ).status_code == 200
        expected = sorted(set(expected) - {"@.", "@example.com"} | {"10.0.0.0/8"})
        assert client.get(path).json["_data"] == expected
        assert sorted(s for a, s in whitelisted(sql_store) if a == account) == expected
        assert all(r["comment"] == "" for r in rows(sql_store, greylisting_whitelists))
        assert client.post(path, {"senders": "fe80::/10"}).status_code == 200
        assert client.get(path).json["_data"] == ["fe80::/10"]
    assert client.post(f"/api/greylisting/{domain}/whitelists", {"senders": ""}).status_code == 200
    assert client.get(f"/api/greylisting/{domain}/whitelists").json["_data"] == []
    assert len(whitelisted(sql_store)) == 2  # global's and the user's stay


@pytest.mark.parametrize("param", ["senders", "addSenders", "removeSenders"])
def test_bad_senders_are_named_and_nothing_is_written(client, sql_store, domain, param):
    path = f"/api/greylisting/{domain}/whitelists"
    client.post(path, {"senders": "1.2.3.4,@example.com"})
    before = snapshot(sql_store)
    bad = ["300.1.1.1", "192.168.1.1/24", "example.com", "user@", "@.c0m", "a b@x.org", "x" * 95 + "@x.org",
           "1.2.3.*", "fe80::1%eth0", "@.xn--zz"]
    result = client.post(path, {param: ",".join(["5.6.7.8", *bad])})
    assert result.status_code == 400, result.text
    assert result.json["msg"] == "INVALID_SENDER" and result.json["param"] == param
    for sender in bad:
        assert sender in result.json["detail"]
    assert "5.6.7.8" not in result.json["detail"]
    assert snapshot(sql_store) == before


def test_senders_are_written_as_iredapd_compares_them(client, sql_store, domain):
    # iRedAPD compares the client address Postfix sends (a.b.c.d for an IPv4 client, also on an
    # IPv6 socket) with the rows as text, and a sender's domain up to its top-level one ("@.com").
    path = f"/api/greylisting/{domain}/whitelists"
    result = client.post(path, {"senders": "::ffff:192.0.2.7,::ffff:198.51.100.0/120,@.COM,@.рф"})
    assert result.status_code == 200, result.text
    assert client.get(path).json["_data"] == ["192.0.2.7", "198.51.100.0/24", "@.com", "@.xn--p1ai"]


def test_conflicting_whitelist_parameters(client, sql_store, domain):
    path = f"/api/greylisting/{domain}/whitelists"
    for form in ({"senders": "1.2.3.4", "addSenders": "5.6.7.8"}, {"addSenders": "1.2.3.4", "removeSenders": "1.2.3.4"},
                 {}):
        result = client.post(path, form)
        assert result.status_code == 400 and result.json["msg"] in ("CONFLICTING_PARAMETERS", "INVALID_PARAMETER")
    assert whitelisted(sql_store) == []


def test_whitelist_spf_domains(client, sql_store):
    path = "/api/greylisting/whitelist_spf_domains"
    assert client.post(path, {"domains": "iredmail.org,Gmail.com"}).status_code == 200
    assert client.get(path).json["_data"] == ["gmail.com", "iredmail.org"]
    with sql_store.transaction() as conn:  # what iRedAPD's SPF cron job derives from gmail.com
        conn.execute(greylisting_whitelist_domain_spf.insert().values(account="@.", sender="209.85.128.0/17",
                                                                      comment="AUTO-UPDATE: gmail.com"))
        conn.execute(greylisting_whitelist_domain_spf.insert().values(account="@.", sender="1.2.3.4",
                                                                      comment="AUTO-UPDATE: iredmail.org"))
    assert client.post(path, {"addDomains": "example.com", "removeDomains": "gmail.com,absent.org"}
                       ).status_code == 200
    assert client.get(path).json["_data"] == ["example.com", "iredmail.org"]
    assert [r["comment"] for r in rows(sql_store, greylisting_whitelist_domain_spf)] == ["AUTO-UPDATE: iredmail.org"]
    before = snapshot(sql_store)
    result = client.post(path, {"addDomains": "ok.org,bad_domain,-x.org"})
    assert result.status_code == 400 and result.json["param"] == "addDomains", result.text
    assert "bad_domain" in result.json["detail"] and "-x.org" in result.json["detail"]
    assert snapshot(sql_store) == before
    assert client.post(path, {"domains": ""}).status_code == 200
    assert rows(sql_store, greylisting_whitelist_domains) == []
    assert rows(sql_store, greylisting_whitelist_domain_spf) == []


# -- life cycle --------------------------------------------------------------------------------


def _fill(client, sql_store, domain, user):
    client.post(f"/api/greylisting/{domain}", {"status": "enable"})
    client.post(f"/api/greylisting/{user}", {"status": "disable"})
    client.post(f"/api/greylisting/{domain}/whitelists", {"senders": "1.2.3.4"})
    client.post(f"/api/greylisting/{user}/whitelists", {"senders": "5.6.7.8"})
    client.post("/api/greylisting/global", {"status": "enable"})
    with sql_store.transaction() as conn:
        conn.execute(greylisting_tracking.insert().values(sender="a@b.org", recipient=user, client_address="1.1.1.1",
                                                          rcpt_domain=domain))


def test_deleting_a_user_removes_its_rows(client, sql_store, domain, user):
    _fill(client, sql_store, domain, user)
    assert client.delete(f"/api/user/{user}").status_code == 200
    assert sorted(r["account"] for r in rows(sql_store)) == ["@.", f"@{domain}"]
    assert whitelisted(sql_store) == [(f"@{domain}", "1.2.3.4")]
    assert rows(sql_store, greylisting_tracking) == []


def test_deleting_a_domain_removes_its_rows(client, sql_store, domain, user, new_domain):
    other = new_domain()
    client.post(f"/api/domain/{other}")
    client.post(f"/api/greylisting/{other}", {"status": "disable"})
    _fill(client, sql_store, domain, user)
    assert client.delete(f"/api/domain/{domain}").status_code == 200
    assert sorted(r["account"] for r in rows(sql_store)) == ["@.", f"@{other}"]
    assert whitelisted(sql_store) == []
    assert rows(sql_store, greylisting_tracking) == []


# -- who may ----------------------------------------------------------------------------------


@pytest.fixture
def scoped(client, make_app, sql_store, domain, user, root_connection):
    """A domain admin of ``domain``, and a global admin's mailbox in it."""
    from tests.test_access import add_mail_user, add_standalone_admin

    chief, _ = add_mail_user(root_connection, domain, "chief", PASSWORD, domainGlobalAdmin=["yes"])
    admin = f"gadmin@{domain}"
    add_standalone_admin(root_connection, admin, "Admin-Pw-9", domains=[domain])
    url = sql_store.url.render_as_string(hide_password=False)
    return {"da": ApiClient(make_app(iredapd_db_url=url)).login(admin, "Admin-Pw-9"), "chief": chief}


def test_domain_admin_scope(client, sql_store, domain, user, scoped, new_domain):
    da = scoped["da"]
    other = new_domain()
    client.post(f"/api/domain/{other}")
    for target in (domain, user):
        assert da.post(f"/api/greylisting/{target}", {"status": "disable"}).status_code == 200
        assert da.get(f"/api/greylisting/{target}").json["_data"]["status"] == "disable"
        assert da.post(f"/api/greylisting/{target}/whitelists", {"addSenders": "1.2.3.4"}).status_code == 200
        assert da.get(f"/api/greylisting/{target}/whitelists").json["_data"] == ["1.2.3.4"]
        assert da.delete(f"/api/greylisting/{target}").status_code == 200
    before = snapshot(sql_store)
    refused = [da.get("/api/greylisting/all"), da.get("/api/greylisting/global"),
               da.post("/api/greylisting/global", {"status": "enable"}), da.delete("/api/greylisting/global"),
               da.post("/api/greylisting/global/whitelists", {"addSenders": "1.2.3.4"}),
               da.get("/api/greylisting/global/whitelists"),
               da.post("/api/greylisting/whitelist_spf_domains", {"addDomains": "gmail.com"}),
               da.get("/api/greylisting/whitelist_spf_domains"),
               da.post(f"/api/greylisting/{other}", {"status": "enable"}),
               da.post(f"/api/greylisting/user@{other}/whitelists", {"addSenders": "1.2.3.4"}),
               da.get(f"/api/greylisting/{other}"),
               da.post(f"/api/greylisting/{scoped['chief']}", {"status": "enable"})]
    for result in refused:
        assert result.status_code == 403, result.text
    assert snapshot(sql_store) == before


@pytest.mark.parametrize("setting,target", [("disabledDomainProfile:greylisting", "domain"),
                                            ("disabledUserProfile:greylisting", "user")])
def test_global_admin_can_reserve_greylisting(client, sql_store, domain, user, scoped, root_connection, setting,
                                              target):
    import ldap3

    from tests.conftest import SUFFIX

    target = domain if target == "domain" else user
    root_connection.modify(f"domainName={domain},o=domains,{SUFFIX}",
                           {"accountSetting": [(ldap3.MODIFY_ADD, [setting])]})
    da = scoped["da"]
    for result in (da.post(f"/api/greylisting/{target}", {"status": "enable"}),
                   da.delete(f"/api/greylisting/{target}"),
                   da.post(f"/api/greylisting/{target}/whitelists", {"addSenders": "1.2.3.4"})):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert rows(sql_store) == [] and whitelisted(sql_store) == []
    assert da.get(f"/api/greylisting/{target}").status_code == 200
    other = user if target == domain else domain
    assert da.post(f"/api/greylisting/{other}", {"status": "enable"}).status_code == 200
    assert client.post(f"/api/greylisting/{target}", {"status": "enable"}).status_code == 200


def test_failed_helper_shape(client, domain):
    result = client.post(f"/api/greylisting/{domain}/whitelists", {"senders": "nonsense"})
    assert result.json == failed("INVALID_SENDER", param="senders", detail=result.json["detail"])


def test_unreachable_database_is_503_and_other_endpoints_work(make_app, domain):
    from iredapi_ldap.localslapd import free_port

    app = make_app(iredapd_db_url=f"mysql+pymysql://root@127.0.0.1:{free_port()}/iredapd", SQL_TIMEOUT=2)
    client = ApiClient(app).login()
    for result in (client.get(f"/api/greylisting/{domain}"), client.post(f"/api/greylisting/{domain}",
                                                                         {"status": "enable"}),
                   client.post(f"/api/greylisting/{domain}/whitelists", {"addSenders": "1.2.3.4"})):
        assert result.status_code == 503 and result.json["msg"] == "SQL_SERVER_DOWN", result.text
    assert client.get(f"/api/domain/{domain}").status_code == 200
