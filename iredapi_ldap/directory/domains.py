"""Mail domains in the directory: create, read, update, delete, status.

Entries are shaped as iRedAdmin writes them (iRedAdmin libs/ldaplib/iredldif.py ldif_domain, domain.py).
Nothing here knows HTTP; errors are ``iredapi_ldap.errors`` kinds.
"""

from dataclasses import dataclass, field

from .. import errors
from . import account_settings as keys
from . import dn as dnlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .entries import delete_subtree, ensure_containers, replace_value, retry_on_conflict, undo_add

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

# API parameter -> accountSetting key; a 0 removes the key (0 = unlimited/unset).
SETTING_PARAMETERS = {
    "quota": keys.DOMAIN_QUOTA,
    "defaultQuota": keys.DEFAULT_QUOTA,
    "maxUserQuota": keys.MAX_USER_QUOTA,
    "numberOfUsers": keys.NUMBER_OF_USERS,
    "numberOfAliases": keys.NUMBER_OF_ALIASES,
    "numberOfLists": keys.NUMBER_OF_LISTS,
    "minPasswordLength": keys.MIN_PASSWORD_LENGTH,
    "maxPasswordLength": keys.MAX_PASSWORD_LENGTH,
}

_CAS_ATTEMPTS = 8
# Reads of a domain's status after an add (settle_domain_status): one unless it is changing.
_SETTLE_ROUNDS = 3


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

    @classmethod
    def from_params(cls, values):
        """The changes the API's parameters (validated, canonical names) ask for."""
        settings = {key: (values[name] or None) for name, key in SETTING_PARAMETERS.items() if name in values}
        if "preferredLanguage" in values:
            settings[keys.DEFAULT_LANGUAGE] = values["preferredLanguage"]
        return cls(cn=values.get("cn"), transport=values.get("transport"),
                   account_status=values.get("accountStatus"), settings=settings)


def get_domain(directory, domain, attributes=("*",)):
    entry = directory.read(directory.names.domain(domain), attributes, dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain)
    return entry


def require_not_alias_domain(directory, domain):
    """409 ALREADY_EXISTS if ``domain`` is a hosted domain's alias domain (``domainAliasName``;
    iRedAdmin's is_domain_exists looks at both names).  Postfix's transport_maps_domain.cf asks
    (|(domainName=%s)(domainAliasName=%s)): a second domain by that name would give the alias
    domain two transports, and take its addresses that no user holds.  One indexed search."""
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAliasName", domain))
    if directory.search(directory.names.basedn, filter_, ["1.1"], scope="one"):
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=f"{domain} is an alias domain of a hosted domain")


def create_domain(directory, domain, values, domain_admins=()):
    """Add the domain entry (from the API's parameters ``values``) and its four containers.
    ``domain_admins``: its domainAdmin values (a normal admin that creates a domain manages it).

    If a container cannot be added, the domain entry is removed again, so a
    failed create leaves nothing behind.
    """
    changes = DomainChanges.from_params(values)
    _check_password_lengths(changes.settings, {})
    attributes = {
        "objectClass": ["mailDomain"],
        "domainName": [domain],
        "mtaTransport": [changes.transport or directory.settings.default_mta_transport],
        "enabledService": ["mail"],
        "accountStatus": [changes.account_status or "active"],
        **{name: [value] for name, value in COUNTERS.items()},
    }
    if changes.cn:
        attributes["cn"] = [changes.cn]
    if domain_admins:
        attributes["domainAdmin"] = list(domain_admins)
    settings = [keys.encode(k, v) for k, v in changes.settings.items() if v is not None]
    if settings:
        attributes["accountSetting"] = settings
    domain_dn = directory.names.domain(domain)
    try:
        directory.add(domain_dn, attributes)
    except LdapOperationError as exc:
        if exc.result == ENTRY_ALREADY_EXISTS:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=domain) from None
        raise
    try:
        ensure_containers(directory, domain)
    except BaseException:
        undo_add(directory, domain_dn)
        raise


def _check_password_lengths(updates, current):
    """minPasswordLength may not exceed maxPasswordLength, counting the stored value of the
    one the request leaves alone (0 / absent = not set)."""
    def effective(key):
        value = updates[key] if key in updates else keys.integer(current, key)
        return int(value or 0)

    low, high = effective(keys.MIN_PASSWORD_LENGTH), effective(keys.MAX_PASSWORD_LENGTH)
    if low and high and low > high:
        param = "minPasswordLength" if keys.MIN_PASSWORD_LENGTH in updates else "maxPasswordLength"
        raise errors.InvalidInput(errors.INVALID_NUMBER, param=param,
                                  detail=f"minPasswordLength ({low}) would be greater than maxPasswordLength ({high})")


def update_domain(directory, domain, values, current):
    """Apply the API's parameters ``values`` to the domain whose entry (as read) is ``current``.

    accountSetting keys change by compare-and-set, re-read and retried when a
    concurrent update got there first.  A status change is propagated to
    every account below the domain before the domain's own status changes, so
    a retried request finishes the job.
    """
    changes = DomainChanges.from_params(values)
    _check_password_lengths(changes.settings, keys.parse(current.values("accountSetting")))
    domain_dn = directory.names.domain(domain)
    plain = {}
    if changes.cn is not None:
        plain["cn"] = replace_value(changes.cn)
    if changes.transport is not None:
        plain["mtaTransport"] = [(MODIFY_REPLACE, [changes.transport])]
    disabled = changes.account_status == "disabled"
    if changes.account_status is not None:
        set_accounts_domain_status(directory, domain, disabled)
        plain["accountStatus"] = [(MODIFY_REPLACE, [changes.account_status])]

    # The keys written, and the password lengths checked against each other.
    relied_on = list(changes.settings)
    if {keys.MIN_PASSWORD_LENGTH, keys.MAX_PASSWORD_LENGTH} & set(relied_on):
        relied_on += [keys.MIN_PASSWORD_LENGTH, keys.MAX_PASSWORD_LENGTH]

    def attempt(n):
        entry = current if n == 0 else get_domain(directory, domain, ["accountSetting"])
        if n:
            _check_password_lengths(changes.settings, keys.parse(entry.values("accountSetting")))
        modification = dict(plain)
        modification.update(keys.compare_and_set_changes(entry.values("accountSetting"), changes.settings))
        if not modification:
            return
        try:
            directory.modify(domain_dn, modification, keys.unchanged(entry.values("accountSetting"), relied_on))
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
            raise

    retry_on_conflict(attempt, "domain", attempts=_CAS_ATTEMPTS)
    if changes.account_status is not None:
        # Accounts added by creates that read the domain before the write above and added
        # after the first sweep passed: a create reads the status again after its add
        # (settle_domain_status), so one that still read the old status had added its entry
        # before the write, and this sweep finds it.
        set_accounts_domain_status(directory, domain, disabled)


def settle_domain_status(directory, domain, dns, disabled):
    """Make the entries ``dns`` a request just added agree with their domain's status.

    They were written with ``domainStatus: disabled`` or without (``disabled``) from a domain
    entry read before the add; a status change may have swept the domain in between and
    missed them.  So the status is read again after the add (one base read) and the entries
    changed if it differs, then read once more in case it changed back meanwhile.  A change
    whose domain write comes after the last read sweeps after its write (update_domain) and
    finds them.  NO_SUCH_DOMAIN if the domain was deleted meanwhile (and the entries with it).
    """
    for _ in range(_SETTLE_ROUNDS):
        entry = get_domain(directory, domain, ["accountStatus"])
        now = (entry.first("accountStatus") or "active").lower() != "active"
        if now == disabled:
            return
        for dn in dns:
            _set_domain_status(directory, dn, now)
        disabled = now


def _set_domain_status(directory, dn, disabled):
    """Add (or remove) ``domainStatus: disabled`` on one account; already so, or gone, is fine."""
    operation, tolerated = (MODIFY_ADD, ATTRIBUTE_OR_VALUE_EXISTS) if disabled else (MODIFY_DELETE, NO_SUCH_ATTRIBUTE)
    try:
        directory.modify(dn, {"domainStatus": [(operation, ["disabled"])]})
    except LdapOperationError as exc:
        if exc.result not in (tolerated, NO_SUCH_OBJECT):
            raise


def set_accounts_domain_status(directory, domain, disabled):
    """Add (or remove) ``domainStatus: disabled`` on every account of the domain.

    Postfix and Dovecot test the account's domainStatus, not the domain's
    accountStatus (iRedMail's Postfix and Dovecot LDAP queries).  Only accounts not yet in the
    wanted state are touched, page by page.
    """
    wanted = dnlib.eq("domainStatus", "disabled")
    filter_ = dnlib.all_of(ACCOUNT_CLASSES_FILTER, dnlib.negate(wanted) if disabled else wanted)
    count = 0
    for entry in directory.paged_search(directory.names.domain(domain), filter_, ["1.1"]):
        _set_domain_status(directory, entry.dn, disabled)
        count += 1
    return count


def delete_domain(directory, domain, before_delete=None):
    """Delete the domain and everything below it, children first.

    ``before_delete(entry)`` is called for each entry below the domain just
    before it is deleted (see ``entries.delete_subtree``).  A missing domain is
    no error here: callers check existence (and scope) first.
    """
    delete_subtree(directory, directory.names.domain(domain), before_delete)


def delete_accounts(directory, domain, before_delete=None):
    """Delete everything below the domain but not the domain entry (as ``delete_domain``)."""
    delete_subtree(directory, directory.names.domain(domain), before_delete, keep_base=True)


def list_domains(directory, managed_by=None, disabled_only=False, attributes=("*",)):
    """Domains, optionally only those ``managed_by`` (domainAdmin) an admin."""
    parts = [dnlib.eq("objectClass", "mailDomain")]
    if managed_by is not None:
        parts.append(dnlib.eq("domainAdmin", managed_by))
    if disabled_only:
        parts.append(dnlib.eq("accountStatus", "disabled"))
    return directory.paged_search(directory.names.basedn, dnlib.all_of(*parts), attributes, scope="one")
