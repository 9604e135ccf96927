"""A normal admin's creation limits, summed over the domains it manages, held race-free.

iRedAdmin-Pro's admin profile bounds what a normal (standalone) admin may have in all the
domains it manages together: ``create_max_domains``, ``create_max_users``,
``create_max_aliases``, ``create_max_lists`` and ``create_max_quota`` (in
``create_quota_unit``), accountSetting keys on its ``mailAdmin`` entry (absent or 0: unlimited).
What it has is the sum of the domain counters (``limits``) of the domains whose domainAdmin
names it, and how many those are.

A domain counter's compare-and-set cannot hold a sum over several domains: two creates in two
of the admin's domains write different entries and would both pass.  So a limited admin's
creates take turns, on a lease on its own entry: an ``accountSetting`` value
``iredapiLease:<expiry>:<nonce>`` added by compare-and-set (asserting that none is there, or
deleting the expired one by exact value), so only one request holds it.  Under the lease the
request sums the counters, checks, reserves its slot in its domain's counters and writes its
entry; then it gives the lease back.  A holder that dies leaves a lease that expires after
LEASE_SECONDS.  Global admins, mail-user admins and admins without limits never take it: no
round trip more for them.

Nothing here knows HTTP.
"""

import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass

from .. import errors
from . import account_settings as keys
from . import dn as dnlib
from . import limits as limitlib
from .connection import MODIFY_ADD, MODIFY_DELETE, NO_SUCH_OBJECT, LdapOperationError
from .entries import CAS_CONFLICTS, modify_quietly

log = logging.getLogger(__name__)

IS_ADMIN = dnlib.eq("objectClass", "mailAdmin")
# accountSetting keys of a normal admin's rights to create (iRedAdmin-Pro's admin profile):
# create_new_domains:yes lets it create domains; the create_max_* bound what it may have in
# all the domains it manages (absent = unlimited); create_max_quota counts create_quota_unit.
CREATE_NEW_DOMAINS = "create_new_domains"
MAX_DOMAINS = "create_max_domains"
MAX_QUOTA = "create_max_quota"
QUOTA_UNIT = "create_quota_unit"
MAX_USERS = "create_max_users"
MAX_ALIASES = "create_max_aliases"
MAX_LISTS = "create_max_lists"
# The lease on the admin's entry while it counts; not a setting of the admin.
LEASE_PREFIX = "iredapiLease:"

DOMAINS = "domains"  # the number of domains the admin manages
LEASE_SECONDS = 30  # a dead holder's lease is taken over after this
# The expiry is written by the holder's clock and judged by the waiter's: API hosts sharing a
# slapd may disagree by up to this (NTP keeps them far closer).  A lease is taken over only once
# it is this much past its expiry, so a holder always has LEASE_SECONDS; and a stamp further
# ahead than any such clock could have written (a clock that jumped) does not block for ever.
CLOCK_SKEW_SECONDS = 15
_WAIT_SECONDS = 10  # then 409 CONCURRENT_UPDATE
_UNIT_BYTES = {"MB": limitlib.MB, "GB": 1024 * limitlib.MB, "TB": 1024 * 1024 * limitlib.MB}
_KEYS = {DOMAINS: MAX_DOMAINS, limitlib.USERS: MAX_USERS, limitlib.ALIASES: MAX_ALIASES,
         limitlib.LISTS: MAX_LISTS}
_NAMES = {DOMAINS: "maxDomains", limitlib.USERS: "maxUsers", limitlib.ALIASES: "maxAliases",
          limitlib.LISTS: "maxLists", limitlib.QUOTA_BYTES: "maxQuota"}


@dataclass(frozen=True)
class AdminLimits:
    may_create_domains: bool
    maximum: dict  # DOMAINS / limits.USERS … / limits.QUOTA_BYTES (bytes) -> limit; 0 = unlimited

    @classmethod
    def of(cls, entry):
        settings = {k.lower(): v for k, v in keys.parse(entry.values("accountSetting")).items()}
        maximum = {counter: max(keys.integer(settings, key.lower()), 0) for counter, key in _KEYS.items()}
        unit = _UNIT_BYTES.get((settings.get(QUOTA_UNIT.lower()) or "MB").strip().upper(), limitlib.MB)
        maximum[limitlib.QUOTA_BYTES] = max(keys.integer(settings, MAX_QUOTA.lower()), 0) * unit
        return cls(may_create_domains=(settings.get(CREATE_NEW_DOMAINS.lower()) or "").lower() == "yes",
                   maximum=maximum)


def is_standalone(directory, admin):
    return admin.dn.lower().endswith("," + directory.names.admin_basedn.lower())


def read_admin(directory, admin):
    """The logged-in admin's standalone entry (objectClass, accountSetting), or None for a
    global admin or a mail-user admin (they have no creation limits)."""
    if admin.is_global or not is_standalone(directory, admin):
        return None
    return directory.read(admin.dn, ["objectClass", "accountSetting"], IS_ADMIN)


def no_limit(deltas, unlimited_quota=False):
    return contextlib.nullcontext()


def for_admin(directory, admin, domain_entry=None):
    """``guard(deltas, unlimited_quota=False)`` -> a context manager holding ``deltas`` within
    ``admin``'s limits while the block writes them (``no_limit`` for a global admin).

    A mail-user admin has no limits of its own, but a limited admin may make a user of its
    domain an admin of it (domain admins promote users of their domains): its creates in the
    domain ``domain_entry`` (read with domainAdmin) are held within the limits of every
    limited standalone admin of that domain, or they would be a formality.  That costs it one
    read per other admin of the domain."""
    if admin.is_global:
        return no_limit
    if is_standalone(directory, admin):
        def guard(deltas, unlimited_quota=False):
            return within(directory, admin, deltas, unlimited_quota)

        return guard
    if domain_entry is None:
        return no_limit
    # sorted: requests holding several leases take them in one order (no deadlock)
    owners = sorted({v.lower() for v in domain_entry.values("domainAdmin")} - {admin.username.lower()})
    if not owners:
        return no_limit

    def owners_guard(deltas, unlimited_quota=False):
        return _within_owners(directory, owners, deltas, unlimited_quota)

    return owners_guard


@contextlib.contextmanager
def _within_owners(directory, owners, deltas, unlimited_quota):
    with contextlib.ExitStack() as stack:
        for mail in owners:
            entry = directory.read(directory.names.admin(mail), ["objectClass", "accountSetting", "domainGlobalAdmin"],
                                   IS_ADMIN)
            if entry is None or (entry.first("domainGlobalAdmin") or "").lower() == "yes":
                continue  # a mail user, a global admin, or gone: no limits
            stack.enter_context(_holding(directory, entry, mail, deltas, unlimited_quota,
                                         whose=f"the admin account of {mail}, who manages this domain,",
                                         where="in all its domains"))
        yield


@contextlib.contextmanager
def within(directory, admin, deltas, unlimited_quota=False):
    """Hold ``deltas`` ({DOMAINS or a limits counter: n}) within the admin's limits for the block,
    which writes them (reserves domain counters, adds the domain).  ``unlimited_quota``: the
    block creates a mailbox without quota, which an admin with maxQuota may not."""
    if admin.is_global or not is_standalone(directory, admin):
        yield
        return
    entry = read_admin(directory, admin)
    if entry is None:
        raise _gone()  # deleted while this request was on its way
    with _holding(directory, entry, admin.username, deltas, unlimited_quota):
        yield


@contextlib.contextmanager
def _holding(directory, entry, mail, deltas, unlimited_quota, whose="your admin account", where="in all your domains"):
    """``within`` for the standalone admin ``mail`` whose entry (objectClass, accountSetting) is
    ``entry``."""
    limits = AdminLimits.of(entry)
    if unlimited_quota and limits.maximum[limitlib.QUOTA_BYTES]:
        raise errors.NotPermitted(errors.EXCEEDED_ADMIN_LIMIT, param="quota",
                                  detail=f"{whose} has maxQuota: no mailboxes with unlimited quota")
    bounded = {counter: delta for counter, delta in deltas.items() if delta > 0 and limits.maximum.get(counter)}
    if not bounded:
        yield
        return
    lease = _take_lease(directory, entry)
    try:
        used = usage(directory, mail)
        for counter, delta in bounded.items():
            limit = limits.maximum[counter]
            if used[counter] + delta > limit:
                shown = f"{limit // limitlib.MB} MB" if counter == limitlib.QUOTA_BYTES else str(limit)
                raise errors.NotPermitted(errors.EXCEEDED_ADMIN_LIMIT,
                                          param="quota" if counter == limitlib.QUOTA_BYTES else None,
                                          detail=f"{whose} allows {shown} {where} ({_NAMES[counter]})")
        yield
    finally:
        _give_back(directory, entry.dn, lease)


def usage(directory, mail):
    """{DOMAINS: domains managed, counter: sum over them} (one indexed search; a domain whose
    counters were never written is counted once, as the counters do)."""
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAdmin", mail))
    used = {DOMAINS: 0, **dict.fromkeys(limitlib.COUNTERS, 0)}
    for domain in directory.paged_search(directory.names.basedn, filter_, ["domainName", *limitlib.COUNTERS],
                                         scope="one"):
        used[DOMAINS] += 1
        values = {counter: limitlib.counter_value(domain, counter) for counter in limitlib.COUNTERS}
        if any(value is None for value in values.values()):
            values = limitlib.recount(directory, domain.first("domainName").lower())
        for counter in limitlib.COUNTERS:
            used[counter] += values[counter]
    return used


def _is_lease(value):
    return value.lower().startswith(LEASE_PREFIX.lower())


def _expiry(value):
    stamp = value[len(LEASE_PREFIX):].split(":", 1)[0]
    return int(stamp) if stamp.isdigit() else 0


def _live(value, now):
    """Whether the lease ``value`` still binds, by our clock ``now`` (see CLOCK_SKEW_SECONDS)."""
    expiry = _expiry(value)
    return now - CLOCK_SKEW_SECONDS <= expiry <= now + LEASE_SECONDS + CLOCK_SKEW_SECONDS


def _take_lease(directory, entry):
    dn = entry.dn
    token = f"{LEASE_PREFIX}{int(time.time()) + LEASE_SECONDS}:{secrets.token_hex(8)}"
    give_up_at = time.monotonic() + _WAIT_SECONDS
    n = 0
    while True:
        held = [v for v in entry.values("accountSetting") if _is_lease(v)]
        if any(v.lower() == token.lower() for v in held):
            # our own add went through though its answer was lost (the connection was re-opened
            # and the add repeated, which then failed its assertion): we hold it
            return token
        if not any(_live(v, time.time()) for v in held):
            changes = ([(MODIFY_DELETE, held)] if held else []) + [(MODIFY_ADD, [token])]
            assertion = None if held else dnlib.negate(dnlib.starts_with("accountSetting", LEASE_PREFIX))
            try:
                directory.modify(dn, {"accountSetting": changes}, assertion)
                return token
            except LdapOperationError as exc:
                if exc.result == NO_SUCH_OBJECT:
                    raise _gone() from None
                if exc.result not in CAS_CONFLICTS:
                    _give_back(directory, dn, token)  # in case slapd did it before it failed
                    raise
            except BaseException:
                # no answer (a timeout, the directory gone): the add may have been done; a lease
                # left behind would hold up this admin's creates until it expires
                _give_back(directory, dn, token)
                raise
        n += 1
        if time.monotonic() > give_up_at:
            raise errors.Conflict(errors.CONCURRENT_UPDATE, detail="your other creates kept the limits busy; try again")
        time.sleep(random.uniform(0.001, min(0.002 * n, 0.03)))
        entry = directory.read(dn, ["accountSetting"])
        if entry is None:
            raise _gone()


def _gone():
    return errors.NotPermitted(errors.PERMISSION_DENIED, detail="your admin account no longer exists")


def _give_back(directory, dn, token):
    try:
        modify_quietly(directory, dn, {"accountSetting": [(MODIFY_DELETE, [token])]})
    except Exception:  # noqa: BLE001 - the request's own outcome matters more; the lease expires
        log.exception("could not give back the lease on %s; it expires within %s s", dn, LEASE_SECONDS)
