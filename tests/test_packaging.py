"""Packaging and the command line: the wheel works on its own, outside the checkout, and the
``iredapi-ldap`` command answers --version and reports errors in one line."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

import iredapi_ldap
from iredapi_ldap.cli import main
from iredapi_ldap.localslapd import free_port, port_open

PROJECT_DIR = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "iredapi_ldap.cli"]
COOKIE = "iRedAdmin-LDAP"


def clean_env(**extra):
    """The environment less our settings overrides and anything that would find the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IREDAPI_", "GUNICORN_", "PYTHON", "VIRTUAL_ENV", "WEB_CONCURRENCY"))}
    return {**env, **extra}


# --- the command line -------------------------------------------------------------------------


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"iredapi-ldap {iredapi_ldap.__version__}\n"


def test_a_bad_settings_file_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "missing.py"
    result = subprocess.run([*CLI, "--config", str(missing), "recount"], capture_output=True, text=True,
                            env=clean_env(), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"iredapi-ldap recount: settings file {str(missing)!r} does not exist\n"


def test_a_failure_on_the_way_is_one_line_and_exit_1_and_debug_shows_the_traceback(tmp_path):
    # schema-install against an ldapi socket nobody listens on: an error from inside ldap3
    argv = [*CLI, "schema-install", "--ldapi", "ldapi://" + str(tmp_path / "nobody").replace("/", "%2F")]
    result = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("iredapi-ldap schema-install: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "IREDAPI_LOG_LEVEL=DEBUG shows the traceback" in result.stderr

    debug = subprocess.run(argv, capture_output=True, text=True, env=clean_env(IREDAPI_LOG_LEVEL="DEBUG"),
                           timeout=60)
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")


# --- the wheel, installed into a venv of its own ----------------------------------------------


def request(port, method, path, form=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Connection": "close"}
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Cookie"] = f"{COOKIE}={token}"
    try:
        conn.request(method, path, body=None if form is None else urlencode(form), headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def build_wheel(work):
    """Build from a copy of the project, so that the checkout gets no build/ and no egg-info
    and the wheel can take nothing from it by an absolute path."""
    source = work / "source"
    shutil.copytree(PROJECT_DIR, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "data", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    shutil.rmtree(source)
    (wheel,) = (work / "dist").glob("iredapi_ldap-*.whl")
    return wheel


@pytest.mark.wheel
def test_the_wheel_installed_outside_the_checkout_serves_a_login_and_a_user_create():
    # /tmp/iredapi-*: where AppArmor lets a confined slapd work (scripts/lib.sh); short ldapi path
    work = Path(tempfile.mkdtemp(prefix="iredapi-wheel-", dir="/tmp"))
    server = None
    try:
        wheel = build_wheel(work)
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            metadata = archive.read(f"iredapi_ldap-{iredapi_ldap.__version__}.dist-info/METADATA").decode()
        assert {"iredapi_ldap/schema/iredmail.ldif", "iredapi_ldap/schema/amavisd.ldif",
                "iredapi_ldap/gunicorn_conf.py"} <= names
        assert any(n.startswith("iredapi_ldap-") and n.endswith("/LICENSE") for n in names), names
        assert "GPL-3.0-or-later" in metadata

        venv = work / "venv"
        # without pip of its own (ensurepip takes seconds): this pip installs into it
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        installed = subprocess.run([sys.executable, "-m", "pip", "--python", venv / "bin/python", "install", "-q",
                                    str(wheel)], cwd=work, env=clean_env(), capture_output=True, text=True,
                                   timeout=600)
        assert installed.returncode == 0, installed.stderr
        env = clean_env()
        where = subprocess.run([venv / "bin/python", "-c", "import iredapi_ldap; print(iredapi_ldap.__file__)"],
                               cwd=work, env=env, capture_output=True, text=True, check=True)
        assert Path(where.stdout.strip()).is_relative_to(venv)  # not the checkout's copy
        version = subprocess.run([venv / "bin/iredapi-ldap", "--version"], cwd=work, env=env,
                                 capture_output=True, text=True, check=True)
        assert version.stdout.strip() == f"iredapi-ldap {iredapi_ldap.__version__}"

        data, port, log = work / "data", free_port(), work / "dev.log"
        with open(log, "wb") as out:
            server = subprocess.Popen([venv / "bin/iredapi-ldap", "dev", "--data", str(data),
                                       "--bind", f"127.0.0.1:{port}"],
                                      cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no answer within 90 s:\n" + log.read_text()
            try:
                if request(port, "GET", "/api/domains")[0] == 401:
                    break
            except OSError:
                time.sleep(0.3)

        admin, password = (data / "admin-credentials.txt").read_text().split()
        status, headers, body = request(port, "POST", "/api/login", {"username": admin, "password": password})
        assert (status, json.loads(body)) == (200, {"_success": True, "success": True}), body
        token = next(v for k, v in headers if k.lower() == "set-cookie").split(";", 1)[0].split("=", 1)[1]
        status, _, body = request(port, "POST", "/api/domain/wheel.example", {"cn": "Wheel"}, token)
        assert status == 201 and json.loads(body)["success"] is True, body
        status, _, body = request(port, "POST", "/api/user/alice@wheel.example",
                                  {"password": "Wheel-Secret-1!", "cn": "Alice"}, token)
        assert status == 201 and json.loads(body)["success"] is True, body
        status, _, body = request(port, "GET", "/api/user/alice@wheel.example", token=token)
        assert status == 200 and json.loads(body)["_data"]["cn"] == ["Alice"], body
        # gunicorn's master names the address although each worker has a socket of its own
        assert f"Listening at: http://127.0.0.1:{port} (" in log.read_text()

        server.send_signal(signal.SIGTERM)  # dev stops gunicorn and its slapd
        assert server.wait(timeout=60) == 0, log.read_text()
        ldap_port = int(re.search(r'ldap_uri = "ldap://127.0.0.1:(\d+)"', (data / "settings.py").read_text())[1])
        assert not port_open("127.0.0.1", port) and not port_open("127.0.0.1", ldap_port)
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
