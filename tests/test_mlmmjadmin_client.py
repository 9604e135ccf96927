"""store/mlmmjadmin.py against a scripted HTTP peer: how each kind of answer becomes ours.

The real mlmmjadmin answers HTTP 200 with its envelope (tests/test_mlmmj_lists.py); the other
shapes here (4xx, 5xx, HTML, silence) are what a proxy in front of it or a broken one sends.
"""

import http.server
import json
import threading
import time

import pytest

from iredapi_ldap import errors
from iredapi_ldap.store.mlmmjadmin import MlmmjadminClient


class _Peer(http.server.BaseHTTPRequestHandler):
    script = {}  # path -> (status, body bytes, delay seconds)
    seen = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        type(self).seen.append((self.command, self.path, self.headers.get("X-Token"), body))
        status, payload, delay = type(self).script.get(self.path.split("?")[0], (404, b"", 0))
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def peer():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    _Peer.script, _Peer.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_of(server, timeout=2):
    return MlmmjadminClient(f"http://127.0.0.1:{server.server_address[1]}/api/", "tok", "X-Token", timeout=timeout)


def envelope(**kw):
    return json.dumps(kw).encode()


def test_success_and_what_is_sent(peer):
    _Peer.script = {"/api/l@x.test/subscribers": (200, envelope(_success=True, _data=["B@x.test", "a@x.test"]), 0),
                    "/api/l@x.test": (200, envelope(_success=True), 0)}
    client = client_of(peer)
    assert client.subscribers("l@x.test") == ["a@x.test", "b@x.test"]
    client.add_subscribers("l@x.test", ["a@x.test", "b@x.test"], "digest", False)
    client.delete("l@x.test", keep_archive=False)
    assert _Peer.seen[0][:3] == ("GET", "/api/l@x.test/subscribers?email_only=yes", "tok")
    assert _Peer.seen[1][0] == "POST" and "add_subscribers=a%40x.test%2Cb%40x.test" in _Peer.seen[1][3]
    assert "require_confirm=no" in _Peer.seen[1][3] and "subscription=digest" in _Peer.seen[1][3]
    assert _Peer.seen[2][:2] == ("DELETE", "/api/l@x.test?archive=no")


@pytest.mark.parametrize(("status", "body", "code", "http_status"), [
    (200, envelope(_success=False, _msg="NO_SUCH_ACCOUNT"), "NO_SUCH_ACCOUNT", 404),
    (200, envelope(_success=False, _msg="ALREADY_EXISTS"), "ALREADY_EXISTS", 409),
    (200, envelope(_success=False, _msg="INVALID_SUBSCRIPTION"), "INVALID_SUBSCRIPTION", 400),
    (200, envelope(_success=False, _msg="INVALID_MLMMJADMIN_API_AUTH_TOKEN"), "INVALID_MLMMJADMIN_API_AUTH_TOKEN", 503),
    (403, envelope(_success=False, _msg="NOT_AUTHORIZED_API_CLIENT"), "NOT_AUTHORIZED_API_CLIENT", 503),
    (404, envelope(_success=False, _msg="NO_SUCH_ACCOUNT"), "NO_SUCH_ACCOUNT", 404),
    (200, envelope(_success=False, _msg="OTHER({'desc': 'Server is busy'})"), "MLMMJADMIN_ERROR", 502),
    # slapd's unique overlay refusing a taken (alias-domain) address, in both of its wordings
    (200, envelope(_success=False, _msg="CONSTRAINT_VIOLATION({'result': 19, 'info': 'some attributes not unique'})"),
     "ALREADY_EXISTS", 409),
    (200, envelope(_success=False, _msg="CONSTRAINT_VIOLATION({'result': 19, 'info': 'non-unique attributes found "
                                        "with (&(|(objectClass=mailUser)))'})"), "ALREADY_EXISTS", 409),
])
def test_refusals_keep_its_code(peer, status, body, code, http_status):
    _Peer.script = {"/api/l@x.test": (status, body, 0)}
    with pytest.raises(errors.PeerRefused) as caught:
        client_of(peer).profile("l@x.test")
    assert (caught.value.code, caught.value.status) == (code, http_status)


@pytest.mark.parametrize(("status", "body"), [
    (500, b"Internal Server Error"),
    (502, envelope(_success=False, _msg="NO_SUCH_ACCOUNT")),
    (401, b""),
    (200, b"<html>not json</html>"),
    (200, b'["not", "its envelope"]'),
])
def test_anything_else_is_service_unavailable(peer, status, body):
    _Peer.script = {"/api/l@x.test": (status, body, 0)}
    with pytest.raises(errors.BackendUnavailable) as caught:
        client_of(peer).profile("l@x.test")
    assert caught.value.code == "SERVICE_UNAVAILABLE" and caught.value.status == 503


def test_a_slow_answer_ends_at_the_timeout(peer):
    _Peer.script = {"/api/l@x.test": (200, envelope(_success=True), 3)}
    started = time.monotonic()
    with pytest.raises(errors.BackendUnavailable):
        client_of(peer, timeout=1).profile("l@x.test")
    assert time.monotonic() - started < 2.5


def test_nobody_listening():
    with pytest.raises(errors.BackendUnavailable):
        MlmmjadminClient("http://127.0.0.1:9/api", "t", "X-Token", timeout=2).profile("l@x.test")


@pytest.fixture
def bystander():
    """Another HTTP server on this host: a proxy named in the environment, a redirect's target."""
    class _Bystander(_Peer):
        script, seen = {}, []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Bystander)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Bystander
    server.shutdown()
    server.server_close()


def test_no_proxy_from_the_environment_sees_the_token(peer, bystander, monkeypatch):
    """mlmmjadmin listens on the host (or a private address): an http_proxy exported for the
    server's other traffic must not carry its requests, and its token, elsewhere."""
    server, recorder = bystander
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{server.server_address[1]}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    _Peer.script = {"/api/l@x.test": (200, envelope(_success=True, _data={"name": "L"}), 0)}
    assert client_of(peer).profile("l@x.test") == {"name": "L"}
    assert recorder.seen == [] and [s[:3] for s in _Peer.seen] == [("GET", "/api/l@x.test", "tok")]


def test_a_redirect_is_not_followed_with_the_token(peer, bystander):
    server, recorder = bystander
    elsewhere = f"http://127.0.0.1:{server.server_address[1]}/api/l@x.test"
    recorder.script = {"/api/l@x.test": (200, envelope(_success=True), 0)}

    class _Redirecting(_Peer):
        def _answer(self):
            type(self).seen.append((self.command, self.path, self.headers.get("X-Token"), ""))
            self.send_response(302)
            self.send_header("Location", elsewhere)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    peer.RequestHandlerClass = _Redirecting
    with pytest.raises(errors.BackendUnavailable):
        client_of(peer).profile("l@x.test")
    assert recorder.seen == []
