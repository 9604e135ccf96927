"""Latency of a greylisting POST (the setting, and a whitelist addition) on each iRedAPD backend.

    .venv/bin/python -m bench.greylisting_post [--requests 200] [--backends sqlite,mariadb,postgresql]

As ``bench.wblist_post``: a private slapd, the API under real gunicorn (1 worker, 4 threads),
iRedAPD's tables (``iredapd_db_url``) in a throwaway SQLite file, MariaDB or PostgreSQL database; one
client sends the requests one after another over a keep-alive connection.  Each status POST flips
the user's setting (enable/disable: an UPDATE), each whitelist POST adds a new sender (an INSERT);
the GET of the setting (same LDAP reads, one SELECT) is the baseline.  Prints the median and 95th
percentile per backend.  Not a test; everything is removed afterwards.
"""

from iredapi_ldap.store.tables import iredapd_metadata

from .wblist_post import api_on, percentiles, run, timed


def run_backend(backend, data, slapd, requests):
    with api_on(backend, data, slapd, iredapd_metadata, "iredapd_db_url") as api:
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
        return {"greylisting POST status": percentiles(statuses),
                "greylisting POST addSenders": percentiles(additions),
                "greylisting GET (baseline)": percentiles(gets)}


def main(argv=None):
    run(run_backend, __doc__, "iredapi-bench-greylisting-", argv)


if __name__ == "__main__":
    main()
