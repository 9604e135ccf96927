"""python -m bench: measure every endpoint against the raw directory work it does.

See bench/README.md.  Everything runs on 127.0.0.1 in a fresh folder under /tmp that is
removed at the end (--keep keeps it): a private slapd configured as `iredapi-ldap dev`
configures it, the API under gunicorn with gunicorn.conf.py, wrk as the load generator, and
the raw baselines (bench/raw.py) with ldap3 and python-ldap.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from iredapi_ldap.directory import domains as domain_directory
from iredapi_ldap.directory import limits as limitlib
from iredapi_ldap.directory.base import Directory
from iredapi_ldap.settings import sql_url
from iredapi_ldap.store.engine import SqlStore
from iredapi_ldap.store.schema import create_tables
from iredapi_ldap.store.tables import iredadmin_metadata, iredapd_metadata

from . import bulk, endpoints, loadgen, procstat, report
from . import scenarios as sc
from .stack import ADMIN, ADMIN_PASSWORD, COOKIE, USER_PASSWORD, Api, Gunicorn, Slapd, settings_from, write_settings

BENCH_DIR = Path(__file__).resolve().parent
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 s per run, 5,000 users in the big domain, no raw runs for the scale phase")
    parser.add_argument("--users", type=int, default=None, help="users in the big domain (default 100000; quick 5000)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per measured run (default 10; quick 3)")
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2: one per core)")
    parser.add_argument("--threads", type=int, default=8,
                        help="gunicorn threads per worker (default 8: 2 x 8 = 16 = the highest concurrency)")
    parser.add_argument("--gunicorn-arg", action="append", default=[], metavar="ARG",
                        help="extra gunicorn command-line argument on top of gunicorn.conf.py, e.g. "
                             "--gunicorn-arg=--reuse-port (repeatable; for experiments)")
    parser.add_argument("--compare-with", default=None, metavar="TREE",
                        help="also run the API from another checkout (e.g. an export of HEAD), as a second "
                             "gunicorn on the same slapd; its runs alternate with this tree's, so drift of the "
                             "machine's speed hits both (python -m bench.compare FILE shows the pairs)")
    parser.add_argument("--compare-gunicorn-arg", action="append", default=None, metavar="ARG",
                        help="gunicorn arguments of the --compare-with server (default: the same as --gunicorn-arg)")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--skip-scale", action="store_true", help="no big domain, no scale phase, no listing")
    parser.add_argument("--out", default=None, help="results JSON (default bench/results/<timestamp>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder under /tmp")
    parser.add_argument("--profile", action="store_true",
                        help="record each API run's workers with py-spy (collapsed stacks next to the results JSON)")
    parser.add_argument("--serve", type=int, default=0, metavar="SECONDS",
                        help="set up (slapd, bulk load, API, fixtures), print the port and cookie, keep serving "
                             "this many seconds for manual probing or profiling, then tear down")
    args = parser.parse_args(argv)
    args.users = args.users or (5000 if args.quick else 100_000)
    args.duration = args.duration or (3 if args.quick else 10)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = Path(args.out or BENCH_DIR / "results" / f"{stamp}.json")
    return args


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def mariadb_available():
    try:
        import pymysql

        pymysql.connect(connect_timeout=3, **MARIADB).close()
        return True
    except Exception:
        return False


class Bench:
    def __init__(self, args):
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="iredapi-bench-", dir="/tmp"))
        self.slapd = Slapd(self.root)
        self.server = None  # the running Gunicorn
        self.api = None
        self.other = None  # the --compare-with Gunicorn, and its logged-in client
        self.other_api = None
        self.next_n = 0
        self.run_id = 0
        self.mysql_dbs = {}
        self.op_overhead = 0
        self.results = {
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(), "mem_gib": _mem_gib()},
            "config": {"workers": args.workers, "threads": args.threads, "gunicorn_args": args.gunicorn_arg,
                       "duration_s": args.duration,
                       "concurrency": args.concurrency, "users": args.users, "quick": args.quick},
            "runs": [], "scale": [], "bulk": {}, "listing": [], "endpoints": [], "notes": [],
        }

    # -- set-up -----------------------------------------------------------------------------

    def setup(self):
        log(f"data folder {self.root}")
        self.slapd.start()
        self.settings_file = write_settings(self.root, self.slapd)
        self.settings = settings_from(self.settings_file)
        self.slapd.install(self.settings)
        directory = Directory.from_settings(self.settings)
        domains = [sc.MAIN, sc.GROUPS] + ([] if self.args.skip_scale else [sc.SMALL, sc.BIG])
        for domain in domains:  # the directory layer POST /api/domain uses
            domain_directory.create_domain(directory, domain, {"transport": "dovecot"})
        big_entry = None if self.args.skip_scale else domain_directory.get_domain(directory, sc.BIG)
        directory.close()
        if big_entry is not None:
            self.bulk_load(big_entry)
        for prefix, metadata in (("iredadmin", iredadmin_metadata), ("iredapd", iredapd_metadata)):
            create_tables(SqlStore(sql_url(self.settings, prefix), 5), metadata)
        self.start_server("sqlite", self.settings_file)
        self.fixtures()
        self.op_overhead = self._monitor_overhead()
        values = {"admin": ADMIN, "password": ADMIN_PASSWORD, "user_password": USER_PASSWORD}
        self.results["endpoints"] = endpoints.measure(lambda: Api(self.server.port), values)
        if self.other is not None:
            self.results["endpoints_other"] = endpoints.measure(lambda: Api(self.other.port), values)

    def bulk_load(self, big_entry):
        count = self.args.users
        ldif = self.root / "users.ldif"
        log(f"bulk load: writing LDIF for {count:,} users")
        directory = Directory.from_settings(self.settings)
        generate_s = bulk.write_users_ldif(ldif, directory, sc.BIG, big_entry, count, USER_PASSWORD, quota_mb=100)
        self.slapd.stop()
        log("bulk load: slapadd -q (slapd stopped)")
        started = time.monotonic()
        self.slapd.slapadd(ldif)
        slapadd_s = time.monotonic() - started
        self.slapd.start()
        started = time.monotonic()
        counted = limitlib.recount(directory, sc.BIG)
        directory.close()
        recount_s = time.monotonic() - started
        self.results["bulk"] = {
            "path": "LDIF from users.new_user_attributes -> slapadd -q (slapd stopped, olcToolThreads 2) "
                    "-> slapd start -> limits.recount",
            "users": count, "ldif_bytes": ldif.stat().st_size, "generate_s": generate_s, "slapadd_s": slapadd_s,
            "recount_s": recount_s, "total_s": generate_s + slapadd_s + recount_s,
            "counted_users": counted[limitlib.USERS], "db_bytes": self.slapd.database_bytes(),
        }
        ldif.unlink()
        log(f"bulk load: {count:,} users, LDIF {generate_s:.1f}s, slapadd {slapadd_s:.1f}s, recount {recount_s:.1f}s")

    def start_server(self, label, settings_file):
        for server in (self.server, self.other):
            if server is not None:
                server.stop()
        self.server = Gunicorn(self.root, settings_file, self.args.workers, self.args.threads, label,
                               self.args.gunicorn_arg).start()
        self.api = Api(self.server.port)
        self.api.login()
        if self.args.compare_with:
            extra = self.args.gunicorn_arg if self.args.compare_gunicorn_arg is None else self.args.compare_gunicorn_arg
            self.other = Gunicorn(self.root, settings_file, self.args.workers, self.args.threads, f"{label}-other",
                                  extra, project_dir=Path(self.args.compare_with).resolve()).start()
            self.other_api = Api(self.other.port)
            self.other_api.login()
        self.sql_label = label
        log(f"gunicorn ({label}) on port {self.server.port}, workers {self.server.worker_pids()}")

    def fixtures(self):
        """100 users in MAIN, GROUPS and SMALL; aliases and lists in GROUPS; through the API."""
        log("fixtures through the API")
        started = time.monotonic()
        domains = [sc.MAIN, sc.GROUPS] + ([] if self.args.skip_scale else [sc.SMALL])
        jobs = [("POST", f"/api/user/u{i}@{d}", {"password": USER_PASSWORD, "quota": "100", "cn": "Bench"})
                for d in domains for i in range(sc.USERS)]
        jobs += [("POST", f"/api/alias/a{i}@{sc.GROUPS}", {}) for i in range(sc.ALIASES)]
        jobs += [("POST", f"/api/maillist/l{i}@{sc.GROUPS}", {}) for i in range(sc.LISTS)]
        token = self.api.token
        port = self.server.port

        def run(chunk):
            api = Api(port, token)
            for method, path, form in chunk:
                api.call(method, path, form)
            api.close()

        chunks = [jobs[i::8] for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run, chunks))
        log(f"fixtures: {len(jobs)} requests in {time.monotonic() - started:.1f}s")

    def _monitor_overhead(self):
        a = self._ops_total()
        b = self._ops_total()
        return max(b - a, 0) if a is not None else 0

    def _ops_total(self):
        ops = self.slapd.operations()
        if not ops:
            return None
        return sum(v for k, v in ops.items() if k in ("bind", "search", "add", "modify", "delete", "compare",
                                                      "modrdn"))

    def mariadb_settings(self):
        import pymysql

        base = f"iredapi_bench_{os.getpid()}"
        conn = pymysql.connect(**MARIADB)
        with conn.cursor() as cursor:
            for role in ("admin", "apd"):
                name = f"{base}_{role}"
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                self.mysql_dbs[role] = name
        conn.close()

        def url(role):
            return f"mysql+pymysql://root@127.0.0.1:3306/{self.mysql_dbs[role]}"

        create_tables(SqlStore(url("admin"), 5), iredadmin_metadata)
        create_tables(SqlStore(url("apd"), 5), iredapd_metadata)
        # Throttle rows the GET finds: the same users the SQLite run used.
        return write_settings(self.root, self.slapd, name="settings-mariadb.py", sql_url=url)

    def teardown(self):
        for server in (self.server, self.other):
            if server is not None:
                server.stop()
        self.slapd.stop()
        if self.mysql_dbs:
            try:
                import pymysql

                conn = pymysql.connect(**MARIADB)
                with conn.cursor() as cursor:
                    for name in self.mysql_dbs.values():
                        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                conn.close()
            except Exception as exc:
                log(f"could not drop the MariaDB databases: {exc}")
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"kept {self.root}")

    # -- runs ---------------------------------------------------------------------------------

    def _take_n(self):
        self.run_id += 1
        return self.next_n, self.run_id

    def run_api(self, scenario, concurrency, duration, warmup=1, other=False):
        server, api = (self.other, self.other_api) if other else (self.server, self.api)
        if warmup:
            n_base, run_id = self._take_n()
            result = loadgen.run_wrk(server.port, scenario, connections=concurrency, duration=warmup,
                                     n_base=n_base, prefix=f"w{run_id}", cookie=f"{COOKIE}={api.token}",
                                     workdir=self.root, tag=f"{run_id}")
            self.next_n = result["last_n"] + 1
        n_base, run_id = self._take_n()
        workers = server.worker_pids()
        sampler = procstat.RssSampler(lambda: workers, 0.1)
        cpu = procstat.CpuWindow({"workers": workers, "slapd": self.slapd.pid})
        ops_before = self._ops_total()
        profilers = self._start_profilers(scenario, concurrency, workers, duration) if self.args.profile else []
        split = {}
        probe = threading.Timer(min(1.0, duration / 2), lambda: split.update(
            procstat.connections_per_process(workers, server.port)))
        sampler.start()
        cpu.start()
        probe.start()
        result = loadgen.run_wrk(server.port, scenario, connections=concurrency, duration=duration,
                                 n_base=n_base, prefix=f"w{run_id}", cookie=f"{COOKIE}={api.token}",
                                 workdir=self.root, tag=f"{run_id}")
        window = cpu.stop()
        sampler.stop()
        probe.join()
        for profiler in profilers:
            profiler.wait(60)
        ops_after = self._ops_total()
        self.next_n = result["last_n"] + 1
        seconds = result["duration_us"] / 1e6
        requests = result["requests"]
        errors = sum(result["errors"].values())
        ok_statuses = {s: v for s, v in result["status"].items() if s.startswith("2")}
        out = {
            "rps": (requests - result["errors"]["status"]) / seconds if seconds else 0,
            "requests": requests,
            "p50_ms": result["latency_us"]["p50"] / 1000, "p95_ms": result["latency_us"]["p95"] / 1000,
            "p99_ms": result["latency_us"]["p99"] / 1000, "mean_ms": result["latency_us"]["mean"] / 1000,
            "errors": errors, "status": result["status"], "ok": sum(ok_statuses.values()), "rt": result["rt"],
            "worker_peak_rss_mib": sampler.peak_mib,
            "worker_hwm_mib": max((procstat.memory_kib(p).get("VmHWM", 0) for p in workers), default=0) / 1024,
            "cpu_core_pct": {**window["cpu_core_pct"],
                             "wrk": 100.0 * result["generator_cpu_s"] / result["generator_wall_s"]},
            "machine_busy_pct": window["machine_busy_pct"],
            "connections_per_worker": [split.get(pid, 0) for pid in workers],
            "generator_share_of_machine_pct": 100.0 * result["generator_cpu_s"]
            / (result["generator_wall_s"] * os.cpu_count()),
        }
        if ops_before is not None and requests:
            out["slapd_ops_per_request"] = (ops_after - ops_before - self.op_overhead) / requests
        return out

    def _start_profilers(self, scenario, concurrency, workers, duration):
        """py-spy on each worker for the run: collapsed stacks of the thread holding the GIL
        (--gil), i.e. where the worker's Python CPU goes.  py-spy pauses the worker for each
        sample, so profiled runs are slower than plain ones."""
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            log("--profile: py-spy not found (pip install py-spy)")
            return []
        folder = self.args.out.with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        return [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "250",
                                  "--format", "raw", "--gil", "-o",
                                  str(folder / f"{scenario.name}-c{concurrency}-{pid}.txt")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in workers]

    def run_raw(self, scenario, concurrency, lib, duration):
        processes = max(1, min(self.args.workers, concurrency))
        threads = max(1, concurrency // processes)
        n_base, run_id = self._take_n()
        token_hash = self._session_hash()
        spec_base = {
            "op": scenario.op, "lib": lib, "threads": threads, "duration": duration,
            "ldap_uri": self.slapd.uri, "bind_dn": self.settings.ldap_bind_dn,
            "bind_password": self.settings.ldap_bind_password, "basedn": self.settings.ldap_basedn,
            "admin_basedn": self.settings.ldap_domainadmin_dn, "admin": ADMIN, "admin_password": ADMIN_PASSWORD,
            "user_password": USER_PASSWORD, "domain": scenario.domain, "count": scenario.count,
            "users": sc.USERS, "aliases": sc.ALIASES, "lists": sc.LISTS, "external": sc.EXTERNAL,
            "prefix": f"r{run_id}", "n_base": n_base, "stride": processes * threads,
            "max_requests": 2_000_000, "sql": scenario.sql, "id_hash": token_hash,
            "sqlite_admin": str(self.root / "iredadmin.sqlite"), "sqlite_apd": str(self.root / "iredapd.sqlite"),
            "mysql_admin_db": self.mysql_dbs.get("admin"), "mysql_apd_db": self.mysql_dbs.get("apd"),
        }
        start_at = time.time() + 1.5 + 0.05 * threads
        procs = []
        for index in range(processes):
            spec = dict(spec_base, start_at=start_at, slot_base=index * threads)
            path = self.root / f"raw-{run_id}-{index}.json"
            path.write_text(json.dumps(spec))
            procs.append(subprocess.Popen([sys.executable, "-m", "bench.raw", str(path)], cwd=BENCH_DIR.parent,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        cpu = procstat.CpuWindow({"slapd": self.slapd.pid})
        time.sleep(max(0.0, start_at - time.time()))
        cpu.start()
        merged = {"requests": 0, "errors": 0, "rt": {}, "latencies_ms": [], "last_n": 0, "error_samples": [],
                  "sql_statements": 0}
        client_cpu = 0.0
        for proc in procs:
            stdout = proc.stdout.read()
            stderr = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            client_cpu += usage.ru_utime + usage.ru_stime
            if proc.returncode != 0:
                raise RuntimeError(f"raw baseline failed: {stderr.decode(errors='replace')[-2000:]}")
            part = json.loads(stdout)
            for key in ("requests", "errors", "sql_statements"):
                merged[key] += part[key]
            merged["latencies_ms"] += part["latencies_ms"]
            merged["last_n"] = max(merged["last_n"], part["last_n"])
            merged["error_samples"] += part["error_samples"]
            for k, v in part["rt"].items():
                merged["rt"][k] = merged["rt"].get(k, 0) + v
        window = cpu.stop()
        self.next_n = merged["last_n"] + 1
        lat = sorted(merged.pop("latencies_ms"))
        return {
            "rps": merged["requests"] / duration, "requests": merged["requests"], "errors": merged["errors"],
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95), "p99_ms": _pct(lat, 99),
            "mean_ms": sum(lat) / len(lat) if lat else 0.0, "rt": merged["rt"],
            "sql_per_request": merged["sql_statements"] / merged["requests"] if merged["requests"] else 0,
            "processes": processes, "threads": threads, "error_samples": merged["error_samples"][:3],
            "cpu_core_pct": {"client": 100.0 * client_cpu / duration, **window["cpu_core_pct"]},
            "machine_busy_pct": window["machine_busy_pct"],
        }

    def _session_hash(self):
        import hashlib

        return hashlib.sha256(self.api.token.encode()).hexdigest()

    def measure(self, scenario, concurrency, libs=("ldap3", "python-ldap"), duration=None):
        duration = duration or self.args.duration
        log(f"{scenario.name} c={concurrency}: API")
        row = {"scenario": scenario.name, "title": scenario.title, "concurrency": concurrency,
               "expected_rt": scenario.expected_rt, "rt_work": scenario.rt_work, "sql": scenario.sql, "raw": {}}
        if self.other is not None:  # alternate which server goes first
            order = (False, True) if self.run_id % 2 else (True, False)
            for other in order:
                row["api_other" if other else "api"] = self.run_api(scenario, concurrency, duration, other=other)
        else:
            row["api"] = self.run_api(scenario, concurrency, duration)
        for lib in libs:
            log(f"{scenario.name} c={concurrency}: raw {lib}")
            row["raw"][lib] = self.run_raw(scenario, concurrency, lib, duration)
        api = row["api"]
        log(f"  API {api['rps']:.0f}/s p50 {api['p50_ms']:.2f}ms rt {api['rt']}; "
            + "; ".join(f"{lib} {r['rps']:.0f}/s rt {r['rt']}" for lib, r in row["raw"].items()))
        return row

    # -- phases -------------------------------------------------------------------------------

    def main_phase(self, sql):
        for scenario in sc.main_scenarios():
            if scenario.sql != sql or (self.args.only and scenario.name not in self.args.only):
                continue
            for concurrency in self.args.concurrency:
                self.results["runs"].append(self.measure(scenario, concurrency))
                self.save()

    def scale_phase(self):
        """create / GET / PUT at 100 users against the big domain, run alternately (small, big,
        small, big, …: drifts of the machine's speed hit both) and the median of the rounds taken."""
        libs = () if self.args.quick else ("ldap3",)
        rounds = 1 if self.args.quick else 3
        for operation, small, big in sc.scale_scenarios(self.args.users):
            if self.args.only and "scale" not in self.args.only and operation not in self.args.only:
                continue
            for concurrency in self.args.concurrency:
                runs = {small.name: [], big.name: []}
                for _ in range(rounds):
                    for scenario in (small, big):
                        runs[scenario.name].append(
                            self.measure(scenario, concurrency, libs=libs if concurrency == 1 else ()))
                for scenario, users in ((small, sc.USERS), (big, self.args.users)):
                    row = _average(runs[scenario.name])
                    row.update(operation=operation, domain_users=users)
                    self.results["scale"].append(row)
                self.save()

    def listing_phase(self):
        for query in ("email_only=yes", ""):
            path = f"/api/users/{sc.BIG}" + (f"?{query}" if query else "")
            log(f"listing GET {path}")
            self.results["listing"].append(self.listing(path))
            self.save()

    def listing(self, path):
        import http.client

        time.sleep(2)  # requests of the last load run may still be finishing
        workers = self.server.worker_pids()
        before = {p: procstat.memory_kib(p).get("VmRSS", 0) / 1024 for p in workers}
        sampler = procstat.RssSampler(lambda: workers, 0.02)
        ops_before = self.slapd.operations()
        sampler.start()
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=600)
        conn.request("GET", path, headers={"Cookie": f"{COOKIE}={self.api.token}"})
        response = conn.getresponse()
        first = response.read(1)
        ttfb = time.monotonic() - started
        body = first + response.read()
        elapsed = time.monotonic() - started
        sampler.stop()
        ops_after = self.slapd.operations()
        conn.close()
        data = json.loads(body)
        searches = ops_after.get("search", 0) - ops_before.get("search", 0) - 1 if ops_after else None
        return {
            "path": path, "status": response.status, "items": len(data.get("data", [])), "bytes": len(body),
            "seconds": elapsed, "ttfb_s": ttfb, "chunked": response.getheader("Transfer-Encoding") == "chunked"
            or response.getheader("Content-Length") is None,
            "rt_header": response.getheader("X-Directory-Round-Trips"),
            "slapd_searches": searches,
            "expected_pages": math.ceil(len(data.get("data", [])) / 500),
            "worker_rss_before_mib": max(before.values(), default=0),
            "worker_peak_rss_mib": sampler.peak_mib,
        }

    def mariadb_phase(self):
        wanted = [s for s in sc.main_scenarios() if s.sql == "mariadb"
                  and (not self.args.only or s.name in self.args.only)]
        if not wanted:
            return
        if not mariadb_available():
            self.results["notes"].append("MariaDB did not answer on 127.0.0.1:3306: MariaDB throttle runs skipped")
            log("MariaDB not available: skipping")
            return
        self.start_server("mariadb", self.mariadb_settings())
        self.main_phase("mariadb")

    def save(self):
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.results, indent=1, sort_keys=False))


def _median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _average(rows):
    """One row from several runs of a scenario: the median of each rate and latency, counts summed."""
    out = dict(rows[0], rounds=rows)
    for side in ("api",):
        merged = dict(rows[0][side])
        for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms"):
            merged[key] = _median(r[side][key] for r in rows)
        merged["errors"] = sum(r[side]["errors"] for r in rows)
        merged["worker_peak_rss_mib"] = max(r[side]["worker_peak_rss_mib"] for r in rows)
        merged["splits"] = [r[side].get("connections_per_worker", []) for r in rows]
        merged["rt"] = {}
        for r in rows:
            for k, v in r[side]["rt"].items():
                merged["rt"][k] = merged["rt"].get(k, 0) + v
        out[side] = merged
    out["raw"] = {}
    for lib in rows[0]["raw"]:
        merged = dict(rows[0]["raw"][lib])
        for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms"):
            merged[key] = _median(r["raw"][lib][key] for r in rows)
        out["raw"][lib] = merged
    return out


def _pct(values, pct):
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, math.ceil(pct / 100 * len(values)) - 1))
    return values[index]


def _mem_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if loadgen.wrk_path() is None:
        print("bench: wrk not found; install Debian's wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.setup()
        if args.serve:
            print(f"API on http://127.0.0.1:{bench.server.port}/api/  Cookie: {COOKIE}={bench.api.token}  "
                  f"workers {bench.server.worker_pids()}  slapd {bench.slapd.uri}  data {bench.root}", flush=True)
            time.sleep(args.serve)
            return 0
        bench.main_phase("sqlite")
        if not args.skip_scale:
            bench.scale_phase()
            bench.listing_phase()
        bench.mariadb_phase()
    except KeyboardInterrupt:
        bench.results["notes"].append("interrupted")
        log("interrupted")
    except Exception:
        bench.results["notes"].append("failed: " + traceback.format_exc()[-2000:])
        log(traceback.format_exc())
    finally:
        bench.teardown()
    bench.results["elapsed_s"] = time.monotonic() - started
    bench.save()
    print(report.markdown(bench.results))
    log(f"results: {args.out}")
    return 1 if any(n.startswith("failed") for n in bench.results["notes"]) else 0


if __name__ == "__main__":
    sys.exit(main())
