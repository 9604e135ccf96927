"""Mailboxes of deleted users, kept for an admin or a cron job to remove (as iRedAdmin does)."""

import datetime

import sqlalchemy as sa

from .. import errors
from .engine import update_or_insert
from .tables import deleted_mailboxes


def record_deleted_mailbox(store, username, domain, maildir, admin, keep_days=None):
    """Record that ``username``'s mailbox at ``maildir`` may be removed after ``keep_days`` days
    (None or 0: keep forever).  A retried delete updates its earlier record; returns "created" or
    "updated"."""
    if keep_days is not None and (type(keep_days) is not int or keep_days < 0):
        raise errors.InvalidInput(errors.INVALID_NUMBER, param="keep_days", detail="a non-negative integer")
    delete_date = datetime.date.today() + datetime.timedelta(days=keep_days) if keep_days else None
    with store.transaction(lock_key=f"iredapi-ldap deleted_mailbox {username}") as conn:
        return update_or_insert(
            conn,
            deleted_mailboxes,
            {"username": username, "maildir": maildir},
            {"domain": domain, "admin": admin, "delete_date": delete_date},
        )


def list_deleted_mailboxes(store, domain=None):
    """All records (of ``domain`` only, if given) as dicts, oldest first."""
    query = sa.select(deleted_mailboxes).order_by(deleted_mailboxes.c.id)
    if domain is not None:
        query = query.where(deleted_mailboxes.c.domain == domain)
    with store.transaction() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
