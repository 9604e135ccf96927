"""What Dovecot records about a mailbox in SQL: its realtime quota use and its last logins.

Both tables are Dovecot's (its quota dict and last_login plugin write them) and exist only where
iRedMail enabled those features, so a missing table or an unreachable database is an answer,
not an error: the values are None.
"""

import contextlib
import datetime

import sqlalchemy as sa

from .. import errors
from .tables import last_login, used_quota

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
    with contextlib.suppress(errors.BackendUnavailable), store.transaction(read_only=True) as conn:
        row = _first(conn, _USAGE, mail)
        if row is not _MISSING:
            result["stored_bytes"], result["stored_messages"] = (int(row[0]), int(row[1])) if row else (0, 0)
        row = _first(conn, _LOGINS, mail)
        times = [t for t in (row[0], row[1]) if t] if row not in (None, _MISSING) else []
        if times:
            result["last_login"] = datetime.datetime.fromtimestamp(max(times), datetime.UTC).strftime(
                "%Y-%m-%d %H:%M:%S")
    return result


_MISSING = object()


def _first(conn, statement, mail):
    """The row, None when there is none, or _MISSING when the table is not there (a failed
    statement does not end the connection's use in autocommit or SQLite's deferred read)."""
    try:
        return conn.execute(statement, {"mail": mail}).first()
    except sa.exc.DBAPIError:
        return _MISSING
