"""Mail users in the directory, shaped as iRedAdmin writes them (iredmail-ldap.md §2.2, §2.6).

Creates and quota changes reserve room in the domain's counters first
(``limits.adjust_counters``) and give it back if the write fails, so limits
hold under concurrency at a constant number of round trips.
"""

import time
from dataclasses import dataclass, field

from .. import errors
from . import dn as dnlib
from . import limits as limitlib
from .connection import (
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .domains import delete_entry
from .references import add_account_entry, list_accounts, lookup_addresses

# iRedAdmin's enabledService of a new user (iredmail-ldap.md §2.2).
DEFAULT_SERVICES = (
    "internal", "doveadm", "lib-storage", "indexer-worker", "dsync", "quota-status",
    "mail", "smtp", "smtpsecured", "smtptls", "pop3", "pop3secured", "pop3tls", "imap", "imapsecured", "imaptls",
    "managesieve", "managesievesecured", "managesievetls", "sieve", "sievesecured", "sievetls",
    "deliver", "lda", "lmtp", "recipientbcc", "senderbcc", "forward", "shadowaddress",
    "displayedInGlobalAddressBook", "sogo", "sogowebmail", "sogocalendar", "sogoactivesync",
)
OBJECT_CLASSES = ("inetOrgPerson", "mailUser", "shadowAccount", "amavisAccount")
HIDDEN_ATTRIBUTES = ("userPassword",)

_CAS_ATTEMPTS = 20


def days_since_epoch():
    """shadowLastChange's unit: whole days since 1970-01-01."""
    return int(time.time() // 86400)


@dataclass
class NewUser:
    mail: str
    password_hash: str
    home_directory: str
    cn: str | None = None
    language: str | None = None
    quota_bytes: int = 0
    transport: str | None = None
    employee_id: str | None = None
    mailbox_format: str = "maildir"
    mailbox_folder: str = "Maildir"


@dataclass
class UserChanges:
    """Changes to one user; attributes given as {name: [values]} replace, the
    add/remove maps add or delete single values.  ``quota_bytes`` None = keep."""

    replace: dict = field(default_factory=dict)
    add: dict = field(default_factory=dict)
    remove: dict = field(default_factory=dict)
    quota_bytes: int | None = None


def get_user(ldap, names, mail, attributes=("*",)):
    entry = ldap.read(names.user(mail), attributes, dnlib.eq("objectClass", "mailUser"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def require_manageable(admin, entry):
    """A global admin's own mail-user entry is only for global admins to change or delete."""
    if (entry.first("domainGlobalAdmin") or "").lower() == "yes" and not admin.is_global:
        raise errors.NotPermitted("PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE",
                                  detail="this user is a global admin")


def require_free(ldap, names, addresses, except_dn=None, param=None):
    """ALREADY_EXISTS unless no user, alias or list (other than ``except_dn``) uses
    any of ``addresses`` as mail or shadowAddress; one indexed search."""
    if not addresses:
        return
    lookup = lookup_addresses(ldap, names, addresses)
    taken = [a for a in addresses
             if lookup.account(a) is not None and lookup.account(a).dn.lower() != (except_dn or "").lower()]
    if taken:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param=param, detail=", ".join(taken))


def create_user(ldap, names, domain, domain_entry, user):
    """Add ``user`` under ``domain`` (whose entry was just read), within its limits."""
    limits = limitlib.DomainLimits.of(domain_entry)
    limits.check_user_quota(user.quota_bytes)
    require_free(ldap, names, [user.mail])
    reservation = {limitlib.USERS: 1, limitlib.QUOTA_BYTES: user.quota_bytes}
    limitlib.adjust_counters(ldap, names, domain, reservation, domain_entry)
    try:
        add_account_entry(ldap, names, domain, names.user(user.mail), _user_attributes(user, limits))
    except Exception:
        limitlib.release(ldap, names, domain, reservation)
        raise


def _user_attributes(user, limits):
    local_part = user.mail.split("@", 1)[0]
    attributes = {
        "objectClass": list(OBJECT_CLASSES),
        "mail": [user.mail],
        "uid": [local_part],
        "sn": [local_part],
        "cn": [user.cn or local_part],
        "userPassword": [user.password_hash],
        "homeDirectory": [user.home_directory],
        "accountStatus": ["active"],
        "enabledService": list(DEFAULT_SERVICES),
        "preferredLanguage": [user.language],
        "shadowLastChange": [str(days_since_epoch())],
        "amavisLocal": ["TRUE"],
        "mailboxFormat": [user.mailbox_format],
        "mailboxFolder": [user.mailbox_folder],
    }
    if user.quota_bytes:
        attributes["mailQuota"] = [str(user.quota_bytes)]
    if user.transport:
        attributes["mtaTransport"] = [user.transport]
    if user.employee_id:
        attributes["employeeNumber"] = [user.employee_id]
    if limits.disabled:
        attributes["domainStatus"] = ["disabled"]
    return attributes


def update_user(ldap, names, domain, current, changes, domain_entry=None):
    """Apply ``changes`` to the user whose entry (as read) is ``current``.

    A quota change reserves the difference in the domain's quota counter and
    compare-and-sets the user's own mailQuota in the same modify as the other
    changes; if another request changed the quota meanwhile, the reservation
    is given back and the change is retried against the new value.
    ``domain_entry``: the domain as the caller just read it (with its counters),
    which spares the reservation a read; a stale one costs a retry, not a wrong count.
    """
    dn = current.dn
    for _ in range(_CAS_ATTEMPTS):
        modification = _modification(current, changes)
        delta = 0
        if changes.quota_bytes is not None:
            old = int(current.first("mailQuota") or 0)
            delta = changes.quota_bytes - old
            old_values = current.values("mailQuota")
            ops = [(MODIFY_DELETE, old_values)] if old_values else []
            if changes.quota_bytes:
                ops.append((MODIFY_ADD, [str(changes.quota_bytes)]))
            if ops:
                modification["mailQuota"] = ops
        if not modification:
            return
        if delta:
            limitlib.adjust_counters(ldap, names, domain, {limitlib.QUOTA_BYTES: delta}, domain_entry)
            domain_entry = None  # used once: a retry reads the domain again
        try:
            ldap.modify(dn, modification)
            return
        except LdapOperationError as exc:
            if delta:
                limitlib.release(ldap, names, domain, {limitlib.QUOTA_BYTES: delta})
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=current.first("mail")) from None
            if exc.result != NO_SUCH_ATTRIBUTE or changes.quota_bytes is None:
                raise
        current = get_user(ldap, names, current.first("mail"))
    raise errors.Conflict("CONCURRENT_UPDATE", detail="the user kept changing; try again")


def _modification(current, changes):
    modification = {}
    for attribute, values in changes.replace.items():
        modification[attribute] = [(MODIFY_REPLACE, list(values))]
    for attribute, values in changes.add.items():
        new = [v for v in values if not current.has_value(attribute, v)]
        if new:
            modification.setdefault(attribute, []).append((MODIFY_ADD, new))
    for attribute, values in changes.remove.items():
        gone = [v for v in values if current.has_value(attribute, v)]
        if gone:
            modification.setdefault(attribute, []).append((MODIFY_DELETE, gone))
    return modification


def delete_user_entry(ldap, names, domain, entry, domain_entry=None):
    """Delete the user entry and give its slot and quota back to the domain
    (``domain_entry``: as the caller read it, which spares the counters a read)."""
    delete_entry(ldap, entry.dn)
    quota = int(entry.first("mailQuota") or 0)
    limitlib.adjust_counters(ldap, names, domain, {limitlib.USERS: -1, limitlib.QUOTA_BYTES: -quota}, domain_entry)


def list_users(ldap, names, domain, disabled_only=False, attributes=("*",)):
    """The domain's users (not its catch-all), page by page."""
    users = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.negate(dnlib.eq("mail", "@" + domain)))
    return list_accounts(ldap, names, domain, dnlib.USERS_OU, users, disabled_only, attributes)
