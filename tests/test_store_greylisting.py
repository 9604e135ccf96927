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
