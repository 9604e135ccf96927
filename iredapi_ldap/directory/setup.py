"""Directory set-up: install the schema into a running slapd, create the base tree.

Both steps are idempotent: run them again and they change only what is missing.
They talk to slapd over ldapi:// with SASL EXTERNAL (the caller's Unix uid), the
way an admin manages cn=config on the LDAP server itself.
"""

import base64
import logging
import time
from importlib import resources
from pathlib import Path
from urllib.parse import unquote

import ldap3

from . import dn as dnlib
from .connection import ENTRY_ALREADY_EXISTS, LdapOperationError

log = logging.getLogger(__name__)

# Package data (iredapi_ldap/schema links to the project's schema/), so an installed copy has it too.
SCHEMA_DIR = resources.files("iredapi_ldap") / "schema"
SCHEMA_FILES = ("amavisd.ldif", "iredmail.ldif")  # in load order; core, cosine, nis, inetorgperson first

# Indexes Postfix, Dovecot and this API search on (iRedMail's slapd.conf).
INDEXES = (
    "objectClass eq",
    "uid,memberUid eq,pres",
    "homeDirectory eq,pres",
    "ou,cn,mail,sn,givenName,telephoneNumber eq,pres,sub",
    "shadowLastChange eq,pres",
    "member eq,pres",
    "domainName,mtaTransport,accountStatus,enabledService,disabledService eq,pres,sub",
    "domainAliasName eq,pres,sub",
    "domainAdmin,domainGlobalAdmin,domainBackupMX eq,pres,sub",
    "domainSenderBccAddress,domainRecipientBccAddress eq,pres,sub",
    "accessPolicy,hasMember,listAllowedUser,mailingListID eq,pres,sub",
    "mailForwardingAddress,shadowAddress eq,pres,sub",
    "backupMailAddress,memberOfGroup eq,pres,sub",
    "userRecipientBccAddress,userSenderBccAddress eq,pres,sub",
    "mobile,departmentNumber eq,pres,sub",
    "employeeNumber eq,pres,sub",
    "domainStatus eq,pres",
)

PASSWORD_MODULE = "pw-sha2"  # {SSHA512}: iRedMail's default scheme on Debian


def read_ldif(path):
    """Entries of an LDIF file as [(dn, {attribute: [values]})] (no change records)."""
    entries, current, lines = [], None, []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]  # a folded line continues the previous one
        else:
            lines.append(raw)
    for line in lines + [""]:
        if not line.strip():
            if current:
                entries.append(current)
            current = None
            continue
        if line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8")
        else:
            value = value.strip()
        if name.lower() == "dn":
            current = (value, {})
        else:
            current[1].setdefault(name, []).append(value)
    return entries


def _check(conn_result, what):
    status, result, response, _ = conn_result
    if not status and result["result"] not in (0,):
        raise LdapOperationError(result["result"], result.get("message") or result.get("description"), what)
    return response


def _children(conn, base, filter_="(objectClass=*)", attributes=("*",)):
    status, result, response, _ = conn.search(base, filter_, search_scope=ldap3.LEVEL, attributes=list(attributes))
    if result["result"] == 32:
        return []
    if result["result"] != 0:
        raise LdapOperationError(result["result"], result.get("description"), base)
    return [item for item in response if item.get("type") == "searchResEntry"]


def _strip_index(value):
    """'{4}iredmail' -> 'iredmail' (cn=config orders values with {n} prefixes)."""
    return value.split("}", 1)[1] if value.startswith("{") and "}" in value else value


def install_schema(conn, suffix, schema_dir=SCHEMA_DIR):
    """Add our amavisd and iredmail schemas, the pw-sha2 module and the indexes.

    ``conn`` is an ldap3 connection with manage rights on cn=config.  Returns
    the list of things it changed (empty when everything was there).
    """
    changed = []
    loaded = {
        _strip_index(str(value)).lower()
        for item in _children(conn, "cn=schema,cn=config", attributes=["cn"])
        for value in item["attributes"].get("cn", [])
    }
    for name in SCHEMA_FILES:
        for dn_, attrs in read_ldif(Path(schema_dir) / name):
            schema_name = attrs["cn"][0].lower()
            if schema_name in loaded:
                continue
            _check(conn.add(dn_, attributes=attrs), dn_)
            changed.append(f"schema {schema_name}")

    modules = _children(conn, "cn=config", "(objectClass=olcModuleList)", ["olcModuleLoad"])
    module_names = {
        _strip_index(str(v)).rsplit(".", 1)[0]
        for item in modules
        for v in item["attributes"].get("olcModuleLoad", [])
    }
    if PASSWORD_MODULE not in module_names:
        if modules:
            _check(conn.modify(modules[0]["dn"], {"olcModuleLoad": [(ldap3.MODIFY_ADD, [PASSWORD_MODULE])]}),
                   modules[0]["dn"])
        else:
            _check(conn.add("cn=module,cn=config", attributes={
                "objectClass": ["olcModuleList"], "cn": ["module"], "olcModuleLoad": [PASSWORD_MODULE]}),
                "cn=module,cn=config")
        changed.append(f"module {PASSWORD_MODULE}")

    database = _database_for(conn, suffix)
    present_indexes = {_normalise_index(str(v)) for v in database["attributes"].get("olcDbIndex", [])}
    missing = [index for index in INDEXES if _normalise_index(index) not in present_indexes]
    if missing:
        _check(conn.modify(database["dn"], {"olcDbIndex": [(ldap3.MODIFY_ADD, missing)]}), database["dn"])
        changed.append(f"{len(missing)} indexes")
    return changed


def _normalise_index(value):
    names, _, kinds = value.strip().partition(" ")
    return (tuple(sorted(n.lower() for n in names.split(","))), tuple(sorted(kinds.replace(" ", "").split(","))))


def _database_for(conn, suffix):
    found = _children(conn, "cn=config", dnlib.eq("olcSuffix", suffix), ["olcSuffix", "olcDbIndex", "olcAccess"])
    if not found:
        raise LookupError(f"slapd has no database with suffix {suffix!r}")
    return found[0]


def access_rules(suffix, basedn, admin_basedn, vmail_dn, vmailadmin_dn, manager_identities=()):
    """iRedMail's access rules (its slapd.conf), as olcAccess values.

    ``manager_identities`` (e.g. the peercred DN of root) get manage rights,
    so set-up over ldapi keeps working once the rules are in place.
    """
    rules = []
    if manager_identities:
        by = " ".join(f'by dn.exact="{identity}" manage' for identity in manager_identities)
        rules.append(f"to * {by} by * break")
    private = ("userPassword,mailForwardingAddress,employeeNumber", "none")
    rules += [
        f'to attrs={private[0]} by anonymous auth by self write by dn.exact="{vmail_dn}" read '
        f'by dn.exact="{vmailadmin_dn}" write by users none',
        f'to attrs=cn,sn,givenName,telephoneNumber by anonymous auth by self write '
        f'by dn.exact="{vmail_dn}" read by dn.exact="{vmailadmin_dn}" write by users read',
        f'to attrs=domainAdmin,domainGlobalAdmin,domainSenderBccAddress,domainRecipientBccAddress '
        f'by anonymous auth by self read by dn.exact="{vmail_dn}" read '
        f'by dn.exact="{vmailadmin_dn}" write by users none',
        f'to dn.exact="{vmail_dn}" by anonymous auth by self write by users none',
        f'to dn.exact="{vmailadmin_dn}" by anonymous auth by self write by users none',
        f'to dn.subtree="{basedn}" by anonymous auth by self write by dn.exact="{vmail_dn}" read '
        f'by dn.exact="{vmailadmin_dn}" write by users read',
        f'to dn.subtree="{admin_basedn}" by anonymous auth by self write by dn.exact="{vmail_dn}" read '
        f'by dn.exact="{vmailadmin_dn}" write by users none',
        "to * by anonymous auth by self write by users read",
    ]
    return [f"{{{i}}}{rule}" for i, rule in enumerate(rules)]


def bootstrap_tree(conn, settings, *, vmail_password_hash, vmailadmin_password_hash,
                   admin_mail=None, admin_password_hash=None, manager_identities=()):
    """Create the suffix, containers, service accounts and a first global admin.

    ``conn`` needs manage rights on cn=config and write rights on the data
    (SASL EXTERNAL as root on the LDAP server).  Existing entries are kept.
    """
    suffix = settings.ldap_suffix
    first_rdn_value = suffix.split(",", 1)[0].split("=", 1)[1]
    vmail_dn = f"cn=vmail,{suffix}"
    changed = []

    database = _database_for(conn, suffix)
    rules = access_rules(suffix, settings.ldap_basedn, settings.ldap_domainadmin_dn, vmail_dn,
                         settings.ldap_bind_dn, manager_identities)
    if [str(v) for v in database["attributes"].get("olcAccess", [])] != rules:
        _check(conn.modify(database["dn"], {"olcAccess": [(ldap3.MODIFY_REPLACE, rules)]}), database["dn"])
        changed.append("access rules")

    today = str(int(time.time() // 86400))
    entries = [
        (suffix, {"objectClass": ["top", "dcObject", "organization"], "dc": [first_rdn_value],
                  "o": [first_rdn_value]}),
        (settings.ldap_basedn, {"objectClass": ["top", "organization"],
                                "o": [settings.ldap_basedn.split(",", 1)[0].split("=", 1)[1]]}),
        (settings.ldap_domainadmin_dn, {"objectClass": ["top", "organization"],
                                        "o": [settings.ldap_domainadmin_dn.split(",", 1)[0].split("=", 1)[1]]}),
        (vmail_dn, _service_account("vmail", vmail_password_hash, today)),
        (settings.ldap_bind_dn, _service_account(
            settings.ldap_bind_dn.split(",", 1)[0].split("=", 1)[1], vmailadmin_password_hash, today)),
    ]
    if admin_mail:
        names = dnlib.DirectoryNames(settings.ldap_basedn, settings.ldap_domainadmin_dn)
        entries.append((names.admin(admin_mail), {
            "objectClass": ["mailAdmin"], "mail": [admin_mail], "cn": [admin_mail.split("@")[0]],
            "userPassword": [admin_password_hash], "accountStatus": ["active"],
            "domainGlobalAdmin": ["yes"], "shadowLastChange": [today],
        }))
    for dn_, attrs in entries:
        status, result, _, _ = conn.add(dn_, attributes=attrs)
        if result["result"] == ENTRY_ALREADY_EXISTS:
            continue
        if result["result"] != 0:
            raise LdapOperationError(result["result"], result.get("message"), dn_)
        changed.append(dn_)
    return changed


def _service_account(name, password_hash, today):
    return {"objectClass": ["top", "person", "shadowAccount"], "cn": [name], "sn": [name], "uid": [name],
            "userPassword": [password_hash], "shadowLastChange": [today]}


def open_external(ldapi_uri, timeout=10):
    """An ldap3 connection over ldapi:// authenticated by SASL EXTERNAL (the peer's uid).

    Used by the CLI for schema and tree set-up on the LDAP server itself.  Set-up runs
    once, so it keeps ldap3's readable result dicts; requests go through ``LdapClient``.
    """
    socket_path = unquote(ldapi_uri[len("ldapi://"):]) or "/var/run/slapd/ldapi"
    conn = ldap3.Connection(
        ldap3.Server("ldapi://" + socket_path, get_info=ldap3.NONE, connect_timeout=timeout),
        authentication=ldap3.SASL,
        sasl_mechanism=ldap3.EXTERNAL,
        sasl_credentials="",
        client_strategy=ldap3.SAFE_SYNC,
        raise_exceptions=False,
        receive_timeout=timeout,
    )
    conn.open()
    status, result, _, _ = conn.bind()
    if not status:
        raise LdapOperationError(result["result"], result.get("description"), "SASL EXTERNAL")
    return conn
