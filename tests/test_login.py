"""POST /api/login and /api/logout: the cookie, parameters, session life, sharing across
workers, failed-login throttling, and what is (not) stored and logged."""

import collections
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import falcon.testing
import pytest
import sqlalchemy as sa

from iredapi_ldap.store import tables
from tests.conftest import GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD, ApiClient, failed

COOKIE = "iRedAdmin-LDAP"
CREDENTIALS = {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD}


def rows(app, table):
    with app.services.admin_store.transaction() as conn:
        return conn.execute(sa.select(table)).mappings().all()


def raw_login(app, form=CREDENTIALS, **kwargs):
    """A login through Falcon's TestClient itself (for protocol= and exact headers)."""
    kwargs.setdefault("remote_addr", "127.0.0.1")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
    return falcon.testing.TestClient(app).simulate_post("/api/login", body=urlencode(form), headers=headers,
                                                        **kwargs)


def login_from(app, address, username=GLOBAL_ADMIN, password=GLOBAL_ADMIN_PASSWORD):
    return ApiClient(app, remote_addr=address).post("/api/login", {"username": username, "password": password})


# -- the cookie ---------------------------------------------------------------------------------

def test_login_sets_an_httponly_strict_cookie_not_secure_over_http(make_app):
    result = raw_login(make_app())
    assert result.status_code == 200 and result.json == {"_success": True, "success": True}
    cookie = result.cookies[COOKIE]
    assert len(cookie.value) >= 40  # 32 random bytes, URL-safe
    assert cookie.http_only is True
    assert cookie.same_site == "Strict"
    assert cookie.path == "/"
    assert not cookie.secure  # a Secure cookie would never come back over plain http
    assert cookie.domain is None  # host-only


def test_cookie_is_secure_over_https(make_app):
    result = raw_login(make_app(), protocol="https")
    assert result.status_code == 200
    cookie = result.cookies[COOKIE]
    assert cookie.secure is True and cookie.http_only is True and cookie.same_site == "Strict"


@pytest.mark.parametrize("peer,proto,secure", [
    ("10.0.0.1", "https", True),      # TLS ended at a trusted proxy
    ("10.0.0.1", "HTTPS", True),
    ("10.0.0.1", "http", False),
    ("10.0.0.1", None, False),
    ("203.0.113.5", "https", False),  # anyone can send the header; only a trusted proxy is believed
])
def test_cookie_is_secure_behind_a_trusted_tls_proxy(make_app, peer, proto, secure):
    app = make_app(TRUSTED_PROXIES=["10.0.0.0/24"])
    headers = {} if proto is None else {"X-Forwarded-Proto": proto}
    result = raw_login(app, remote_addr=peer, headers=headers)
    assert result.status_code == 200
    assert bool(result.cookies[COOKIE].secure) is secure


def test_cookie_name_follows_the_setting(make_app):
    app = make_app(SESSION_COOKIE_NAME="iRedAdmin-Custom")
    result = raw_login(app)
    assert list(result.cookies) == ["iRedAdmin-Custom"]
    client = ApiClient(app)
    client.cookies["iRedAdmin-Custom"] = result.cookies["iRedAdmin-Custom"].value
    assert client.get("/api/domains").status_code == 200


# -- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("form,code,param", [
    ({"password": GLOBAL_ADMIN_PASSWORD}, "INVALID_PARAMETER", "username"),
    ({"username": GLOBAL_ADMIN}, "INVALID_PARAMETER", "password"),
    ({}, "INVALID_PARAMETER", "username"),
    ({"username": GLOBAL_ADMIN, "password": ""}, "INVALID_PARAMETER", "password"),
    ({"username": GLOBAL_ADMIN, "password": "x" * 1025}, "INVALID_PARAMETER", "password"),
    ({"username": "root", "password": GLOBAL_ADMIN_PASSWORD}, "INVALID_MAIL", "username"),
    ({"username": "", "password": GLOBAL_ADMIN_PASSWORD}, "INVALID_MAIL", "username"),
])
def test_bad_login_parameters_are_400_naming_it(anonymous, form, code, param):
    result = anonymous.post("/api/login", form)
    assert result.status_code == 400, result.text
    assert result.json["success"] is False and result.json["msg"] == code and result.json["param"] == param
    assert "Set-Cookie" not in result.headers
    assert rows(anonymous.app, tables.api_sessions) == []
    assert rows(anonymous.app, tables.login_failures) == []  # refused input is not a failed login


def test_login_with_a_json_body_and_mixed_case_username(anonymous):
    result = anonymous.post("/api/login", json={"username": "Root@EXAMPLE.com", "password": GLOBAL_ADMIN_PASSWORD})
    assert result.status_code == 200, result.text
    assert rows(anonymous.app, tables.api_sessions)[0]["username"] == GLOBAL_ADMIN
    assert anonymous.get("/api/domains").status_code == 200


# -- logout and session life -----------------------------------------------------------------------

def test_logout_ends_the_session(make_app):
    app = make_app()
    client = ApiClient(app).login()
    token = client.cookies[COOKIE]
    result = client.post("/api/logout")
    assert result.status_code == 200 and result.json == {"_success": True, "success": True}
    unset = result.cookies[COOKIE]
    assert unset.value == "" and unset.path == "/"
    assert rows(app, tables.api_sessions) == []
    client.cookies[COOKIE] = token  # a client that kept the old cookie
    assert client.get("/api/domains").status_code == 401
    second = client.post("/api/logout")
    assert second.status_code == 401 and second.json["msg"] == "LOGIN_REQUIRED"


def test_logout_ends_only_its_own_session(make_app):
    app = make_app()
    first, second = ApiClient(app).login(), ApiClient(app).login()
    assert first.cookies[COOKIE] != second.cookies[COOKIE]
    assert first.post("/api/logout").status_code == 200
    assert second.get("/api/domains").status_code == 200
    assert len(rows(app, tables.api_sessions)) == 1


def test_logout_with_a_parameter_is_refused_and_keeps_the_session(make_app):
    app = make_app(STRICT_PARAMETERS=True)
    client = ApiClient(app).login()
    result = client.post("/api/logout", {"everywhere": "yes"})
    assert result.status_code == 400 and result.json["msg"] == "UNKNOWN_PARAMETER"
    assert result.json["param"] == "everywhere"
    assert len(rows(app, tables.api_sessions)) == 1
    assert client.get("/api/domains").status_code == 200


def _shift(app, table, column, seconds):
    with app.services.admin_store.transaction() as conn:
        conn.execute(sa.update(table).values({column: table.c[column] - seconds}))


def test_an_idle_session_expires_after_session_timeout(make_app):
    app = make_app(SESSION_TIMEOUT=100)
    client = ApiClient(app).login()
    _shift(app, tables.api_sessions, "last_seen", 99)  # idle 99 s: still alive ...
    assert client.get("/api/domains").status_code == 200
    # ... and that request counted as activity
    assert rows(app, tables.api_sessions)[0]["last_seen"] >= int(time.time()) - 2
    _shift(app, tables.api_sessions, "last_seen", 101)  # idle 101 s: gone
    result = client.get("/api/domains")
    assert result.status_code == 401 and result.json["msg"] == "LOGIN_REQUIRED"
    assert rows(app, tables.api_sessions) == []  # the expired row is removed, not kept


def test_expiry_with_a_fake_clock(make_app):
    app = make_app(SESSION_TIMEOUT=600)
    sessions = app.services.sessions
    now = [time.time()]
    sessions._clock = lambda: now[0]  # the store takes its clock at construction; swap it here
    client = ApiClient(app).login()
    for _ in range(5):  # activity every 500 s keeps it alive for 2500 s
        now[0] += 500
        assert client.get("/api/domains").status_code == 200
    now[0] += 601
    assert client.get("/api/domains").status_code == 401


def test_logins_sweep_expired_sessions(make_app):
    app = make_app(SESSION_TIMEOUT=100)
    ApiClient(app).login()
    _shift(app, tables.api_sessions, "last_seen", 500)
    ApiClient(app).login()
    assert len(rows(app, tables.api_sessions)) == 1


def test_sessions_are_shared_by_apps_on_the_same_store(make_app):
    """Two create_app() on one DATA_DIR are two workers (or hosts) sharing the SQL store."""
    worker_a, worker_b = make_app(), make_app()
    assert worker_a.services is not worker_b.services
    client = ApiClient(worker_a).login()
    on_b = ApiClient(worker_b)
    on_b.cookies.update(client.cookies)
    assert on_b.get("/api/domains").status_code == 200
    assert on_b.post("/api/logout").status_code == 200
    assert client.get("/api/domains").status_code == 401  # logged out everywhere


def test_a_different_store_does_not_know_the_session(make_app, tmp_path):
    client = ApiClient(make_app()).login()
    elsewhere = ApiClient(make_app(DATA_DIR=str(tmp_path / "other")))
    elsewhere.cookies.update(client.cookies)
    assert elsewhere.get("/api/domains").status_code == 401


# -- failed-login throttling ------------------------------------------------------------------------

def test_throttle_counts_per_username_across_addresses(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3)
    for i in range(3):
        assert login_from(app, f"192.0.2.{i + 1}", password="Wrong-1").status_code == 401
    result = login_from(app, "192.0.2.99")  # the right password, from a fresh address
    assert result.status_code == 429
    assert result.json == failed("TOO_MANY_LOGIN_FAILURES", detail="too many failed logins; wait and try again")
    assert "Set-Cookie" not in result.headers and rows(app, tables.api_sessions) == []
    assert result.headers["X-Directory-Round-Trips"] == "0"  # refused before the directory
    # the username is what is blocked (also spelled differently), not the address
    assert login_from(app, "192.0.2.99", username="ROOT@example.com").status_code == 429
    assert login_from(app, "192.0.2.99", username="nobody@example.com", password="x").status_code == 401


def test_throttle_counts_per_address_across_usernames(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3)
    for name in ("a", "b", "c"):
        assert login_from(app, "198.51.100.7", username=f"{name}@example.com", password="x").status_code == 401
    assert login_from(app, "198.51.100.7").status_code == 429  # right credentials, blocked address
    assert login_from(app, "198.51.100.8").status_code == 200  # another address is fine


def test_a_success_clears_the_usernames_count(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3)
    assert login_from(app, "192.0.2.1", password="Wrong-1").status_code == 401
    assert login_from(app, "192.0.2.2", password="Wrong-1").status_code == 401
    assert login_from(app, "192.0.2.3").status_code == 200
    assert not any(r["key"].startswith("user:") for r in rows(app, tables.login_failures))
    # two more failures: 2, not 4, so the right password still works
    assert login_from(app, "192.0.2.4", password="Wrong-1").status_code == 401
    assert login_from(app, "192.0.2.5", password="Wrong-1").status_code == 401
    assert login_from(app, "192.0.2.6").status_code == 200


def test_throttle_ends_after_the_window(make_app):
    app = make_app(LOGIN_MAX_FAILURES=2, LOGIN_FAILURE_WINDOW=600)
    for _ in range(2):
        login_from(app, "192.0.2.1", password="Wrong-1")
    assert login_from(app, "192.0.2.1").status_code == 429
    _shift(app, tables.login_failures, "window_start", 601)
    assert login_from(app, "192.0.2.1").status_code == 200


def test_throttle_counts_the_client_behind_a_trusted_proxy(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3, TRUSTED_PROXIES=["10.0.0.1"])

    def via_proxy(client_ip, **form):
        return ApiClient(app, remote_addr="10.0.0.1").post(
            "/api/login", {"username": GLOBAL_ADMIN, "password": GLOBAL_ADMIN_PASSWORD, **form},
            headers={"X-Forwarded-For": client_ip})

    for name in ("a", "b", "c"):
        assert via_proxy("192.0.2.50", username=f"{name}@example.com", password="x").status_code == 401
    assert via_proxy("192.0.2.50").status_code == 429
    assert via_proxy("192.0.2.51").status_code == 200  # the proxy's other clients are not blocked
    keys = {r["key"] for r in rows(app, tables.login_failures)}
    assert "ip:192.0.2.50" in keys and "ip:10.0.0.1" not in keys


def test_zero_max_failures_means_no_throttle(make_app):
    app = make_app(LOGIN_MAX_FAILURES=0)
    for _ in range(12):
        assert login_from(app, "192.0.2.1", password="Wrong-1").status_code == 401
    assert login_from(app, "192.0.2.1").status_code == 200
    assert rows(app, tables.login_failures) == []  # and keeps no counters nobody reads


def test_a_success_leaves_other_usernames_counts_alone(make_app):
    # The success clears only its own username's count (and writes nothing when it has none).
    app = make_app(LOGIN_MAX_FAILURES=3)
    assert login_from(app, "192.0.2.1", username="other@example.com", password="x").status_code == 401
    assert login_from(app, "192.0.2.2").status_code == 200
    assert {r["key"]: r["failures"] for r in rows(app, tables.login_failures)} == {
        "ip:192.0.2.1": 1, "user:other@example.com": 1}


# -- what is stored and logged -------------------------------------------------------------------------

def test_the_store_holds_only_a_hash_of_the_token(make_app):
    app = make_app()
    client = ApiClient(app).login()
    token = client.cookies[COOKIE]
    (row,) = rows(app, tables.api_sessions)
    assert row["id_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for value in row.values())
    assert row["username"] == GLOBAL_ADMIN and row["is_global_admin"]
    # a hash presented as the cookie is not a session
    forged = ApiClient(app)
    forged.cookies[COOKIE] = row["id_hash"]
    assert forged.get("/api/domains").status_code == 401


def test_passwords_and_tokens_never_reach_the_log(make_app, caplog):
    app = make_app(LOGIN_MAX_FAILURES=5)
    wrong = "Wrong-Password-Sentinel-9"
    with caplog.at_level(logging.DEBUG):
        failed = ApiClient(app).post("/api/login", {"username": GLOBAL_ADMIN, "password": wrong})
        bad_request = ApiClient(app).post("/api/login", {**CREDENTIALS, "username": "not-an-address"})
        client = ApiClient(app)
        ok = client.post("/api/login", json=CREDENTIALS)
        client.get("/api/domains")
        client.post("/api/logout")
    assert failed.status_code == 401 and bad_request.status_code == 400 and ok.status_code == 200
    token = ok.cookies[COOKIE].value
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert GLOBAL_ADMIN in caplog.text  # the log does say who tried
    assert "failed API login" in caplog.text and "API login of" in caplog.text
    for secret in (wrong, GLOBAL_ADMIN_PASSWORD, token):
        assert secret not in logged


def test_activity_keeps_a_short_session_alive(make_app):
    # shorter than the store's 30 s write-back interval: every request must still count
    app = make_app(SESSION_TIMEOUT=20)
    now = [time.time()]
    app.services.sessions._clock = lambda: now[0]
    client = ApiClient(app).login()
    for _ in range(6):
        now[0] += 15
        assert client.get("/api/domains").status_code == 200
    now[0] += 21
    assert client.get("/api/domains").status_code == 401


def test_old_failure_counts_are_swept(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3, LOGIN_FAILURE_WINDOW=600)
    for i in range(5):
        login_from(app, f"192.0.2.{i}", username=f"guess{i}@example.com", password="x")
    assert len(rows(app, tables.login_failures)) == 10
    _shift(app, tables.login_failures, "window_start", 601)
    login_from(app, "192.0.2.200", username="late@example.com", password="x")
    # only the new failure's two counters are left; expired ones do not pile up forever
    assert {r["key"] for r in rows(app, tables.login_failures)} == {"ip:192.0.2.200", "user:late@example.com"}


def test_password_in_the_url_is_refused(anonymous):
    # URLs end up in access logs (gunicorn.conf.py logs the request line)
    result = anonymous.post("/api/login?" + urlencode(CREDENTIALS))
    assert result.status_code == 400 and result.json["param"] == "password"
    result = anonymous.post("/api/login?" + urlencode({"password": GLOBAL_ADMIN_PASSWORD}),
                            {"username": GLOBAL_ADMIN})
    assert result.status_code == 400 and result.json["param"] == "password"
    assert rows(anonymous.app, tables.api_sessions) == []
    # the username may come in the query string; the password in the body
    result = anonymous.post("/api/login?" + urlencode({"username": GLOBAL_ADMIN}),
                            {"password": GLOBAL_ADMIN_PASSWORD})
    assert result.status_code == 200


# -- the limit under concurrency (issue 10 item 13): counted before the bind -------------------------

def throttles(url, count, max_failures, window=600):
    """``count`` LoginThrottles on the store at ``url``, each with its own SqlStore (own connections
    and, on SQLite, its own writer lock): as many workers or hosts."""
    from iredapi_ldap.sessions import LoginThrottle
    from iredapi_ldap.store.engine import SqlStore

    return [LoginThrottle(SqlStore(url, timeout=30), max_failures, window) for _ in range(count)]


def failure_rows(url):
    from iredapi_ldap.store.engine import SqlStore

    store = SqlStore(url, timeout=5)
    try:
        with store.transaction() as conn:
            return {r["key"]: r["failures"] for r in conn.execute(sa.select(tables.login_failures)).mappings()}
    finally:
        store.dispose()


@pytest.fixture
def failures_url(sql_store):
    """The URL of a store whose login_failures table is emptied afterwards (sql_store does that)."""
    return sql_store.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("earlier", [0, 1])
def test_parallel_attempts_never_take_more_than_the_limit(failures_url, earlier):
    """24 workers at once: the first attempts (rows inserted) or later ones (rows updated)."""
    workers = throttles(failures_url, 24, max_failures=10)
    keys = workers[0].keys("192.0.2.1", "root@example.com")
    for _ in range(earlier):
        workers[0].failed(workers[0].begin(keys))
    start = threading.Barrier(len(workers))

    def attempt(throttle):
        for read_only in (True, False):  # connect first: the attempts themselves start together
            with throttle._store.transaction(read_only=read_only) as conn:
                conn.execute(sa.select(tables.login_failures).limit(1))
        start.wait()
        return throttle.begin(keys)

    with ThreadPoolExecutor(len(workers)) as pool:
        attempts = list(pool.map(attempt, workers))
    taken = [a for a in attempts if a is not None]
    assert len(taken) == 10 - earlier
    assert failure_rows(failures_url) == {keys[0]: 10, keys[1]: 10}
    for throttle, taken_attempt in zip(workers, attempts, strict=True):
        if taken_attempt is not None:
            throttle.failed(taken_attempt)
    assert workers[0].begin(keys) is None  # the window is full
    for throttle in workers:
        throttle._store.dispose()


def test_given_back_attempts_can_be_taken_again(failures_url):
    first, second = throttles(failures_url, 2, max_failures=2)
    keys = first.keys("192.0.2.2", "boss@example.com")
    one, two = first.begin(keys), second.begin(keys)
    assert one and two and second.begin(keys) is None
    first.cancel(one)  # the directory failed: no answer, not a failure
    assert failure_rows(failures_url) == {keys[0]: 1, keys[1]: 1}
    three = second.begin(keys)
    assert three is not None
    with second._store.transaction() as conn:
        second.succeeded(three, conn)  # the username is cleared, the address gets its attempt back
    assert failure_rows(failures_url) == {keys[0]: 1}
    # an address that blocks the attempt leaves the username's count as it was, and the other way round
    other = first.keys("192.0.2.3", "boss@example.com")
    assert first.begin(other) is not None and first.begin(other) is not None
    assert first.begin(other) is None
    assert failure_rows(failures_url) == {keys[0]: 1, other[0]: 2, other[1]: 2}
    for throttle in (first, second):
        throttle._store.dispose()


def test_a_new_window_starts_again(failures_url):
    (throttle,) = throttles(failures_url, 1, max_failures=1, window=600)
    keys = throttle.keys("192.0.2.4", "late@example.com")
    now = [time.time()]
    throttle._clock = lambda: now[0]
    throttle.failed(throttle.begin(keys))
    assert throttle.begin(keys) is None
    now[0] += 601
    again = throttle.begin(keys)
    assert again is not None and failure_rows(failures_url) == {keys[0]: 1, keys[1]: 1}
    throttle._store.dispose()


class BindCounter:
    """A TCP relay in front of slapd that counts the LDAP BindRequests per DN passing through:
    what reached slapd, whatever the API believes it did."""

    def __init__(self, target_host, target_port):
        import socket

        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"ldap://127.0.0.1:{self._listener.getsockname()[1]}"
        self.binds = collections.Counter()
        self._lock = threading.Lock()
        self._sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, sink, requests):
        buffer = b""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if requests:
                    buffer = self._count(buffer + data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(2)

    def _count(self, buffer):
        """Count the complete LDAPMessages in ``buffer`` that are BindRequests; return the rest."""
        while True:
            header = _ber_header(buffer, 0)
            if header is None or header[1] + header[2] > len(buffer):
                return buffer
            _, start, length = header
            message, buffer = buffer[start:start + length], buffer[start + length:]
            _, id_start, id_length = _ber_header(message, 0)  # messageID
            op_tag, op_start, _ = _ber_header(message, id_start + id_length)
            if op_tag == 0x60:  # [APPLICATION 0] BindRequest: version, name, authentication
                _, v_start, v_length = _ber_header(message, op_start)
                _, n_start, n_length = _ber_header(message, v_start + v_length)
                with self._lock:
                    self.binds[message[n_start:n_start + n_length].decode()] += 1

    def close(self):
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _ber_header(data, offset):
    """(tag, where the content starts, content length) of the BER element at ``offset``, or None
    if the header is not all there yet (tags below 31, as LDAP's are)."""
    if len(data) < offset + 2:
        return None
    tag, first = data[offset], data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, first
    size = first & 0x7F
    if len(data) < offset + 2 + size:
        return None
    return tag, offset + 2 + size, int.from_bytes(data[offset + 2:offset + 2 + size], "big")


@contextlib.contextmanager
def api_server(ldap_uri, tmp_path, sql_url, max_failures, workers=3, threads=8):
    """gunicorn -c gunicorn.conf.py with ``workers`` gthread workers; yields its port."""
    from iredapi_ldap.localslapd import free_port
    from tests.conftest import SUFFIX, VMAILADMIN_PASSWORD
    from tests.test_gunicorn import PROJECT_DIR, private_control_socket, wait_until_answering

    settings_file = tmp_path / "settings.py"
    settings_file.write_text(
        f"ldap_uri = {ldap_uri!r}\nldap_basedn = 'o=domains,{SUFFIX}'\n"
        f"ldap_domainadmin_dn = 'o=domainAdmins,{SUFFIX}'\nldap_bind_dn = 'cn=vmailadmin,{SUFFIX}'\n"
        f"ldap_bind_password = {VMAILADMIN_PASSWORD!r}\nENABLE_RESTFUL_API = True\n"
        f"DATA_DIR = {str(tmp_path / 'data')!r}\niredadmin_db_url = {sql_url!r}\n"
        f"LOGIN_MAX_FAILURES = {max_failures}\nLOG_LEVEL = 'ERROR'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IREDAPI_", "GUNICORN_", "WEB_CONCURRENCY"))}
    env["IREDAPI_SETTINGS"] = str(settings_file)
    port = free_port()
    error_log = tmp_path / "error.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--access-logfile", "/dev/null",
         "--error-logfile", str(error_log), *private_control_socket()],
        cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(port, proc, time.monotonic() + 30)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, error_log.read_text()


def http_login(port, password, username=GLOBAL_ADMIN):
    from tests.test_gunicorn import request

    status, _, _ = request(port, "POST", "/api/login", body=urlencode({"username": username, "password": password}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    return status


def test_parallel_wrong_logins_on_several_workers_bind_at_most_the_limit(ldap_server, tmp_path, failures_url):
    """40 wrong passwords at once on 3 workers x 8 threads: slapd sees exactly LOGIN_MAX_FAILURES
    binds for the account (before the fix, checks raced the binds: 22 binds for a limit of 10)."""
    from urllib.parse import urlsplit

    admin_dn = f"mail={GLOBAL_ADMIN},o=domainAdmins,{ldap_server.suffix}"
    target = urlsplit(ldap_server.ldap_uri)
    counter = BindCounter(target.hostname, target.port)
    try:
        with api_server(counter.uri, tmp_path, failures_url, max_failures=5) as port:
            # a success neither counts nor stays counted: ten in a row all work with a limit of 5
            assert [http_login(port, GLOBAL_ADMIN_PASSWORD) for _ in range(10)] == [200] * 10
            assert failure_rows(failures_url) == {}
            binds_before = counter.binds[admin_dn]
            start = threading.Barrier(40)

            def wrong(_):
                start.wait()
                return http_login(port, "Wrong-password-1")

            with ThreadPoolExecutor(40) as pool:
                statuses = collections.Counter(pool.map(wrong, range(40)))
            assert counter.binds[admin_dn] - binds_before == 5, (counter.binds, statuses)
            assert statuses == {401: 5, 429: 35}
            assert failure_rows(failures_url) == {"ip:127.0.0.1": 5, f"user:{GLOBAL_ADMIN}": 5}
            assert http_login(port, GLOBAL_ADMIN_PASSWORD) == 429  # the right password waits too
            assert counter.binds[admin_dn] - binds_before == 5
    finally:
        counter.close()
