"""iRedAPD's throttle settings, read and written as iRedAdmin-Pro does
(iRedAPD 6.1: plugins/throttle.py, SQL/iredapd.*).

Accounts are iRedAPD's: "user@domain", "@domain", "@." (global).  Callers validate and
lower-case them; this module knows nothing of HTTP.
"""

import sqlalchemy as sa

from .. import errors
from .engine import update_or_insert
from .tables import throttle, throttle_tracking

GLOBAL_ACCOUNT = "@."
KINDS = ("outbound", "inbound")

# iRedAPD's own scale (libs/__init__.py), not iRedAdmin-Pro's 10/5/0: iRedAPD applies rows in
# descending priority, so a user row must outrank a domain row, which outranks the global one.
ACCOUNT_PRIORITIES = {"email": 100, "domain": 60, "catchall": 0}

_MAX_PERIOD = 2**32 - 1  # MySQL INT UNSIGNED
_MAX_LIMIT = 2**63 - 1  # BIGINT

# iRedAPD's rules (plugins/throttle.py): each is resolved on its own; the per-period ones are
# counted over the row's period, the others apply to each message.
RULES = ("msg_size", "max_msgs", "max_quota", "max_rcpts")
PERIODIC_RULES = ("max_msgs", "max_quota")


def throttle_account(target):
    """The iRedAPD account of an API target: "global", a domain or an email address."""
    if target == "global":
        return GLOBAL_ACCOUNT
    return target if "@" in target else "@" + target


def applicable_accounts(account):
    """The accounts whose rows iRedAPD applies to mail of ``account``, most specific first
    (libs/utils.py get_policy_addresses_from_email): "user@d", "@d", "@.d", "@.<each parent of
    d>", "@.".  Rows for client IPs also apply, per client, and are not ours to change."""
    if account == GLOBAL_ACCOUNT:
        return [GLOBAL_ACCOUNT]
    local, _, domain = account.rpartition("@")
    labels = domain.split(".")
    found = ([account] if local else []) + ["@" + domain]
    found += ["@." + ".".join(labels[i:]) for i in range(len(labels))]
    return list(dict.fromkeys(found + [GLOBAL_ACCOUNT]))


def effective_limits(rows):
    """{rule: (value, period) or None} as iRedAPD resolves ``rows`` (dicts with the throttle
    columns): in descending priority, rows whose period is 0 skipped, the first value >= 0 wins
    (0 = unlimited, -1 = look further); None when no row sets the rule."""
    limits = dict.fromkeys(RULES)
    for row in sorted(rows, key=lambda r: (-r["priority"], r.get("id") or 0)):
        if not row["period"]:
            continue
        for rule in RULES:
            if limits[rule] is None and row[rule] is not None and row[rule] >= 0:
                limits[rule] = (row[rule], row["period"])
    return limits


def account_priority(account):
    if account == GLOBAL_ACCOUNT:
        return ACCOUNT_PRIORITIES["catchall"]
    return ACCOUNT_PRIORITIES["domain" if account.startswith("@") else "email"]


# Built once: every throttle GET runs it (see update_or_insert).
_GET_SETTING = (sa.select(throttle)
                .where(throttle.c.account == sa.bindparam("account"), throttle.c.kind == sa.bindparam("kind"))
                .order_by(throttle.c.id).limit(1))


def get_setting(store, account, kind):
    """The whole row for (account, kind) as a dict, or {} when there is none."""
    with store.transaction(read_only=True) as conn:
        row = conn.execute(_GET_SETTING, {"account": account, "kind": kind}).mappings().first()
    return dict(row) if row else {}


def set_setting(store, account, kind, period, msg_size, max_msgs, max_quota, max_rcpts=None, guard=None):
    """Store a setting as iRedAdmin-Pro does; return "created", "updated", "deleted", or
    "unchanged" (asked to delete a setting that does not exist).

    A limit passed as None is stored as 0 (unlimited).  ``max_rcpts`` exists for outbound only;
    inbound rows keep the column default.  The row (with its tracking rows) is deleted instead
    when ``period`` is 0, or when the limits the row would hold are all 0 (unlimited) for the
    global account or all -1 (inherit) for another account: such a row means no setting at all.

    ``guard(before, after)``: called in the write's transaction with the limits iRedAPD applies
    to the account now and would apply after the write (``effective_limits``); it refuses by
    raising, and nothing is written.
    """
    if kind not in KINDS:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="kind", detail=f"one of {', '.join(KINDS)}")
    limits = {"msg_size": msg_size, "max_msgs": max_msgs, "max_quota": max_quota}
    if kind == "outbound":
        limits["max_rcpts"] = max_rcpts
    elif max_rcpts is not None:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="max_rcpts", detail="outbound only")
    given = {name: value for name, value in limits.items() if value is not None}
    _check_number("period", period, 0, _MAX_PERIOD)
    for name, value in given.items():
        _check_number(name, value, -1, _MAX_LIMIT)

    stored = {name: given.get(name, 0) for name in limits}
    # max_rcpts counts only when given: iRedAdmin-Pro's API does not know it.
    compared = {value for name, value in stored.items() if name != "max_rcpts" or name in given}
    removes = period == 0 or compared == {0 if account == GLOBAL_ACCOUNT else -1}
    values = {"priority": account_priority(account), "period": period, **stored}
    # Concurrent writers of one (account, kind) must leave one row, and iRedAPD's PostgreSQL
    # table has no unique index to enforce that; so they take turns on a lock keyed on
    # (account, kind), then UPDATE, and INSERT only when nothing matched.
    with store.transaction(lock_key=f"iredapi-ldap throttle {kind} {account}") as conn:
        if guard is not None:
            _run_guard(conn, guard, account, kind, None if removes else values)
        if removes:
            return "deleted" if _delete_where(conn, _is_setting(account, kind)) else "unchanged"
        return update_or_insert(conn, throttle, {"account": account, "kind": kind}, values)


def delete_setting(store, account, kind, guard=None):
    """Delete the (account, kind) setting and its tracking rows; return the number of settings.
    ``guard``: as for set_setting."""
    with store.transaction(lock_key=f"iredapi-ldap throttle {kind} {account}") as conn:
        if guard is not None:
            _run_guard(conn, guard, account, kind, None)
        return _delete_where(conn, _is_setting(account, kind))


def _run_guard(conn, guard, account, kind, new_values):
    """guard(limits now, limits once the account's row holds ``new_values`` (None: is gone))."""
    rows = [dict(r) for r in conn.execute(
        sa.select(throttle).where(throttle.c.kind == kind,
                                  throttle.c.account.in_(applicable_accounts(account)))).mappings()]
    others = [r for r in rows if r["account"] != account]
    after = list(others)
    if new_values is not None:
        own = next((r for r in rows if r["account"] == account), {"max_rcpts": -1})  # the column default
        after.append({**own, **new_values, "id": own.get("id")})
    guard(effective_limits(rows), effective_limits(after))


def delete_settings_for_accounts(store, accounts):
    """Delete every kind of setting of ``accounts``, with their tracking rows."""
    accounts = list(accounts)
    if not accounts:
        return 0
    with store.transaction() as conn:
        return _delete_where(conn, throttle.c.account.in_(accounts))


def delete_settings_for_domain(store, domain):
    """Delete the settings of "@domain" and of every "user@domain", with their tracking rows."""
    with store.transaction() as conn:
        return _delete_where(conn, throttle.c.account.endswith("@" + domain, autoescape=True))


def _is_setting(account, kind):
    return sa.and_(throttle.c.account == account, throttle.c.kind == kind)


def _delete_where(conn, where):
    # Tracking rows first: their foreign key has no ON DELETE CASCADE.  The rows are locked
    # first so that iRedAPD cannot add a tracking row to one between the two DELETEs.
    ids = conn.execute(sa.select(throttle.c.id).where(where).with_for_update()).scalars().all()
    if ids:
        conn.execute(throttle_tracking.delete().where(throttle_tracking.c.tid.in_(ids)))
        conn.execute(throttle.delete().where(throttle.c.id.in_(ids)))
    return len(ids)


def _check_number(name, value, minimum, maximum):
    # The last line of defence: the HTTP layer validates first.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise errors.InvalidInput(
            errors.INVALID_NUMBER, param=name, detail=f"an integer from {minimum} to {maximum}"
        )


def rename_account(store, old, new):
    """An account was renamed: its settings (every kind) and the counters iRedAPD tracks for its
    address follow it; returns the number of settings moved.  A repeat moves nothing more.
    Where ``new`` has a setting of a kind already (set while the rename was half-way), that one
    stays and the old one goes."""
    with store.transaction() as conn:
        rows = conn.execute(sa.select(throttle.c.id, throttle.c.account, throttle.c.kind)
                            .where(throttle.c.account.in_([old, new])).with_for_update()).all()
        kinds_of_new = {row.kind for row in rows if row.account == new}
        stale = [row.id for row in rows if row.account == old and row.kind in kinds_of_new]
        if stale:
            _delete_where(conn, throttle.c.id.in_(stale))
        moved = conn.execute(sa.update(throttle).where(throttle.c.account == old).values(account=new)).rowcount
        # Tracking rows of the old address (under its own settings and under domain and global
        # ones) keep counting for the new one, unless the new address has its own row there.
        # (MySQL cannot delete from a table it selects from in a subquery: two statements.)
        taken = conn.execute(sa.select(throttle_tracking.c.tid)
                             .where(throttle_tracking.c.account == new)).scalars().all()
        if taken:
            conn.execute(sa.delete(throttle_tracking).where(throttle_tracking.c.account == old,
                                                            throttle_tracking.c.tid.in_(taken)))
        conn.execute(sa.update(throttle_tracking).where(throttle_tracking.c.account == old).values(account=new))
        return moved
