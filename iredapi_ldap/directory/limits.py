"""A domain's limits and counters, and changing the counters race-free.

iRedMail keeps ``domainCurrentUserNumber``, ``domainCurrentAliasNumber``,
``domainCurrentListNumber`` (integers) and ``domainCurrentQuotaSize`` (bytes, an
IA5 string) on the domain entry.  We change them by compare-and-set: one modify
that deletes the value we read and adds the new one, so two workers that read
the same value cannot both succeed; the loser re-reads and checks the limit
again.  That makes limits hold under concurrency without counting the domain's
accounts on each request (RFC 4511 §4.6: a modify is atomic, and deleting a value
that is not there fails it).
"""

import contextlib
import logging
import threading
import time
import zlib
from dataclasses import dataclass

from .. import errors
from . import account_settings as keys
from . import dn as dnlib
from .connection import MODIFY_ADD, MODIFY_DELETE, NO_SUCH_OBJECT, LdapOperationError
from .domains import get_domain
from .entries import retry_on_conflict

log = logging.getLogger(__name__)

USERS = "domainCurrentUserNumber"
ALIASES = "domainCurrentAliasNumber"
LISTS = "domainCurrentListNumber"
QUOTA_BYTES = "domainCurrentQuotaSize"
COUNTERS = (USERS, ALIASES, LISTS, QUOTA_BYTES)

MB = 1024 * 1024
# The bound on every quota in MB the API takes or applies (1 PiB): quota_mb * MB, the bytes in
# mailQuota and domainCurrentQuotaSize, stays a modest integer.
MAX_QUOTA_MB = 1024 ** 3

# Domain attributes a limit check needs (one base read).
DOMAIN_ATTRIBUTES = ["accountStatus", "accountSetting", "domainAdmin", "domainAliasName", *COUNTERS]

_ATTEMPTS = 20  # recount
_SETTLE_TRIES = 5  # recount: counts in a row that may find the domain changing
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
            raise errors.NotPermitted(errors.EXCEEDED_MAX_USER_QUOTA, param="quota",
                                      detail=f"the domain allows at most {self.max_user_quota // MB} MB per user")
        if self.domain_quota and quota_bytes == 0:
            raise errors.NotPermitted(errors.EXCEEDED_DOMAIN_QUOTA_SIZE, param="quota",
                                      detail="a domain with a quota cannot have users with unlimited quota")


def counter_value(domain_entry, counter):
    value = domain_entry.first(counter)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


class CounterState:
    """A process's view of the counters it writes, kept on its ``Directory``.

    The threads of one worker take turns on a domain's counters: compare-and-set still decides
    between workers and hosts, but a worker's own threads no longer make each other retry (under
    load, each retry was another read and modify of the same entry).  Striped: memory stays
    fixed.  Per stripe, under its lock: (domain, {counter: value}, when) as this worker last wrote
    them.  A thread whose domain entry was asked for before that write ended compares against
    these values instead of reading the entry again.  Only a guess: if another worker or host
    wrote since, the compare-and-set fails and we read anew.
    """

    STRIPES = 64

    def __init__(self):
        self.locks = tuple(threading.Lock() for _ in range(self.STRIPES))
        self.last_written = [None] * self.STRIPES

    def stripe(self, domain):
        return zlib.crc32(domain.encode()) % self.STRIPES


def adjust_counters(directory, domain, deltas, domain_entry=None):
    """Add ``deltas`` ({counter: n}) to the domain's counters, enforcing limits
    for positive deltas; returns the domain entry as it was just before.

    ``domain_entry``: the domain as the caller just read it (with DOMAIN_ATTRIBUTES), which
    spares a read; a stale one costs a retry, never a wrong count.  Raises NotPermitted with
    iRedAdmin's codes when a limit would be exceeded.
    """
    state = directory.counters
    stripe = state.stripe(domain)
    with state.locks[stripe]:
        known = None
        last = state.last_written[stripe]
        if (domain_entry is not None and last is not None and last[0] == domain
                and last[2] > domain_entry.read_at and set(deltas) <= set(last[1])):
            known = last[1]  # our own thread wrote after this entry was read: its values are newer

        def attempt(n):
            entry = domain_entry if n == 0 and domain_entry is not None else read_domain(directory, domain)
            values = known if n == 0 else None
            current = {counter: (values[counter] if values else counter_value(entry, counter)) for counter in deltas}
            if any(value is None for value in current.values()):
                # Counters never written (domain made by another tool): count once.
                recount(directory, domain)
                entry = read_domain(directory, domain)
                current = {counter: counter_value(entry, counter) for counter in deltas}
            _check_limits(entry, current, deltas)
            changes = {
                counter: [(MODIFY_DELETE, [str(current[counter])]), (MODIFY_ADD, [str(current[counter] + delta)])]
                for counter, delta in deltas.items() if delta
            }
            if changes:
                try:
                    directory.modify(directory.names.domain(domain), changes)
                except LdapOperationError as exc:
                    if exc.result == NO_SUCH_OBJECT:  # deleted since it was read
                        raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
                    raise
                written = {counter: current[counter] + delta for counter, delta in deltas.items()}
                last = state.last_written[stripe]
                if last is not None and last[0] == domain:
                    written = {**last[1], **written}
                state.last_written[stripe] = (domain, written, time.monotonic())
            return entry

        return retry_on_conflict(attempt, "domain's counters", attempts=_MAX_ATTEMPTS, seconds=_CONTENTION_SECONDS)


@contextlib.contextmanager
def reserved(directory, domain, deltas, domain_entry=None):
    """Reserve ``deltas`` in the domain's counters for the block, and give them back if the
    block fails in any way (an LDAP error, a timeout, text slapd refuses, a bug): a failed
    request must never leave the counters off.  Yields the domain entry as it was before."""
    entry = adjust_counters(directory, domain, deltas, domain_entry)
    try:
        yield entry
    except BaseException:
        try:
            release(directory, domain, deltas)
        except errors.NoSuchObject:
            pass  # the domain was deleted meanwhile: no counters left to give back to
        except Exception:  # noqa: BLE001 - report the original failure; the log says how to repair
            log.exception("could not give back %s of domain %s; run `iredapi-ldap recount %s`",
                          deltas, domain, domain)
        raise


def read_domain(directory, domain):
    """The domain entry with what the counters and limit checks need (one base read)."""
    return get_domain(directory, domain, DOMAIN_ATTRIBUTES)


def _check_limits(domain_entry, current, deltas):
    settings = keys.parse(domain_entry.values("accountSetting"))
    for counter, key in _ACCOUNT_LIMITS.items():
        if deltas.get(counter, 0) <= 0:
            continue
        limit = keys.integer(settings, key)
        if limit == -1 or (limit > 0 and current[counter] + deltas[counter] > limit):
            raise errors.NotPermitted(errors.EXCEEDED_DOMAIN_ACCOUNT_LIMIT,
                                      detail=f"the domain allows {max(limit, 0)} accounts of this kind ({key})")
    if deltas.get(QUOTA_BYTES, 0) > 0:
        domain_quota = keys.domain_quota_mb(settings) * MB
        if domain_quota and current[QUOTA_BYTES] + deltas[QUOTA_BYTES] > domain_quota:
            raise errors.NotPermitted(errors.EXCEEDED_DOMAIN_QUOTA_SIZE, param="quota",
                                      detail=f"the domain's users may have {domain_quota // MB} MB in all")


def release(directory, domain, deltas):
    """Undo a reservation made with ``adjust_counters`` (negative deltas never hit a limit)."""
    adjust_counters(directory, domain, {counter: -delta for counter, delta in deltas.items()})


def recount(directory, domain, settle_seconds=0):
    """Count the domain's accounts and quota and store the counters if they differ.

    O(domain size): for set-up and repair (``iredapi-ldap recount``), never per
    request.  Compare-and-set again: if a counter changed while we counted,
    count again.  ``settle_seconds``: on a live server a create or delete between
    its counter write and its entry write shows as a difference that goes away; with
    ``settle_seconds``, a difference is written only if it is still there, counters
    and count alike, that much later, so that a periodic recount does not turn a
    request in flight into a drift.
    """
    names = directory.names

    def stored(entry):
        return {counter: counter_value(entry, counter) for counter in COUNTERS}

    def attempt(n):
        for _ in range(_SETTLE_TRIES):
            before = read_domain(directory, domain)
            counted = count_accounts(directory, domain)
            if stored(before) == counted:
                return counted
            if not settle_seconds:
                break
            time.sleep(settle_seconds)
            still = stored(read_domain(directory, domain)) == stored(before)
            if still and count_accounts(directory, domain) == counted:
                break
        else:
            raise errors.Conflict(errors.CONCURRENT_UPDATE, detail=f"{domain} kept changing while it was counted")
        changes = {}
        for counter, value in counted.items():
            old = before.values(counter)
            changes[counter] = ([(MODIFY_DELETE, old)] if old else []) + [(MODIFY_ADD, [str(value)])]
        directory.modify(names.domain(domain), changes)
        return counted

    return retry_on_conflict(attempt, "domain (while counting)", attempts=_ATTEMPTS)


def count_accounts(directory, domain):
    """{counter: value} as the domain's entries say (paged searches of its containers)."""
    names = directory.names
    users = quota = 0
    catch_all = dnlib.eq("mail", "@" + domain)
    users_filter = dnlib.all_of(dnlib.eq("objectClass", "mailUser"), dnlib.negate(catch_all))
    for entry in directory.paged_search(names.ou(domain, dnlib.USERS_OU), users_filter, ["mailQuota"], scope="one"):
        users += 1
        value = entry.first("mailQuota") or "0"
        quota += int(value) if value.isdigit() else 0
    aliases = sum(1 for _ in directory.paged_search(names.ou(domain, dnlib.ALIASES_OU),
                                                    dnlib.eq("objectClass", "mailAlias"), ["1.1"], scope="one"))
    lists = sum(1 for _ in directory.paged_search(names.ou(domain, dnlib.GROUPS_OU),
                                                  dnlib.eq("objectClass", "mailList"), ["1.1"], scope="one"))
    return {USERS: users, ALIASES: aliases, LISTS: lists, QUOTA_BYTES: quota}
