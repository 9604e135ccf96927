"""The official iRedAdmin-Pro samples, replayed as published (only host and credentials filled in)
against a real HTTP server at both mount points: the current and the 2016 curl and Python pages.

Each page checks one key: the newest pages ``_success``, the 2016 pages ``success``.  Where a page
is wrong in itself, the expected failure is listed and asserted: the curl pages update a user
after deleting it, and the 2016 curl page creates a user without a password.
"""

import json
import re
import shlex
import subprocess
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from tests.conftest import GLOBAL_ADMIN, GLOBAL_ADMIN_PASSWORD, SUFFIX, ApiClient, read_entry
from tests.sql_backends import REPO

SPEC = REPO.parent / "shared" / "spec"
PAGES = {
    "newest": SPEC / "pro-newest",
    "2016": SPEC / "seed-samples",
}
SUCCESS_KEY = {"newest": "_success", "2016": "success"}
MOUNT_POINTS = ("/iredadmin/api", "/api")


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(make_app):
    """The API on a real socket (wsgiref, one request at a time), as clients reach it."""
    app = make_app()
    httpd = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _code_block(page):
    text = page.read_text()
    return re.search(r"```\n(.*?)```", text, re.S).group(1)


def _fill_server(text, address, mount):
    """Put our server where a page says ``<server>``, for the mount point ``mount``.  Three of the
    pages write ``<server>/iredadmin/api``; the 2016 curl page writes ``<server>/api`` and says
    that ``<server>`` includes the ``/iredadmin`` prefix.  Replaying a page at the other mount
    point changes only that part of its URLs."""
    text = text.replace("https://", "http://")
    if "<server>/iredadmin/api" in text:
        text = text.replace("<server>", address)
        return text if mount == "/iredadmin/api" else text.replace("/iredadmin/api", "/api")
    return text.replace("<server>", address + ("/iredadmin" if mount == "/iredadmin/api" else ""))


@pytest.mark.parametrize("mount", MOUNT_POINTS)
@pytest.mark.parametrize("generation", PAGES)
def test_the_curl_page(server, tmp_path, root_connection, new_domain, generation, mount):
    app, address = server
    domain = new_domain()
    mail = f"zhb@{domain}"
    block = _fill_server(_code_block(PAGES[generation] / "0-iredadmin-pro.restful.api.curl.md"), address, mount)
    commands = [line for line in block.splitlines() if line.startswith("curl ")]
    assert len(commands) == (11 if generation == "newest" else 10)
    answers = []
    for command in commands:
        command = (command.replace("<username>", GLOBAL_ADMIN).replace("<password>", GLOBAL_ADMIN_PASSWORD)
                   .replace("<domain>", domain).replace("<mail>", mail))
        argv = shlex.split(command)
        out = subprocess.run(["curl", "-s", *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=30)
        body = out.stdout.split("\n\n")[-1] if "-i" in argv else out.stdout  # text mode: \r\n is \n
        answers.append((argv[2], argv[-1].split("/api/", 1)[1], body))
    key = SUCCESS_KEY[generation]
    results = [(method, path, json.loads(body)) for method, path, body in answers]
    expected_failures = {("PUT", f"user/{mail}")}  # the page updates the user it has just deleted
    if generation == "2016":
        # the 2016 page creates the user without a password, so its DELETE finds no user either
        expected_failures |= {("POST", f"user/{mail}"), ("DELETE", f"user/{mail}")}
    for method, path, body in results:
        failing = (method, path) in expected_failures
        assert body[key] is (not failing), (method, path, body)
    login = results[0][2]
    assert login[key] is True and (tmp_path / "cookie.txt").exists()
    # what the page did is what the directory holds: everything it made, it deleted again
    assert read_entry(root_connection, f"domainName={domain},o=domains,{SUFFIX}") is None
    codes = {body.get("msg") or body.get("_msg") for method, path, body in results if not body[key]}
    assert codes <= {"NO_SUCH_ACCOUNT", "INVALID_PARAMETER"}


@pytest.mark.parametrize("mount", MOUNT_POINTS)
@pytest.mark.parametrize("generation", PAGES)
def test_the_python_page(server, generation, mount, monkeypatch):
    import requests

    app, address = server
    source = _fill_server(_code_block(PAGES[generation] / "0-iredadmin-pro.restful.api.python.md"), address, mount)
    source = source.replace("postmaster@mydomain.com", GLOBAL_ADMIN).replace("my_password", GLOBAL_ADMIN_PASSWORD)
    answers = []
    for method in ("post", "put", "delete"):
        real = getattr(requests, method)

        def recorded(url, *args, _real=real, _method=method, **kwargs):
            response = _real(url, *args, **kwargs)
            answers.append((_method, url, response.json()))
            return response

        monkeypatch.setattr(requests, method, recorded)
    admin = ApiClient(app).login()
    admin.delete(f"{mount}/domain/test.com")  # the page's fixed domain, in case a run died half-way
    try:
        try:
            exec(compile(source, f"{generation} python page", "exec"), {"__name__": "sample"})
        except SystemExit as exc:
            pytest.fail(f"the page exited with {exc}: {answers}")
    finally:
        admin.delete(f"{mount}/domain/test.com")
    key = SUCCESS_KEY[generation]
    assert len(answers) == 10
    for method, url, body in answers:
        assert body[key] is True, (method, url, body)
