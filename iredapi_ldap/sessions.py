"""Login sessions and failed-login accounting, kept in the SQL store.

Nothing lives in a worker's memory: any worker of any host that shares the
store accepts a session another one issued.  Only a hash of the token is
stored, so a leaked table does not leak sessions.
"""

import hashlib
import secrets
import time

import sqlalchemy as sa

from .store import tables

# Refresh last_seen at most this often, so most requests only read the row.
TOUCH_INTERVAL = 30

# Built once: every request or login runs them, and building a statement costs more than running
# it on SQLite.
_LOOKUP = sa.select(tables.api_sessions).where(tables.api_sessions.c.id_hash == sa.bindparam("id_hash"))
_INSERT = sa.insert(tables.api_sessions)
_SWEEP = sa.delete(tables.api_sessions).where(tables.api_sessions.c.last_seen < sa.bindparam("before"))
_FAILURES = sa.select(tables.login_failures).where(
    tables.login_failures.c.key.in_(sa.bindparam("keys", expanding=True)))
_CLEAR_FAILURES = sa.delete(tables.login_failures).where(tables.login_failures.c.key == sa.bindparam("key"))


def _hash(token):
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class SessionStore:
    def __init__(self, store, timeout, recheck_interval, clock=time.time):
        self._store = store
        self._timeout = timeout
        self._recheck_interval = recheck_interval
        self._clock = clock
        # With a timeout shorter than TOUCH_INTERVAL activity would never be written back
        # and an active session would expire SESSION_TIMEOUT after login.
        self._touch_interval = min(TOUCH_INTERVAL, timeout // 2)

    def create(self, admin):
        """A new session for ``admin`` (an AdminAccount); returns the token."""
        token = secrets.token_urlsafe(32)
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.execute(_INSERT, {
                "id_hash": _hash(token), "username": admin.username, "admin_dn": admin.dn,
                "is_global_admin": admin.is_global, "created_at": now, "last_seen": now, "checked_at": now,
            })
            # Expired rows are swept by whoever logs in, not by a timer per worker.
            conn.execute(_SWEEP, {"before": now - self._timeout})
        return token

    def lookup(self, token):
        """The live session row for ``token`` as a dict, or None.

        Touches ``last_seen`` when older than TOUCH_INTERVAL (or half the timeout); says in
        ``needs_recheck`` whether the admin's entry should be read again.
        """
        if not token or len(token) > 100:
            return None
        now = int(self._clock())
        table = tables.api_sessions
        # Every request reads its session: a read-only transaction, so that on SQLite requests
        # do not queue for the write lock; the rare write goes in a transaction of its own.
        with self._store.transaction(read_only=True) as conn:
            row = conn.execute(_LOOKUP, {"id_hash": _hash(token)}).mappings().first()
        if row is None:
            return None
        if row["last_seen"] + self._timeout < now:
            with self._store.transaction() as conn:
                conn.execute(sa.delete(table).where(table.c.id_hash == row["id_hash"]))
            return None
        if now - row["last_seen"] >= self._touch_interval:
            with self._store.transaction() as conn:
                conn.execute(sa.update(table).where(table.c.id_hash == row["id_hash"]).values(last_seen=now))
        session = dict(row)
        session["needs_recheck"] = now - row["checked_at"] >= self._recheck_interval
        return session

    def rechecked(self, token, is_global):
        with self._store.transaction() as conn:
            conn.execute(sa.update(tables.api_sessions).where(tables.api_sessions.c.id_hash == _hash(token))
                         .values(is_global_admin=is_global, checked_at=int(self._clock())))

    def delete(self, token):
        with self._store.transaction() as conn:
            conn.execute(sa.delete(tables.api_sessions).where(tables.api_sessions.c.id_hash == _hash(token)))

    def end_sessions(self, username, keep=None):
        """Delete every session of ``username`` (but the one of token ``keep``): its password
        changed, or it was disabled or deleted.  One DELETE on the indexed username."""
        table = tables.api_sessions
        where = table.c.username == username
        if keep:
            where = sa.and_(where, table.c.id_hash != _hash(keep))
        with self._store.transaction() as conn:
            return conn.execute(sa.delete(table).where(where)).rowcount


class LoginThrottle:
    """Counts failed logins per client address and per username (shared store).

    After ``max_failures`` failures within ``window`` seconds, further logins
    for that address or username are refused until the window has passed.
    """

    def __init__(self, store, max_failures, window, clock=time.time):
        self._store = store
        self._max = max_failures
        self._window = window
        self._clock = clock

    @staticmethod
    def keys(client_ip, username):
        return (f"ip:{client_ip}", f"user:{username[:250]}")

    def check(self, keys):
        """(whether a login for ``keys`` is refused now, the keys that have failures recorded)."""
        if self._max == 0:
            return False, frozenset()
        now = int(self._clock())
        with self._store.transaction(read_only=True) as conn:
            rows = conn.execute(_FAILURES, {"keys": list(keys)}).mappings().all()
        blocked = any(r["failures"] >= self._max and r["window_start"] + self._window > now for r in rows)
        return blocked, frozenset(r["key"] for r in rows)

    def record_failure(self, keys):
        if self._max == 0:
            return  # throttling is off: nothing would ever read the counters
        now = int(self._clock())
        table = tables.login_failures
        for key in keys:
            for _ in range(2):  # a second round only if another worker inserted the row first
                try:
                    with self._store.transaction() as conn:
                        row = conn.execute(sa.select(table).where(table.c.key == key)).mappings().first()
                        if row is None:
                            conn.execute(sa.insert(table).values(key=key, failures=1, window_start=now))
                        elif row["window_start"] + self._window <= now:
                            conn.execute(sa.update(table).where(table.c.key == key)
                                         .values(failures=1, window_start=now))
                        else:
                            conn.execute(sa.update(table).where(table.c.key == key)
                                         .values(failures=table.c.failures + 1))
                    break
                except sa.exc.IntegrityError:
                    continue
        # Counters whose window has passed mean nothing; without this every address and
        # username ever tried would keep a row forever.
        with self._store.transaction() as conn:
            conn.execute(sa.delete(table).where(table.c.window_start <= now - self._window))

    def clear(self, key):
        with self._store.transaction() as conn:
            conn.execute(_CLEAR_FAILURES, {"key": key})
