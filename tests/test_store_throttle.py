"""The throttle store on SQLite, MariaDB and PostgreSQL, and iRedAPD's tables as we create them."""

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from iredapi_ldap import errors
from iredapi_ldap.store import throttle
from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import iredapd_metadata, throttle_tracking
from iredapi_ldap.store.tables import throttle as throttle_table
from tests.sql_backends import (
    DDL_SUFFIX,
    SERVERS,
    UPSTREAM_DIR,
    admin_engine,
    kill_connections,
    our_ddl,
    run_sql_file,
    sql_store_fixture,  # noqa: F401 (the sql_store fixture)
    throwaway_database,
)

USER, DOMAIN, GLOBAL = "user@example.com", "@example.com", "@."


def rows(store, where="1 = 1", **params):
    with store.engine.connect() as conn:
        query = sa.text(f"SELECT * FROM throttle WHERE {where} ORDER BY id")
        return conn.execute(query, params).mappings().all()


def add_tracking(store, tid, account):
    with store.engine.begin() as conn:
        conn.execute(throttle_tracking.insert().values(tid=tid, account=account, period=60, cur_msgs=1))


def tracking_tids(store):
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(throttle_tracking.c.tid)).scalars())


# -- reading and writing ----------------------------------------------------------------------


def test_throttle_account_names_iredapd_accounts():
    assert throttle.throttle_account("global") == GLOBAL
    assert throttle.throttle_account("example.com") == DOMAIN
    assert throttle.throttle_account(USER) == USER


def test_get_without_setting_is_empty(sql_store):
    assert throttle.get_setting(sql_store, USER, "outbound") == {}


@pytest.mark.parametrize("account, priority", [(USER, 100), (DOMAIN, 60), (GLOBAL, 0)])
def test_set_creates_row_with_priority_and_omitted_limits_zero(sql_store, account, priority):
    assert throttle.set_setting(sql_store, account, "outbound", 3600, 10240, None, None) == "created"

    setting = throttle.get_setting(sql_store, account, "outbound")
    assert setting == {
        "id": setting["id"], "account": account, "kind": "outbound", "priority": priority, "period": 3600,
        "msg_size": 10240, "max_msgs": 0, "max_quota": 0, "max_rcpts": 0,
    }
    assert isinstance(setting["id"], int)


def test_set_updates_in_place(sql_store):
    throttle.set_setting(sql_store, USER, "outbound", 60, 1, 2, 3, 4)
    before = throttle.get_setting(sql_store, USER, "outbound")

    assert throttle.set_setting(sql_store, USER, "outbound", 120, None, 20, None, 40) == "updated"
    # The same values again: MySQL must count the matched row, not the changed ones.
    assert throttle.set_setting(sql_store, USER, "outbound", 120, None, 20, None, 40) == "updated"

    after = throttle.get_setting(sql_store, USER, "outbound")
    assert after == {**before, "period": 120, "msg_size": 0, "max_msgs": 20, "max_quota": 0, "max_rcpts": 40}
    assert len(rows(sql_store)) == 1


def test_update_rewrites_priority_on_iredapd_scale(sql_store):
    # iRedAdmin-Pro <= 1.5.1 wrote priority 10 for users (iRedAPD tools/fix_throttle_priority.py).
    with sql_store.engine.begin() as conn:
        conn.execute(throttle_table.insert().values(account=USER, kind="inbound", priority=10, period=60))
    throttle.set_setting(sql_store, USER, "inbound", 60, 5, 5, 5)
    assert throttle.get_setting(sql_store, USER, "inbound")["priority"] == 100


def test_period_zero_deletes_row_and_tracking_rows(sql_store):
    for kind in throttle.KINDS:
        throttle.set_setting(sql_store, USER, kind, 60, 1, 1, 1)
        add_tracking(sql_store, throttle.get_setting(sql_store, USER, kind)["id"], USER)
    inbound_id = throttle.get_setting(sql_store, USER, "inbound")["id"]

    assert throttle.set_setting(sql_store, USER, "outbound", 0, 1, 1, 1) == "deleted"

    assert throttle.get_setting(sql_store, USER, "outbound") == {}
    assert tracking_tids(sql_store) == [inbound_id]
    assert throttle.set_setting(sql_store, USER, "outbound", 0, 1, 1, 1) == "unchanged"


@pytest.mark.parametrize("limits", [(0, 0, 0, 0), (0, None, None, None)])
def test_global_with_all_limits_zero_is_deleted(sql_store, limits):
    throttle.set_setting(sql_store, GLOBAL, "outbound", 60, 1, 1, 1, 1)
    add_tracking(sql_store, throttle.get_setting(sql_store, GLOBAL, "outbound")["id"], GLOBAL)

    assert throttle.set_setting(sql_store, GLOBAL, "outbound", 60, *limits) == "deleted"
    assert rows(sql_store) == [] and tracking_tids(sql_store) == []


def test_all_limits_zero_is_kept_for_user_and_domain(sql_store):
    for account in (USER, DOMAIN):
        assert throttle.set_setting(sql_store, account, "inbound", 60, 0, 0, 0) == "created"
    assert [row["account"] for row in rows(sql_store)] == [USER, DOMAIN]


@pytest.mark.parametrize("account", [USER, DOMAIN])
def test_non_global_with_all_limits_minus_one_is_deleted(sql_store, account):
    throttle.set_setting(sql_store, account, "outbound", 60, 1, 1, 1)
    add_tracking(sql_store, throttle.get_setting(sql_store, account, "outbound")["id"], account)

    assert throttle.set_setting(sql_store, account, "outbound", 60, -1, -1, -1) == "deleted"
    assert rows(sql_store) == [] and tracking_tids(sql_store) == []


@pytest.mark.parametrize("limits", [(-1, None, None), (-1, -1, -1, 0)])
def test_minus_one_beside_other_limits_is_kept(sql_store, limits):
    # Omitted limits are stored as 0, so the row does not inherit everything.
    assert throttle.set_setting(sql_store, USER, "outbound", 60, *limits) == "created"


def test_global_with_all_limits_minus_one_is_kept(sql_store):
    assert throttle.set_setting(sql_store, GLOBAL, "inbound", 60, -1, -1, -1) == "created"
    assert throttle.get_setting(sql_store, GLOBAL, "inbound")["msg_size"] == -1


def test_inbound_and_outbound_are_independent(sql_store):
    throttle.set_setting(sql_store, USER, "inbound", 60, 100, None, None)
    throttle.set_setting(sql_store, USER, "outbound", 120, None, 200, None)
    throttle.set_setting(sql_store, USER, "inbound", 0, None, None, None)

    assert throttle.get_setting(sql_store, USER, "inbound") == {}
    assert throttle.get_setting(sql_store, USER, "outbound")["max_msgs"] == 200


def test_max_rcpts_only_for_outbound(sql_store):
    throttle.set_setting(sql_store, USER, "outbound", 60, None, None, None, max_rcpts=25)
    throttle.set_setting(sql_store, USER, "inbound", 60, 1, None, None)

    assert throttle.get_setting(sql_store, USER, "outbound")["max_rcpts"] == 25
    assert throttle.get_setting(sql_store, USER, "inbound")["max_rcpts"] == -1  # the column default
    with pytest.raises(errors.InvalidInput) as raised:
        throttle.set_setting(sql_store, USER, "inbound", 60, 1, None, None, max_rcpts=25)
    assert raised.value.param == "max_rcpts"


@pytest.mark.parametrize(
    "param, values",
    [
        ("period", (-1, 1, 1, 1, None)),
        ("msg_size", (60, -2, 1, 1, None)),
        ("max_msgs", (60, 1, -5, 1, None)),
        ("max_quota", (60, 1, 1, -2, None)),
        ("max_rcpts", (60, 1, 1, 1, -2)),
        ("msg_size", (60, "1", 1, 1, None)),
        ("max_msgs", (60, 1, True, 1, None)),
        ("period", (2**32, 1, 1, 1, None)),
    ],
)
def test_rejects_out_of_range_values(sql_store, param, values):
    with pytest.raises(errors.InvalidInput) as raised:
        throttle.set_setting(sql_store, USER, "outbound", *values)
    assert (raised.value.code, raised.value.param) == (errors.INVALID_NUMBER, param)
    assert rows(sql_store) == []


def test_delete_setting_removes_one_kind_and_its_tracking_rows(sql_store):
    throttle.set_setting(sql_store, USER, "outbound", 60, 1, 1, 1)
    throttle.set_setting(sql_store, USER, "inbound", 60, 1, 1, 1)
    outbound_id = throttle.get_setting(sql_store, USER, "outbound")["id"]
    inbound_id = throttle.get_setting(sql_store, USER, "inbound")["id"]
    add_tracking(sql_store, outbound_id, USER)
    add_tracking(sql_store, inbound_id, USER)

    assert throttle.delete_setting(sql_store, USER, "outbound") == 1
    assert throttle.delete_setting(sql_store, USER, "outbound") == 0

    assert [row["kind"] for row in rows(sql_store)] == ["inbound"]
    assert tracking_tids(sql_store) == [inbound_id]


def test_delete_settings_for_accounts(sql_store):
    accounts = [USER, "other@example.com", DOMAIN, "@example.net"]
    for account in accounts:
        for kind in throttle.KINDS:
            throttle.set_setting(sql_store, account, kind, 60, 1, 1, 1)
            add_tracking(sql_store, throttle.get_setting(sql_store, account, kind)["id"], account)

    assert throttle.delete_settings_for_accounts(sql_store, [USER, DOMAIN]) == 4
    assert throttle.delete_settings_for_accounts(sql_store, []) == 0

    left = rows(sql_store)
    assert {row["account"] for row in left} == {"other@example.com", "@example.net"}
    assert tracking_tids(sql_store) == sorted(row["id"] for row in left)


def test_delete_settings_for_domain(sql_store):
    doomed = [DOMAIN, USER, "other@example.com"]
    kept = [GLOBAL, "@example.net", "user@example.net", "@sub.example.com", "user@sub.example.com",
            "user@xexample.com", "@.example.com"]
    for account in doomed + kept:
        throttle.set_setting(sql_store, account, "outbound", 60, 1, 1, 1)
        add_tracking(sql_store, throttle.get_setting(sql_store, account, "outbound")["id"], account)

    assert throttle.delete_settings_for_domain(sql_store, "example.com") == len(doomed)

    left = rows(sql_store)
    assert sorted(row["account"] for row in left) == sorted(kept)
    assert tracking_tids(sql_store) == sorted(row["id"] for row in left)


def test_rows_read_back_as_iredapd_selects_them(sql_store):
    # iRedAPD plugins/throttle.py: one query per kind, the highest priority first.
    for account in (GLOBAL, USER, DOMAIN):
        throttle.set_setting(sql_store, account, "outbound", 60, 1, 1, 1)
    throttle.set_setting(sql_store, "@example.net", "outbound", 60, 1, 1, 1)
    throttle.set_setting(sql_store, USER, "inbound", 60, 1, 1, 1)

    query = sa.text(
        "SELECT id, account, priority, period, max_msgs, max_quota, msg_size, max_rcpts FROM throttle"
        " WHERE kind = :kind AND account IN :accounts ORDER BY priority DESC"
    ).bindparams(sa.bindparam("accounts", expanding=True))
    with sql_store.engine.connect() as conn:
        found = conn.execute(query, {"kind": "outbound", "accounts": [USER, DOMAIN, GLOBAL]}).all()
    assert [row.account for row in found] == [USER, DOMAIN, GLOBAL]


def run_together(function, arguments):
    """Call ``function`` once per argument, all threads released at the same moment."""
    barrier = threading.Barrier(len(arguments))

    def call(argument):
        barrier.wait()
        return function(argument)

    with ThreadPoolExecutor(len(arguments)) as pool:
        return list(pool.map(call, arguments))


def test_concurrent_writers_leave_one_row(sql_store):
    # Without the lock in set_setting: duplicate rows on PostgreSQL (no unique index),
    # IntegrityError on MariaDB.
    def write(value):
        return throttle.set_setting(sql_store, USER, "outbound", 60, value, value, value, value)

    outcomes = run_together(write, range(1, 21))

    assert sorted(outcomes) == ["created"] + ["updated"] * 19
    [row] = rows(sql_store)
    assert row["msg_size"] == row["max_msgs"] == row["max_quota"] == row["max_rcpts"]  # one writer's values


def test_concurrent_writers_of_different_accounts_all_succeed(sql_store):
    # Under InnoDB's REPEATABLE READ these deadlock on the gap locks of their empty UPDATEs.
    def write(number):
        return throttle.set_setting(sql_store, f"user{number}@example.com", "outbound", 60, 1, 1, 1)

    for _ in range(5):
        with sql_store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM throttle"))
        assert run_together(write, range(20)) == ["created"] * 20


# -- connections: after fork, to an unreachable or restarted server ---------------------------


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVER_URL = {"mariadb": "mysql+pymysql://iredapd@127.0.0.1:{port}/iredapd",
              "postgresql": "postgresql+psycopg://iredapd@127.0.0.1:{port}/iredapd"}


@pytest.mark.parametrize("port_kind", ["closed_port", "silent_port"])
@pytest.mark.parametrize("backend", SERVERS)
def test_unreachable_server_raises_backend_unavailable(request, backend, port_kind):
    store = SqlStore(SERVER_URL[backend].format(port=request.getfixturevalue(port_kind)), timeout=2)
    started = time.monotonic()
    with pytest.raises(errors.BackendUnavailable) as raised:
        throttle.get_setting(store, USER, "outbound")
    assert raised.value.code == errors.SQL_SERVER_DOWN
    assert time.monotonic() - started < 4


def test_locked_sqlite_file_raises_backend_unavailable(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/iredapd.sqlite", timeout=1)
    create_tables(store, iredapd_metadata)
    with store.engine.connect() as holder:
        holder.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: holds the file's write lock
        started = time.monotonic()
        with pytest.raises(errors.BackendUnavailable):
            throttle.set_setting(store, USER, "outbound", 60, 1, 1, 1)
        assert 0.9 < time.monotonic() - started < 3


def server_session(store):
    """The server's id for the connection the store's pool hands out next (None on SQLite)."""
    queries = {"mysql": "SELECT CONNECTION_ID()", "postgresql": "SELECT pg_backend_pid()"}
    if store.dialect_name not in queries:
        return None
    with store.transaction() as conn:
        return conn.exec_driver_sql(queries[store.dialect_name]).scalar()


def test_forked_process_opens_its_own_connections(sql_store):
    throttle.set_setting(sql_store, USER, "outbound", 60, 1, 1, 1)  # the pool now holds a connection
    parent_session = server_session(sql_store)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: as a gunicorn worker after the fork
        status = 1
        try:
            throttle.set_setting(sql_store, USER, "inbound", 60, 2, 2, 2)
            os.write(write_end, repr(server_session(sql_store)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_session = pipe.read()
    assert os.waitpid(pid, 0)[1] == 0

    assert throttle.get_setting(sql_store, USER, "inbound")["msg_size"] == 2
    assert server_session(sql_store) == parent_session  # the parent's connection survived the child
    if parent_session is not None:
        assert child_session != repr(parent_session)


@pytest.mark.parametrize("sql_database", SERVERS, indirect=True)
def test_pool_recovers_after_server_ends_connections(sql_store):
    throttle.set_setting(sql_store, USER, "outbound", 60, 1, 1, 1)
    assert kill_connections(sql_store) >= 1  # the pooled connection, now dead

    assert throttle.get_setting(sql_store, USER, "outbound")["period"] == 60


@pytest.mark.parametrize("sql_database", SERVERS, indirect=True)
def test_reads_run_in_autocommit_see_every_write_and_survive_a_server_restart(sql_store):
    with sql_store.transaction(read_only=True) as conn:
        dbapi = conn.connection.dbapi_connection
        in_autocommit = dbapi.get_autocommit() if hasattr(dbapi, "get_autocommit") else dbapi.autocommit
    assert in_autocommit  # no COMMIT round trip after a read
    throttle.set_setting(sql_store, USER, "outbound", 60, 1, 1, 1)
    assert throttle.get_setting(sql_store, USER, "outbound")["period"] == 60
    throttle.set_setting(sql_store, USER, "outbound", 120, 1, 1, 1)
    # the pooled reading connection holds no old snapshot
    assert throttle.get_setting(sql_store, USER, "outbound")["period"] == 120
    assert kill_connections(sql_store) >= 2  # the writer's and the reader's
    assert throttle.get_setting(sql_store, USER, "outbound")["period"] == 120
    with sql_store.transaction() as conn:  # writes still run in a transaction
        dbapi = conn.connection.dbapi_connection
        assert not (dbapi.get_autocommit() if hasattr(dbapi, "get_autocommit") else dbapi.autocommit)


# -- the tables ------------------------------------------------------------------------------


def _fields(items, *keys):
    return sorted(tuple(str(item.get(key)) for key in keys) for item in items)


def describe_tables(engine, names=("throttle", "throttle_tracking")):
    """What reflection sees of the tables: columns in order, keys, indexes."""
    inspector = sa.inspect(engine)
    described = {}
    for name in names:
        columns = inspector.get_columns(name)
        for column in columns:
            column["type"] = column["type"].compile(dialect=engine.dialect)
        described[name] = {
            "columns": [tuple(c.get(k) for k in ("name", "type", "nullable", "default", "autoincrement"))
                        for c in columns],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": _fields(inspector.get_indexes(name), "name", "column_names", "unique"),
            "unique": _fields(inspector.get_unique_constraints(name), "name", "column_names"),
            "foreign_keys": _fields(inspector.get_foreign_keys(name), "name", "constrained_columns",
                                    "referred_table", "referred_columns", "options"),
        }
    return described


def described(backend, tmp_path, build):
    with throwaway_database(backend, tmp_path) as url:
        store = SqlStore(url, timeout=5)
        try:
            build(store)
            return describe_tables(store.engine)
        finally:
            store.engine.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_our_ddl_matches_upstream(backend, tmp_path):
    if not UPSTREAM_DIR.is_dir():
        pytest.skip(f"{UPSTREAM_DIR} absent: comparing with upstream needs ../shared beside the checkout")
    admin_engine(backend)  # skip first if the server is down

    def upstream(store):
        run_sql_file(store.engine, UPSTREAM_DIR / f"iredapd.{DDL_SUFFIX[backend]}")
        if "max_rcpts" not in {c["name"] for c in sa.inspect(store.engine).get_columns("throttle")}:
            run_sql_file(store.engine, UPSTREAM_DIR / f"5.0-max_rcpts.{DDL_SUFFIX[backend]}")

    ours = described(backend, tmp_path, lambda store: run_sql_file(store.engine, our_ddl(backend)))
    assert ours == described(backend, tmp_path, upstream)


@pytest.mark.parametrize("backend", ["sqlite", *SERVERS])
def test_create_tables_matches_our_ddl(backend, tmp_path):
    def create_twice(store):
        create_tables(store, iredapd_metadata)
        create_tables(store, iredapd_metadata)  # existing tables are left alone

    created = described(backend, tmp_path, create_twice)
    expected = described(backend, tmp_path, lambda store: run_sql_file(store.engine, our_ddl(backend)))
    if backend == "postgresql":
        # One Column serves every backend: tid is NOT NULL DEFAULT 0 as on MySQL, where
        # iRedAPD's PostgreSQL DDL leaves it nullable without a default.
        columns = expected["throttle_tracking"]["columns"]
        columns[1] = ("tid", "BIGINT", False, "0", False)
    assert created == expected


def test_applicable_accounts_are_iredapds():
    # iRedAPD libs/utils.py get_policy_addresses_from_email, its docstring's example
    assert sorted(throttle.applicable_accounts("user@sub3.sub2.sub1.com")) == sorted([
        "user@sub3.sub2.sub1.com", "@sub3.sub2.sub1.com", "@.sub3.sub2.sub1.com", "@.sub2.sub1.com", "@.sub1.com",
        "@.com", "@."])
    assert sorted(throttle.applicable_accounts("@example.com")) == ["@.", "@.com", "@.example.com", "@example.com"]
    assert throttle.applicable_accounts("@.") == ["@."]


def test_effective_limits_resolve_each_rule_as_iredapd_does():
    def row(account, priority, period, msg_size=-1, max_msgs=-1, max_quota=-1, max_rcpts=-1):
        return {"account": account, "priority": priority, "period": period, "msg_size": msg_size,
                "max_msgs": max_msgs, "max_quota": max_quota, "max_rcpts": max_rcpts}

    rows_ = [row(GLOBAL, 0, 60, msg_size=1000, max_msgs=5, max_rcpts=0),
             row(DOMAIN, 60, 3600, max_msgs=100),
             row(USER, 100, 0, max_msgs=1)]  # period 0: iRedAPD skips the row
    assert throttle.effective_limits(rows_) == {
        "msg_size": (1000, 60), "max_msgs": (100, 3600), "max_quota": None, "max_rcpts": (0, 60)}
