"""Settings: a Python file in iRedAdmin's style, then ``IREDAPI_<NAME>`` env overrides.

Every setting has a safe default (``DEFAULTS``).  The file is executed and each
top-level name that does not start with ``_`` and is not a module must be a known
setting; an unknown or malformed one stops start-up with a message naming it.
Loading happens in a function, never at import, so tests and workers choose
their own settings.
"""

import ast
import ipaddress
import os
import runpy
import types
from dataclasses import dataclass

ENV_PREFIX = "IREDAPI_"
SETTINGS_ENV = "IREDAPI_SETTINGS"


class SettingsError(Exception):
    """A setting is unknown or has a value of the wrong form."""


# name -> default.  The type of the default is the type accepted (None means
# "optional string").  Names and meanings follow iRedAdmin's settings.py where it
# has one, so an admin's existing file keeps working.
DEFAULTS = {
    # Directory
    "ldap_uri": "ldap://127.0.0.1:389",
    "ldap_basedn": "o=domains,dc=example,dc=com",
    "ldap_domainadmin_dn": "o=domainAdmins,dc=example,dc=com",
    "ldap_bind_dn": "cn=vmailadmin,dc=example,dc=com",
    "ldap_bind_password": "",
    "ldap_starttls": False,
    "ldap_tls_verify": True,  # verify the server certificate (ldaps:// and StartTLS)
    "ldap_tls_ca_file": None,  # CA bundle; None = the system's
    "ldap_timeout": 10,  # seconds, connect and each operation
    # Accounts
    "storage_base_directory": "/var/vmail/vmail1",
    "default_mta_transport": "dovecot",
    "default_language": "en_US",
    "min_passwd_length": 8,
    "max_passwd_length": 0,
    "DEFAULT_PASSWORD_SCHEME": "SSHA512",
    "PASSWORD_HAS_LETTER": True,
    "PASSWORD_HAS_UPPERCASE": True,
    "PASSWORD_HAS_NUMBER": True,
    "PASSWORD_HAS_SPECIAL_CHAR": True,
    "PASSWORD_SPECIAL_CHARACTERS": "#$%&*+-,.:;!=<>'\"?@[]/(){}_`~",
    # API access
    "ENABLE_RESTFUL_API": False,
    "RESTRICT_API_ACCESS": False,
    "RESTFUL_API_CLIENTS": [],
    "TRUSTED_PROXIES": [],  # X-Forwarded-For is believed only from these
    # "both": _success and success, _msg and msg, the payload once as _data (2016 and current
    # clients alike); "pro": _success/_msg/_data only; "seed": success/msg/data only.
    "API_ENVELOPE": "both",
    # False: parameters an endpoint does not take are ignored (as iRedAdmin-Pro does) and named in
    # the X-Ignored-Parameters header and the log; True: refused with 400 UNKNOWN_PARAMETER.
    "STRICT_PARAMETERS": False,
    # Sessions and login
    "SESSION_TIMEOUT": 1800,  # idle seconds before a session expires
    "SESSION_COOKIE_NAME": "iRedAdmin-LDAP",
    "SESSION_RECHECK_INTERVAL": 60,  # seconds between re-reads of the admin's entry
    "LOGIN_MAX_FAILURES": 10,  # per client address and per username ...
    "LOGIN_FAILURE_WINDOW": 600,  # ... within this many seconds
    # SQL: our own tables (sessions, login failures, deleted mailboxes)
    "iredadmin_db_url": None,
    "iredadmin_db_host": None,
    "iredadmin_db_port": 3306,
    "iredadmin_db_name": "iredadmin",
    "iredadmin_db_user": "iredadmin",
    "iredadmin_db_password": "",
    # SQL: iRedAPD's database (throttle)
    "iredapd_db_url": None,
    "iredapd_db_host": None,
    "iredapd_db_port": 3306,
    "iredapd_db_name": "iredapd",
    "iredapd_db_user": "iredapd",
    "iredapd_db_password": "",
    # SQL: Amavisd's database (spam policy, white/blacklists), iRedAdmin's names
    "amavisd_db_url": None,
    "amavisd_db_host": None,
    "amavisd_db_port": 3306,
    "amavisd_db_name": "amavisd",
    "amavisd_db_user": "amavisd",
    "amavisd_db_password": "",
    "AMAVISD_SPAM_SUBJECT_PREFIX": "[SPAM] ",  # iRedAdmin's: what prefix_spam_in_subject=yes prepends
    "SQL_TIMEOUT": 5,  # seconds to connect to an SQL server
    # Where embedded SQLite files live when no SQL server is configured
    "DATA_DIR": "/var/lib/iredapi-ldap",
    "LOG_LEVEL": "INFO",
}

_CHOICES = {
    "API_ENVELOPE": ("both", "pro", "seed"),
    "LOG_LEVEL": ("DEBUG", "INFO", "WARNING", "ERROR"),
}

_NON_NEGATIVE = {
    "ldap_timeout", "min_passwd_length", "max_passwd_length", "SESSION_TIMEOUT",
    "SESSION_RECHECK_INTERVAL", "LOGIN_MAX_FAILURES", "LOGIN_FAILURE_WINDOW",
    "SQL_TIMEOUT", "iredadmin_db_port", "iredapd_db_port",
    "amavisd_db_port",
}

# 0 would be no timeout at all: a hung slapd would hold a worker thread for ever, and
# the SQL engine refuses it.
_POSITIVE = {"ldap_timeout", "SQL_TIMEOUT"}


@dataclass(frozen=True)
class Settings:
    """Validated settings; attribute names are the setting names."""

    values: dict

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes):
        merged = dict(self.values)
        merged.update(changes)
        return build_settings(merged)

    @property
    def ldap_suffix(self):
        """The tree's suffix: ``ldap_basedn`` less its first RDN (o=domains)."""
        return self.ldap_basedn.split(",", 1)[1]

    @property
    def api_networks(self):
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.RESTFUL_API_CLIENTS)

    @property
    def proxy_networks(self):
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.TRUSTED_PROXIES)


def load_settings(path=None, environ=None):
    """Read the settings file (``path``, else ``$IREDAPI_SETTINGS``, else none)
    and the environment overrides; raise SettingsError naming a bad setting."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(SETTINGS_ENV)
    raw = {}
    if path:
        raw.update(_read_file(path))
    for name, default in DEFAULTS.items():
        env_name = ENV_PREFIX + name
        if env_name in environ:
            raw[name] = _from_env(name, environ[env_name], default)
    return build_settings(raw)


def build_settings(raw):
    """Validate ``raw`` (name -> value) over the defaults."""
    values = dict(DEFAULTS)
    for name, value in raw.items():
        if name not in DEFAULTS:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _check(name, value, DEFAULTS[name])
    _check_combination(values)
    return Settings(values)


def _read_file(path):
    try:
        namespace = runpy.run_path(str(path))
    except FileNotFoundError:
        raise SettingsError(f"settings file {path!r} does not exist") from None
    except Exception as exc:  # a syntax error or a failing import in the file
        raise SettingsError(f"settings file {path!r} failed to load: {exc}") from exc
    imported = _imported_names(path)
    # Imports and helpers are not settings: modules, anything callable (functions,
    # builtins, classes) and any other name an import statement bound.
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not callable(value)
        and (name in DEFAULTS or name not in imported)
    }


def _imported_names(path):
    """Names bound by ``import x`` / ``from x import y`` in the file (not ``*``)."""
    with open(path, "rb") as handle:
        tree = ast.parse(handle.read(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".", 1)[0])
    return names


def _from_env(name, text, default):
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"setting {name}: {text!r} is not a boolean (true/false)")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"setting {name}: {text!r} is not an integer") from None
    if isinstance(default, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _check(name, value, default):
    if default is None:
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"setting {name}: expected a string or None")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(f"setting {name}: expected True or False, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"setting {name}: expected an integer, got {value!r}")
        if name in _NON_NEGATIVE and value < 0:
            raise SettingsError(f"setting {name}: must not be negative")
        if name in _POSITIVE and value <= 0:
            raise SettingsError(f"setting {name}: must be a positive number of seconds")
        return value
    if isinstance(default, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple, set)):
            raise SettingsError(f"setting {name}: expected a list")
        items = list(value)
        if any(not isinstance(item, str) for item in items):
            raise SettingsError(f"setting {name}: every item must be a string")
        return items
    if not isinstance(value, str):
        raise SettingsError(f"setting {name}: expected a string, got {value!r}")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise SettingsError(f"setting {name}: must be one of {', '.join(_CHOICES[name])}")
    return value


def _check_combination(values):
    for name in ("RESTFUL_API_CLIENTS", "TRUSTED_PROXIES"):
        for item in values[name]:
            # An empty or malformed entry must never widen access.
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise SettingsError(f"setting {name}: {item!r} is not an IP address or network") from None
        values[name] = [item.strip() for item in values[name]]  # as api_networks/proxy_networks read them
    uri = values["ldap_uri"]
    if not uri.startswith(("ldap://", "ldaps://", "ldapi://")):
        raise SettingsError("setting ldap_uri: must start with ldap://, ldaps:// or ldapi://")
    if values["ldap_starttls"] and not uri.startswith("ldap://"):
        raise SettingsError("setting ldap_starttls: StartTLS applies only to ldap:// URIs")
    for name in ("ldap_basedn", "ldap_domainadmin_dn"):
        if "," not in values[name] or "=" not in values[name]:
            raise SettingsError(f"setting {name}: {values[name]!r} is not a DN below a suffix")
    if not values["storage_base_directory"].startswith("/"):
        raise SettingsError("setting storage_base_directory: must be an absolute path")
    if len(values["AMAVISD_SPAM_SUBJECT_PREFIX"]) > 64:  # Amavisd's policy.spam_subject_tag2 is varchar(64)
        raise SettingsError("setting AMAVISD_SPAM_SUBJECT_PREFIX: at most 64 characters")
    if values["DEFAULT_PASSWORD_SCHEME"].upper() != values["DEFAULT_PASSWORD_SCHEME"]:
        raise SettingsError("setting DEFAULT_PASSWORD_SCHEME: write the scheme in upper case, e.g. SSHA512")


def sql_url(settings, prefix):
    """The SQLAlchemy URL of the ``iredadmin``, ``iredapd`` or ``amavisd`` store.

    ``<prefix>_db_url`` wins; else ``<prefix>_db_host`` etc. give MariaDB/MySQL
    (as on an iRedMail LDAP server); else an SQLite file in DATA_DIR.
    """
    url = settings.values[f"{prefix}_db_url"]
    if url:
        return url
    host = settings.values[f"{prefix}_db_host"]
    if host:
        from sqlalchemy.engine import URL

        return URL.create(
            "mysql+pymysql",
            username=settings.values[f"{prefix}_db_user"],
            password=settings.values[f"{prefix}_db_password"],
            host=host,
            port=settings.values[f"{prefix}_db_port"],
            database=settings.values[f"{prefix}_db_name"],
        ).render_as_string(hide_password=False)
    return "sqlite:///" + os.path.join(settings.DATA_DIR, f"{prefix}.sqlite")
