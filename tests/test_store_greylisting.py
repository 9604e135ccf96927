"""iRedAPD's greylisting tables as we create them, against iRedAPD's own DDL."""

import pytest

from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import iredapd_metadata
from tests.sql_backends import (
    DDL_SUFFIX,
    SERVERS,
    UPSTREAM_DIR,
    admin_engine,
    our_ddl,
    run_sql_file,
    sql_store_fixture,  # noqa: F401 (the sql_store fixture)
    throwaway_database,
)
from tests.test_store_throttle import describe_tables

TABLES = ("greylisting", "greylisting_whitelists", "greylisting_whitelist_domains",
          "greylisting_whitelist_domain_spf", "greylisting_tracking")


def described(backend, tmp_path, build):
    with throwaway_database(backend, tmp_path) as url:
        store = SqlStore(url, timeout=5)
        try:
            build(store)
            return describe_tables(store.engine, TABLES)
        finally:
            store.engine.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_our_ddl_matches_upstream(backend, tmp_path):
    if not UPSTREAM_DIR.is_dir():
        pytest.skip(f"{UPSTREAM_DIR} absent: comparing with upstream needs ../shared beside the checkout")
    admin_engine(backend)
    ours = described(backend, tmp_path, lambda store: run_sql_file(store.engine, our_ddl(backend)))
    upstream = described(backend, tmp_path,
                         lambda store: run_sql_file(store.engine, UPSTREAM_DIR / f"iredapd.{DDL_SUFFIX[backend]}"))
    assert ours == upstream


@pytest.mark.parametrize("backend", ["sqlite", *SERVERS])
def test_create_tables_matches_our_ddl(backend, tmp_path):
    def create_twice(store):
        create_tables(store, iredapd_metadata)
        create_tables(store, iredapd_metadata)

    assert described(backend, tmp_path, create_twice) == described(
        backend, tmp_path, lambda store: run_sql_file(store.engine, our_ddl(backend)))


# -- concurrent writers ------------------------------------------------------------------------


def test_concurrent_writers_of_one_account_all_succeed(sql_store):
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa

    from iredapi_ldap.store import greylisting
    from iredapi_ldap.store.tables import greylisting as greylisting_table
    from iredapi_ldap.store.tables import greylisting_whitelists

    account = "user@example.com"

    def write(i):
        greylisting.set_setting(sql_store, account, "enable" if i % 2 else "disable")
        # overlapping additions: each sender is added by several writers at once
        greylisting.update_whitelists(sql_store, account, add=[f"10.0.0.{i % 4}", f"10.0.1.{i % 3}"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(24)))
    with sql_store.transaction() as conn:
        settings = conn.execute(sa.select(greylisting_table.c.account)).scalars().all()
        senders = conn.execute(sa.select(greylisting_whitelists.c.sender)).scalars().all()
    assert settings == [account]
    assert sorted(senders) == sorted([f"10.0.0.{i}" for i in range(4)] + [f"10.0.1.{i}" for i in range(3)])
