"""The ``iredapi-ldap`` command.

  serve           run the API through gunicorn (settings in iredapi_ldap/gunicorn_conf.py)
  schema-install  load our iRedMail and amavisd schemas, pw-sha2, indexes and the unique overlay into slapd
  check           tell what schema-install would still add (exit 1 if anything)
  bootstrap       create the base tree, service accounts and a first global admin
  sql-setup       create our SQL tables (with --iredapd iRedAPD's throttle tables, with --amavisd
                  Amavisd's policy and white/blacklist tables)
  recount         recount the domains' account and quota counters (after other tools changed them)
  dev             private slapd + schema + tree + embedded SQLite + the API, in one folder

Errors are one line on stderr; exit code 2 for bad usage or settings, 1 for a failure
on the way.  With LOG_LEVEL = "DEBUG" (or IREDAPI_LOG_LEVEL=DEBUG) the traceback is shown.
"""

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .errors import NO_SUCH_DOMAIN, ApiError
from .settings import ENV_PREFIX, SETTINGS_ENV, SettingsError, load_settings

# A module, not a file beside the package: an installed copy has it too.
GUNICORN_CONF = "python:iredapi_ldap.gunicorn_conf"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="iredapi-ldap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help=f"settings file (default: ${SETTINGS_ENV})")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API with gunicorn")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER, help="passed to gunicorn, e.g. --bind")

    schema = sub.add_parser("schema-install", help="install the schema into a running slapd")
    schema.add_argument("--ldapi", default="ldapi:///", help="slapd's ldapi URI (SASL EXTERNAL)")

    check = sub.add_parser("check", help="tell whether slapd is set up as schema-install leaves it")
    check.add_argument("--ldapi", default="ldapi:///", help="slapd's ldapi URI (SASL EXTERNAL)")

    boot = sub.add_parser("bootstrap", help="create the base tree and a first global admin")
    boot.add_argument("--ldapi", default="ldapi:///", help="slapd's ldapi URI (SASL EXTERNAL)")
    boot.add_argument("--admin", help="address of the first global admin, e.g. postmaster@example.com")
    boot.add_argument("--vmail-password", help="password of cn=vmail (read-only bind DN); random if absent")

    sql = sub.add_parser("sql-setup", help="create missing SQL tables")
    sql.add_argument("--iredapd", action="store_true", help="also iRedAPD's throttle tables")
    sql.add_argument("--amavisd", action="store_true", help="also Amavisd's policy and white/blacklist tables")

    recount = sub.add_parser("recount", help="recount domainCurrent* counters from the directory")
    recount.add_argument("domains", nargs="*", help="domain names (default: every domain)")
    recount.add_argument("--settle", type=float, default=2.0, metavar="SECONDS",
                         help="write a difference only if it is still there this much later (default 2)")

    dev = sub.add_parser("dev", help="run a private slapd and the API from one data folder")
    dev.add_argument("--data", default="data", help="data folder (default ./data)")
    dev.add_argument("--bind", default="127.0.0.1:7791")
    dev.add_argument("--suffix", default="dc=example,dc=com")
    dev.add_argument("--no-serve", action="store_true", help="set everything up, start nothing")

    argv = list(sys.argv[1:] if argv is None else argv)
    gunicorn_args = _split_serve_args(argv)  # `serve --bind …`: argparse would refuse --bind
    args = parser.parse_args(argv)
    if args.command == "serve":
        args.gunicorn_args = gunicorn_args
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _show_traceback(args):
            raise
        code, message = _error(exc)
        print(f"iredapi-ldap {args.command}: {message}", file=sys.stderr)
        return code


def _error(exc):
    """Exit code and one line for what a command raised."""
    from .directory.setup import SetupError
    from .localslapd import LocalSlapdError

    if isinstance(exc, SettingsError):
        code, text = 2, str(exc)
    elif isinstance(exc, ApiError):  # bad input on the command line, or the directory is down
        code, text = (2 if exc.status < 500 else 1), str(exc)
    elif isinstance(exc, (LocalSlapdError, SetupError)):
        code, text = 1, str(exc)
    else:  # a failure we did not foresee: its type says more than a bare message
        code = 1
        text = f"{type(exc).__name__}: {exc} ({ENV_PREFIX}LOG_LEVEL=DEBUG shows the traceback)"
    return code, " ".join(text.split())


def _show_traceback(args):
    settings = getattr(args, "settings", None)
    level = settings.LOG_LEVEL if settings else os.environ.get(ENV_PREFIX + "LOG_LEVEL", "")
    return str(level).upper() == "DEBUG"


def _split_serve_args(argv):
    """Cut what follows ``serve`` off ``argv`` and return it (gunicorn's arguments)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--config":
            i += 2
            continue
        if argv[i] == "serve":
            rest = argv[i + 1:]
            del argv[i + 1:]
            return [a for a in rest if a != "--"]
        if not argv[i].startswith("-"):
            return []  # another command
        i += 1
    return []


def _settings(args):
    args.settings = load_settings(args.config)  # kept for _show_traceback
    return args.settings


def cmd_serve(args):
    if args.config:
        os.environ[SETTINGS_ENV] = str(Path(args.config).resolve())
    _settings(args)  # fail fast, with the setting's name, before gunicorn forks
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, *args.gunicorn_args])


def cmd_schema_install(args):
    from .directory import setup
    from .directory.setup import open_external

    settings = _settings(args)
    conn = open_external(args.ldapi)
    try:
        changed = setup.install_schema(conn, settings.ldap_suffix, basedn=settings.ldap_basedn)
    finally:
        conn.unbind()
    print("schema: " + (", ".join(changed) if changed else "already installed"))
    return 0


def cmd_check(args):
    """Without the unique overlay, concurrent creates of one address can all succeed."""
    from .directory import setup

    settings = _settings(args)
    conn = setup.open_external(args.ldapi)
    try:
        missing = setup.install_schema(conn, settings.ldap_suffix, basedn=settings.ldap_basedn, dry_run=True)
    finally:
        conn.unbind()
    if missing:
        print(f"check: missing: {', '.join(missing)} (iredapi-ldap schema-install adds them)")
        return 1
    print("check: schema, modules, indexes and the unique overlay are in place")
    return 0


def cmd_bootstrap(args, admin_password=None, quiet=False):
    """Create what is missing of the tree; returns the list of what it created.

    The first global admin's password is printed (``quiet``: not printed, the
    caller keeps it); an existing admin keeps its password.
    """
    from .directory import setup
    from .directory.passwords import hash_password
    from .directory.setup import open_external
    from .localslapd import peercred_dn

    settings = _settings(args)
    if not settings.ldap_bind_password:
        raise SettingsError("setting ldap_bind_password: empty; cn=vmailadmin (ldap_bind_dn) needs the "
                            "password the API binds with, set it in the settings file first")
    vmail_password = args.vmail_password or secrets.token_urlsafe(18)
    if args.admin:
        admin_password = admin_password or (secrets.token_urlsafe(12) + "-Aa1")
    conn = open_external(args.ldapi)
    try:
        changed = setup.bootstrap_tree(
            conn, settings,
            vmail_password_hash=hash_password(vmail_password, "SSHA"),
            vmailadmin_password_hash=hash_password(settings.ldap_bind_password, "SSHA"),
            admin_mail=args.admin,
            admin_password_hash=hash_password(admin_password, settings.DEFAULT_PASSWORD_SCHEME)
            if args.admin else None,
            manager_identities=[peercred_dn(0, 0)] + ([peercred_dn()] if os.getuid() else []),
        )
    finally:
        conn.unbind()
    print("bootstrap: " + (", ".join(changed) if changed else "tree already complete"))
    if not quiet and not args.vmail_password and f"cn=vmail,{settings.ldap_suffix}" in changed:
        print(f"cn=vmail (Postfix's and Dovecot's bind DN) password: {vmail_password}")
    if args.admin and not quiet and any(args.admin in item for item in changed):
        print(f"first global admin: {args.admin} password: {admin_password}")
    return changed


def cmd_sql_setup(args):
    from .settings import sql_url
    from .store.engine import SqlStore
    from .store.schema import create_tables
    from .store.tables import iredadmin_metadata, iredapd_metadata

    settings = _settings(args)
    create_tables(SqlStore(sql_url(settings, "iredadmin"), settings.SQL_TIMEOUT), iredadmin_metadata)
    if args.iredapd:
        create_tables(SqlStore(sql_url(settings, "iredapd"), settings.SQL_TIMEOUT), iredapd_metadata)
    if args.amavisd:
        from .store.tables import amavisd_metadata

        create_tables(SqlStore(sql_url(settings, "amavisd"), settings.SQL_TIMEOUT), amavisd_metadata)
    print("sql: tables present")
    return 0


def cmd_recount(args):
    """Counters drift only when other tools (iRedAdmin's read-then-replace, hand
    edits) change a domain, a request died between reserving and writing, or a write
    that answered 503 was carried out when slapd came back.  Safe to run periodically
    on a live server (``--settle``); contrib/systemd has a timer."""
    from . import addresses
    from .directory import domains as domain_directory
    from .directory import limits
    from .directory.base import Directory

    settings = _settings(args)
    directory = Directory.from_settings(settings)
    domains = [addresses.domain_name(d) for d in args.domains] or sorted(
        entry.first("domainName") for entry in domain_directory.list_domains(directory, attributes=["domainName"]))
    status = 0
    for domain in domains:
        try:
            counted = limits.recount(directory, domain, settle_seconds=args.settle)
        except ApiError as exc:  # one domain's failure must not stop a periodic run over all of them
            if exc.code == NO_SUCH_DOMAIN and not args.domains:
                continue  # deleted since the listing
            print(f"iredapi-ldap: {domain}: {exc}", file=sys.stderr)
            status = max(status, 2 if exc.status < 500 else 1)
            continue
        print(f"{domain}: {counted[limits.USERS]} users, {counted[limits.ALIASES]} aliases, "
              f"{counted[limits.LISTS]} lists, {counted[limits.QUOTA_BYTES]} bytes of quota")
    directory.close()
    return status


def cmd_dev(args):
    """Everything in ``--data``: slapd's config and database, settings.py, SQLite files.

    The first run creates the folder, a settings file, slapd's cn=config, the
    tree and a global admin (its password goes to admin-credentials.txt); later
    runs reuse all of it.  Ctrl-C (or SIGTERM/SIGHUP) stops gunicorn and slapd.
    """
    from .localslapd import LocalSlapd, die_with_parent, free_port, port_open

    started = time.monotonic()
    data = Path(args.data).resolve()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)  # password hashes live here
    settings_file = data / "settings.py"
    credentials_file = data / "admin-credentials.txt"
    if not settings_file.exists():
        _write_private(settings_file, _dev_settings(data, args.suffix, free_port(), secrets.token_urlsafe(18)))
    args.config = str(settings_file)
    settings = _settings(args)
    slapd = LocalSlapd(data / "slapd", settings.ldap_suffix, port=_ldap_port(settings.ldap_uri), die_with_parent=True)
    slapd.stop_stale()
    if port_open(slapd.host, slapd.port):
        # Another program took the port since the last run: move to a free one.
        new_uri = f"ldap://127.0.0.1:{free_port()}"
        _write_private(settings_file, settings_file.read_text().replace(settings.ldap_uri, new_uri))
        print(f"slapd: port {slapd.port} is taken, moving to {new_uri}")
        settings = _settings(args)
        slapd = LocalSlapd(data / "slapd", settings.ldap_suffix, port=_ldap_port(settings.ldap_uri),
                           die_with_parent=True)
    with _stop_signals():
        try:
            slapd.start()
            args.ldapi = slapd.ldapi_uri
            cmd_schema_install(args)
            admin = "postmaster@" + ".".join(p.split("=", 1)[1] for p in settings.ldap_suffix.split(","))
            args.admin, args.vmail_password = admin, None
            admin_password = secrets.token_urlsafe(12) + "-Aa1"
            created = cmd_bootstrap(args, admin_password=admin_password, quiet=True)
            if any(admin in item for item in created):
                _write_private(credentials_file, f"{admin} {admin_password}\n")
            _sql_setup(settings)
            print(f"slapd: {slapd.ldap_uri} (data in {slapd.directory})")
            if credentials_file.exists():
                print(f"admin credentials ({credentials_file}): {credentials_file.read_text().strip()}")
            else:
                print(f"admin credentials: {credentials_file} is missing; {admin} exists already "
                      f"(remove {data} to start afresh)")
            print(f"set-up took {time.monotonic() - started:.1f}s")
            if args.no_serve:
                return 0
            env = dict(os.environ, **{SETTINGS_ENV: str(settings_file)})
            print(f"serving the API on http://{args.bind}/api/ (Ctrl-C stops it and slapd)", flush=True)
            gunicorn = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "--bind", args.bind,
                 *_gunicorn_dev_options()], env=env, preexec_fn=die_with_parent)
            try:
                return gunicorn.wait()
            except KeyboardInterrupt:
                if gunicorn.poll() is None:
                    gunicorn.send_signal(signal.SIGTERM)
                try:
                    return gunicorn.wait(35)
                except subprocess.TimeoutExpired:
                    gunicorn.kill()
                    return gunicorn.wait()
        except KeyboardInterrupt:
            return 130
        finally:
            slapd.stop()


def _ldap_port(uri):
    return int(uri.rstrip("/").rsplit(":", 1)[1])


def _write_private(path, text):
    """Write a file only its owner can read (it holds passwords), from the start."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _sql_setup(settings):
    """Create the SQLite tables once here, not in each gunicorn worker at once."""
    from .settings import sql_url
    from .store.engine import SqlStore
    from .store.schema import create_tables
    from .store.tables import iredadmin_metadata

    create_tables(SqlStore(sql_url(settings, "iredadmin"), settings.SQL_TIMEOUT), iredadmin_metadata)


def _gunicorn_dev_options():
    """gunicorn >= 24 opens a control socket in ~/.gunicorn, shared by every
    instance of the user; a dev server needs none."""
    from gunicorn.config import Config

    return ["--no-control-socket"] if "control_socket" in Config().settings else []


@contextlib.contextmanager
def _stop_signals():
    """SIGTERM and SIGHUP end ``dev`` like Ctrl-C does: through ``finally``, so
    slapd and gunicorn are stopped instead of being left behind."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dev_settings(data, suffix, port, vmailadmin_password):
    return f'''# Settings of a local development server made by `iredapi-ldap dev`.
ldap_uri = "ldap://127.0.0.1:{port}"
ldap_basedn = "o=domains,{suffix}"
ldap_domainadmin_dn = "o=domainAdmins,{suffix}"
ldap_bind_dn = "cn=vmailadmin,{suffix}"
ldap_bind_password = "{vmailadmin_password}"
ENABLE_RESTFUL_API = True
DATA_DIR = "{data}"
'''


def _bootstrap_command(args):
    cmd_bootstrap(args)
    return 0


COMMANDS = {
    "serve": cmd_serve,
    "schema-install": cmd_schema_install,
    "check": cmd_check,
    "bootstrap": _bootstrap_command,
    "sql-setup": cmd_sql_setup,
    "recount": cmd_recount,
    "dev": cmd_dev,
}

if __name__ == "__main__":
    sys.exit(main())
