"""Latency of a white/blacklist POST (and of a spam-policy PUT) on each Amavisd backend.

    .venv/bin/python -m bench.wblist_post [--requests 200] [--backends sqlite,mariadb,postgresql]

A private slapd (as `iredapi-ldap dev` sets it up), the API under real gunicorn (1 worker, 4
threads), Amavisd's tables in a throwaway SQLite file, MariaDB database or PostgreSQL database (the
servers' admin URLs as the tests take them: IREDAPI_TEST_MARIADB_URL, IREDAPI_TEST_POSTGRESQL_URL).
One client sends the requests one after another over a keep-alive connection; each POST adds a new
sender (a new mailaddr row and a wblist row), each PUT changes the user's spam score; the GET of
the list (same LDAP reads, one SELECT) is the baseline.  Prints the
median and 95th percentile per backend.  Not a test; everything is removed afterwards.
"""

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import amavisd_metadata

from .stack import Api, Gunicorn, Slapd, settings_from, write_settings
from .stack import _write_private as write_private

ADMIN_URLS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
}


def database(backend, data, metadata=amavisd_metadata):
    """(URL, drop()) of a new, empty database with ``metadata``'s tables (Amavisd's by default)."""
    if backend == "sqlite":
        url = f"sqlite:///{data}/bench-{secrets.token_hex(4)}.sqlite"
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
    create_tables(store, metadata)
    store.dispose()
    return url, drop


def percentiles(samples):
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(api, method, path, form):
    started = time.perf_counter()
    status, _, body = api.request(method, path, form)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"{method} {path} -> {status} {body[:300]!r}")
    return elapsed


@contextlib.contextmanager
def api_on(backend, data, slapd, metadata, setting):
    """A logged-in ``Api`` of the API under real gunicorn (1 worker, 4 threads) whose ``setting``
    (a database URL setting) names a new ``backend`` database with ``metadata``'s tables."""
    url, drop = database(backend, data, metadata)
    settings_file = write_settings(data, slapd, name=f"settings-{setting}-{backend}.py")
    write_private(settings_file, settings_file.read_text() + f'{setting} = "{url}"\n')
    gunicorn = Gunicorn(data, settings_file, workers=1, threads=4, label=backend).start()
    try:
        api = Api(gunicorn.port)
        api.login()
        yield api
        api.close()
    finally:
        gunicorn.stop()
        drop()


def run_backend(backend, data, slapd, requests):
    with api_on(backend, data, slapd, amavisd_metadata, "amavisd_db_url") as api:
        domain = f"{backend}.bench"
        api.call("POST", f"/api/domain/{domain}")
        api.call("POST", f"/api/user/u@{domain}", {"password": "Bench-User-Pass-1!"})
        path = f"/api/wblist/inbound/blacklist/u@{domain}"
        for n in range(10):  # warm-up: connections, statement caches
            timed(api, "POST", path, {"addresses": f"warm{n}@sender.example"})
        posts = [timed(api, "POST", path, {"addresses": f"s{n}@sender.example"}) for n in range(requests)]
        puts = [timed(api, "PUT", f"/api/spampolicy/user/u@{domain}", {"spam_score": str(n % 10)})
                for n in range(requests)]
        gets = [timed(api, "GET", path, None) for _ in range(requests)]  # the same LDAP reads, one SELECT
        return {"wblist POST": percentiles(posts), "spampolicy PUT": percentiles(puts),
                "wblist GET (baseline)": percentiles(gets)}


def run(run_backend, description, prefix, argv=None):
    """The command line of a latency bench: ``run_backend(backend, data, slapd, requests)`` for
    each of ``--backends`` on one private slapd; a markdown table of medians and 95th percentiles."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    args = parser.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix=prefix))
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


def main(argv=None):
    run(run_backend, __doc__, "iredapi-bench-wblist-", argv)


if __name__ == "__main__":
    main()
