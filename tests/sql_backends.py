"""SQL backends for tests: a throwaway database on SQLite, MariaDB or PostgreSQL.

MariaDB and PostgreSQL are reached as their admin users (override with IREDAPI_TEST_MARIADB_URL /
IREDAPI_TEST_POSTGRESQL_URL).  A server that does not answer skips its tests with the reason,
or fails them when IREDAPI_TEST_REQUIRE_SQL=1 (as CI sets).
"""

import contextlib
import os
import re
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import iredadmin_metadata, iredapd_metadata

REPO = Path(__file__).resolve().parent.parent
DDL_DIR = REPO / "schema" / "sql"
UPSTREAM_DIR = REPO.parent / "shared" / "upstream" / "iredapd"

BACKENDS = ("sqlite", "mariadb", "postgresql")
SERVERS = ("mariadb", "postgresql")
ADMIN_URLS = {
    "mariadb": os.environ.get("IREDAPI_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    "postgresql": os.environ.get(
        "IREDAPI_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
}
SERVER_NAMES = {"mariadb": "MariaDB", "postgresql": "PostgreSQL"}
DDL_SUFFIX = {"sqlite": "sqlite", "mariadb": "mysql", "postgresql": "pgsql"}  # as iRedAPD names them

_admin_engines = {}  # backend -> Engine, or the reason it is unreachable


def skip_unless_required(reason):
    if os.environ.get("IREDAPI_TEST_REQUIRE_SQL") == "1":
        pytest.fail(f"{reason} (IREDAPI_TEST_REQUIRE_SQL=1)")
    pytest.skip(reason)


def admin_engine(backend):
    """An AUTOCOMMIT engine on the server as its admin user; skips the test if it does not answer."""
    if backend not in _admin_engines:
        url = sa.make_url(ADMIN_URLS[backend])
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            _admin_engines[backend] = engine
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            where = f"{url.host}:{url.port}"
            _admin_engines[backend] = f"{SERVER_NAMES[backend]} at {where} not reachable: {exc.orig}"
    engine = _admin_engines[backend]
    if isinstance(engine, str):
        skip_unless_required(engine)
    return engine


@contextlib.contextmanager
def throwaway_database(backend, tmp_path):
    """Yield the URL of a new, empty database, dropped afterwards."""
    name = f"iredapi_test_{secrets.token_hex(6)}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / name}.sqlite"
        return
    admin = admin_engine(backend)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""  # our pool may still be connected
            conn.exec_driver_sql(f"DROP DATABASE {name}{force}")


def run_sql_file(engine, path):
    """Execute the statements of an SQL file (no ';' inside literals or procedures)."""
    text = re.sub(r"--[^\n]*", "", Path(path).read_text())
    with engine.begin() as conn:
        for statement in text.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)


def our_ddl(backend):
    return DDL_DIR / f"iredapd.{DDL_SUFFIX[backend]}.sql"


def backend_of(store):
    return "mariadb" if store.dialect_name == "mysql" else store.dialect_name


def kill_connections(store):
    """End every server session on ``store``'s database, as a restarted server would; return how many."""
    backend = backend_of(store)
    sessions = {
        "mariadb": "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()",
        "postgresql": "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()",
    }[backend]
    with admin_engine(backend).connect() as conn:
        ids = conn.execute(sa.text(sessions), {"db": store.url.database}).scalars().all()
        for session_id in ids:
            if backend == "mariadb":
                conn.exec_driver_sql(f"KILL {int(session_id)}")
            else:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": session_id})
    return len(ids)


@pytest.fixture(scope="session", params=BACKENDS)
def sql_database(request, tmp_path_factory):
    """The URL of a throwaway database per backend for the run, with iRedAPD's tables (from our
    DDL, so that it is tested) and ours."""
    backend = request.param
    with throwaway_database(backend, tmp_path_factory.mktemp("sql")) as url:
        store = SqlStore(url, timeout=5)
        run_sql_file(store.engine, our_ddl(backend))
        create_tables(store, iredadmin_metadata)
        store.engine.dispose()
        yield url


@pytest.fixture(name="sql_store")
def sql_store_fixture(sql_database):
    """A SqlStore on ``sql_database``, whose tables are emptied afterwards."""
    store = SqlStore(sql_database, timeout=5)
    try:
        yield store
    finally:
        with store.engine.begin() as conn:
            for table in reversed(iredapd_metadata.sorted_tables + iredadmin_metadata.sorted_tables):
                conn.execute(table.delete())
        store.dispose()


# -- Amavisd's database -------------------------------------------------------------------------
AMAVISD_UPSTREAM_DIR = REPO.parent / "shared" / "upstream" / "amavisd"


def amavisd_upstream_lookup_ddl(backend):
    """The lookup part of iRedMail's Amavisd DDL (users, mailaddr, wblist, outbound_wblist, policy
    and iRedMail's policy_name index): the file up to its "Read-write part"."""
    path = AMAVISD_UPSTREAM_DIR / f"amavisd.{DDL_SUFFIX[backend]}"
    return path.read_text().split("-- Read-write part", 1)[0]


def run_sql_text(engine, text):
    text = re.sub(r"--[^\n]*", "", text)
    with engine.begin() as conn:
        for statement in text.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)


@pytest.fixture(scope="session", params=BACKENDS)
def amavisd_database(request, tmp_path_factory):
    """The URL of a throwaway Amavisd database per backend: iRedMail's own tables on MariaDB and
    PostgreSQL (so that we are tested against them), ours (sql-setup's) on SQLite."""
    from iredapi_ldap.store.tables import amavisd_metadata

    backend = request.param
    with throwaway_database(backend, tmp_path_factory.mktemp("amavisd")) as url:
        store = SqlStore(url, timeout=5)
        if backend == "sqlite":
            create_tables(store, amavisd_metadata)
        else:
            run_sql_text(store.engine, amavisd_upstream_lookup_ddl(backend))
        store.engine.dispose()
        yield url


@pytest.fixture(name="amavisd_store")
def amavisd_store_fixture(amavisd_database):
    """A SqlStore on ``amavisd_database``, whose tables are emptied afterwards."""
    from iredapi_ldap.store.tables import amavisd_metadata

    store = SqlStore(amavisd_database, timeout=5)
    try:
        yield store
    finally:
        with store.engine.begin() as conn:
            for table in reversed(amavisd_metadata.sorted_tables):
                conn.execute(table.delete())
        store.dispose()
