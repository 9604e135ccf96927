"""python -m bench.alias_domain: how long PUT /api/domain/<domain> addAliasDomain takes on a big domain.

A private slapd set up as `iredapi-ldap dev` sets it up (indexes and the unique overlay
included), one domain bulk-loaded with --users users (bench.bulk), the API under gunicorn as
deployed (gunicorn.conf.py, 2 workers x 8 threads).  Then, through HTTP, one after the other:

  add      addAliasDomain=<new name>: every account gets <local>@<alias> (the sweep)
  repeat   the same request again: every account is read, none written
  create   one POST /api/user in the big domain afterwards (it gets its alias address at creation)
  remove   removeAliasDomain: every alias address taken away again
  raw      the directory's own cost of the same work: python-ldap, bound as cn=vmailadmin, one
           modify per user adding <local>@raw.bench, one after the other (no API)

and prints the seconds and the answer of each.  Everything lives in a folder under /tmp,
removed at the end.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import ldap

from iredapi_ldap.directory import domains as domain_directory
from iredapi_ldap.directory import limits as limitlib
from iredapi_ldap.directory.base import Directory

from . import bulk
from .stack import USER_PASSWORD, Api, Gunicorn, Slapd, settings_from, write_settings

BIG, ALIAS = "big.bench", "alias.bench"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.alias_domain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10000, help="users in the domain (default 10000)")
    return parser.parse_args(argv)


def timed(port, token, method, path, form):
    api = Api(port, token)  # a connection of its own, with a timeout long enough for the sweep
    try:
        started = time.monotonic()
        status, _, body = api.request(method, path, form, timeout=3600)
        return time.monotonic() - started, status, body[:300]
    finally:
        api.close()


def raw_sweep(settings, domain, count):
    """Seconds to add one shadowAddress to each of the bulk-loaded users u0..u<count-1> of
    ``domain`` straight through python-ldap (their DNs known: no search)."""
    conn = ldap.initialize(settings.ldap_uri)
    conn.simple_bind_s(settings.ldap_bind_dn, settings.ldap_bind_password)
    started = time.monotonic()
    for index in range(count):
        dn = f"mail=u{index}@{domain},ou=Users,domainName={domain},{settings.ldap_basedn}"
        conn.modify_s(dn, [(ldap.MOD_ADD, "shadowAddress", [f"u{index}@raw.bench".encode()])])
    seconds = time.monotonic() - started
    conn.unbind_s()
    return seconds


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="iredapi-aliasdomain-"))
    slapd = Slapd(root).start()
    server = None
    try:
        settings_file = write_settings(root, slapd)
        settings = settings_from(settings_file)
        slapd.install(settings)
        directory = Directory.from_settings(settings)
        domain_directory.create_domain(directory, BIG, {"transport": "dovecot"})
        entry = domain_directory.get_domain(directory, BIG)
        ldif = root / "users.ldif"
        bulk.write_users_ldif(ldif, directory, BIG, entry, args.users, USER_PASSWORD)
        directory.close()
        slapd.stop()
        slapd.slapadd(ldif)
        slapd.start()
        directory = Directory.from_settings(settings)
        limitlib.recount(directory, BIG)
        directory.close()
        server = Gunicorn(root, settings_file, workers=2, threads=8, label="aliasdomain").start()
        api = Api(server.port)
        token = api.login()
        api.close()
        print(f"domain {BIG}: {args.users:,} users (bulk-loaded); API: gunicorn, 2 workers x 8 threads")
        steps = (
            ("add", "PUT", f"/api/domain/{BIG}", {"addAliasDomain": ALIAS}),
            ("repeat", "PUT", f"/api/domain/{BIG}", {"addAliasDomain": ALIAS}),
            ("create", "POST", f"/api/user/late@{BIG}", {"password": USER_PASSWORD}),
            ("remove", "PUT", f"/api/domain/{BIG}", {"removeAliasDomain": ALIAS}),
        )
        for label, method, path, form in steps:
            seconds, status, body = timed(server.port, token, method, path, form)
            print(f"{label:<7} {method} {path} {form}: {seconds:.2f} s, HTTP {status}, {body.decode(errors='replace')}",
                  flush=True)
        print(f"raw     python-ldap: {raw_sweep(settings, BIG, args.users):.2f} s", flush=True)
    finally:
        if server is not None:
            server.stop()
        slapd.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
