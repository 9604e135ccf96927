"""The real, unmodified mlmmjadmin 3.6.3 as a test peer (with Debian's mlmmj).

Copied from ``../shared/upstream/mlmmjadmin-3.6.3`` (or ``$MLMMJADMIN_SOURCE``) into a
temporary folder under /tmp/iredapi-*, with a ``settings.py`` beside it: its LDAP backend
(``bk_iredmail_ldap``) bound as cn=vmailadmin of the test slapd, spool and archive in the
same temporary folder, a free port; then ``python mlmmjadmin.py`` with the test venv's python
(python-ldap, multipart, cheroot: the test extra).  Stopped by the fixture that started it.
"""

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(os.environ.get("MLMMJADMIN_SOURCE", ROOT.parent / "shared" / "upstream" / "mlmmjadmin-3.6.3"))
SKEL = "/usr/share/mlmmj/text.skel"
TOKEN = "test-mlmmjadmin-token-0123456789"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlmmjadminPeer:
    def __init__(self, ldap_server):
        self.ldap_server = ldap_server
        self.dir = Path(tempfile.mkdtemp(prefix="iredapi-mlmmj-", dir="/tmp"))
        self.app_dir = self.dir / "mlmmjadmin"
        self.spool = self.dir / "spool"
        self.archive = self.dir / "archive"
        self.spool.mkdir()
        self.archive.mkdir()
        shutil.copytree(SOURCE, self.app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
        self.port = _free_port()
        self.process = None
        self.log = self.dir / "mlmmjadmin.log"
        self._write_settings()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/api"

    def _write_settings(self):
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        settings = {
            "listen_address": "127.0.0.1",
            "listen_port": self.port,
            "run_as_user": user,
            "run_as_group": group,
            "pid_file": str(self.dir / "mlmmjadmin.pid"),
            "log_level": "debug",
            # syslog over UDP to a port nobody listens on: no /dev/log needed, no noise.
            "SYSLOG_SERVER": "127.0.0.1",
            "SYSLOG_PORT": 9,
            "backend_api": "bk_iredmail_ldap",
            "backend_cli": "bk_iredmail_ldap",
            "api_auth_tokens": [TOKEN],
            "MLMMJ_SPOOL_DIR": str(self.spool),
            "MLMMJ_ARCHIVE_DIR": str(self.archive),
            "MLMMJ_SKEL_DIR": SKEL,
            "iredmail_ldap_uri": self.ldap_server.ldap_uri,
            "iredmail_ldap_basedn": self.ldap_server.basedn,
            "iredmail_ldap_bind_dn": self.ldap_server.vmailadmin_dn,
            "iredmail_ldap_bind_password": self.ldap_server.vmailadmin_password,
        }
        lines = ["from libs.default_settings import *"]
        lines += [f"{name} = {value!r}" for name, value in settings.items()]
        (self.app_dir / "settings.py").write_text("\n".join(lines) + "\n")

    def start(self, wait=20):
        assert self.process is None
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "mlmmjadmin.py"], cwd=self.app_dir, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlmmjadmin exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                self.request("GET", "nobody@example.invalid")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mlmmjadmin did not answer within {wait}s: {self.log.read_text()[-2000:]}")

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, timeout=5):
        """mlmmjadmin's own answer, asked directly (to look behind our API)."""
        req = urllib.request.Request(f"{self.base_url}/{path}", method=method,
                                     headers={"X-MLMMJADMIN-API-AUTH-TOKEN": TOKEN})
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return json.loads(answer.read())

    def list_dir(self, mail):
        name, domain = mail.split("@", 1)
        return self.spool / domain / name

    def mlmmj_list(self, mail, *options):
        """Subscribers as mlmmj's own ``mlmmj-list -L <spool>/<domain>/<name>`` prints them."""
        result = subprocess.run(["mlmmj-list", "-L", str(self.list_dir(mail)), *options], capture_output=True,
                                text=True, timeout=20)
        assert result.returncode == 0, result.stderr
        return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())

    def settings(self):
        """Our settings that point the API at this peer."""
        return {"MLMMJADMIN_API_BASE_URL": self.base_url, "mlmmjadmin_api_auth_token": TOKEN,
                "MLMMJADMIN_API_TIMEOUT": 5}


def start_peer(ldap_server):
    if shutil.which("mlmmj-list") is None or not os.path.isdir(SKEL):
        pytest.fail("mlmmj is not installed: run scripts/run-tests (it installs the mlmmj package)")
    if not SOURCE.is_dir():
        pytest.fail(f"mlmmjadmin's source is not at {SOURCE} (set MLMMJADMIN_SOURCE)")
    peer = MlmmjadminPeer(ldap_server)
    try:
        return peer.start()
    except Exception:
        peer.close()
        raise


@pytest.fixture(scope="module")
def mlmmjadmin(ldap_server):
    """A running mlmmjadmin for the module's tests; stopped and removed after them."""
    peer = start_peer(ldap_server)
    yield peer
    peer.close()
