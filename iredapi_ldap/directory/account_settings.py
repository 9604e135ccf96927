"""iRedMail's ``accountSetting`` values: ``key:value`` strings (iRedAdmin libs/ldaplib/ldaputils.py).

The one place that knows their keys, units and how to change them safely.
"""

from . import dn as dnlib
from .connection import MODIFY_ADD, MODIFY_DELETE

# Domain keys this API writes, and what their integers mean.
DOMAIN_QUOTA = "domainQuota"  # whole-domain quota, stored "<n>:<unit>"; we write MB
DEFAULT_LANGUAGE = "defaultLanguage"
DEFAULT_QUOTA = "defaultQuota"  # MB, quota of new users; 0/absent = unlimited
MAX_USER_QUOTA = "maxUserQuota"  # MB; 0/absent = no per-user maximum
NUMBER_OF_USERS = "numberOfUsers"  # 0/absent = unlimited, -1 = none may be created
NUMBER_OF_ALIASES = "numberOfAliases"
NUMBER_OF_LISTS = "numberOfLists"
MIN_PASSWORD_LENGTH = "minPasswordLength"  # 0/absent = the global setting
MAX_PASSWORD_LENGTH = "maxPasswordLength"

_UNIT_MB = {"MB": 1, "GB": 1024, "TB": 1024 * 1024}


def parse(values):
    """{key: value} from the attribute's values (split on the first ``:``)."""
    result = {}
    for item in values:
        key, sep, value = item.partition(":")
        if sep:
            result[key] = value
    return result


def encode(key, value):
    if key == DOMAIN_QUOTA:
        return f"{key}:{value}:MB"
    return f"{key}:{value}"


def integer(settings, key, default=0):
    """An integer setting; values other tools wrote badly count as ``default``."""
    value = settings.get(key)
    if value is None:
        return default
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    return default


def domain_quota_mb(settings):
    """The domain's whole quota in MB, 0 = unlimited (units MB/GB/TB accepted)."""
    value = settings.get(DOMAIN_QUOTA)
    if not value:
        return 0
    number, _, unit = value.partition(":")
    if not number.isdigit():
        return 0
    return int(number) * _UNIT_MB.get(unit.upper() or "MB", 1)


def compare_and_set_changes(current_values, updates):
    """Changes turning ``current_values`` into the state ``updates`` asks for.

    ``updates`` maps key -> new value (str/int) or None to remove the key.  The
    old values of changed keys are deleted by exact value in the same modify
    that adds the new ones, so a concurrent change to the same key makes the
    modify fail (noSuchAttribute) instead of being overwritten; changes to
    other keys are untouched.
    """
    current = {}
    for item in current_values:
        key, sep, _ = item.partition(":")
        current.setdefault(key.lower(), []).append(item)
    to_delete, to_add = [], []
    for key, value in updates.items():
        old = current.get(key.lower(), [])
        new = [] if value is None else [encode(key, value)]
        if [o.lower() for o in old] == [n.lower() for n in new]:
            continue
        to_delete += old
        to_add += new
    operations = []
    if to_delete:
        operations.append((MODIFY_DELETE, to_delete))
    if to_add:
        operations.append((MODIFY_ADD, to_add))
    return {"accountSetting": operations} if operations else {}


def unchanged(current_values, keys):
    """A filter the entry matches while each of ``keys`` has the values it has in
    ``current_values``, or is still absent; None for no keys.  Asserted on a modify, it
    catches what deleting old values by exact value cannot: a key another writer set where
    we found none, or one that a check of ours relied on and the modify does not touch."""
    parts = []
    for key in dict.fromkeys(k.lower() for k in keys):
        values = [v for v in current_values if v.partition(":")[0].lower() == key]
        parts += [dnlib.eq("accountSetting", v) for v in values] or [
            dnlib.negate(dnlib.starts_with("accountSetting", key + ":"))]
    return dnlib.all_of(*parts) if parts else None


# -- profile switches (iRedAdmin-Pro): one "key:name" value per withheld tab or preference ------

DISABLED_DOMAIN_PROFILE = "disabledDomainProfile"
DISABLED_USER_PROFILE = "disabledUserProfile"
DISABLED_USER_PREFERENCE = "disabledUserPreference"
# The names Pro's API documents for each (its "disableDomainProfile" etc. parameters).
DOMAIN_PROFILE_TABS = ("bcc", "relay", "catchall", "aliases", "throttle", "greylisting", "wblist", "spampolicy",
                       "backupmx", "password_policies", "advanced")
USER_PROFILE_TABS = ("bcc", "forwarding", "relay", "aliases", "throttle", "greylisting", "wblist", "spampolicy")
USER_PREFERENCES = ("personal_info", "forwarding", "wblist", "quarantine", "rcvd_mails", "spampolicy")
# (disable parameter, enable parameter, accountSetting key, names)
PROFILE_SWITCHES = (
    ("disableDomainProfile", "enableDomainProfile", DISABLED_DOMAIN_PROFILE, DOMAIN_PROFILE_TABS),
    ("disableUserProfile", "enableUserProfile", DISABLED_USER_PROFILE, USER_PROFILE_TABS),
    ("disableUserPreference", "enableUserPreference", DISABLED_USER_PREFERENCE, USER_PREFERENCES),
)


def multi(values, key):
    """The names stored under a multi-valued key (one ``key:name`` value each), lower case."""
    key = key.lower()
    names = []
    for item in values:
        name, sep, value = item.partition(":")
        if sep and name.strip().lower() == key and value.strip().lower() not in names:
            names.append(value.strip().lower())
    return names


def multi_changes(current_values, key, add=(), remove=()):
    """[(MODIFY_*, values)] adding ``key:name`` for the ``add`` names not there and deleting the
    stored values of the ``remove`` names (by exact value: a concurrent change conflicts)."""
    key_lower = key.lower()
    stored = {}
    for item in current_values:
        name, sep, value = item.partition(":")
        if sep and name.strip().lower() == key_lower:
            stored.setdefault(value.strip().lower(), []).append(item)
    operations = []
    gone = [item for name in remove for item in stored.get(name.lower(), [])]
    if gone:
        operations.append((MODIFY_DELETE, gone))
    new = [f"{key}:{name}" for name in dict.fromkeys(n.lower() for n in add) if name not in stored]
    if new:
        operations.append((MODIFY_ADD, new))
    return operations
