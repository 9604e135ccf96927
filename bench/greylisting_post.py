"""Latency of a greylisting POST (the setting, and a whitelist addition) on each iRedAPD backend.

    .venv/bin/python -m bench.greylisting_post [--requests 200] [--backends sqlite,mariadb,postgresql]

As ``bench.wblist_post``: a private slapd, the API under real gunicorn (1 worker, 4 threads),
iRedAPD's tables (``iredapd_db_url``) in a throwaway SQLite file, MariaDB or PostgreSQL database; one
client sends the requests one after another over a keep-alive connection.  Each status POST flips
the user's setting (enable/disable: an UPDATE), each whitelist POST adds a new sender (an INSERT);
the GET of the setting (same LDAP reads, one SELECT) is the baseline.  Prints the median and 95th
percentile per backend.  Not a test; everything is removed afterwards.
"""

import argparse
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa

from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import iredapd_metadata

from .stack import Api, Gunicorn, Slapd, settings_from, write_settings
from .stack import _write_private as write_private
from .wblist_post import ADMIN_URLS, percentiles, timed


def database(backend, data):
    """(URL, drop()) of a new, empty database with iRedAPD's tables."""
    if backend == "sqlite":
        url = f"sqlite:///{data}/iredapd-{secrets.token_hex(4)}.sqlite"
        drop = lambda: None  # noqa: E731 (removed with the folder)
    else:
        env = {"mariadb": "IREDAPI_TEST_MARIADB_URL", "postgresql": "IREDAPI_TEST_POSTGRESQL_URL"}[backend]
        admin = sa.create_engine(os.environ.get(env, ADMIN_URLS[backend]), isolation_level="AUTOCOMMIT")
        name = f"iredapi_bench_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = admin.url.set(database=name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else ""))
            admin.dispose()
    store = SqlStore(url, timeout=5)
    create_tables(store, iredapd_metadata)
    store.dispose()
    return url, drop


def run_backend(backend, data, slapd, requests):
    url, drop = database(backend, data)
    settings_file = write_settings(data, slapd, name=f"settings-greylisting-{backend}.py")
    write_private(settings_file, settings_file.read_text() + f'iredapd_db_url = "{url}"\n')
    gunicorn = Gunicorn(data, settings_file, workers=1, threads=4, label=backend).start()
    try:
        api = Api(gunicorn.port)
        api.login()
        domain = f"grey-{backend}.bench"
        api.call("POST", f"/api/domain/{domain}")
        api.call("POST", f"/api/user/u@{domain}", {"password": "Bench-User-Pass-1!"})
        setting, whitelists = f"/api/greylisting/u@{domain}", f"/api/greylisting/u@{domain}/whitelists"
        for n in range(10):  # warm-up: connections, statement caches
            timed(api, "POST", setting, {"status": "enable"})
            timed(api, "POST", whitelists, {"addSenders": f"192.0.2.{n}"})
        statuses = [timed(api, "POST", setting, {"status": "disable" if n % 2 == 0 else "enable"})
                    for n in range(requests)]
        additions = [timed(api, "POST", whitelists, {"addSenders": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"})
                     for n in range(requests)]
        gets = [timed(api, "GET", setting, None) for _ in range(requests)]
        api.close()
        return {"greylisting POST status": percentiles(statuses),
                "greylisting POST addSenders": percentiles(additions),
                "greylisting GET (baseline)": percentiles(gets)}
    finally:
        gunicorn.stop()
        drop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    args = parser.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="iredapi-bench-greylisting-"))
    slapd = Slapd(data).start()
    try:
        slapd.install(settings_from(write_settings(data, slapd)))
        print("| backend | request | n | median ms | p95 ms |\n|---|---|---|---|---|")
        for backend in args.backends.split(","):
            for name, (median, p95) in run_backend(backend, data, slapd, args.requests).items():
                print(f"| {backend} | {name} | {args.requests} | {median:.1f} | {p95:.1f} |", flush=True)
    finally:
        slapd.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
