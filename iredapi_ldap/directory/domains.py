"""Mail domains in the directory: create, read, update, delete, status.

Entries are shaped as iRedAdmin writes them (iredmail-ldap.md §2.1, §2.8).
Nothing here knows HTTP; errors are ``iredapi_ldap.errors`` kinds.
"""

from dataclasses import dataclass, field

from .. import errors
from . import account_settings
from . import dn as dnlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    NOT_ALLOWED_ON_NON_LEAF,
    LdapOperationError,
)

# Counters iRedAdmin keeps on the domain; we start them at zero so that later
# compare-and-set updates have a value to compare against.
COUNTERS = {
    "domainCurrentUserNumber": "0",
    "domainCurrentAliasNumber": "0",
    "domainCurrentListNumber": "0",
    "domainCurrentQuotaSize": "0",
}

# Objects whose Postfix/Dovecot filters test (!(domainStatus=disabled)).
ACCOUNT_CLASSES_FILTER = dnlib.any_of(
    dnlib.eq("objectClass", "mailUser"), dnlib.eq("objectClass", "mailList"),
    dnlib.eq("objectClass", "mailAlias"), dnlib.eq("objectClass", "mailExternalUser"),
)

_CAS_ATTEMPTS = 8


@dataclass
class DomainChanges:
    """What a create or update asks for; ``None`` means "not given".

    ``settings`` maps accountSetting keys to new values, or to None to remove
    the key.  An empty ``cn`` removes the display name.
    """

    cn: str | None = None
    transport: str | None = None
    account_status: str | None = None
    settings: dict = field(default_factory=dict)


def get_domain(ldap, names, domain, attributes=("*",)):
    entry = ldap.read(names.domain(domain), attributes, dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain)
    return entry


def create_domain(ldap, names, domain, changes, default_transport):
    """Add the domain entry and its four containers.

    If a container cannot be added, the domain entry is removed again, so a
    failed create leaves nothing behind.
    """
    attributes = {
        "objectClass": ["mailDomain"],
        "domainName": [domain],
        "mtaTransport": [changes.transport or default_transport],
        "enabledService": ["mail"],
        "accountStatus": [changes.account_status or "active"],
        **{name: [value] for name, value in COUNTERS.items()},
    }
    if changes.cn:
        attributes["cn"] = [changes.cn]
    settings = [account_settings.encode(k, v) for k, v in changes.settings.items() if v is not None]
    if settings:
        attributes["accountSetting"] = settings
    domain_dn = names.domain(domain)
    try:
        ldap.add(domain_dn, attributes)
    except LdapOperationError as exc:
        if exc.result == ENTRY_ALREADY_EXISTS:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=domain) from None
        raise
    try:
        ensure_containers(ldap, names, domain)
    except Exception:
        _delete_quietly(ldap, domain_dn)
        raise


def ensure_containers(ldap, names, domain, ous=dnlib.DOMAIN_OUS):
    for ou in ous:
        try:
            ldap.add(names.ou(domain, ou), {"objectClass": ["top", "organizationalUnit"], "ou": [ou]})
        except LdapOperationError as exc:
            if exc.result != ENTRY_ALREADY_EXISTS:
                raise


def update_domain(ldap, names, domain, changes, current):
    """Apply ``changes`` to the domain whose entry (as read) is ``current``.

    accountSetting keys change by compare-and-set, re-read and retried when a
    concurrent update got there first.  A status change is propagated to
    every account below the domain before the domain's own status changes, so
    a retried request finishes the job.
    """
    domain_dn = names.domain(domain)
    plain = {}
    if changes.cn is not None:
        plain["cn"] = [(MODIFY_REPLACE, [changes.cn] if changes.cn else [])]
    if changes.transport is not None:
        plain["mtaTransport"] = [(MODIFY_REPLACE, [changes.transport])]
    if changes.account_status is not None:
        set_accounts_domain_status(ldap, names, domain, disabled=changes.account_status == "disabled")
        plain["accountStatus"] = [(MODIFY_REPLACE, [changes.account_status])]
    for _ in range(_CAS_ATTEMPTS):
        modification = dict(plain)
        modification.update(account_settings.compare_and_set_changes(current.values("accountSetting"),
                                                                      changes.settings))
        if not modification:
            return
        try:
            ldap.modify(domain_dn, modification)
            return
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
            if exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS):
                raise
        current = get_domain(ldap, names, domain, ["accountSetting"])
    raise errors.Conflict("CONCURRENT_UPDATE", detail="the domain kept changing; try again")


def set_accounts_domain_status(ldap, names, domain, disabled):
    """Add (or remove) ``domainStatus: disabled`` on every account of the domain.

    Postfix and Dovecot test the account's domainStatus, not the domain's
    accountStatus (iredmail-ldap.md §2.1).  Only accounts not yet in the
    wanted state are touched, page by page.
    """
    wanted = dnlib.eq("domainStatus", "disabled")
    filter_ = dnlib.all_of(ACCOUNT_CLASSES_FILTER, dnlib.negate(wanted) if disabled else wanted)
    operation = MODIFY_ADD if disabled else MODIFY_DELETE
    tolerated = ATTRIBUTE_OR_VALUE_EXISTS if disabled else NO_SUCH_ATTRIBUTE
    count = 0
    for entry in ldap.paged_search(names.domain(domain), filter_, ["1.1"]):
        try:
            ldap.modify(entry.dn, {"domainStatus": [(operation, ["disabled"])]})
        except LdapOperationError as exc:
            if exc.result not in (tolerated, NO_SUCH_OBJECT):
                raise
        count += 1
    return count


def delete_domain(ldap, names, domain, before_delete=None):
    """Delete the domain and everything below it, children first.

    ``before_delete(entry)`` is called for each entry below the domain just
    before it is deleted (entries carry objectClass, mail, homeDirectory…),
    so callers can record maildirs; it must be idempotent, since a retry after
    a crash calls it again for entries not yet deleted.  A missing domain is
    no error here: callers check existence (and scope) first.
    """
    delete_subtree(ldap, names.domain(domain), before_delete)


_DELETE_ATTRIBUTES = ["objectClass", "mail", "homeDirectory", "storageBaseDirectory", "mailMessageStore"]


def delete_subtree(ldap, base_dn, before_delete=None):
    """Delete ``base_dn`` and its descendants, streaming one level at a time."""
    for entry in ldap.paged_search(base_dn, "(objectClass=*)", _DELETE_ATTRIBUTES, scope="one"):
        if _is_container(entry.dn):
            delete_subtree(ldap, entry.dn, before_delete)
        else:
            _delete_leaf(ldap, entry, before_delete)
    try:
        ldap.delete(base_dn)
    except LdapOperationError as exc:
        if exc.result == NOT_ALLOWED_ON_NON_LEAF:  # a child was added meanwhile: go round again
            delete_subtree(ldap, base_dn, before_delete)
        elif exc.result != NO_SUCH_OBJECT:
            raise


def _is_container(dn):
    # Accounts are leaves; only ou= containers hold children.  A leaf that
    # turns out to have children is handled in _delete_leaf.
    return dn.lower().startswith("ou=")


def _delete_leaf(ldap, entry, before_delete):
    if before_delete is not None:
        before_delete(entry)
    delete_entry(ldap, entry.dn, before_delete)


def delete_entry(ldap, dn, before_delete=None):
    """Delete one entry (one round trip), or its subtree if it turns out to have children."""
    try:
        ldap.delete(dn)
    except LdapOperationError as exc:
        if exc.result == NOT_ALLOWED_ON_NON_LEAF:
            delete_subtree(ldap, dn, before_delete)
        elif exc.result != NO_SUCH_OBJECT:
            raise


def _delete_quietly(ldap, dn):
    try:
        ldap.delete(dn)
    except Exception:  # the create already failed; report that error, not this one
        pass


def list_domains(ldap, names, managed_by=None, disabled_only=False, attributes=("*",)):
    """Domains, optionally only those ``managed_by`` (domainAdmin) an admin."""
    parts = [dnlib.eq("objectClass", "mailDomain")]
    if managed_by is not None:
        parts.append(dnlib.eq("domainAdmin", managed_by))
    if disabled_only:
        parts.append(dnlib.eq("accountStatus", "disabled"))
    return ldap.paged_search(names.basedn, dnlib.all_of(*parts), attributes, scope="one")
