"""HTTP as a real gunicorn (gunicorn.conf.py, iredapi_ldap.server.ApiWorker) serves it: chunked
bodies, the 1 MiB limit closing the connection, slow clients, gunicorn's own errors in our
envelope, X-Forwarded-Proto only from TRUSTED_PROXIES.  Every client here talks to 127.0.0.1
and stops by itself."""

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlencode

import pytest
from gunicorn import __version__ as gunicorn_version

from iredapi_ldap.localslapd import free_port
from tests.conftest import domain_dn, failed, read_entry
from tests.test_gunicorn import COOKIE, gunicorn, login, request, wait_until_answering

GUNICORN_VERSION = tuple(int(part) for part in gunicorn_version.split(".")[:2])
MB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"


class Server:
    def __init__(self, port, token):
        self.port = port
        self.token = token
        self.cookie = f"{COOKIE}={token}"

    def call(self, method, path, body=None, headers=None, timeout=10):
        return request(self.port, method, path, body=body, headers={"Cookie": self.cookie, **(headers or {})},
                       timeout=timeout)


@pytest.fixture(scope="module")
def server(ldap_server, tmp_path_factory):
    """2 workers x 8 threads, as in production; requests may take 20 s to arrive."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("http-server")
    with gunicorn(ldap_server, tmp, f"127.0.0.1:{port}", threads=8,
                  env={"IREDAPI_REQUEST_TIMEOUT": "20"}) as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        yield Server(port, login(port))


def new_domain_on(server, name, **settings):
    status, _, body = server.call("POST", f"/api/domain/{name}", body=urlencode(settings),
                                  headers={"Content-Type": FORM})
    assert status == 201, body


def unique(prefix):
    return f"{prefix}-{time.monotonic_ns()}.test"


def raw_exchange(port, data, timeout=10):
    """Send ``data`` on a fresh connection; (status, headers, body, closed by the server?)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        closed = sock.recv(1) == b""  # the server closed its side (after the answer)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, closed
    finally:
        sock.close()


def put_chunked(server, path, chunks, content_type=FORM):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        # an iterable body without Content-Length goes out as Transfer-Encoding: chunked
        conn.request("PUT" if not path.startswith("POST ") else "POST", path.removeprefix("POST "),
                     body=iter(chunks), headers={"Cookie": server.cookie, "Content-Type": content_type},
                     encode_chunked=True)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- chunked bodies -------------------------------------------------------------------------------

def test_a_chunked_put_changes_the_entry(server, root_connection):
    domain = unique("chunked")
    new_domain_on(server, domain, cn="before")
    status, _, body = put_chunked(server, f"/api/domain/{domain}", [b"cn=af", b"ter&numberOf", b"Users=7"])
    assert status == 200, body
    entry = read_entry(root_connection, domain_dn(domain))
    assert entry["cn"] == ["after"] and "numberOfUsers:7" in entry["accountSetting"]


def test_a_chunked_json_post_creates_a_domain_with_its_limits(server, root_connection):
    domain = unique("chunked-json")
    payload = json.dumps({"numberOfUsers": 3, "quota": 100}).encode()
    status, _, body = put_chunked(server, f"POST /api/domain/{domain}", [payload[:7], payload[7:]],
                                  content_type="application/json")
    assert status == 201, body
    assert sorted(read_entry(root_connection, domain_dn(domain))["accountSetting"]) == [
        "domainQuota:100:MB", "numberOfUsers:3"]


def test_a_chunked_body_over_one_mib_is_413_closes_and_changes_nothing(server, root_connection):
    domain = unique("chunked-big")
    new_domain_on(server, domain, cn="kept")
    before = read_entry(root_connection, domain_dn(domain))
    body = b"cn=" + b"a" * MB
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                      for i in range(0, len(body), 65536))
    head = (f"PUT /api/domain/{domain} HTTP/1.1\r\nHost: x\r\nCookie: {server.cookie}\r\n"
            f"Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    status, headers, answer, closed = raw_exchange(server.port, head + chunks + b"0\r\n\r\n")
    assert status == 413, answer
    assert json.loads(answer)["msg"] == "MALFORMED_REQUEST"
    assert headers["connection"] == "close" and closed
    assert read_entry(root_connection, domain_dn(domain)) == before
    assert server.call("GET", f"/api/domain/{domain}")[0] == 200  # the next connection is served


def test_a_content_length_body_over_one_mib_is_413_unread_and_the_connection_closes(server, root_connection):
    domain = unique("big")
    new_domain_on(server, domain, cn="kept")
    before = read_entry(root_connection, domain_dn(domain))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    body = b"cn=" + b"a" * (4 * MB)
    head = (f"PUT /api/domain/{domain} HTTP/1.1\r\nHost: x\r\nCookie: {server.cookie}\r\n"
            f"Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    def send():
        try:
            sock.sendall(head + body)
        except OSError:
            pass  # the server answered and closed without reading it all: expected

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())["success"] is False
    finally:
        sender.join(timeout=10)
        sock.close()
    assert read_entry(root_connection, domain_dn(domain)) == before
    assert server.call("GET", f"/api/domain/{domain}")[0] == 200


def test_one_keep_alive_connection_carries_several_requests(server, root_connection):
    domain = unique("keepalive")
    new_domain_on(server, domain)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Cookie": server.cookie, "Content-Type": FORM}
    try:
        for i in range(3):
            conn.request("PUT", f"/api/domain/{domain}", body=f"cn=n{i}", headers=headers)
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            conn.request("PUT", f"/api/domain/{domain}", body=iter([b"cn=", b"c%d" % i]), headers=headers,
                         encode_chunked=True)
            response = conn.getresponse()
            assert response.status == 200, response.read()
            response.read()
            conn.request("GET", f"/api/domain/{domain}", headers=headers)
            response = conn.getresponse()
            assert json.loads(response.read())["_data"]["cn"] == [f"c{i}"]
        assert conn.sock is not None  # still the first connection
    finally:
        conn.close()


@pytest.mark.skipif(GUNICORN_VERSION < (25,), reason="gthread before gunicorn 25 leaves pipelined requests unread")
def test_pipelined_requests_are_all_answered(server):
    one = f"GET /api/domains HTTP/1.1\r\nHost: x\r\nCookie: {server.cookie}\r\n\r\n".encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(one * 2 + one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        statuses = []
        for _ in range(3):
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            statuses.append(response.status)
        assert statuses == [200, 200, 200]
    finally:
        sock.close()


def test_expect_100_continue_is_answered_and_the_body_read(server, root_connection):
    domain = unique("expect")
    new_domain_on(server, domain)
    body = b"cn=expected"
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall((f"PUT /api/domain/{domain} HTTP/1.1\r\nHost: x\r\nCookie: {server.cookie}\r\n"
                      f"Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200, response.read()
    finally:
        sock.close()
    assert read_entry(root_connection, domain_dn(domain))["cn"] == ["expected"]


# -- gunicorn's own errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw,status", [
    (b"GET /api/" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (400, 414)),  # 400 before gunicorn 25
    (b"GET /api/domains HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/domains HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"THIS IS NOT HTTP\r\n\r\n", 400),
    (b"GET /api/domains HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    (b"GET /api/domains HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
])
def test_gunicorns_own_errors_carry_the_json_envelope(server, raw, status):
    got, headers, body, closed = raw_exchange(server.port, raw)
    assert got in (status if isinstance(status, tuple) else (status,))
    assert headers["content-type"] == "application/json"
    assert b"<html" not in body
    answer = json.loads(body)
    assert answer["success"] is False and answer["msg"] == "MALFORMED_REQUEST" and answer["detail"]
    assert headers["connection"] == "close" and closed


@pytest.mark.parametrize("chunks", [b"zz\r\nab\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"])
def test_a_chunked_body_with_wrong_framing_is_400_and_closes(server, chunks):
    raw = (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    status, headers, body, closed = raw_exchange(server.port, raw)
    assert status == 400
    assert json.loads(body) == failed("MALFORMED_REQUEST", detail="the body could not be read to its end")
    assert headers["connection"] == "close" and closed


# -- slow clients --------------------------------------------------------------------------------------

class Trickler(threading.Thread):
    """Sends ``head`` and then ``body`` one byte every ``pause`` seconds, until stopped or
    ``give_up`` seconds; records what the server answered, if anything."""

    def __init__(self, port, head, body, pause, give_up, stop):
        super().__init__(daemon=True)
        self.port, self.head, self.body, self.pause, self.give_up, self.stop = port, head, body, pause, give_up, stop
        self.answer = b""
        self.connected = threading.Event()

    def run(self):
        ends = time.monotonic() + self.give_up
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            return
        try:
            self.connected.set()
            sock.sendall(self.head)
            for byte in self.body:
                if self.stop.wait(self.pause) or time.monotonic() > ends:
                    return
                sock.sendall(bytes([byte]))
                sock.settimeout(0.01)
                try:
                    self.answer += sock.recv(4096)  # answered (408) before the body was done?
                except (TimeoutError, BlockingIOError):
                    pass
                if self.answer:
                    sock.settimeout(2)
                    while chunk := sock.recv(4096):
                        self.answer += chunk
                    return
        except OSError:
            return
        finally:
            sock.close()


def test_slow_clients_do_not_hold_the_threads(server):
    # 20 clients trickle a body a byte every 2 s, 40 trickle their headers: with gthread as it
    # is, the 16 threads (2 workers x 8) all wait on them, and nobody else gets an answer.
    stop = threading.Event()
    body_head = (f"PUT /api/domain/slow.test HTTP/1.1\r\nHost: x\r\nCookie: {server.cookie}\r\n"
                 f"Content-Type: {FORM}\r\nContent-Length: 100\r\n\r\n").encode()
    tricklers = [Trickler(server.port, body_head, b"c" * 100, 2, 15, stop) for _ in range(20)]
    tricklers += [Trickler(server.port, b"G", b"ET /api/domains HTTP/1.1\r\nHost: x\r\n\r\n", 2, 15, stop)
                  for _ in range(40)]
    try:
        for trickler in tricklers:
            trickler.start()
        for trickler in tricklers:
            assert trickler.connected.wait(5)
        time.sleep(1.5)  # each has sent a byte or two, and waits
        latencies = []
        for _ in range(16):
            started = time.monotonic()
            status, _, body = server.call("GET", "/api/domains", timeout=5)
            latencies.append(time.monotonic() - started)
            assert status == 200, body
        assert max(latencies) < 2, latencies
        assert not any(trickler.answer for trickler in tricklers)  # all still waiting on them
    finally:
        stop.set()
        for trickler in tricklers:
            trickler.join(timeout=5)


@pytest.fixture(scope="module")
def impatient_server(ldap_server, tmp_path_factory):
    port = free_port()
    tmp = tmp_path_factory.mktemp("http-impatient")
    with gunicorn(ldap_server, tmp, f"127.0.0.1:{port}", threads=2,
                  env={"IREDAPI_REQUEST_TIMEOUT": "2"}) as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        yield Server(port, login(port))


@pytest.mark.parametrize("what", ["head", "body", "chunked body", "expect body"])
def test_a_request_not_in_within_the_timeout_is_408_and_closed(impatient_server, what):
    stop = threading.Event()
    head = f"PUT /api/domain/slow.test HTTP/1.1\r\nHost: x\r\nCookie: {impatient_server.cookie}\r\n"
    if what == "head":
        trickler = Trickler(impatient_server.port, b"P", head.encode()[1:], 0.3, 8, stop)
    elif what == "body":
        trickler = Trickler(impatient_server.port, f"{head}Content-Length: 50\r\n\r\n".encode(),
                            b"c" * 50, 0.3, 8, stop)
    elif what == "chunked body":
        trickler = Trickler(impatient_server.port, f"{head}Transfer-Encoding: chunked\r\n\r\n".encode(),
                            b"1\r\nc\r\n" * 10, 0.3, 8, stop)
    else:  # read by a thread, after its "100 Continue"
        trickler = Trickler(impatient_server.port,
                            f"{head}Content-Length: 50\r\nExpect: 100-continue\r\n\r\n".encode(),
                            b"c" * 50, 0.3, 8, stop)
    started = time.monotonic()
    trickler.start()
    trickler.join(timeout=10)
    took = time.monotonic() - started
    assert not trickler.is_alive()
    answer = trickler.answer.split(b"HTTP/1.1 408 ", 1)
    assert len(answer) == 2, trickler.answer  # after any "100 Continue"
    head_part, _, body = answer[1].partition(b"\r\n\r\n")
    assert b"Connection: close" in head_part
    assert json.loads(body) == failed("REQUEST_TIMEOUT", detail="the request did not arrive within 2 s")
    assert 1.5 < took < 6, took  # the deadline (2 s) + up to one turn of the main loop (1 s)


def test_a_request_that_takes_a_while_but_less_than_the_timeout_is_served(impatient_server):
    domain = unique("patient")
    new_domain_on(impatient_server, domain)
    sock = socket.create_connection(("127.0.0.1", impatient_server.port), timeout=10)
    body = b"cn=patient"
    try:
        for part in (f"PUT /api/domain/{domain} HTTP/1.1\r\nHost: x\r\n".encode(),
                     f"Cookie: {impatient_server.cookie}\r\nContent-Type: {FORM}\r\n".encode(),
                     f"Content-Length: {len(body)}\r\n\r\n".encode(), body[:3], body[3:]):
            sock.sendall(part)
            time.sleep(0.3)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200, response.read()
    finally:
        sock.close()


def test_an_idle_connection_is_closed_without_an_answer(impatient_server):
    sock = socket.create_connection(("127.0.0.1", impatient_server.port), timeout=10)
    try:
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed, nothing said: no request had begun
        assert time.monotonic() - started < 5
    finally:
        sock.close()


# -- X-Forwarded-Proto --------------------------------------------------------------------------------

def login_cookie(port, headers):
    status, response_headers, body = request(
        port, "POST", "/api/login", body=urlencode({"username": "root@example.com", "password": "Admin-Secret-1!"}),
        headers={"Content-Type": FORM, **headers})
    assert status == 200, body
    return next(v for k, v in response_headers if k.lower() == "set-cookie")


@pytest.mark.parametrize("header", ["X-Forwarded-Proto", "X-Forwarded-Ssl", "X-Forwarded-Protocol"])
def test_a_local_client_cannot_claim_tls_without_trusted_proxies(server, header):
    value = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}[header]
    cookie = login_cookie(server.port, {header: value})
    assert "Secure" not in cookie and "SameSite=Strict" in cookie


def test_a_trusted_proxy_is_believed(ldap_server, tmp_path):
    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", extra_settings='TRUSTED_PROXIES = ["127.0.0.1"]\n') \
            as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        assert "Secure" in login_cookie(port, {"X-Forwarded-Proto": "https"})
        assert "Secure" not in login_cookie(port, {})


def test_a_stopping_server_does_not_wait_for_idle_connections(ldap_server, tmp_path):
    import signal

    port = free_port()
    with gunicorn(ldap_server, tmp_path, f"127.0.0.1:{port}", env={"IREDAPI_REQUEST_TIMEOUT": "30"}) as (proc, _):
        wait_until_answering(port, proc, time.monotonic() + 20)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
        try:
            time.sleep(0.5)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            assert time.monotonic() - started < 8  # not the 30 s a request may take to arrive
        finally:
            for sock in idle:
                sock.close()
