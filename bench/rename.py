"""The time of a rename (POST /api/user/<mail>/change_email/<new_mail>) of a user who is a
member of many lists and aliases, through the API as deployed (gunicorn), on a private slapd.

    .venv/bin/python -m bench.rename                     # 25 lists + 25 aliases, 20 renames
    .venv/bin/python -m bench.rename --lists 50 --aliases 50 --renames 40

Not a test.  Each rename moves the user back and forth between two addresses, so every one
rewrites the same number of references; the answer's X-Directory-Round-Trips says how many
directory operations it took.
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .stack import USER_PASSWORD, Api, Gunicorn, Slapd, settings_from, write_settings

DOMAIN = "rename.bench"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lists", type=int, default=25)
    parser.add_argument("--aliases", type=int, default=25)
    parser.add_argument("--renames", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="iredapi-bench-rename-", dir="/tmp"))
    slapd = server = None
    try:
        slapd = Slapd(root).start()
        settings_file = write_settings(root, slapd)
        slapd.install(settings_from(settings_file))
        server = Gunicorn(root, settings_file, args.workers, args.threads, "rename").start()
        api = Api(server.port)
        api.login()
        api.call("POST", f"/api/domain/{DOMAIN}")
        names = [f"a@{DOMAIN}", f"b@{DOMAIN}"]
        api.call("POST", f"/api/user/{names[0]}", {"password": USER_PASSWORD})
        for i in range(args.lists):
            api.call("POST", f"/api/maillist/list{i}@{DOMAIN}", {"members": f"{names[0]},x{i}@elsewhere.bench"})
        for i in range(args.aliases):
            api.call("POST", f"/api/alias/alias{i}@{DOMAIN}", {"members": f"{names[0]},y{i}@elsewhere.bench"})
        seconds, trips = [], set()
        for n in range(args.renames):
            old, new = names[n % 2], names[(n + 1) % 2]
            started = time.perf_counter()
            status, headers, body = api.request("POST", f"/api/user/{old}/change_email/{new}")
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"rename {old} -> {new}: {status} {body[:300]!r}")
            trips.update(int(v) for k, v in headers.items() if k.lower() == "x-directory-round-trips")
        profile = api.call("GET", f"/api/user/{names[args.renames % 2]}")["_data"]
        assert len(profile["mailing_lists"]) == args.lists and len(profile["mailing_aliases"]) == args.aliases
        ms = sorted(s * 1000 for s in seconds)
        print(f"rename of a user in {args.lists} lists and {args.aliases} aliases, {args.renames} renames, "
              f"gunicorn {args.workers}x{args.threads}:")
        print(f"  median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms; "
              f"directory round trips per rename: {sorted(trips)}")
    finally:
        if server is not None:
            server.stop()
        if slapd is not None:
            slapd.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
