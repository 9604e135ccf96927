"""A domain's limits and counters, and changing the counters race-free.

iRedMail keeps ``domainCurrentUserNumber``, ``domainCurrentAliasNumber``,
``domainCurrentListNumber`` (integers) and ``domainCurrentQuotaSize`` (bytes, an
IA5 string) on the domain entry.  We change them by compare-and-set: one modify
that deletes the value we read and adds the new one, so two workers that read
the same value cannot both succeed; the loser re-reads and checks the limit
again.  That makes limits hold under concurrency without counting the domain's
accounts on each request (stack.md §2.5-2.6).
"""

import random
import threading
import time
import zlib
from dataclasses import dataclass

from .. import errors
from . import account_settings as keys
from . import dn as dnlib
from .connection import ATTRIBUTE_OR_VALUE_EXISTS, MODIFY_ADD, MODIFY_DELETE, NO_SUCH_ATTRIBUTE, LdapOperationError

USERS = "domainCurrentUserNumber"
ALIASES = "domainCurrentAliasNumber"
LISTS = "domainCurrentListNumber"
QUOTA_BYTES = "domainCurrentQuotaSize"
COUNTERS = (USERS, ALIASES, LISTS, QUOTA_BYTES)

MB = 1024 * 1024
EXCEEDED_ACCOUNT_LIMIT = "EXCEEDED_DOMAIN_ACCOUNT_LIMIT"
EXCEEDED_DOMAIN_QUOTA = "EXCEEDED_DOMAIN_QUOTA_SIZE"
EXCEEDED_MAX_USER_QUOTA = "EXCEEDED_MAX_USER_QUOTA"  # ours: above the domain's maxUserQuota

# Domain attributes a limit check needs (one base read).
DOMAIN_ATTRIBUTES = ["accountStatus", "accountSetting", "domainAdmin", "domainAliasName", *COUNTERS]

_ATTEMPTS = 20  # recount
# Counter updates retry on conflict for this long (then 409 CONCURRENT_UPDATE): under a burst of
# creates in one domain from several workers, a worker can lose many races in a row.
_CONTENTION_SECONDS = 10
_MAX_ATTEMPTS = 1000

# counter -> accountSetting key of its limit (0/absent = unlimited, -1 = none)
_ACCOUNT_LIMITS = {USERS: keys.NUMBER_OF_USERS, ALIASES: keys.NUMBER_OF_ALIASES, LISTS: keys.NUMBER_OF_LISTS}


@dataclass(frozen=True)
class DomainLimits:
    """What a domain entry says about its accounts; sizes in bytes, 0 = unlimited."""

    domain_quota: int
    max_user_quota: int
    default_quota: int
    min_password_length: int
    max_password_length: int
    default_language: str | None
    storage_base_directory: str | None
    disabled: bool

    @classmethod
    def of(cls, domain_entry):
        settings = keys.parse(domain_entry.values("accountSetting"))
        return cls(
            domain_quota=keys.domain_quota_mb(settings) * MB,
            max_user_quota=max(keys.integer(settings, keys.MAX_USER_QUOTA), 0) * MB,
            default_quota=max(keys.integer(settings, keys.DEFAULT_QUOTA), 0) * MB,
            min_password_length=max(keys.integer(settings, keys.MIN_PASSWORD_LENGTH), 0),
            max_password_length=max(keys.integer(settings, keys.MAX_PASSWORD_LENGTH), 0),
            default_language=settings.get(keys.DEFAULT_LANGUAGE) or None,
            storage_base_directory=settings.get("defaultStorageBaseDirectory") or None,
            disabled=(domain_entry.first("accountStatus") or "active").lower() != "active",
        )

    def check_user_quota(self, quota_bytes):
        """A single user's quota against the domain's rules (before any counting)."""
        if self.max_user_quota and (quota_bytes == 0 or quota_bytes > self.max_user_quota):
            raise errors.NotPermitted(EXCEEDED_MAX_USER_QUOTA, param="quota",
                                      detail=f"the domain allows at most {self.max_user_quota // MB} MB per user")
        if self.domain_quota and quota_bytes == 0:
            raise errors.NotPermitted(EXCEEDED_DOMAIN_QUOTA, param="quota",
                                      detail="a domain with a quota cannot have users with unlimited quota")


def counter_value(domain_entry, counter):
    value = domain_entry.first(counter)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


# The threads of one worker take turns on a domain's counters: compare-and-set still decides
# between workers and hosts, but a worker's own threads no longer make each other retry (under
# load, each retry was another read and modify of the same entry).  Striped: memory stays fixed.
_COUNTER_LOCKS = tuple(threading.Lock() for _ in range(64))
# Per stripe, under its lock: (domain, {counter: value}, when) as this worker last wrote them.  A
# thread whose domain entry was asked for before that write ended compares against these values
# instead of reading the entry again.  Only a guess: if another worker or host wrote since, the
# compare-and-set fails and we read anew.
_LAST_WRITTEN = [None] * len(_COUNTER_LOCKS)


def adjust_counters(ldap, names, domain, deltas, domain_entry=None):
    """Add ``deltas`` ({counter: n}) to the domain's counters, enforcing limits
    for positive deltas; returns the domain entry as it was just before.

    Raises NotPermitted with iRedAdmin's codes when a limit would be exceeded.
    """
    stripe = zlib.crc32(domain.encode()) % len(_COUNTER_LOCKS)
    with _COUNTER_LOCKS[stripe]:
        known = None
        last = _LAST_WRITTEN[stripe]
        if (domain_entry is not None and last is not None and last[0] == domain
                and last[2] > domain_entry.read_at and set(deltas) <= set(last[1])):
            known = last[1]  # our own thread wrote after this entry was read: its values are newer
        return _adjust_counters(ldap, names, domain, deltas, domain_entry, known, stripe)


def _adjust_counters(ldap, names, domain, deltas, domain_entry, known, stripe):
    domain_dn = names.domain(domain)
    give_up_at = time.monotonic() + _CONTENTION_SECONDS
    for attempt in range(_MAX_ATTEMPTS):
        if attempt and domain_entry is None and time.monotonic() > give_up_at:
            break
        if domain_entry is None:
            domain_entry = _read(ldap, names, domain)
            known = None
        current = {counter: (known[counter] if known else counter_value(domain_entry, counter)) for counter in deltas}
        if any(value is None for value in current.values()):
            # Counters never written (domain made by another tool): count once.
            recount(ldap, names, domain)
            domain_entry = None
            continue
        _check_limits(domain_entry, current, deltas)
        changes = {
            counter: [(MODIFY_DELETE, [str(current[counter])]),
                      (MODIFY_ADD, [str(current[counter] + delta)])]
            for counter, delta in deltas.items() if delta
        }
        if not changes:
            return domain_entry
        try:
            ldap.modify(domain_dn, changes)
        except LdapOperationError as exc:
            if exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS):
                raise
            # Someone else changed a counter first: read again, after a short random pause, so
            # that writers of two workers that keep colliding fall out of step.
            domain_entry = None
            time.sleep(random.uniform(0, min(0.002 * attempt, 0.02)))
            continue
        written = {counter: current[counter] + delta for counter, delta in deltas.items()}
        last = _LAST_WRITTEN[stripe]
        if last is not None and last[0] == domain:
            written = {**last[1], **written}
        _LAST_WRITTEN[stripe] = (domain, written, time.monotonic())
        return domain_entry
    raise errors.Conflict("CONCURRENT_UPDATE", detail="the domain's counters kept changing; try again")


def _read(ldap, names, domain):
    entry = ldap.read(names.domain(domain), DOMAIN_ATTRIBUTES, dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain)
    return entry


def _check_limits(domain_entry, current, deltas):
    settings = keys.parse(domain_entry.values("accountSetting"))
    for counter, key in _ACCOUNT_LIMITS.items():
        if deltas.get(counter, 0) <= 0:
            continue
        limit = keys.integer(settings, key)
        if limit == -1 or (limit > 0 and current[counter] + deltas[counter] > limit):
            raise errors.NotPermitted(EXCEEDED_ACCOUNT_LIMIT,
                                      detail=f"the domain allows {max(limit, 0)} accounts of this kind ({key})")
    if deltas.get(QUOTA_BYTES, 0) > 0:
        domain_quota = keys.domain_quota_mb(settings) * MB
        if domain_quota and current[QUOTA_BYTES] + deltas[QUOTA_BYTES] > domain_quota:
            raise errors.NotPermitted(EXCEEDED_DOMAIN_QUOTA, param="quota",
                                      detail=f"the domain's users may have {domain_quota // MB} MB in all")


def release(ldap, names, domain, deltas):
    """Undo a reservation made with ``adjust_counters`` (negative deltas never hit a limit)."""
    adjust_counters(ldap, names, domain, {counter: -delta for counter, delta in deltas.items()})


def recount(ldap, names, domain):
    """Count the domain's accounts and quota and store the counters.

    O(domain size): for set-up and repair (``iredapi-ldap recount``), never per
    request.  Compare-and-set again: if a counter changed while we counted,
    count again.
    """
    for _ in range(_ATTEMPTS):
        before = _read(ldap, names, domain)
        users = quota = 0
        catch_all = dnlib.eq("mail", "@" + domain)
        users_filter = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.negate(catch_all))
        for entry in ldap.paged_search(names.ou(domain, dnlib.USERS_OU), users_filter, ["mailQuota"], scope="one"):
            users += 1
            value = entry.first("mailQuota") or "0"
            quota += int(value) if value.isdigit() else 0
        aliases = sum(1 for _ in ldap.paged_search(names.ou(domain, dnlib.ALIASES_OU),
                                                   dnlib.eq("objectClass", "mailAlias"), ["1.1"], scope="one"))
        lists = sum(1 for _ in ldap.paged_search(names.ou(domain, dnlib.GROUPS_OU),
                                                 dnlib.eq("objectClass", "mailList"), ["1.1"], scope="one"))
        counted = {USERS: users, ALIASES: aliases, LISTS: lists, QUOTA_BYTES: quota}
        changes = {}
        for counter, value in counted.items():
            old = before.values(counter)
            ops = [(MODIFY_DELETE, old)] if old else []
            changes[counter] = ops + [(MODIFY_ADD, [str(value)])]
        try:
            ldap.modify(names.domain(domain), changes)
            return counted
        except LdapOperationError as exc:
            if exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS):
                raise
    raise errors.Conflict("CONCURRENT_UPDATE", detail="the domain kept changing while counting; try again")
