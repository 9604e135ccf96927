"""Login sessions and failed-login accounting, kept in the SQL store.

Nothing lives in a worker's memory: any worker of any host that shares the
store accepts a session another one issued.  Only a hash of the token is
stored, so a leaked table does not leak sessions.
"""

import hashlib
import secrets
import time

import sqlalchemy as sa

from . import errors
from .store import tables

# Refresh last_seen at most this often, so most requests only read the row.
TOUCH_INTERVAL = 30

# Built once: every request or login runs them, and building a statement costs more than running
# it on SQLite.
_LOOKUP = sa.select(tables.api_sessions).where(tables.api_sessions.c.id_hash == sa.bindparam("id_hash"))
_INSERT = sa.insert(tables.api_sessions)
_SWEEP = sa.delete(tables.api_sessions).where(tables.api_sessions.c.last_seen < sa.bindparam("before"))
_FAILURES = tables.login_failures
# One attempt more for a key, unless its window is full: a window that has passed starts again at 1.
# One statement, so that two workers cannot both take the last attempt (each UPDATE waits for the
# other's row lock and then sees its count).
_EXPIRED = _FAILURES.c.window_start <= sa.bindparam("expired")
_TAKE = sa.update(_FAILURES).where(
    _FAILURES.c.key == sa.bindparam("k"), sa.or_(_EXPIRED, _FAILURES.c.failures < sa.bindparam("max"))
).ordered_values(  # failures first: MySQL's SET sees the values assigned before it
    (_FAILURES.c.failures, sa.case((_EXPIRED, 1), else_=_FAILURES.c.failures + 1)),
    (_FAILURES.c.window_start, sa.case((_EXPIRED, sa.bindparam("now")), else_=_FAILURES.c.window_start)),
)
_WINDOW_OF = sa.select(_FAILURES.c.window_start).where(_FAILURES.c.key == sa.bindparam("k"))
_FIRST = sa.insert(_FAILURES)
# Giving an attempt back: only to the window it was taken from.
_SAME_WINDOW = sa.and_(_FAILURES.c.key == sa.bindparam("k"), _FAILURES.c.window_start == sa.bindparam("window"))
_DROP_LAST = sa.delete(_FAILURES).where(_SAME_WINDOW, _FAILURES.c.failures <= 1)
_GIVE_BACK = sa.update(_FAILURES).where(_SAME_WINDOW, _FAILURES.c.failures > 0).values(
    failures=_FAILURES.c.failures - 1)
_CLEAR_FAILURES = sa.delete(_FAILURES).where(_FAILURES.c.key == sa.bindparam("k"))
_SWEEP_FAILURES = sa.delete(_FAILURES).where(_FAILURES.c.window_start <= sa.bindparam("expired"))


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

    def create(self, admin, also=None):
        """A new session for ``admin`` (an AdminAccount); returns the token.  ``also(conn)`` runs
        in the same transaction (a login's throttle bookkeeping: one commit instead of two)."""
        token = secrets.token_urlsafe(32)
        now = int(self._clock())
        with self._store.transaction() as conn:
            conn.execute(_INSERT, {
                "id_hash": _hash(token), "username": admin.username, "admin_dn": admin.dn,
                "is_global_admin": admin.is_global, "created_at": now, "last_seen": now, "checked_at": now,
            })
            # Expired rows are swept by whoever logs in, not by a timer per worker.
            conn.execute(_SWEEP, {"before": now - self._timeout})
            if also is not None:
                also(conn)
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

    def end_sessions(self, username, keep=None, unless_global=None, except_below=None):
        """Delete every session of ``username`` (but the one of token ``keep``): its password
        changed, or it was disabled or deleted.  One DELETE on the indexed username.
        ``unless_global`` (True/False): only the sessions whose global-admin right differs from
        it (the admin was promoted or demoted; a repeat of a request that died after the write
        still finds them).  ``except_below``: not the sessions of entries below that DN (a mail
        user's change leaves a standalone admin at the same address alone: o=domainAdmins is
        outside slapd's unique overlay, so the two may share it)."""
        table = tables.api_sessions
        where = table.c.username == username
        if except_below:
            where = sa.and_(where, sa.not_(sa.func.lower(table.c.admin_dn).endswith("," + except_below.lower(),
                                                                                   autoescape=True)))
        if keep:
            where = sa.and_(where, table.c.id_hash != _hash(keep))
        if unless_global is not None:
            where = sa.and_(where, table.c.is_global_admin != bool(unless_global))
        with self._store.transaction() as conn:
            return conn.execute(sa.delete(table).where(where)).rowcount

    def rename_sessions(self, username, new_username, new_dn, old_dn=None):
        """The admin ``username`` was renamed: its sessions go on under its new name and DN
        (``Admin.manages`` compares the name with domainAdmin, which the rename rewrote).
        ``old_dn``: only the sessions of that entry (compared without case), not those of a
        standalone admin sharing the address (o=domainAdmins is outside slapd's unique overlay)."""
        table = tables.api_sessions
        where = table.c.username == username
        if old_dn is not None:
            where = sa.and_(where, sa.func.lower(table.c.admin_dn) == old_dn.lower())
        with self._store.transaction() as conn:
            return conn.execute(sa.update(table).where(where)
                                .values(username=new_username, admin_dn=new_dn)).rowcount

    def end_sessions_below(self, base_dn):
        """Delete every session of an account whose entry is below ``base_dn`` (a deleted
        domain's users; standalone admins, whose address may be in that domain, keep theirs):
        one DELETE.  The DNs are as slapd returned them at login; compared without case."""
        table = tables.api_sessions
        below = sa.func.lower(table.c.admin_dn).endswith("," + base_dn.lower(), autoescape=True)
        with self._store.transaction() as conn:
            return conn.execute(sa.delete(table).where(below)).rowcount


class LoginThrottle:
    """Counts logins per client address and per username (shared store), before the bind.

    An attempt is counted when it begins, atomically, and only while fewer than
    ``max_failures`` are counted in the current ``window`` (seconds): so no more than
    that many binds can happen for one address or username in a window, however many
    requests arrive at once on however many workers and hosts.  A success gives its
    attempt back (and clears the username's count); a failure leaves it counted.
    """

    def __init__(self, store, max_failures, window, clock=time.time):
        self._store = store
        self._max = max_failures
        self._window = window
        self._clock = clock

    @staticmethod
    def keys(client_ip, username):
        return (f"ip:{client_ip}", f"user:{username[:250]}")

    def begin(self, keys):
        """Count an attempt for each of ``keys`` (in one transaction); None if one of them has
        no attempt left (nothing is then counted), else the attempt to pass to
        ``succeeded``/``failed``/``cancel``."""
        if self._max == 0:
            return ()  # throttling is off: nothing would ever read the counters
        now = int(self._clock())
        for _ in range(5):  # another round only if another worker inserted a row first
            try:
                with self._store.transaction() as conn:
                    # Keys in a fixed order (ip: before user:): two attempts lock rows in the same order.
                    return tuple((key, self._take(conn, key, now)) for key in keys)
            except _WindowFull:
                return None  # rolled back: nothing counted
            except sa.exc.IntegrityError:
                continue
            except errors.BackendUnavailable as exc:
                # InnoDB may pick one of several attempts inserting the same new row as a deadlock victim.
                if not _deadlock(exc.__cause__):
                    raise
        return None  # rows keep appearing and vanishing: refuse rather than bind uncounted

    def _take(self, conn, key, now):
        """The window the attempt was counted in; _WindowFull if ``key``'s window is full."""
        values = {"k": key, "now": now, "expired": now - self._window, "max": self._max}
        if conn.execute(_TAKE, values).rowcount:
            return conn.execute(_WINDOW_OF, values).scalar_one()
        if conn.execute(_WINDOW_OF, values).first() is not None:
            raise _WindowFull
        conn.execute(_FIRST, {"key": key, "failures": 1, "window_start": now})
        return now

    def succeeded(self, attempt, conn):
        """The login succeeded: the username's count is cleared, the address gets its attempt back.
        ``conn``: a transaction on the store (the one that creates the session)."""
        if attempt:
            (ip_key, window), (user_key, _) = attempt
            conn.execute(_CLEAR_FAILURES, {"k": user_key})
            self._give_back(conn, ip_key, window)

    @staticmethod
    def _give_back(conn, key, window):
        if not conn.execute(_DROP_LAST, {"k": key, "window": window}).rowcount:
            conn.execute(_GIVE_BACK, {"k": key, "window": window})

    def failed(self, attempt):
        """The login failed: the attempt stays counted; counters of windows that have passed go."""
        if not attempt:
            return
        # Without this every address and username ever tried would keep a row forever.
        with self._store.transaction() as conn:
            conn.execute(_SWEEP_FAILURES, {"expired": int(self._clock()) - self._window})

    def cancel(self, attempt):
        """The attempt never got an answer (the directory failed): give it back."""
        if attempt:
            with self._store.transaction() as conn:
                for key, window in attempt:
                    self._give_back(conn, key, window)


class _WindowFull(Exception):
    pass


def _deadlock(exc):
    """Whether a driver error is a deadlock (MySQL/MariaDB 1213, PostgreSQL 40P01): safe to retry."""
    orig = getattr(exc, "orig", None)
    return (getattr(orig, "args", (None,))[:1] == (1213,)) or getattr(orig, "sqlstate", None) == "40P01"
