"""A private slapd under a data folder, for the run command, tests and benchmarks.

The system slapd (if any) is left alone: ours has its own cn=config, database,
port and ldapi socket below ``<data>/slapd``.  Only the system schemas every
iRedMail server has (core, cosine, nis, inetorgperson) are loaded here; the
iRedMail and amavisd schemas come in through ``install_schema`` over ldapi, the
same path an admin uses on a real server.  The database has a rootDN without a
password (as iRedMail's has ``cn=Manager``): nobody binds as it, but the unique
overlay searches as it.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

SYSTEM_SCHEMA_DIR = Path("/etc/ldap/schema")
SYSTEM_SCHEMAS = ("core.ldif", "cosine.ldif", "nis.ldif", "inetorgperson.ldif")
MODULE_PATH = "/usr/lib/ldap"
DATABASE = "olcDatabase={1}mdb,cn=config"


def default_root_dn(suffix):
    return f"cn=Manager,{suffix}"


def peercred_dn(uid=None, gid=None):
    """The identity slapd gives a local process that binds with SASL EXTERNAL."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    return f"gidNumber={gid}+uidNumber={uid},cn=peercred,cn=external,cn=auth"


def config_ldif(suffix, db_directory, *, root_dn=None, root_pw=None, pid_file=None,
                max_size=4 * 1024 ** 3, log_level="0", tls=None):
    """cn=config for one mdb database; the local peer (our uid) may manage both.

    ``tls`` = (certificate file, key file) lets clients use StartTLS.
    """
    manager = peercred_dn()
    lines = [
        "dn: cn=config", "objectClass: olcGlobal", "cn: config", f"olcLogLevel: {log_level}",
        "olcDisallows: bind_anon", "olcRequires: LDAPv3",
    ]
    if pid_file:
        lines.append(f"olcPidFile: {pid_file}")
    if tls:
        lines += [f"olcTLSCertificateFile: {tls[0]}", f"olcTLSCertificateKeyFile: {tls[1]}"]
    lines += [
        "", "dn: cn=module,cn=config", "objectClass: olcModuleList", "cn: module",
        f"olcModulePath: {MODULE_PATH}", "olcModuleLoad: back_mdb",
        "", "dn: cn=schema,cn=config", "objectClass: olcSchemaConfig", "cn: schema",
        "", "dn: olcDatabase={0}config,cn=config", "objectClass: olcDatabaseConfig", "olcDatabase: {0}config",
        f'olcAccess: {{0}}to * by dn.exact="{manager}" manage by * none',
        "", f"dn: {DATABASE}", "objectClass: olcDatabaseConfig", "objectClass: olcMdbConfig",
        "olcDatabase: {1}mdb", f"olcSuffix: {suffix}", f"olcDbDirectory: {db_directory}",
        f"olcDbMaxSize: {max_size}", "olcSizeLimit: unlimited", "olcDbIndex: objectClass eq",
        f'olcAccess: {{0}}to * by dn.exact="{manager}" manage by * break',
        "olcAccess: {1}to * by anonymous auth by self write by users read",
    ]
    if root_dn:
        lines.append(f"olcRootDN: {root_dn}")
    if root_pw:
        lines.append(f"olcRootPW: {root_pw}")
    return "\n".join(lines) + "\n"


class LocalSlapdError(RuntimeError):
    """slapd is missing, could not be configured, or did not start."""


def die_with_parent():
    """A ``preexec_fn``: the child gets SIGTERM when the process that started it
    dies, even by SIGKILL (Linux only; elsewhere a no-op)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def ldapi_uri(socket_path):
    return "ldapi://" + quote(str(socket_path), safe="")


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalSlapd:
    """slapd with its config and data in ``directory`` (created on first start)."""

    def __init__(self, directory, suffix, port=None, host="127.0.0.1", die_with_parent=False):
        self.directory = Path(directory).resolve()
        self.suffix = suffix
        self.host = host
        self.port = port or free_port(host)
        self.config_dir = self.directory / "slapd.d"
        self.data_dir = self.directory / "data"
        self.pid_file = self.directory / "slapd.pid"
        # AF_UNIX paths are limited to ~108 bytes; fall back to /tmp for deep folders.
        socket_path = self.directory / "ldapi"
        if len(str(socket_path)) > 100:
            socket_path = Path(tempfile.gettempdir()) / f"iredapi-slapd-{self.port}.ldapi"
        self.socket_path = socket_path
        self.die_with_parent = die_with_parent
        self.process = None

    @property
    def ldap_uri(self):
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldapi_uri(self):
        return ldapi_uri(self.socket_path)

    def configure(self):
        """Write cn=config once (kept across restarts, like a real server's).

        It is built in a side folder and renamed into place, so a set-up that
        fails half-way is redone on the next start instead of leaving a
        cn=config that slapd cannot read.
        """
        if self.config_dir.exists():
            self._add_root_dn()
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        slapadd = _sbin("slapadd")
        building = self.directory / "slapd.d.new"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        ldif = config_ldif(self.suffix, self.data_dir, root_dn=default_root_dn(self.suffix), pid_file=self.pid_file)
        _run([slapadd, "-n0", "-F", str(building)], ldif)
        for schema in SYSTEM_SCHEMAS:
            _run([slapadd, "-n0", "-F", str(building), "-l", str(SYSTEM_SCHEMA_DIR / schema)])
        building.rename(self.config_dir)
        return True

    def _add_root_dn(self):
        """A folder made before the database had a rootDN gets one (slapd is not running yet)."""
        database_file = self.config_dir / "cn=config" / (DATABASE.split(",", 1)[0] + ".ldif")
        if not database_file.is_file() or "\nolcRootDN:" in database_file.read_text():
            return
        _run([_sbin("slapmodify"), "-n0", "-F", str(self.config_dir)],
             f"dn: {DATABASE}\nchangetype: modify\nadd: olcRootDN\nolcRootDN: {default_root_dn(self.suffix)}\n")

    def stop_stale(self, timeout=10):
        """Stop a slapd left running on this folder by an earlier run that was
        killed (its pid file names a live slapd started with our cn=config)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if str(self.config_dir).encode() not in cmdline or not any(
                Path(arg.decode(errors="replace")).name == "slapd" for arg in cmdline[:1]):
            return None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        return pid

    def start(self, timeout=15):
        self.stop_stale()  # before configure, which may change cn=config offline
        self.configure()
        slapd = _sbin("slapd")
        if port_open(self.host, self.port):
            raise LocalSlapdError(f"port {self.host}:{self.port} is taken by another program")
        if self.socket_path.exists():
            self.socket_path.unlink()
        urls = f"ldap://{self.host}:{self.port}/ {self.ldapi_uri}"
        self.process = subprocess.Popen(
            [slapd, "-F", str(self.config_dir), "-h", urls, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent if self.die_with_parent else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                message = self.process.stderr.read().decode(errors="replace").strip()
                self.process = None
                raise LocalSlapdError(f"slapd exited at start: {message or 'no message'}")
            if self.socket_path.exists() and port_open(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise LocalSlapdError(f"slapd did not answer on {self.ldap_uri} within {timeout}s")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


def _sbin(name):
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin")
    if found is None:
        raise LocalSlapdError(f"{name} not found: install Debian's slapd package (apt-get install slapd ldap-utils)")
    return found


def _run(argv, stdin_text=None):
    result = subprocess.run(argv, input=stdin_text, text=True, capture_output=True)
    if result.returncode != 0:
        raise LocalSlapdError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
