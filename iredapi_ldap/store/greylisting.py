"""iRedAPD's greylisting settings and whitelists, written as iRedAPD's own tools write them
(iRedAPD 6.1: libs/greylisting.py, tools/greylisting_admin.py; read by plugins/greylisting.py).

Accounts are iRedAPD's: "user@domain", "@domain", "@." (global).  A setting is the row
(account, sender "@.", active 1|0): iRedAPD takes the first ``greylisting`` row that matches a
mail in descending (priority, sender_priority), so a user's setting beats its domain's, which
beats the global one.  Callers validate and lower-case accounts and senders; this module knows
nothing of HTTP.
"""

import sqlalchemy as sa

from .. import errors
from ..addresses import POLICY_ADDRESS_MAX
from .engine import update_or_insert
from .tables import (
    greylisting,
    greylisting_tracking,
    greylisting_whitelist_domain_spf,
    greylisting_whitelist_domains,
    greylisting_whitelists,
)

GLOBAL_ACCOUNT = "@."
ANYONE = "@."  # the sender of an account's setting
STATUSES = {"enable": 1, "disable": 0}

# iRedAPD's ACCOUNT_PRIORITIES (libs/__init__.py), as utils.get_account_priority() assigns them.
PRIORITIES = {"email": 100, "ip": 80, "cidr": 70, "domain": 60, "subdomain": 50, "catchall": 0}


def greylisting_account(target):
    """The iRedAPD account of an API target: "global", a domain or an email address."""
    if target == "global":
        return GLOBAL_ACCOUNT
    return target if "@" in target else "@" + target


def address_kind(address):
    """iRedAPD's name for the form of a (validated) account or sender."""
    if address == "@.":
        return "catchall"
    if address.startswith("@."):
        return "subdomain"
    if address.startswith("@"):
        return "domain"
    if "@" in address:
        return "email"
    return "cidr" if "/" in address else "ip"


def priority(address):
    return PRIORITIES[address_kind(address)]


def _check_account(account):
    # The last line of defence: the HTTP layer validates first.
    if len(account) > POLICY_ADDRESS_MAX:
        raise errors.InvalidInput(errors.INVALID_MAIL,
                                  detail=f"iRedAPD's tables hold addresses of up to {POLICY_ADDRESS_MAX} characters")


def _status(active):
    return "enable" if active else "disable"


def _setting(row):
    return {"account": row["account"], "sender": row["sender"], "status": _status(row["active"]),
            "priority": row["priority"], "sender_priority": row["sender_priority"], "comment": row["comment"]}


_GET_SETTING = sa.select(greylisting).where(greylisting.c.account == sa.bindparam("account"),
                                            greylisting.c.sender == ANYONE)


def get_setting(store, account):
    """{"account", "status": "enable"|"disable", ...} of the account's own setting, or {}."""
    with store.transaction(read_only=True) as conn:
        row = conn.execute(_GET_SETTING, {"account": account}).mappings().first()
    return _setting(row) if row else {}


def all_settings(store):
    """Every ``greylisting`` row (any sender), in the order iRedAPD weighs them."""
    query = sa.select(greylisting).order_by(greylisting.c.priority.desc(), greylisting.c.sender_priority.desc(),
                                            greylisting.c.account, greylisting.c.sender)
    with store.transaction(read_only=True) as conn:
        return [_setting(row) for row in conn.execute(query).mappings()]


def set_setting(store, account, status):
    """Enable or disable greylisting for mail from anyone to ``account``; "created" or "updated"."""
    _check_account(account)
    values = {"priority": priority(account), "sender_priority": PRIORITIES["catchall"], "active": STATUSES[status]}
    with store.transaction(lock_key=f"iredapi-ldap greylisting {account}") as conn:
        return update_or_insert(conn, greylisting, {"account": account, "sender": ANYONE}, values)


def delete_setting(store, account):
    """Delete the account's setting (its rows for other senders stay); the number deleted."""
    with store.transaction() as conn:
        return conn.execute(greylisting.delete().where(greylisting.c.account == account,
                                                       greylisting.c.sender == ANYONE)).rowcount


# -- whitelists -----------------------------------------------------------------------------


def get_whitelists(store, account):
    """The senders whitelisted for mail to ``account``, sorted."""
    query = (sa.select(greylisting_whitelists.c.sender).where(greylisting_whitelists.c.account == account)
             .order_by(greylisting_whitelists.c.sender))
    with store.transaction(read_only=True) as conn:
        return list(conn.execute(query).scalars())


def update_whitelists(store, account, senders=None, add=(), remove=()):
    """Replace the account's whitelist by ``senders`` (when not None), or add ``add`` and remove
    ``remove``.  Adding a present sender or removing an absent one is not an error."""
    _check_account(account)
    table = greylisting_whitelists
    with store.transaction(lock_key=f"iredapi-ldap greylisting whitelists {account}") as conn:
        present = set(conn.execute(sa.select(table.c.sender).where(table.c.account == account)).scalars())
        if senders is not None:
            add, remove = senders, present - set(senders)
        gone = [sender for sender in remove if sender in present]
        if gone:
            conn.execute(table.delete().where(table.c.account == account, table.c.sender.in_(gone)))
        new = [sender for sender in dict.fromkeys(add) if sender not in present]
        if new:
            conn.execute(table.insert(), [{"account": account, "sender": sender, "comment": ""} for sender in new])


# -- sender domains whose SPF/MX hosts are whitelisted -------------------------------------


def spf_comment(domain):
    """The comment iRedAPD's SPF cron job (tools/spf_to_greylist_whitelists.py) gives the rows
    it derives from ``domain``."""
    return f"AUTO-UPDATE: {domain}"


def get_spf_domains(store):
    query = sa.select(greylisting_whitelist_domains.c.domain).order_by(greylisting_whitelist_domains.c.domain)
    with store.transaction(read_only=True) as conn:
        return list(conn.execute(query).scalars())


def update_spf_domains(store, domains=None, add=(), remove=()):
    """As update_whitelists, for ``greylisting_whitelist_domains``.  A removed domain takes the
    whitelist rows the cron job derived from it along, as iRedAPD's
    libs/greylisting.remove_whitelisted_domain() does."""
    table = greylisting_whitelist_domains
    with store.transaction(lock_key="iredapi-ldap greylisting spf domains") as conn:
        present = set(conn.execute(sa.select(table.c.domain)).scalars())
        if domains is not None:
            add, remove = domains, present - set(domains)
        gone = [domain for domain in remove if domain in present]
        if gone:
            conn.execute(table.delete().where(table.c.domain.in_(gone)))
            comments = [spf_comment(domain) for domain in gone]
            for derived in (greylisting_whitelist_domain_spf, greylisting_whitelists):
                conn.execute(derived.delete().where(derived.c.comment.in_(comments)))
        new = [domain for domain in dict.fromkeys(add) if domain not in present]
        if new:
            conn.execute(table.insert(), [{"domain": domain} for domain in new])


# -- accounts that go away ------------------------------------------------------------------


def delete_for_accounts(store, accounts):
    """Delete the settings, whitelists and tracking of ``accounts`` (email addresses)."""
    accounts = list(accounts)
    if not accounts:
        return
    with store.transaction() as conn:
        for table in (greylisting, greylisting_whitelists):
            conn.execute(table.delete().where(table.c.account.in_(accounts)))
        conn.execute(greylisting_tracking.delete().where(greylisting_tracking.c.recipient.in_(accounts)))


def delete_for_domain(store, domain):
    """Delete the settings and whitelists of "@domain" and of every "user@domain", and
    iRedAPD's tracking of mail to the domain."""
    with store.transaction() as conn:
        for table in (greylisting, greylisting_whitelists):
            conn.execute(table.delete().where(table.c.account.endswith("@" + domain, autoescape=True)))
        conn.execute(greylisting_tracking.delete().where(greylisting_tracking.c.rcpt_domain == domain))


def rename_account(store, old, new):
    """An account (an email address) was renamed: its settings and whitelists, and iRedAPD's
    tracking of mail to it (so that senders who passed greylisting are not deferred again), follow
    it.  Where ``new`` has a row with the same key already (written while the rename was
    half-way), that one stays and the old one goes.  One transaction; a repeat moves nothing more.
    Returns the number of settings and whitelist rows moved."""
    moved = 0
    with store.transaction(lock_key=f"iredapi-ldap greylisting {new}") as conn:
        for table in (greylisting, greylisting_whitelists):
            # MySQL cannot delete from a table it selects from in a subquery: two statements.
            taken = conn.execute(sa.select(table.c.sender).where(table.c.account == new)).scalars().all()
            if taken:
                conn.execute(table.delete().where(table.c.account == old, table.c.sender.in_(taken)))
            moved += conn.execute(table.update().where(table.c.account == old).values(account=new)).rowcount
        tracking = greylisting_tracking
        taken = conn.execute(sa.select(tracking.c.sender, tracking.c.client_address)
                             .where(tracking.c.recipient == new)).all()
        for sender, client_address in taken:
            conn.execute(tracking.delete().where(tracking.c.recipient == old, tracking.c.sender == sender,
                                                 tracking.c.client_address == client_address))
        conn.execute(tracking.update().where(tracking.c.recipient == old).values(recipient=new))
    return moved
