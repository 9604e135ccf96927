"""Ask the real Postfix and Dovecot what they make of the test directory.

Postfix: ``postmap -q`` against our copies of iRedMail's LDAP lookup tables
(``postfix/*.cf``).  Dovecot: a private Dovecot 2.3 that runs only its auth
server with iRedMail's LDAP passdb/userdb (``dovecot/*``), queried with doveadm.
Both bind as the read-only ``cn=vmail``, as on an iRedMail server.  The
templates carry ``@NAME@`` placeholders that ``render`` fills in.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent
POSTFIX_TEMPLATE_DIR = TEMPLATE_DIR / "postfix"
DOVECOT_TEMPLATE_DIR = TEMPLATE_DIR / "dovecot"
DOVECOT_CONF = "dovecot.conf"
DOVECOT_LDAP_CONF = "dovecot-ldap.conf.ext"

# Programs and LDAP plugins (Debian packages postfix, postfix-ldap, dovecot-core, dovecot-ldap).
PROGRAMS = ("postmap", "dovecot", "doveadm")
LDAP_PLUGINS = (
    Path("/usr/lib/postfix/postfix-ldap.so"),
    Path("/usr/lib/dovecot/modules/auth/libauthdb_ldap.so"),
)
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")

POSTMAP_NOT_FOUND = 1  # with empty output; a failed query also exits 1 but says why on stderr
DOVEADM_AUTH_FAILED = 77  # EX_NOPERM
DOVEADM_USER_UNKNOWN = 67  # EX_NOUSER


class MailStackError(RuntimeError):
    """Postfix or Dovecot failed in a way that is not a plain "no" (broken config, LDAP down...)."""


def find_program(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")


def missing_parts():
    """Programs or LDAP plugins that are not installed (empty when the harness can run)."""
    missing = [name for name in PROGRAMS if find_program(name) is None]
    return missing + [str(path) for path in LDAP_PLUGINS if not path.exists()]


def render(template, values):
    """Fill ``@NAME@`` placeholders from ``values``; an unknown name is an error, not left as is."""

    def value_for(match):
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for placeholder @{name}@")
        return values[name]

    return PLACEHOLDER.sub(value_for, template)


@dataclass(frozen=True)
class LdapTarget:
    """Where, and as whom, Postfix and Dovecot look accounts up."""

    server_uri: str  # ldap://host:port, no trailing slash
    basedn: str  # o=domains,<suffix>
    bind_dn: str  # cn=vmail,<suffix>: read-only
    bind_password: str

    def placeholders(self):
        return {"SERVER_URI": self.server_uri, "BASEDN": self.basedn,
                "BIND_DN": self.bind_dn, "BIND_PW": self.bind_password}


def _write_config(path, text):
    """Write a rendered file: readable by root only (it holds the bind password), and dated a
    minute back: Postfix re-reads a file changed within the last second until it is older
    (about 1.5 s per fresh file)."""
    path.write_text(text)
    path.chmod(0o600)
    an_old_time = time.time() - 60
    os.utime(path, (an_old_time, an_old_time))


class Postfix:
    """Postfix's view of the directory: each lookup runs ``postmap -q`` on one rendered map."""

    def __init__(self, config_dir, ldap):
        self.postmap = find_program("postmap")
        self.config_dir = Path(config_dir)
        self.maps_dir = self.config_dir / "ldap"
        self.maps_dir.mkdir(parents=True, exist_ok=True)
        # postmap reads main.cf from its -c directory; no Postfix daemon ever runs from it.
        _write_config(self.config_dir / "main.cf", "compatibility_level = 3.6\n")
        for template in sorted(POSTFIX_TEMPLATE_DIR.glob("*.cf")):
            _write_config(self.maps_dir / template.name, render(template.read_text(), ldap.placeholders()))

    @property
    def map_names(self):
        return sorted(path.stem for path in self.maps_dir.glob("*.cf"))

    def map_file(self, map_name):
        path = self.maps_dir / f"{map_name}.cf"
        if not path.is_file():
            raise ValueError(f"no Postfix map {map_name!r}; known: {', '.join(self.map_names)}")
        return path

    def lookup(self, map_name, key):
        """Result values for ``key`` (Postfix joins multiple LDAP values with ','), [] when not found."""
        argv = [self.postmap, "-c", str(self.config_dir), "-q", key, f"ldap:{self.map_file(map_name)}"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode == 0 and not result.stderr:
            return result.stdout.rstrip("\n").split(",")
        if result.returncode == POSTMAP_NOT_FOUND and not result.stdout and not result.stderr:
            return []
        reason = result.stderr.strip() or result.stdout
        raise MailStackError(f"postmap -q {key!r} {map_name} exited {result.returncode}: {reason}")


class Dovecot:
    """A private Dovecot 2.3 auth server with iRedMail's LDAP passdb/userdb, driven by doveadm."""

    def __init__(self, directory, ldap, instance_name="iredapi-mailstack"):
        self.dovecot = find_program("dovecot")
        self.doveadm = find_program("doveadm")
        self.directory = Path(directory)
        self.base_dir = self.directory / "run"  # sockets; unix socket paths must stay < 108 bytes
        self.log_path = self.directory / "dovecot.log"
        self.config_path = self.directory / DOVECOT_CONF
        self.process = None
        state_dir = self.directory / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        values = dict(ldap.placeholders(), BASE_DIR=str(self.base_dir), STATE_DIR=str(state_dir),
                      LOG_PATH=str(self.log_path), CONF_DIR=str(self.directory), INSTANCE_NAME=instance_name)
        for name in (DOVECOT_CONF, DOVECOT_LDAP_CONF):
            _write_config(self.directory / name, render((DOVECOT_TEMPLATE_DIR / name).read_text(), values))

    def start(self, timeout=10.0):
        """Run ``dovecot -F`` in the background; return once the auth sockets exist."""
        if self.process is not None:
            return self
        # Errors from before Dovecot opens log_path (a bad config) go to dovecot.out.
        with open(self.directory / "dovecot.out", "ab") as output:
            self.process = subprocess.Popen([self.dovecot, "-F", "-c", str(self.config_path)],
                                            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        sockets = [self.base_dir / "auth-client", self.base_dir / "auth-userdb"]
        deadline = time.monotonic() + timeout
        while not all(path.is_socket() for path in sockets):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise MailStackError(f"dovecot did not start:\n{self.diagnostics()}")
            time.sleep(0.01)
        return self

    def stop(self, timeout=10.0):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the master stops its children
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def diagnostics(self, lines=20):
        """The end of Dovecot's log and startup output, for error messages."""
        text = ""
        for path in (self.directory / "dovecot.out", self.log_path):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text

    def _doveadm(self, *args, password=None):
        if self.process is None:
            raise MailStackError("dovecot is not running: call start() first")
        # Without a controlling terminal doveadm reads the password from stdin, so it never
        # appears in the process list.
        return subprocess.run([self.doveadm, "-c", str(self.config_path), *args], input=password,
                              capture_output=True, text=True, timeout=60, start_new_session=True)

    def auth_ok(self, user, password, service="imap"):
        """True when ``user`` may log in to ``service`` with ``password`` (plaintext, not TLS)."""
        if "\n" in password:
            raise ValueError("password must not contain a newline (it is read as one line)")
        result = self._doveadm("auth", "test", "-x", f"service={service}", user, password=password + "\n")
        if result.returncode == 0:
            return True
        # A refused login says "auth failed"; an LDAP outage says so too, but with code=temp_fail.
        if result.returncode == DOVEADM_AUTH_FAILED and "temp_fail" not in result.stdout:
            return False
        raise MailStackError(f"doveadm auth test {user} exited {result.returncode}: "
                             f"{result.stdout}{result.stderr}\n{self.diagnostics()}")

    def user(self, user, service="imap"):
        """The userdb fields Dovecot gets from LDAP for ``user`` (``-u``: no config defaults),
        or None when the userdb has no such user."""
        if any(char in user for char in "*?"):
            raise ValueError("'*' and '?' make doveadm list users instead of looking one up")
        result = self._doveadm("user", "-u", "-x", f"service={service}", user)
        if result.returncode == DOVEADM_USER_UNKNOWN and "doesn't exist" in result.stdout + result.stderr:
            return None
        if result.returncode != 0:
            raise MailStackError(f"doveadm user {user} exited {result.returncode}: "
                                 f"{result.stdout}{result.stderr}\n{self.diagnostics()}")
        # "userdb: <user>", then one "  <name padded>: <value>" line per field.
        fields = {}
        for line in result.stdout.splitlines():
            if not line.startswith("  "):
                continue
            name, _, value = line.partition(":")
            fields[name.strip()] = value.removeprefix(" ")
        return fields


@dataclass
class MailStack:
    postfix: Postfix
    dovecot: Dovecot
