"""What Dovecot records about a mailbox in SQL: its realtime quota use and its last logins.

Both tables are Dovecot's (its quota dict and last_login plugin write them) and exist only where
iRedMail enabled those features, so a missing table or an unreachable database is an answer,
not an error: the values are None.
"""

import contextlib
import datetime
import logging
import time

import sqlalchemy as sa

from .. import errors
from .tables import last_login, used_quota

log = logging.getLogger(__name__)

_USAGE = sa.select(used_quota.c.bytes, used_quota.c.messages).where(used_quota.c.username == sa.bindparam("mail"))
_LOGINS = sa.select(last_login.c.imap, last_login.c.pop3, last_login.c.lda).where(
    last_login.c.username == sa.bindparam("mail"))

UNKNOWN = {"stored_bytes": None, "stored_messages": None, "last_login": None}


def mailbox_usage(store, mail):
    """{"stored_bytes", "stored_messages", "last_login"} of the mailbox ``mail``.

    ``last_login`` is the later of the last IMAP and POP3 logins as ``YYYY-MM-DD HH:MM:SS`` (UTC),
    a string as iRedAdmin-Pro's clients expect; deliveries do not count as logins.  A mailbox
    Dovecot has no row for has 0 bytes and no last login.
    """
    result = dict(UNKNOWN)
    wanted = [name for name in ("used_quota", "last_login") if not _known_missing(store, name)]
    if not wanted:
        return result
    with contextlib.suppress(errors.BackendUnavailable), store.transaction(read_only=True) as conn:
        if "used_quota" in wanted:
            row = _first(conn, store, "used_quota", _USAGE, mail)
            if row is not _MISSING:
                result["stored_bytes"], result["stored_messages"] = (int(row[0]), int(row[1])) if row else (0, 0)
        if "last_login" in wanted:
            row = _first(conn, store, "last_login", _LOGINS, mail)
            times = [t for t in (row[0], row[1]) if t] if row not in (None, _MISSING) else []
            if times:
                result["last_login"] = datetime.datetime.fromtimestamp(max(times), datetime.UTC).strftime(
                    "%Y-%m-%d %H:%M:%S")
    return result


_MISSING = object()
# A table found missing is not asked for again for this long, in this process: a failed statement
# costs about as much as the rest of the request.  Dovecot's table, once created, is seen this
# much later at most.
MISSING_TABLE_RETRY_SECONDS = 60
_missing_until = {}  # (database URL, table) -> time.monotonic() until which it counts as missing


def _known_missing(store, table):
    until = _missing_until.get((str(store.url), table))
    return until is not None and time.monotonic() < until


def _first(conn, store, table, statement, mail):
    """The row, None when there is none, or _MISSING when the table is not there (a failed
    statement does not end the connection's use in autocommit or SQLite's deferred read)."""
    try:
        return conn.execute(statement, {"mail": mail}).first()
    except sa.exc.DBAPIError:
        _missing_until[(str(store.url), table)] = time.monotonic() + MISSING_TABLE_RETRY_SECONDS
        return _MISSING


def rename_mailbox(store, old, new):
    """A user was renamed: Dovecot's rows for its mailbox (quota use, last logins) follow it, so
    the profile shows them under the new address.  Where Dovecot already wrote a row for the
    new address (after the move), that one is current and the old one goes.  Missing tables (the
    features are off) or an unreachable database are no error: the rows are Dovecot's cache of
    what it can count again, and the rename stands."""
    for table in (used_quota, last_login):
        if _known_missing(store, table.name):
            continue
        try:
            with store.transaction() as conn:
                if conn.execute(sa.select(table.c.username).where(table.c.username == new)).first() is None:
                    conn.execute(sa.update(table).where(table.c.username == old).values(username=new))
                else:
                    conn.execute(sa.delete(table).where(table.c.username == old))
        except (errors.BackendUnavailable, sa.exc.DBAPIError) as exc:
            if isinstance(exc, errors.BackendUnavailable) and not _no_such_table(exc.__cause__):
                log.warning("could not move Dovecot's %s row of %s to %s: %s", table.name, old, new, exc)
                continue
            _missing_until[(str(store.url), table.name)] = time.monotonic() + MISSING_TABLE_RETRY_SECONDS


def _no_such_table(exc):
    return "no such table" in str(exc).lower()
