"""/api/throttle/... end to end, on SQLite, MariaDB and PostgreSQL.

The store itself is tested in test_store_throttle.py; here: URLs, scope,
parameter validation, the response shape and the clean-up on account deletes.
"""

import time

import pytest
import sqlalchemy as sa

from iredapi_ldap.store.tables import throttle, throttle_tracking
from tests.conftest import ApiClient

PASSWORD = "Secret-pw1!"


@pytest.fixture
def client(make_app, sql_store):
    app = make_app(iredapd_db_url=sql_store.url.render_as_string(hide_password=False))
    return ApiClient(app).login()


@pytest.fixture
def domain(client, new_domain):
    name = new_domain()
    assert client.post(f"/api/domain/{name}").status_code == 201
    return name


def rows(store):
    with store.transaction() as conn:
        return [dict(r) for r in conn.execute(sa.select(throttle).order_by(throttle.c.id)).mappings()]


def test_post_and_get_each_scope_and_kind(client, sql_store, domain):
    mail = f"user@{domain}"
    assert client.post(f"/api/user/{mail}", {"password": PASSWORD}).status_code == 201
    for target, account, priority in (("global", "@.", 0), (domain, f"@{domain}", 60), (mail, mail, 100)):
        for kind in ("inbound", "outbound"):
            form = {"period": "3600", "msg_size": "10485760", "max_msgs": "20", "max_quota": "1048576000"}
            if kind == "outbound":
                form["max_rcpts"] = "50"
            result = client.post(f"/api/throttle/{target}/{kind}", form)
            assert result.status_code == 200, result.text
            setting = client.get(f"/api/throttle/{target}/{kind}").json["setting"]
            assert {k: v for k, v in setting.items() if k != "id"} == {
                "account": account, "kind": kind, "priority": priority, "period": 3600, "msg_size": 10485760,
                "max_msgs": 20, "max_quota": 1048576000, "max_rcpts": 50 if kind == "outbound" else -1}
    assert len(rows(sql_store)) == 6


def test_rows_come_back_in_iredapd_order(client, sql_store, domain):
    mail = f"order@{domain}"
    client.post(f"/api/user/{mail}", {"password": PASSWORD})
    for target in ("global", domain, mail):
        client.post(f"/api/throttle/{target}/outbound", {"period": "60", "max_msgs": "5"})
    # iRedAPD's throttle plugin: kind = K AND account IN (...) ORDER BY priority DESC
    with sql_store.transaction() as conn:
        accounts = conn.execute(
            sa.select(throttle.c.account).where(throttle.c.kind == "outbound",
                                                throttle.c.account.in_([mail, f"@{domain}", "@."]))
            .order_by(throttle.c.priority.desc())).scalars().all()
    assert accounts == [mail, f"@{domain}", "@."]


def test_omitted_limits_are_zero_and_update_keeps_one_row(client, sql_store, domain):
    client.post(f"/api/throttle/{domain}/inbound", {"period": "60", "max_msgs": "5"})
    first = client.get(f"/api/throttle/{domain}/inbound").json["setting"]
    assert (first["msg_size"], first["max_quota"], first["max_msgs"]) == (0, 0, 5)
    client.post(f"/api/throttle/{domain}/inbound", {"period": "120", "max_quota": "-1"})
    second = client.get(f"/api/throttle/{domain}/inbound").json["setting"]
    assert second["id"] == first["id"] and second["period"] == 120 and second["max_quota"] == -1
    assert len(rows(sql_store)) == 1


def test_period_zero_removes_the_row_and_its_tracking(client, sql_store, domain):
    client.post(f"/api/throttle/{domain}/outbound", {"period": "60", "max_msgs": "5"})
    tid = rows(sql_store)[0]["id"]
    with sql_store.transaction() as conn:
        conn.execute(sa.insert(throttle_tracking).values(tid=tid, account="1.2.3.4", period=60, cur_msgs=1,
                                                         cur_quota=10, init_time=int(time.time()),
                                                         last_time=int(time.time())))
    assert client.post(f"/api/throttle/{domain}/outbound", {"period": "0", "max_msgs": "5"}).status_code == 200
    assert rows(sql_store) == []
    assert client.get(f"/api/throttle/{domain}/outbound").json == {
        "_success": True, "success": True, "_data": {}, "setting": {}}
    with sql_store.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(throttle_tracking)).scalar() == 0


def test_delete_endpoint(client, sql_store, domain):
    client.post(f"/api/throttle/{domain}/outbound", {"period": "60", "max_msgs": "5"})
    client.post(f"/api/throttle/{domain}/inbound", {"period": "60", "max_msgs": "5"})
    assert client.delete(f"/api/throttle/{domain}/outbound").status_code == 200
    assert [r["kind"] for r in rows(sql_store)] == ["inbound"]


@pytest.mark.parametrize("form,code,param", [
    ({"max_msgs": "5"}, "MISS_PERIOD", "period"),
    ({"period": "60"}, "MISS_THROTTLE_SETTING", None),
    ({"period": "-1", "max_msgs": "5"}, "INVALID_NUMBER", "period"),
    ({"period": "60", "max_msgs": "-2"}, "INVALID_NUMBER", "max_msgs"),
    ({"period": "60", "msg_size": "1e6"}, "INVALID_NUMBER", "msg_size"),
    ({"period": "60", "max_quota": "99999999999999999999"}, "INVALID_NUMBER", "max_quota"),
    ({"period": "60", "max_rcpts": "5"}, "INVALID_PARAMETER", "max_rcpts"),
])
def test_bad_parameters_are_400_and_write_nothing(client, sql_store, domain, form, code, param):
    result = client.post(f"/api/throttle/{domain}/inbound", form)
    assert result.status_code == 400, result.text
    assert result.json["msg"] == code and result.json.get("param") == param
    assert rows(sql_store) == []


def test_targets_must_exist_and_be_managed(client, make_app, sql_store, domain, new_domain, root_connection):
    assert client.post(f"/api/throttle/{new_domain()}/inbound", {"period": "60", "max_msgs": "1"}).status_code == 404
    assert client.post(f"/api/throttle/ghost@{domain}/inbound", {"period": "60", "max_msgs": "1"}).json[
        "msg"] == "NO_SUCH_ACCOUNT"
    assert client.post(f"/api/throttle/{domain}/sideways", {"period": "60", "max_msgs": "1"}).status_code == 404
    assert client.post("/api/throttle/bad_domain/inbound", {"period": "60", "max_msgs": "1"}).status_code == 400
    assert rows(sql_store) == []


def test_deleting_a_user_or_domain_removes_its_rows(client, sql_store, domain):
    mail = f"gone@{domain}"
    client.post(f"/api/user/{mail}", {"password": PASSWORD})
    client.post(f"/api/throttle/{mail}/outbound", {"period": "60", "max_msgs": "1"})
    client.post(f"/api/throttle/{domain}/outbound", {"period": "60", "max_msgs": "1"})
    client.post("/api/throttle/global/outbound", {"period": "60", "max_msgs": "1"})
    assert client.delete(f"/api/user/{mail}").status_code == 200
    assert sorted(r["account"] for r in rows(sql_store)) == ["@.", f"@{domain}"]
    client.post(f"/api/user/{mail}", {"password": PASSWORD})
    client.post(f"/api/throttle/{mail}/inbound", {"period": "60", "max_msgs": "1"})
    assert client.delete(f"/api/domain/{domain}").status_code == 200
    assert [r["account"] for r in rows(sql_store)] == ["@."]


def test_domain_admins_cannot_touch_global_settings(client, make_app, sql_store, domain, root_connection):
    import ldap3

    from tests.conftest import SUFFIX, _ssha

    admin = f"tadmin@{domain}"
    root_connection.add(f"mail={admin},o=domainAdmins,{SUFFIX}", attributes={
        "objectClass": ["mailAdmin"], "mail": [admin], "userPassword": [_ssha("Admin-Pw-9")],
        "accountStatus": ["active"]})
    root_connection.modify(f"domainName={domain},o=domains,{SUFFIX}", {"domainAdmin": [(ldap3.MODIFY_ADD, [admin])]})
    url = sql_store.url.render_as_string(hide_password=False)
    other = ApiClient(make_app(iredapd_db_url=url)).login(admin, "Admin-Pw-9")
    assert other.post(f"/api/throttle/{domain}/inbound", {"period": "60", "max_msgs": "1"}).status_code == 200
    assert other.post("/api/throttle/global/inbound", {"period": "60", "max_msgs": "1"}).status_code == 403
    assert other.get("/api/throttle/global/inbound").status_code == 403
    assert [r["account"] for r in rows(sql_store)] == [f"@{domain}"]


def test_unreachable_database_is_503_and_other_endpoints_work(make_app, domain):
    from iredapi_ldap.localslapd import free_port

    app = make_app(iredapd_db_url=f"mysql+pymysql://root@127.0.0.1:{free_port()}/iredapd", SQL_TIMEOUT=2)
    client = ApiClient(app).login()
    started = time.monotonic()
    result = client.get(f"/api/throttle/{domain}/inbound")
    assert result.status_code == 503 and result.json["msg"] == "SQL_SERVER_DOWN"
    assert time.monotonic() - started < 5
    assert client.get(f"/api/domain/{domain}").status_code == 200


# -- a domain admin may only make limits stricter (issue 10, item 7) ----------------------------

@pytest.fixture
def scoped(client, make_app, sql_store, domain, root_connection):
    """A domain admin of ``domain``, a plain user, a global admin's mailbox and an admin of
    another domain, all in ``domain``."""
    from tests.test_access import add_mail_user, add_standalone_admin

    other = f"o{domain}"
    assert client.post(f"/api/domain/{other}").status_code == 201
    assert client.post(f"/api/user/user@{domain}", {"password": PASSWORD}).status_code == 201
    chief, _ = add_mail_user(root_connection, domain, "chief", PASSWORD, domainGlobalAdmin=["yes"])
    boss, _ = add_mail_user(root_connection, domain, "boss", PASSWORD, admin=True, manages=[other])
    admin = f"tadmin@{domain}"
    add_standalone_admin(root_connection, admin, "Admin-Pw-9", domains=[domain])
    url = sql_store.url.render_as_string(hide_password=False)
    return {"da": ApiClient(make_app(iredapd_db_url=url)).login(admin, "Admin-Pw-9"),
            "user": f"user@{domain}", "chief": chief, "boss": boss}


def _clear(store):
    with store.transaction() as conn:
        conn.execute(throttle.delete())


HOUR = {"period": "3600"}
INHERIT = {"msg_size": "-1", "max_quota": "-1", "max_rcpts": "-1"}  # only max_msgs of our own


def _escapes(domain, user):
    """(what a global admin set, the domain admin's request, the parameter named in the refusal)"""
    domain_100 = [(domain, "outbound", {**HOUR, **INHERIT, "max_msgs": "100"})]
    return [
        # the three: overwrite @domain with unlimited, delete it, outrank it per user
        (domain_100, ("POST", domain, "outbound", {**HOUR, **INHERIT, "max_msgs": "0"}), "max_msgs"),
        (domain_100, ("DELETE", domain, "outbound", None), "max_msgs"),
        (domain_100, ("POST", user, "outbound", {**HOUR, **INHERIT, "max_msgs": "0"}), "max_msgs"),
        # and their variants: a looser number, the same number over a shorter period, period 0
        (domain_100, ("POST", user, "outbound", {**HOUR, **INHERIT, "max_msgs": "1000"}), "max_msgs"),
        (domain_100, ("POST", domain, "outbound", {**INHERIT, "period": "60", "max_msgs": "100"}), "period"),
        (domain_100, ("POST", domain, "outbound", {**INHERIT, "period": "0", "max_msgs": "5"}), "max_msgs"),
        # a limit omitted is stored as 0, unlimited: it would lift the global msg_size
        ([("global", "outbound", {"period": "60", "msg_size": "1048576"})],
         ("POST", domain, "outbound", {"period": "60", "max_msgs": "10"}), "msg_size"),
        ([("global", "inbound", {"period": "60", "max_quota": "1000000"})],
         ("POST", user, "inbound", {"period": "60", "max_msgs": "10", "msg_size": "-1"}), "max_quota"),
    ]


def _send(api, method, target, kind, form):
    path = f"/api/throttle/{target}/{kind}"
    return api.post(path, form) if method == "POST" else api.delete(path)


def test_domain_admin_cannot_loosen_what_a_global_admin_set(client, sql_store, domain, scoped):
    for preset, (method, target, kind, form), param in _escapes(domain, scoped["user"]):
        _clear(sql_store)
        for set_target, set_kind, set_form in preset:
            assert client.post(f"/api/throttle/{set_target}/{set_kind}", set_form).status_code == 200
        before = rows(sql_store)
        result = _send(scoped["da"], method, target, kind, form)
        assert result.status_code == 403, (method, target, form, result.text)
        assert result.json["msg"] == "PERMISSION_DENIED" and result.json["param"] == param, result.text
        assert rows(sql_store) == before
        # a global admin can do each of them
        assert _send(client, method, target, kind, form).status_code == 200
        assert rows(sql_store) != before


def test_domain_admin_may_make_limits_stricter(client, sql_store, domain, scoped):
    da, user = scoped["da"], scoped["user"]
    client.post("/api/throttle/global/outbound", {"period": "60", "msg_size": "1048576"})
    client.post(f"/api/throttle/{domain}/outbound", {**HOUR, **INHERIT, "max_msgs": "100"})
    stricter = [(domain, {**HOUR, **INHERIT, "max_msgs": "50"}),
                (domain, {**INHERIT, "period": "7200", "max_msgs": "50", "msg_size": "1000"}),
                (user, {**HOUR, **INHERIT, "max_msgs": "10"}),
                (user, {**HOUR, **INHERIT, "max_msgs": "10", "max_rcpts": "5"})]
    for target, form in stricter:
        result = da.post(f"/api/throttle/{target}/outbound", form)
        assert result.status_code == 200, (target, form, result.text)
    assert da.get(f"/api/throttle/{user}/outbound").json["setting"]["max_rcpts"] == 5
    # where nothing is set above it, anything goes (0 included, which only says "unlimited")
    assert da.post(f"/api/throttle/{user}/inbound", {"period": "60", "max_msgs": "0"}).status_code == 200
    assert da.delete(f"/api/throttle/{user}/inbound").status_code == 200
    # its own limits are in force like any other: loosening them is a global admin's job
    assert da.post(f"/api/throttle/{user}/outbound", {**HOUR, **INHERIT, "max_msgs": "20"}).json[
        "param"] == "max_msgs"
    assert client.post(f"/api/throttle/{user}/outbound", {**HOUR, **INHERIT, "max_msgs": "20"}).status_code == 200


def test_domain_admin_cannot_throttle_admins_it_does_not_equal(client, sql_store, domain, scoped):
    da = scoped["da"]
    for mail, code in ((scoped["chief"], "PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE"),
                       (scoped["boss"], "PERMISSION_DENIED")):
        for result in (da.post(f"/api/throttle/{mail}/outbound", {"period": "60", "max_msgs": "1"}),
                       da.delete(f"/api/throttle/{mail}/outbound")):
            assert result.status_code == 403 and result.json["msg"] == code, result.text
        assert da.get(f"/api/throttle/{mail}/outbound").status_code == 200
        assert client.post(f"/api/throttle/{mail}/outbound", {"period": "60", "max_msgs": "1"}).status_code == 200
    assert sorted(r["account"] for r in rows(sql_store)) == sorted([scoped["chief"], scoped["boss"]])


@pytest.mark.parametrize("setting,target", [("disabledDomainProfile:throttle", "domain"),
                                            ("disabledUserProfile:throttle", "user")])
def test_global_admin_can_reserve_throttling(client, sql_store, domain, scoped, root_connection, setting, target):
    import ldap3

    from tests.conftest import SUFFIX

    target = domain if target == "domain" else scoped["user"]
    root_connection.modify(f"domainName={domain},o=domains,{SUFFIX}",
                           {"accountSetting": [(ldap3.MODIFY_ADD, [setting])]})
    da = scoped["da"]
    for result in (da.post(f"/api/throttle/{target}/outbound", {**HOUR, **INHERIT, "max_msgs": "1"}),
                   da.delete(f"/api/throttle/{target}/outbound")):
        assert result.status_code == 403 and result.json["msg"] == "PERMISSION_DENIED", result.text
    assert rows(sql_store) == []
    assert da.get(f"/api/throttle/{target}/outbound").status_code == 200
    # the other switch's part stays open, and global admins are not bound
    other = scoped["user"] if target == domain else domain
    assert da.post(f"/api/throttle/{other}/outbound", {**HOUR, **INHERIT, "max_msgs": "1"}).status_code == 200
    assert client.post(f"/api/throttle/{target}/outbound", {**HOUR, **INHERIT, "max_msgs": "1"}).status_code == 200
