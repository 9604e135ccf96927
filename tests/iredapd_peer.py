"""The real iRedAPD 6.1 as a test peer: it reads the rows our API writes and answers policy
requests as Postfix asks them.

``iredapd_peer`` (one per test session, i.e. per xdist worker) copies the unmodified daemon
from ../shared/upstream/iRedAPD-6.1 to a temporary folder, creates its two databases on
MariaDB from the upstream DDL (iRedAPD's LDAP backend reaches SQL through MySQL drivers only,
and wants a password: a dedicated MariaDB user gets one), writes its settings.py (LDAP
backend on the test slapd as cn=vmail; plugins greylisting, throttle, amavisd_wblist,
ldap_maillist_access_policy) and
runs ``iredapd.py --foreground`` with this interpreter.  Tests build their app on the same
databases (``peer.app_settings``) and ask with ``peer.ask(...)``.

MariaDB unreachable or ../shared absent: the tests skip, or fail with IREDAPI_TEST_REQUIRE_SQL=1
(sql_backends).
"""

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from tests.sql_backends import REPO, admin_engine, skip_unless_required

UPSTREAM = REPO.parent / "shared" / "upstream"
IREDAPD_DIR = UPSTREAM / "iRedAPD-6.1"
IREDAPD_DDL = UPSTREAM / "iredapd" / "iredapd.mysql"
MAX_RCPTS_DDL = UPSTREAM / "iredapd" / "5.0-max_rcpts.mysql"
AMAVISD_DDL = UPSTREAM / "amavisd" / "amavisd.mysql"
# ldap_maillist_access_policy: mail to lists (accountStatus, accessPolicy; test_mlmmj_lists.py).
# It answers DUNNO for any recipient that is no list, so the other plugins' tests see no change.
PLUGINS = ["greylisting", "throttle", "amavisd_wblist", "ldap_maillist_access_policy"]
# A client that is no trusted network of iRedAPD's (MYNETWORKS is empty; 127.0.0.1 is always trusted).
CLIENT = "203.0.113.10"


def sql_statements(text):
    """The statements of a MySQL script, honouring the mysql client's DELIMITER lines
    (Amavisd's DDL creates a trigger with them)."""
    text = re.sub(r"--[^\n]*", "", text)
    statements, current, delimiter = [], [], ";"
    for line in text.splitlines():
        match = re.match(r"\s*DELIMITER\s+(\S+)\s*$", line, re.IGNORECASE)
        if match:
            delimiter = match.group(1)
            continue
        current.append(line)
        joined = "\n".join(current)
        while delimiter in joined:
            statement, joined = joined.split(delimiter, 1)
            if statement.strip():
                statements.append(statement.strip())
        current = [joined] if joined.strip() else []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


def run_mysql_script(url, path):
    """Run a MySQL script with the plain driver: no parameter substitution touches its '%'."""
    url = sa.make_url(url)
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                           database=url.database, autocommit=True)
    try:
        with conn.cursor() as cursor:
            for statement in sql_statements(Path(path).read_text()):
                cursor.execute(statement)
    finally:
        conn.close()


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class IredapdPeer:
    port: int
    iredapd_url: str  # SQLAlchemy URLs of its databases, as our app reaches them
    amavisd_url: str
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    tree: Path = None  # the daemon's folder (its tools/ run from there)

    @property
    def app_settings(self):
        """make_app() settings that put our app on iRedAPD's databases (Amavisd's where the
        app has that setting)."""
        from iredapi_ldap.settings import DEFAULTS

        settings = {"iredapd_db_url": self.iredapd_url}
        if "amavisd_db_url" in DEFAULTS:
            settings["amavisd_db_url"] = self.amavisd_url
        return settings

    def ask(self, **attrs):
        """Send one SMTP access policy request as Postfix does; return iRedAPD's action, e.g.
        "DUNNO", "451 4.7.1 ..." or "REJECT ...".  Defaults: protocol_state RCPT, an
        untrusted client, no SASL login."""
        request = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
                   "client_address": CLIENT, "client_name": "unknown", "reverse_client_name": "unknown",
                   "helo_name": "mail.example.net", "sender": "", "recipient": "", "recipient_count": "0",
                   "queue_id": "", "instance": secrets.token_hex(4), "size": "1024", "sasl_username": "",
                   "sasl_method": "", "encryption_protocol": "", "etrn_domain": "", "stress": ""}
        request.update({name: str(value) for name, value in attrs.items()})
        payload = "".join(f"{name}={value}\n" for name, value in request.items()) + "\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as sock:
            sock.sendall(payload.encode())
            answer = b""
            while not answer.endswith(b"\n\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        for line in answer.decode().splitlines():
            if line.startswith("action="):
                return line[len("action="):]
        raise AssertionError(f"no action in iRedAPD's answer {answer!r}; log: {self.log_tail()}")

    def tool(self, script, *args):
        """Run one of iRedAPD's own admin tools (e.g. "greylisting_admin.py") on its databases;
        its output."""
        return self._run(f"tools/{script}", *args)

    def python(self, code):
        """Run ``code`` in iRedAPD's folder (its ``libs`` importable, its settings loaded)."""
        return self._run("-c", code)

    def _run(self, *args):
        result = subprocess.run([sys.executable, *args], cwd=self.tree, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _settings_py(ldap_server, ports, pid_file, db_url, iredapd_db, amavisd_db):
    values = {
        "listen_address": "127.0.0.1", "listen_port": ports[0], "srs_forward_port": ports[1],
        "srs_reverse_port": ports[2], "srs_secrets": [], "srs_domain": "",
        "run_as_user": __import__("pwd").getpwuid(os.getuid()).pw_name, "pid_file": pid_file,
        "log_level": "debug", "backend": "ldap", "plugins": PLUGINS,
        "ldap_uri": ldap_server.ldap_uri, "ldap_basedn": ldap_server.basedn, "ldap_binddn": ldap_server.vmail_dn,
        "ldap_bindpw": ldap_server.vmail_password, "ldap_enable_tls": False,
        "SQL_DB_DRIVER": "pymysql",
        # No DNS in tests: greylisting would otherwise let a sender's SPF-listed servers pass.
        "GREYLISTING_BYPASS_SPF": False,
    }
    for prefix, name in (("iredapd", iredapd_db), ("amavisd", amavisd_db)):
        values.update({f"{prefix}_db_server": db_url.host or "127.0.0.1", f"{prefix}_db_port": str(db_url.port or 3306),
                       f"{prefix}_db_name": name, f"{prefix}_db_user": db_url.username,
                       f"{prefix}_db_password": db_url.password})
    lines = ["from libs.default_settings import *  # noqa"] + [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def iredapd_peer(ldap_server):
    if not IREDAPD_DIR.is_dir():
        # CI has ../shared beside the checkout (and sets IREDAPI_TEST_REQUIRE_SQL): fail there.
        skip_unless_required(f"{IREDAPD_DIR} absent: the iRedAPD tests need ../shared beside the checkout")
    admin = admin_engine("mariadb")  # skips (or fails under IREDAPI_TEST_REQUIRE_SQL=1) if MariaDB is down
    token = secrets.token_hex(5)
    iredapd_db, amavisd_db, db_user = f"iredapi_apd_{token}", f"iredapi_amv_{token}", f"iredapi_apd_{token}"
    db_password = secrets.token_urlsafe(16)
    workdir = Path(tempfile.mkdtemp(prefix="iredapi-iredapd-", dir="/tmp"))
    process = None
    log = None
    try:
        with admin.connect() as conn:
            for name in (iredapd_db, amavisd_db):
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            for host in ("%", "localhost"):
                conn.execute(sa.text(f"CREATE USER '{db_user}'@'{host}' IDENTIFIED BY :password"),
                             {"password": db_password})
                for name in (iredapd_db, amavisd_db):
                    conn.execute(sa.text(f"GRANT ALL ON {name}.* TO '{db_user}'@'{host}'"))
        base = sa.make_url(admin.url).set(username=db_user, password=db_password)  # the server tests use
        iredapd_url = base.set(database=iredapd_db).render_as_string(hide_password=False)
        amavisd_url = base.set(database=amavisd_db).render_as_string(hide_password=False)
        run_mysql_script(iredapd_url, IREDAPD_DDL)
        engine = sa.create_engine(iredapd_url)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("throttle")}
        engine.dispose()
        if "max_rcpts" not in columns:
            run_mysql_script(iredapd_url, MAX_RCPTS_DDL)
        run_mysql_script(amavisd_url, AMAVISD_DDL)

        tree = workdir / "iRedAPD"
        shutil.copytree(IREDAPD_DIR, tree)
        ports = free_ports(3)
        (tree / "settings.py").write_text(_settings_py(ldap_server, ports, str(workdir / "iredapd.pid"), base,
                                                       iredapd_db, amavisd_db))
        log_path = workdir / "iredapd.log"
        log = open(log_path, "wb")  # noqa: SIM115 (open while the daemon runs)
        process = subprocess.Popen([sys.executable, "iredapd.py", "--foreground"], cwd=tree, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        peer = IredapdPeer(ports[0], iredapd_url, amavisd_url, log_path, process, tree)
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"iRedAPD exited with {process.returncode}:\n{peer.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", ports[0]), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"iRedAPD did not listen on {ports[0]} within 30 s:\n{peer.log_tail()}")
                time.sleep(0.1)
        yield peer
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log is not None:
            log.close()
        shutil.rmtree(workdir, ignore_errors=True)
        with admin.connect() as conn:
            for name in (iredapd_db, amavisd_db):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            for host in ("%", "localhost"):
                conn.execute(sa.text(f"DROP USER IF EXISTS '{db_user}'@'{host}'"))
