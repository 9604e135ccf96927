"""Standalone admins: ``mailAdmin`` entries under ``o=domainAdmins``, shaped as iRedAdmin
writes them (iRedAdmin libs/ldaplib/iredldif.py ldif_mailadmin; the admin's creation limits
are ``accountSetting`` keys, its withheld web-UI rights ``disabledService`` values).

Functions take the API's parameters (validated, canonical names).  Nothing here knows HTTP.
"""

from .. import errors
from . import account_settings as keys
from . import admin_limits
from . import dn as dnlib
from .connection import ENTRY_ALREADY_EXISTS, MODIFY_REPLACE, NO_SUCH_OBJECT, LdapOperationError
from .entries import delete_quietly, replace_value, retry_on_conflict, value_changes
from .passwords import PasswordPolicy, hash_password
from .references import remove_domain_admin
from .users import days_since_epoch

HIDDEN_ATTRIBUTES = ("userPassword",)

IS_ADMIN = admin_limits.IS_ADMIN
# accountSetting keys of a normal admin's rights to create (admin_limits)
CREATE_NEW_DOMAINS = admin_limits.CREATE_NEW_DOMAINS
MAX_DOMAINS = admin_limits.MAX_DOMAINS
MAX_QUOTA = admin_limits.MAX_QUOTA
QUOTA_UNIT = admin_limits.QUOTA_UNIT
MAX_USERS = admin_limits.MAX_USERS
MAX_ALIASES = admin_limits.MAX_ALIASES
MAX_LISTS = admin_limits.MAX_LISTS
LEASE_PREFIX = admin_limits.LEASE_PREFIX
# API parameter -> accountSetting key (0 removes the key: unlimited)
LIMIT_PARAMETERS = {"maxUsers": MAX_USERS, "maxAliases": MAX_ALIASES, "maxLists": MAX_LISTS}
# API parameter -> the disabledService value that withholds the right
DISABLED_SERVICES = {"disableViewingMailLog": "view_mail_log",
                     "disableManagingQuarantinedMails": "manage_quarantined_mails"}
# Parameters that mean something for normal admins only; Pro discards them for global admins.
NORMAL_ADMIN_PARAMETERS = ("maxDomains", "maxQuota", "quotaUnit", *LIMIT_PARAMETERS, *DISABLED_SERVICES)

_ATTEMPTS = 8


def get_admin(directory, mail, attributes=("*",)):
    entry = directory.read(directory.names.admin(mail), attributes, IS_ADMIN)
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def list_admins(directory, disabled_only=False, attributes=("*",)):
    parts = [IS_ADMIN]
    if disabled_only:
        parts.append(dnlib.eq("accountStatus", "disabled"))
    return directory.paged_search(directory.names.admin_basedn, dnlib.all_of(*parts), attributes, scope="one")


def managed_domains(directory, mail):
    """The names of the domains whose domainAdmin names ``mail``, sorted (one indexed search)."""
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAdmin", mail))
    return sorted(entry.first("domainName").lower()
                  for entry in directory.paged_search(directory.names.basedn, filter_, ["domainName"], scope="one"))


def shown(entry):
    """The entry as the API shows it: no password hash, no lease of admin_limits."""
    data = entry.as_dict(hidden=HIDDEN_ATTRIBUTES)
    data.pop("accountSetting", None)
    settings = [v for v in entry.values("accountSetting") if not v.lower().startswith(LEASE_PREFIX.lower())]
    if settings:
        data["accountSetting"] = settings
    return data


def profile(directory, entry):
    """GET's answer: the entry as shown, plus ``managed_domains``."""
    return {**shown(entry), "managed_domains": managed_domains(directory, entry.first("mail").lower())}


def _setting_updates(values):
    """{accountSetting key: value or None} from the normal-admin parameters in ``values``."""
    updates = {}
    if "maxDomains" in values:
        count = values["maxDomains"]
        updates[CREATE_NEW_DOMAINS] = "yes" if count else None
        updates[MAX_DOMAINS] = count or None
    if "maxQuota" in values:
        amount = values["maxQuota"]
        updates[MAX_QUOTA] = amount or None
        updates[QUOTA_UNIT] = values["quotaUnit"] if amount else None
    for name, key in LIMIT_PARAMETERS.items():
        if name in values:
            updates[key] = values[name] or None
    return updates


def _check_quota_pair(values):
    """maxQuota > 0 needs quotaUnit; quotaUnit alone means nothing (Pro: "must be used with")."""
    if values.get("maxQuota") and "quotaUnit" not in values:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="quotaUnit", detail="give quotaUnit with maxQuota")
    if "quotaUnit" in values and "maxQuota" not in values:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="quotaUnit", detail="give maxQuota with quotaUnit")


def _new_password_hash(directory, values):
    """userPassword from ``password`` (the global policy, hashed) or ``password_hash``, or None."""
    if "password" in values and "password_hash" in values:
        raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="password_hash",
                                  detail="give password or password_hash, not both")
    if "password" in values:
        PasswordPolicy.from_settings(directory.settings).check(values["password"])
        return hash_password(values["password"], directory.settings.DEFAULT_PASSWORD_SCHEME)
    return values.get("password_hash")


def create_admin(directory, mail, values):
    """Add the standalone admin ``mail``.  Its address may not be a mail user's: at login the
    standalone admin is found first, and the user could no longer log in as an admin."""
    _check_quota_pair(values)
    if "password" not in values and "password_hash" not in values:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password", detail="give password or password_hash")
    userpassword = _new_password_hash(directory, values)
    if directory.read(directory.names.user(mail), ["1.1"], dnlib.eq("objectClass", "mailUser")) is not None:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=f"{mail} is a mail user")
    # A user renamed half-way keeps its old address as a second mail (renames.move) until the
    # rename's repeat has moved what names it, domainAdmin values included: an admin made there
    # would have its domains handed to the renamed user.  (slapd's unique overlay covers the
    # domains' tree only.)
    holder = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.eq("mail", mail))
    if next(iter(directory.paged_search(directory.names.basedn, holder, ["1.1"], page_size=1)), None) is not None:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=f"{mail} is a mail user's (a rename not finished)")
    attributes = {
        "objectClass": ["mailAdmin"],
        "mail": [mail],
        "userPassword": [userpassword],
        "accountStatus": [values.get("accountStatus") or "active"],
        "preferredLanguage": [values.get("preferredLanguage") or directory.settings.default_language],
        "shadowLastChange": [str(days_since_epoch())],
    }
    if values.get("cn"):
        attributes["cn"] = [values["cn"]]
    if values.get("isGlobalAdmin"):
        attributes["domainGlobalAdmin"] = ["yes"]
    else:
        settings = [keys.encode(k, v) for k, v in _setting_updates(values).items() if v is not None]
        if settings:
            attributes["accountSetting"] = settings
        disabled = [service for name, service in DISABLED_SERVICES.items() if values.get(name)]
        if disabled:
            attributes["disabledService"] = disabled
    try:
        directory.add(directory.names.admin(mail), attributes)
    except LdapOperationError as exc:
        if exc.result == ENTRY_ALREADY_EXISTS:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail) from None
        raise


def update_admin(directory, current, values):
    """Apply ``values`` to the admin whose entry (as read) is ``current``.  accountSetting keys
    change by compare-and-set (re-read and retried when another writer got there first), so a
    concurrent lease or limit change is never overwritten."""
    _check_quota_pair(values)
    userpassword = _new_password_hash(directory, values)
    plain = {}
    if userpassword:
        plain["userPassword"] = [(MODIFY_REPLACE, [userpassword])]
        plain["shadowLastChange"] = [(MODIFY_REPLACE, [str(days_since_epoch())])]
    if "cn" in values:
        plain["cn"] = replace_value(values["cn"])
    if "preferredLanguage" in values:
        plain["preferredLanguage"] = replace_value(values["preferredLanguage"])
    if "accountStatus" in values:
        plain["accountStatus"] = replace_value(values["accountStatus"])
    if "isGlobalAdmin" in values:
        plain["domainGlobalAdmin"] = replace_value("yes" if values["isGlobalAdmin"] else None)
    updates = _setting_updates(values)
    dn = current.dn

    def attempt(n):
        entry = current if n == 0 else get_admin(directory, current.first("mail"))
        modification = dict(plain)
        modification.update(keys.compare_and_set_changes(entry.values("accountSetting"), updates))
        add = [s for name, s in DISABLED_SERVICES.items() if values.get(name)]
        remove = [s for name, s in DISABLED_SERVICES.items() if name in values and not values[name]]
        services = value_changes(entry, "disabledService", add=add, remove=remove)
        if services:
            modification["disabledService"] = services
        if not modification:
            return
        try:
            directory.modify(dn, modification, keys.unchanged(entry.values("accountSetting"), updates))
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=entry.first("mail")) from None
            raise

    retry_on_conflict(attempt, "admin", attempts=_ATTEMPTS)


def delete_admin(directory, entry):
    """Take the admin out of every domain's domainAdmin, then delete its entry: a repeat
    after a crash half-way finds the entry and finishes the job."""
    mail = entry.first("mail").lower()
    remove_domain_admin(directory, [mail])
    delete_quietly(directory, entry.dn)
