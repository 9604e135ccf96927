"""One real server: gunicorn with two gthread workers on the test slapd; one login session
is honoured by both workers (sessions live in the shared SQL store, not in a worker)."""

import collections
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from iredapi_ldap.localslapd import free_port
from tests.conftest import (
    GLOBAL_ADMIN,
    GLOBAL_ADMIN_PASSWORD,
    SUFFIX,
    VMAILADMIN_PASSWORD,
    count_entries,
    read_entry,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
COOKIE = "iRedAdmin-LDAP"


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def private_control_socket():
    """gunicorn 27 opens a control socket in ~/.gunicorn by default; keep ours out of there."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        return ["--no-control-socket"]
    return []


def wait_until_answering(port, proc, deadline):
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited during start-up"
        try:
            status, _, body = request(port, "GET", "/api/domains", timeout=2)
            if status == 401:  # up, and the app answers (no session yet)
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 20 s")


@contextlib.contextmanager
def gunicorn(ldap_server, tmp_path, bind, workers=2, threads=2, extra_settings="", env=None):
    """gunicorn -c gunicorn.conf.py on ``bind``; yields (process, access log path); asserts a clean exit.
    ``extra_settings``: more lines for the settings file; ``env``: more environment variables."""
    settings_file = tmp_path / "settings.py"
    settings_file.write_text(
        f'ldap_uri = "{ldap_server.ldap_uri}"\n'
        f'ldap_basedn = "o=domains,{SUFFIX}"\n'
        f'ldap_domainadmin_dn = "o=domainAdmins,{SUFFIX}"\n'
        f'ldap_bind_dn = "cn=vmailadmin,{SUFFIX}"\n'
        f'ldap_bind_password = "{VMAILADMIN_PASSWORD}"\n'
        "ENABLE_RESTFUL_API = True\n"
        'MLMMJADMIN_API_BASE_URL = ""\n'  # as conftest.base_settings: no mlmmjadmin unless a test starts one
        f'DATA_DIR = "{tmp_path / "data"}"\n'
        + extra_settings
    )
    access_log = tmp_path / "access.log"
    error_log = tmp_path / "error.log"
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("IREDAPI_", "GUNICORN_", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"))}
    environment.update(env or {})
    environment["IREDAPI_SETTINGS"] = str(settings_file)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", bind,
         "--workers", str(workers), "--threads", str(threads), "--access-logfile", str(access_log),
         "--access-logformat", "%(p)s %(s)s", "--error-logfile", str(error_log),
         *private_control_socket()],
        cwd=PROJECT_DIR, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield proc, access_log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, error_log.read_text()


def login(port):
    status, headers, body = request(port, "POST", "/api/login",
                                    body=urlencode({"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD}),
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    set_cookie = next(v for k, v in headers if k.lower() == "set-cookie")
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def test_two_workers_honour_one_session(ldap_server, tmp_path):
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}") as (proc, access_log):
        wait_until_answering(port, proc, time.monotonic() + 20)
        # the master has no socket (each worker has one of its own) and still names the address
        assert f"Listening at: http://127.0.0.1:{port} ({proc.pid})" in (tmp_path / "error.log").read_text()

        status, headers, body = request(port, "POST", "/api/login",
                                        body=urlencode({"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD}),
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body
        assert json.loads(body) == {"_success": True, "success": True}
        set_cookie = next(v for k, v in headers if k.lower() == "set-cookie")
        token = set_cookie.split(";", 1)[0].split("=", 1)[1]
        assert set_cookie.startswith(f"{COOKIE}=") and "HttpOnly" in set_cookie and "Secure" not in set_cookie

        def get_domains(_):
            return request(port, "GET", "/api/domains", headers={"Cookie": f"{COOKIE}={token}"})

        statuses = []
        pids = set()
        deadline = time.monotonic() + 20
        # ~40 requests on fresh connections, 8 at a time; a few more rounds only if the kernel
        # happened to hand every connection to one worker
        while time.monotonic() < deadline and len(statuses) < 200:
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(get_domains, range(40)))
            statuses += [status for status, _, _ in results]
            for status, _, body in results:
                assert status == 200, body
                assert json.loads(body)["success"] is True
            pids = worker_pids(access_log, proc.pid, expected=len(statuses) + 1, deadline=time.monotonic() + 5)
            if len(pids) >= 2:
                break
        assert statuses and all(status == 200 for status in statuses)
        assert len(pids) >= 2, f"only worker(s) {pids} answered {len(statuses)} requests"


def worker_pids(access_log, master_pid, expected, deadline):
    """Pids in the access log's lines for 200 answers (waits until ``expected`` lines are there)."""
    while True:
        lines = [line.split() for line in access_log.read_text().splitlines() if line.strip()]
        answered = [fields for fields in lines if len(fields) == 2 and fields[1] == "200"]
        if len(answered) >= expected or time.monotonic() > deadline:
            pids = {int(fields[0].strip("<>")) for fields in answered}  # %(p)s is "<pid>"
            assert master_pid not in pids
            return pids
        time.sleep(0.1)


def test_keep_alive_connections_opened_at_once_are_spread_over_the_workers(ldap_server, tmp_path):
    # Each worker listens on its own SO_REUSEPORT socket (gunicorn.conf.py): with one shared
    # socket, the worker that woke first took most of them and left a core idle.
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", threads=8) as (proc, access_log):
        wait_until_answering(port, proc, time.monotonic() + 20)
        token = login(port)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(16)]
        for conn in connections:
            conn.connect()
        try:
            for conn in connections:  # one request each, on the connection kept open
                conn.request("GET", "/api/domains", headers={"Cookie": f"{COOKIE}={token}"})
                response = conn.getresponse()
                assert response.status == 200, response.read()
                response.read()
        finally:
            for conn in connections:
                conn.close()
        worker_pids(access_log, proc.pid, expected=17, deadline=time.monotonic() + 5)
        pid_of_request = [line.split()[0] for line in access_log.read_text().splitlines() if line.strip()]
        split = collections.Counter(pid_of_request[-16:])  # the 16 GETs, one per connection
        assert len(split) == 2, f"every connection went to one worker: {split}"


def test_a_unix_socket_bind_serves(ldap_server, tmp_path):
    # SO_REUSEPORT is for TCP only; on a Unix socket the workers share the master's socket.
    path = tmp_path / "api.sock"
    with gunicorn(ldap_server, tmp_path, f"unix:{path}") as (proc, access_log):
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, "gunicorn exited during start-up"
            time.sleep(0.1)
        statuses = [unix_request(path, "GET", "/api/domains")[0] for _ in range(20)]
        assert statuses == [401] * 20


def unix_request(path, method, url):
    import socket

    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(str(path))

    conn = UnixConnection("localhost")
    try:
        conn.request(method, url, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_second_server_on_a_taken_port_refuses_to_start(ldap_server, tmp_path):
    # SO_REUSEPORT would otherwise let it share the port with the first, each answering half.
    port = free_port()
    first = tmp_path / "first"
    first.mkdir()
    with gunicorn(ldap_server, first, f"127.0.0.1:{port}") as (proc, access_log):
        wait_until_answering(port, proc, time.monotonic() + 20)
        second = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             *private_control_socket()],
            cwd=PROJECT_DIR, env={**os.environ, "IREDAPI_SETTINGS": str(first / "settings.py")},
            capture_output=True, text=True, timeout=30)
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert request(port, "GET", "/api/domains")[0] == 401  # the first one still answers alone


CREATE_ROUND_TRIPS = 4  # domain read, address check, counter compare-and-set, add
REFUSE_ROUND_TRIPS = 2  # domain read, address check; the limit check needs no round trip


@pytest.mark.parametrize("limit", ["numberOfUsers", "quota"])
def test_two_workers_racing_a_limit_end_exact(ldap_server, root_connection, tmp_path, new_domain, limit):
    # The threads of one worker take turns on a domain's counters; only two processes make the
    # compare-and-set fail for real.  3N creates against a limit of N, over fresh connections
    # (each worker has its own SO_REUSEPORT socket, so the kernel spreads them).
    n = 10
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", threads=4) as (proc, access_log):
        wait_until_answering(port, proc, time.monotonic() + 20)
        cookie = {"Cookie": f"{COOKIE}={login(port)}"}
        form = {"Content-Type": "application/x-www-form-urlencoded", **cookie}
        retried = 0
        for _ in range(5):  # more rounds only while no create has met the other worker's write
            domain = new_domain()
            settings = {"numberOfUsers": n} if limit == "numberOfUsers" else {"quota": n * 10}
            assert request(port, "POST", f"/api/domain/{domain}", urlencode(settings), form)[0] == 201
            logged = len(access_log.read_text().splitlines())

            def create(i, domain=domain):
                return request(port, "POST", f"/api/user/u{i}@{domain}",
                               urlencode({"password": "Secret-pw1!", "mailQuota": "10"}), form)

            with ThreadPoolExecutor(max_workers=12) as pool:
                results = list(pool.map(create, range(3 * n)))
            statuses = [status for status, _, _ in results]
            assert sorted(statuses) == [201] * n + [403] * (2 * n), [body for _, _, body in results]
            users = count_entries(root_connection, f"ou=Users,domainName={domain},o=domains,{SUFFIX}",
                                  "(objectClass=mailUser)")
            entry = read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}")
            assert users == n and entry["domainCurrentUserNumber"] == [str(n)]
            assert entry["domainCurrentQuotaSize"] == [str(n * 10 * 1024 * 1024)]
            # both workers created or refused: the race was between processes
            deadline = time.monotonic() + 5
            while len(access_log.read_text().splitlines()) < logged + 3 * n and time.monotonic() < deadline:
                time.sleep(0.1)  # gunicorn writes the access log line after the answer
            race = [line.split() for line in access_log.read_text().splitlines()[logged:] if line.strip()]
            assert len({pid for pid, _ in race}) == 2, race
            # a compare-and-set that failed costs a read and a write more
            for status, headers, _ in results:
                trips = int({k.lower(): v for k, v in headers}["x-directory-round-trips"])
                retried += trips > (CREATE_ROUND_TRIPS if status == 201 else REFUSE_ROUND_TRIPS)
            if retried:
                break
        print(f"{limit}: {retried} of {3 * n} creates retried after the other worker's write")
        assert retried, "no create ever met the other worker's write"
