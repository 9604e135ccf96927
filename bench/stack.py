"""The system under test: a private slapd (LocalSlapd, configured as `iredapi-ldap dev`
configures it), the API under gunicorn with the project's gunicorn.conf.py, and a small
HTTP client for set-up."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import ldap3

from iredapi_ldap.cli import _dev_settings, _gunicorn_dev_options, _write_private
from iredapi_ldap.directory import setup as directory_setup
from iredapi_ldap.directory.passwords import hash_password
from iredapi_ldap.directory.setup import open_external
from iredapi_ldap.localslapd import LocalSlapd, _sbin, free_port, peercred_dn
from iredapi_ldap.settings import load_settings

from . import procstat

PROJECT_DIR = Path(__file__).resolve().parents[1]
SUFFIX = "dc=example,dc=com"
ADMIN = "postmaster@example.com"
ADMIN_PASSWORD = "Bench-Admin-Pass-1!"
COOKIE = "iRedAdmin-LDAP"
USER_PASSWORD = "Bench-User-Pass-1!"


class Slapd:
    """LocalSlapd plus the bench's extras: cn=Monitor (operation counters) and tool threads."""

    def __init__(self, data):
        self.data = data
        self.local = LocalSlapd(data / "slapd", SUFFIX, die_with_parent=True)
        self.monitor_ok = False

    @property
    def uri(self):
        return self.local.ldap_uri

    @property
    def pid(self):
        return self.local.process.pid if self.local.process else None

    def start(self):
        self.local.start()
        return self

    def stop(self):
        self.local.stop()

    def external(self):
        return open_external(self.local.ldapi_uri)

    def install(self, settings):
        """Schema and indexes (install_schema), tree and first admin (bootstrap_tree),
        exactly as `iredapi-ldap dev` does; then cn=Monitor for operation counts."""
        conn = self.external()
        try:
            directory_setup.install_schema(conn, SUFFIX)
            directory_setup.bootstrap_tree(
                conn, settings,
                vmail_password_hash=hash_password("Bench-Vmail-1!", "SSHA"),
                vmailadmin_password_hash=hash_password(settings.ldap_bind_password, "SSHA"),
                admin_mail=ADMIN,
                admin_password_hash=hash_password(ADMIN_PASSWORD, settings.DEFAULT_PASSWORD_SCHEME),
                manager_identities=[peercred_dn(0, 0)] + ([peercred_dn()] if os.getuid() else []),
            )
            # slapadd indexes with olcToolThreads threads (default 1): use both cores.
            conn.modify("cn=config", {"olcToolThreads": [(ldap3.MODIFY_REPLACE, ["2"])]})
            self.monitor_ok = self._add_monitor(conn)
        finally:
            conn.unbind()

    def _add_monitor(self, conn):
        """Load back_monitor so the bench can count slapd's operations (a cross-check of
        the X-Directory-Round-Trips header).  Not part of the API's configuration."""
        status, result, response, _ = conn.search("cn=config", "(objectClass=olcModuleList)",
                                                   search_scope=ldap3.LEVEL, attributes=["olcModuleLoad"])
        module_dn = response[0]["dn"]
        loaded = " ".join(str(v) for v in response[0]["attributes"].get("olcModuleLoad", []))
        if "back_monitor" not in loaded:
            conn.modify(module_dn, {"olcModuleLoad": [(ldap3.MODIFY_ADD, ["back_monitor"])]})
        status, result, _, _ = conn.add("olcDatabase=monitor,cn=config", attributes={
            "objectClass": ["olcDatabaseConfig"], "olcDatabase": ["monitor"],
            "olcAccess": [f'to * by dn.exact="{peercred_dn()}" read by * none'],
        })
        return result["result"] in (0, 68)

    def operations(self):
        """{"search": n, "modify": n, ...} operations slapd has completed, or {}."""
        if not self.monitor_ok:
            return {}
        conn = self.external()
        try:
            status, result, response, _ = conn.search(
                "cn=Operations,cn=Monitor", "(objectClass=*)", search_scope=ldap3.LEVEL,
                attributes=["monitorOpCompleted"])
        finally:
            conn.unbind()
        out = {}
        for item in response or []:
            if item.get("type") != "searchResEntry":
                continue
            name = item["dn"].split(",", 1)[0].split("=", 1)[1].lower()
            values = item["raw_attributes"].get("monitorOpCompleted") or [b"0"]
            out[name] = int(values[0])
        return out

    def database_bytes(self):
        path = self.local.data_dir / "data.mdb"
        return path.stat().st_blocks * 512 if path.exists() else 0  # used, not the sparse olcDbMaxSize

    def slapadd(self, ldif_path):
        """Offline bulk add (slapd must be stopped): -q skips the consistency checks a
        freshly generated file does not need; indexes are built as entries go in."""
        result = subprocess.run([_sbin("slapadd"), "-q", "-F", str(self.local.config_dir), "-b", SUFFIX,
                                 "-l", str(ldif_path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"slapadd failed: {result.stderr.strip()[-2000:]}")


def write_settings(data, slapd, *, name="settings.py", sql_url=None):
    """The run command's settings file (cli._dev_settings), plus SQL URLs for MariaDB runs."""
    text = _dev_settings(data, SUFFIX, slapd.local.port, "Bench-Vmailadmin-1!")
    if sql_url:
        text += f'iredadmin_db_url = "{sql_url("admin")}"\niredapd_db_url = "{sql_url("apd")}"\n'
    path = data / name
    _write_private(path, text)
    return path


def settings_from(path):
    return load_settings(str(path), environ={})


class Gunicorn:
    """The API as deployed: gunicorn -c gunicorn.conf.py (gthread), workers x threads."""

    def __init__(self, data, settings_file, workers, threads, label, extra_args=(), project_dir=PROJECT_DIR):
        self.data = data
        self.settings_file = settings_file
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.label = label
        self.extra_args = [arg for arg in extra_args if arg]
        self.project_dir = Path(project_dir)
        self.process = None
        self.log_path = data / f"gunicorn-{label}.log"

    def start(self, timeout=30):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IREDAPI_", "GUNICORN_", "WEB_CONCURRENCY"))}
        env.update({"IREDAPI_SETTINGS": str(self.settings_file), "WEB_CONCURRENCY": str(self.workers),
                    "IREDAPI_THREADS": str(self.threads)})
        if self.project_dir != PROJECT_DIR:  # another checkout's code and gunicorn.conf.py
            env["PYTHONPATH"] = str(self.project_dir)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(self.project_dir / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{self.port}",
             *_gunicorn_dev_options(), *self.extra_args],
            cwd=self.project_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start; see {self.log_path}")
            try:
                status, _, _ = Api(self.port).request("GET", "/api/domains")
                if status == 401 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s; see {self.log_path}")

    def worker_pids(self):
        return procstat.children(self.process.pid) if self.process else []

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


class Api:
    """A keep-alive HTTP client for set-up requests (not the load generator)."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token
        self._conn = None

    def request(self, method, path, form=None, timeout=120):
        headers = {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.token:
            headers["Cookie"] = f"{COOKIE}={self.token}"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                return response.status, dict(response.getheaders()), data
            except (http.client.HTTPException, OSError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise

    def call(self, method, path, form=None, ok=(200, 201)):
        status, headers, body = self.request(method, path, form)
        if status not in ok:
            raise RuntimeError(f"{method} {path} -> {status} {body[:300]!r}")
        return json.loads(body) if body else None

    def login(self, username=ADMIN, password=ADMIN_PASSWORD):
        status, headers, body = self.request("POST", "/api/login", {"username": username, "password": password})
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body!r}")
        cookie = next(v for k, v in headers.items() if k.lower() == "set-cookie")
        self.token = cookie.split(";", 1)[0].split("=", 1)[1]
        return self.token

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None
