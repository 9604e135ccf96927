"""Directory set-up: install the schema into a running slapd, create the base tree.

Both steps are idempotent: run them again and they change only what is missing.
They talk to slapd over ldapi:// with SASL EXTERNAL (the caller's Unix uid), the
way an admin manages cn=config on the LDAP server itself.
"""

import logging
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote, unquote

import ldap3
import ldif

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
UNIQUE_MODULE = "unique"  # slapo-unique, a loadable module in Debian's slapd
MODULES = (PASSWORD_MODULE, UNIQUE_MODULE)
UNIQUE_ATTRIBUTES = ("mail", "shadowAddress")


class SetupError(RuntimeError):
    """slapd's configuration needs a change we do not make ourselves; the message says which."""


def read_ldif(path):
    """Entries of an LDIF file as [(dn, {attribute: [values]})] (no change records), read by
    python-ldap's RFC 2849 parser."""
    with open(path, "rb") as handle:
        records = ldif.LDIFRecordList(handle)
        records.parse()
    return [(dn_, {name: [value.decode("utf-8") for value in values] for name, values in attributes.items()})
            for dn_, attributes in records.all_records]


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


def install_schema(conn, suffix, schema_dir=SCHEMA_DIR, *, basedn=None, dry_run=False):
    """Add our amavisd and iredmail schemas, the pw-sha2 and unique modules, the indexes
    and the unique overlay that keeps each address on one account (``unique_uri``).

    ``conn`` is an ldap3 connection with manage rights on cn=config; ``basedn`` holds
    the domains (default ``o=domains,<suffix>``).  Returns the list of things it
    changed (``dry_run``: would change; empty when everything was there).  Raises
    SetupError when the database cannot take the overlay as it is.
    """
    changed = []

    def change(what, target, operation):
        changed.append(what)
        if not dry_run:
            _check(operation(), target)

    loaded = {
        _strip_index(str(value)).lower()
        for item in _children(conn, "cn=schema,cn=config", attributes=["cn"])
        for value in item["attributes"].get("cn", [])
    }
    for name in SCHEMA_FILES:
        for dn_, attrs in read_ldif(Path(schema_dir) / name):
            schema_name = attrs["cn"][0].lower()
            if schema_name not in loaded:
                change(f"schema {schema_name}", dn_, lambda dn_=dn_, attrs=attrs: conn.add(dn_, attributes=attrs))

    modules = _children(conn, "cn=config", "(objectClass=olcModuleList)", ["olcModuleLoad"])
    module_names = {
        _strip_index(str(v)).rsplit(".", 1)[0]
        for item in modules
        for v in item["attributes"].get("olcModuleLoad", [])
    }
    missing_modules = [module for module in MODULES if module not in module_names]
    if missing_modules:
        what = ", ".join(f"module {module}" for module in missing_modules)
        if modules:
            change(what, modules[0]["dn"], lambda: conn.modify(
                modules[0]["dn"], {"olcModuleLoad": [(ldap3.MODIFY_ADD, missing_modules)]}))
        else:
            change(what, "cn=module,cn=config", lambda: conn.add("cn=module,cn=config", attributes={
                "objectClass": ["olcModuleList"], "cn": ["module"], "olcModuleLoad": missing_modules}))

    database = _database_for(conn, suffix)
    present_indexes = {_normalise_index(str(v)) for v in database["attributes"].get("olcDbIndex", [])}
    missing = [index for index in INDEXES if _normalise_index(index) not in present_indexes]
    if missing:
        change(f"{len(missing)} indexes", database["dn"], lambda: conn.modify(
            database["dn"], {"olcDbIndex": [(ldap3.MODIFY_ADD, missing)]}))

    _install_unique(conn, suffix, database, unique_uri(basedn or f"o=domains,{suffix}"), change)
    return changed


def unique_uri(basedn):
    """slapo-unique's olcUniqueURI value that keeps each address on one account.

    Before an add or modify under ``basedn`` writes ``mail`` or ``shadowAddress``
    values, slapd searches for another user, alias or list that has one of them (each
    attribute against itself: the overlay never compares a mail with a shadowAddress)
    and refuses the write with constraintViolation.  ``serialize``: each such write
    completes before the next is checked; without it, concurrent adds of one address
    all pass (slapo-unique(5); tests/test_unique.py's races fail without it).  Only entries of these
    classes are searched, so external list members (mailExternalUser, ou=Externals)
    and admins under o=domainAdmins may share an address.
    """
    return (f"serialize ldap:///{quote(basedn, safe='=,')}?{','.join(UNIQUE_ATTRIBUTES)}?sub?"
            f"{quote(dnlib.ACCOUNT_CLASSES, safe='()|=')}")


def _install_unique(conn, suffix, database, uri, change):
    # slapo-unique(5): "The search is performed using the rootdn of the database"; without
    # one, slapd 2.5 refuses every write of an address ("unique_search failed").
    if not database["attributes"].get("olcRootDN"):
        raise SetupError(
            f"slapd's database {suffix} has no rootDN (olcRootDN on {database['dn']}); the unique overlay "
            f"searches as the rootDN and without one refuses every write of an address: set one "
            f"(a DN with no password will do, e.g. cn=Manager,{suffix}) and run this again")
    overlays = _children(conn, database["dn"], "(objectClass=olcUniqueConfig)", ["olcUniqueURI", "olcUniqueAttribute"])
    if any(str(value) == uri for item in overlays for value in item["attributes"].get("olcUniqueURI", [])):
        return
    if not overlays:
        overlay_dn = f"olcOverlay={UNIQUE_MODULE},{database['dn']}"
        change("unique overlay", overlay_dn, lambda: conn.add(overlay_dn, attributes={
            "objectClass": ["olcOverlayConfig", "olcUniqueConfig"], "olcOverlay": [UNIQUE_MODULE],
            "olcUniqueURI": [uri]}))
    elif overlays[0]["attributes"].get("olcUniqueAttribute"):
        raise SetupError(f"{overlays[0]['dn']} uses the legacy olcUniqueAttribute form, which slapd does not "
                         f"combine with olcUniqueURI; convert it to olcUniqueURI values, then add {uri!r}")
    else:  # another uniqueness set-up: ours becomes one more olcUniqueURI (an independent domain)
        change("unique overlay", overlays[0]["dn"], lambda: conn.modify(
            overlays[0]["dn"], {"olcUniqueURI": [(ldap3.MODIFY_ADD, [uri])]}))


def _normalise_index(value):
    names, _, kinds = value.strip().partition(" ")
    return (tuple(sorted(n.lower() for n in names.split(","))), tuple(sorted(kinds.replace(" ", "").split(","))))


def _database_for(conn, suffix):
    found = _children(conn, "cn=config", dnlib.eq("olcSuffix", suffix),
                      ["olcSuffix", "olcDbIndex", "olcAccess", "olcRootDN"])
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
