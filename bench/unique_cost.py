"""python -m bench.unique_cost: what the unique overlay (one address, one account) costs a user create.

A private slapd set up as `iredapi-ldap dev` sets it up (the overlay included), an empty domain
and one bulk-loaded with --users users, the API under gunicorn (gunicorn.conf.py, 2 workers).
Rounds alternate between the overlay on and off (its olcUniqueURI value added or removed over
ldapi: slapd applies either at once).  Each round, in each domain:

  raw      --n sequential python-ldap adds of user entries shaped as the API shapes them
           (``users._user_attributes``), bound as cn=vmailadmin: the directory's own cost
  api      --n sequential POST /api/user: latency as a client sees it
  api-par  --concurrent-n POST /api/user from --concurrency clients: creates per second
  and slapd's CPU time per create (from /proc), which other load on the machine disturbs less

Prints medians over the rounds.  Everything lives in a folder under /tmp, removed at the end.
"""

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import ldap
import ldap3

from iredapi_ldap.directory import domains as domain_directory
from iredapi_ldap.directory import limits as limitlib
from iredapi_ldap.directory import setup as directory_setup
from iredapi_ldap.directory import users as userlib
from iredapi_ldap.directory.connection import LdapClient
from iredapi_ldap.directory.dn import DirectoryNames
from iredapi_ldap.directory.maildir import maildir_path
from iredapi_ldap.directory.passwords import hash_password

from . import bulk, procstat
from .stack import USER_PASSWORD, Api, Gunicorn, Slapd, settings_from, write_settings

SMALL, BIG = "small.test", "big.test"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.unique_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20000, help="users in the big domain (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (default 3)")
    parser.add_argument("--n", type=int, default=100, help="sequential creates per round and domain (default 100)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the parallel run (default 16)")
    parser.add_argument("--concurrent-n", type=int, default=320, help="creates of the parallel run (default 320)")
    parser.add_argument("--nosync", action="store_true",
                        help="olcDbNoSync: TRUE (no fsync per write), to see slapd's CPU cost apart from the disk's")
    return parser.parse_args(argv)


class Overlay:
    """Switch the unique overlay's olcUniqueURI value on and off."""

    def __init__(self, slapd, basedn):
        self.slapd = slapd
        self.uri = directory_setup.unique_uri(basedn)
        conn = slapd.external()
        _, _, response, _ = conn.search("cn=config", "(objectClass=olcUniqueConfig)", attributes=["olcUniqueURI"])
        conn.unbind()
        self.dn = next(r["dn"] for r in response if r.get("type") == "searchResEntry")

    def set(self, on):
        conn = self.slapd.external()
        kind = ldap3.MODIFY_ADD if on else ldap3.MODIFY_DELETE
        status, result, _, _ = conn.modify(self.dn, {"olcUniqueURI": [(kind, [self.uri])]})
        conn.unbind()
        if result["result"] not in (0, 16, 20):  # 16/20: it was off/on already
            raise RuntimeError(result)


def raw_adds(settings, names, domain, domain_entry, tag, n):
    """Seconds per add of n user entries, one connection, one after the other."""
    conn = ldap.initialize(settings.ldap_uri)
    conn.simple_bind_s(settings.ldap_bind_dn, settings.ldap_bind_password)
    limits = limitlib.DomainLimits.of(domain_entry)
    password_hash = hash_password(USER_PASSWORD, "SSHA512")
    times = []
    for index in range(n):
        mail = f"raw-{tag}-{index}@{domain}"
        user = userlib.NewUser(mail=mail, password_hash=password_hash,
                               home_directory=maildir_path(mail, "/var/vmail/vmail1"), language="en_US")
        attributes = userlib._user_attributes(user, limits)
        modlist = [(name, [str(v).encode() for v in values]) for name, values in attributes.items() if values]
        started = time.perf_counter()
        conn.add_s(names.user(mail), modlist)
        times.append(time.perf_counter() - started)
    conn.unbind_s()
    return times


def api_creates(port, token, domain, tag, n):
    api = Api(port, token)
    times = []
    for index in range(n):
        started = time.perf_counter()
        api.call("POST", f"/api/user/api-{tag}-{index}@{domain}", {"password": USER_PASSWORD})
        times.append(time.perf_counter() - started)
    api.close()
    return times


def api_parallel(port, token, domain, tag, n, clients):
    """(creates per second, failed creates) with ``clients`` keep-alive clients sharing n creates
    (all in one domain: its counters are the point of contention, 409 CONCURRENT_UPDATE after 10 s)."""
    counter = iter(range(n))
    lock = threading.Lock()
    failures = []

    def client():
        api = Api(port, token)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            status, _, body = api.request("POST", f"/api/user/par-{tag}-{index}@{domain}", {"password": USER_PASSWORD})
            if status != 201:
                failures.append((status, body[:200]))
        api.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if any(status != 409 for status, _ in failures):
        raise RuntimeError(f"{len(failures)} creates failed, e.g. {failures[0]}")
    return (n - len(failures)) / elapsed, len(failures)


def main(argv=None):
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="iredapi-unique-"))
    slapd = Slapd(root).start()
    server = None
    try:
        settings_file = write_settings(root, slapd)
        settings = settings_from(settings_file)
        slapd.install(settings)
        if args.nosync:
            conn = slapd.external()
            conn.modify("olcDatabase={1}mdb,cn=config", {"olcDbNoSync": [(ldap3.MODIFY_REPLACE, ["TRUE"])]})
            conn.unbind()
        names = DirectoryNames(settings.ldap_basedn, settings.ldap_domainadmin_dn)
        client = LdapClient(settings)
        for domain in (SMALL, BIG):
            domain_directory.create_domain(client, names, domain, domain_directory.DomainChanges(), "dovecot")
        big_entry = domain_directory.get_domain(client, names, BIG)
        client.close()
        ldif = root / "users.ldif"
        bulk.write_users_ldif(ldif, names, BIG, big_entry, args.users, USER_PASSWORD)
        slapd.stop()
        slapd.slapadd(ldif)
        slapd.start()
        client = LdapClient(settings)
        limitlib.recount(client, names, BIG)
        entries = {domain: domain_directory.get_domain(client, names, domain) for domain in (SMALL, BIG)}
        client.close()
        server = Gunicorn(root, settings_file, workers=2, threads=8, label="unique").start()
        token = Api(server.port).login()
        overlay = Overlay(slapd, settings.ldap_basedn)
        results = {}
        for round_ in range(args.rounds):
            for on in (True, False) if round_ % 2 == 0 else (False, True):
                overlay.set(on)
                label = "on" if on else "off"
                for domain in (SMALL, BIG):
                    tag = f"{label}{round_}"
                    row = results.setdefault((label, domain), {"raw": [], "api": [], "api-par": [], "409": 0,
                                                               "raw-cpu": 0.0, "api-cpu": 0.0, "api-n": 0})
                    cpu = procstat.cpu_seconds(slapd.pid)
                    row["raw"].append(statistics.median(raw_adds(settings, names, domain, entries[domain], tag,
                                                                 args.n)))
                    row["raw-cpu"] += procstat.cpu_seconds(slapd.pid) - cpu
                    cpu = procstat.cpu_seconds(slapd.pid)
                    row["api"].append(statistics.median(api_creates(server.port, token, domain, tag, args.n)))
                    rate, conflicts = api_parallel(server.port, token, domain, tag, args.concurrent_n,
                                                   args.concurrency)
                    row["api-cpu"] += procstat.cpu_seconds(slapd.pid) - cpu
                    row["api-n"] += args.n + args.concurrent_n - conflicts
                    row["api-par"].append(rate)
                    row["409"] += conflicts
                print(f"round {round_ + 1}/{args.rounds} overlay {label} done", flush=True)
        overlay.set(True)
        print(f"\nuser create{' (olcDbNoSync)' if args.nosync else ''}, medians of {args.rounds} rounds; "
              f"{SMALL}: empty at start, {BIG}: "
              f"{args.users:,} users at start; {args.n} sequential creates per round and domain, "
              f"{args.concurrent_n} parallel from {args.concurrency} clients")
        print("raw: one python-ldap add; API: POST /api/user (one after the other, then in parallel); "
              "slapd CPU: its user+system CPU time per create (all phases of all rounds)")
        print(f"{'domain':<11}{'overlay':<8}{'raw add ms':>11}{'API create ms':>14}{'API creates/s':>14}"
              f"{'409s':>5}{'slapd CPU ms/raw add':>21}{'slapd CPU ms/API create':>24}")
        for domain in (SMALL, BIG):
            for label in ("off", "on"):
                row = results[(label, domain)]
                print(f"{domain:<11}{label:<8}{statistics.median(row['raw']) * 1000:>11.2f}"
                      f"{statistics.median(row['api']) * 1000:>14.2f}{statistics.median(row['api-par']):>14.1f}"
                      f"{row['409']:>5}{row['raw-cpu'] * 1000 / (args.n * args.rounds):>21.2f}"
                      f"{row['api-cpu'] * 1000 / row['api-n']:>24.2f}")
    finally:
        if server is not None:
            server.stop()
        slapd.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
