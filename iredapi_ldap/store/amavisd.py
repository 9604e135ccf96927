"""Amavisd's lookup tables: per-account spam policies and white/blacklists, written as Amavisd and
iRedAPD read them and as iRedAPD's own tools write them (iRedAPD 6.1 libs/wblist.py,
tools/wblist_admin.py).

Accounts are Amavisd's lookup keys: "user@domain", "@domain", "@." (global).  Each has one
``users`` row (priority from iRedAPD's MAILADDR_PRIORITIES, so Amavisd's ``ORDER BY
users.priority DESC`` puts a user before its domain before "@."), linked by ``policy_id`` to a
``policy`` row of its own whose ``policy_name`` is the account (iRedMail makes policy_name unique;
its default global policy is named "@.").  Inbound lists are ``wblist`` rows (rid = the account's
users.id, sid = the sender's mailaddr.id), outbound lists ``outbound_wblist`` rows (sid = the
account's users.id, rid = the recipient's mailaddr.id); wb is "W" or "B".  ``mailaddr`` rows are
shared by every account and never deleted here (iRedAPD's cleanup_amavisd_db.py removes unused
ones).

A domain's alias domains get ``users`` rows too ("@<alias>", "<local part>@<alias>") linked to the
account's own policy, since Amavisd looks a recipient up by the address as given (section "alias
domains" below).

Callers validate accounts; list entries are validated here (``entry``).  Nothing here knows HTTP.
"""

import math
import re

import sqlalchemy as sa

from .. import addresses, errors
from .tables import amavisd_mailaddr as mailaddr
from .tables import amavisd_outbound_wblist as outbound_wblist
from .tables import amavisd_policy as policy
from .tables import amavisd_users as users
from .tables import amavisd_wblist as wblist

GLOBAL_ACCOUNT = "@."

# iRedAPD's MAILADDR_PRIORITIES (libs/utils.py), for users and mailaddr rows alike.
PRIORITIES = {
    "email": 10,
    "ip": 9,
    "cidr_network": 7,
    "domain": 5,
    "subdomain": 3,
    "top_level_domain": 2,
    "catchall": 0,
}

DIRECTIONS = ("inbound", "outbound")
LISTS = {"whitelist": "W", "blacklist": "B"}

_RETRIES = 5
# mailaddr.email is varbinary(255) in Amavisd's MySQL schema: a longer entry (an email may have
# 64 + 1 + 253) is refused, not a 500 from MariaDB.  Ours are ASCII (punycode): characters are bytes.
MAX_ADDRESS_LENGTH = 255
# Entries per request: each is a bound parameter of one IN (...), and SQLite and PostgreSQL cap
# a statement's parameters (32766, 65535).
MAX_ENTRIES = 1000


def account_of(target):
    """The Amavisd account of an API target: "global", a domain or an email address."""
    if target == "global":
        return GLOBAL_ACCOUNT
    return target if "@" in target else "@" + target


def account_priority(account):
    if account == GLOBAL_ACCOUNT:
        return PRIORITIES["catchall"]
    return PRIORITIES["domain" if account.startswith("@") else "email"]


# -- list entries -------------------------------------------------------------------------------


def entry(text):
    """(normalized entry, kind) for a white/blacklist entry, or None when it is not one.

    Kinds as iRedAPD's is_valid_amavisd_address names them.  IPs and networks are written in
    Python's canonical form (lower-case, compressed IPv6), which is how Postfix hands iRedAPD the
    client address; a network must have no host bits set (iRedAPD's is_cidr_network).  iRedAPD's
    wildcard forms (user@*, 192.168.1.*) are not among iRedAdmin-Pro's documented entries and are
    refused."""
    text = text.strip().lower()
    if not text:
        return None
    found = _entry(text)
    if found is None or len(found[0]) > MAX_ADDRESS_LENGTH:
        return None
    return found


def _entry(text):
    if text == "@.":
        return text, "catchall"
    if text.startswith("@."):
        name = text[2:]
        if name and "." not in name:
            # a top-level domain, punycode-encoded as the domains are (@.рф is @.xn--p1ai); a
            # name under a fixed label gets addresses' checks of a last label
            found = _domain_entry("@.", "tld." + name, "top_level_domain")
            return None if found is None else ("@." + found[0][len("@.tld."):], found[1])
        return _domain_entry("@.", name, "subdomain")
    if text.startswith("@"):
        return _domain_entry("@", text[1:], "domain")
    if "@" in text:
        try:
            return addresses.email(text), "email"
        except errors.InvalidInput:
            return None
    try:
        return addresses.client_address(text)
    except ValueError:
        return None


def _domain_entry(prefix, name, kind):
    try:
        return prefix + addresses.domain_name(name), kind
    except errors.InvalidInput:
        return None


def parse_entries(text):
    """Comma-separated entries -> {entry: kind}, in order, duplicates dropped; InvalidInput naming
    every entry that is not valid (iRedAdmin-Pro drops those silently)."""
    found, invalid = {}, []
    for item in text.split(","):
        if not item.strip():
            continue
        parsed = entry(item)
        if parsed is None:
            invalid.append(item.strip())
        else:
            found.setdefault(*parsed)
    if invalid:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="addresses",
                                  detail="not an IP, CIDR network, user@domain, @domain, @.domain or @.: "
                                         + ", ".join(invalid))
    if not found:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="addresses", detail="no address given")
    if len(found) > MAX_ENTRIES:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param="addresses",
                                  detail=f"at most {MAX_ENTRIES} addresses per request")
    return found


# -- transactions that create shared rows -----------------------------------------------------


def _retrying(store, work):
    """Run ``work(conn)`` in a transaction, again when a concurrent writer created the same unique
    row first (IntegrityError) or the server chose us as a deadlock victim: the next attempt finds
    that writer's row."""
    for attempt in range(_RETRIES):
        try:
            with store.transaction() as conn:
                return work(conn)
        except sa.exc.IntegrityError:
            if attempt == _RETRIES - 1:
                raise
        except errors.BackendUnavailable as exc:
            if attempt == _RETRIES - 1 or not _deadlock(exc.__cause__):
                raise
    raise AssertionError("unreachable")


def _deadlock(exc):
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    # MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout; PostgreSQL: 40P01, 40001.
    code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
    return code in (1213, 1205) or getattr(orig, "sqlstate", None) in ("40P01", "40001")


def _user_row(conn, account, create):
    """(id, policy_id) of the account's users row; created (policy_id 0: no policy, as iRedAPD's
    create_user) when ``create``; None when missing and not ``create``."""
    found = conn.execute(sa.select(users.c.id, users.c.policy_id).where(users.c.email == account)).first()
    if found is None and create:
        conn.execute(users.insert().values(email=account, priority=account_priority(account), policy_id=0))
        found = conn.execute(sa.select(users.c.id, users.c.policy_id).where(users.c.email == account)).first()
    return found


def _mailaddr_ids(conn, entries, create):
    """{entry: mailaddr.id} for ``entries`` ({entry: kind}); missing rows created when ``create``."""
    def lookup():
        rows = conn.execute(sa.select(mailaddr.c.id, mailaddr.c.email).where(mailaddr.c.email.in_(list(entries))))
        return {email: id_ for id_, email in rows}

    ids = lookup()
    missing = sorted(set(entries) - set(ids))  # sorted: concurrent writers lock keys in one order
    if missing and create:
        conn.execute(mailaddr.insert(), [{"email": e, "priority": PRIORITIES[entries[e]]} for e in missing])
        ids = lookup()
    return ids


# -- white/blacklists ---------------------------------------------------------------------------


def _list_table(direction):
    """(table, column holding the account's users.id, column holding the mailaddr.id)."""
    if direction == "inbound":
        return wblist, wblist.c.rid, wblist.c.sid
    if direction == "outbound":
        return outbound_wblist, outbound_wblist.c.sid, outbound_wblist.c.rid
    raise ValueError(direction)


def list_entries(store, account, direction, listname):
    """The entries of one list of the account, sorted."""
    table, own, other = _list_table(direction)
    query = (sa.select(mailaddr.c.email)
             .select_from(table.join(users, users.c.id == own).join(mailaddr, mailaddr.c.id == other))
             .where(users.c.email == account, table.c.wb == LISTS[listname]))
    with store.transaction(read_only=True) as conn:
        return sorted(conn.execute(query).scalars())


def add_entries(store, account, direction, listname, entries):
    """Put ``entries`` ({entry: kind}) on the list.  An entry on the account's other list moves
    (the tables' key is (rid, sid)), as iRedAPD's add_wblist replaces a sender's row."""
    table, own, other = _list_table(direction)
    wb = LISTS[listname]

    def work(conn):
        user_id = _user_row(conn, account, create=True).id
        ids = _mailaddr_ids(conn, entries, create=True)
        present = dict(conn.execute(
            sa.select(other, table.c.wb).where(own == user_id, other.in_(list(ids.values())))).all())
        moved = [id_ for id_, value in present.items() if value != wb]
        if moved:
            conn.execute(table.delete().where(own == user_id, other.in_(moved)))
        new = [id_ for id_ in sorted(ids.values()) if present.get(id_) != wb]
        if new:
            conn.execute(table.insert(), [{own.name: user_id, other.name: id_, "wb": wb} for id_ in new])
        return len(new)

    return _retrying(store, work)


def remove_entries(store, account, direction, listname, entries):
    """Take ``entries`` off the list; absent ones are not an error.  Returns how many went."""
    table, own, other = _list_table(direction)
    with store.transaction() as conn:
        user = _user_row(conn, account, create=False)
        if user is None:
            return 0
        ids = _mailaddr_ids(conn, entries, create=False)
        if not ids:
            return 0
        return conn.execute(table.delete().where(own == user.id, other.in_(list(ids.values())),
                                                 table.c.wb == LISTS[listname])).rowcount


def clear_entries(store, account, direction, listname):
    """Empty the list.  Returns how many entries went."""
    table, own, _ = _list_table(direction)
    with store.transaction() as conn:
        user = _user_row(conn, account, create=False)
        if user is None:
            return 0
        return conn.execute(table.delete().where(own == user.id, table.c.wb == LISTS[listname])).rowcount


# -- spam policy ----------------------------------------------------------------------------------
# iRedAdmin-Pro's parameters -> policy columns.  Amavisd reads each column from the first matching
# users row (by priority) whose policy has it non-NULL (README.lookups: "a record with a NULL field
# is skipped and search continues with the next, more general, matching record"), so a column we
# leave NULL is inherited from the domain's, then the global policy, then amavisd.conf.

BYPASS_PARAMS = ("bypass_spam_checks", "bypass_virus_checks", "bypass_banned_checks", "bypass_header_checks")

# quarantine_<kind>: (lover column, quarantine_to column, quarantine_to value, lover when "no").
# "yes": not delivered (lover N), a copy to Amavisd's SQL quarantine under the name iRedMail's
# amavisd.conf gives (*_quarantine_to).  "no": spam and bad-header mail is delivered without a copy
# (lover Y, quarantine_to ''), as iRedMail's default global policy does and its
# default_spam_policy.sql explains; a virus or banned file stays undelivered, without a copy (iRedMail's
# final_*_destiny is D_DISCARD); only bypass_* lets those through.
QUARANTINE_PARAMS = {
    "quarantine_spam": ("spam_lover", "spam_quarantine_to", "spam-quarantine", "Y"),
    "quarantine_virus": ("virus_lover", "virus_quarantine_to", "virus-quarantine", "N"),
    "quarantine_banned": ("banned_files_lover", "banned_quarantine_to", "banned-quarantine", "N"),
    "quarantine_bad_header": ("bad_header_lover", "bad_header_quarantine_to", "bad-header-quarantine", "Y"),
}

# always_insert_x_spam_headers=yes: X-Spam-* headers on every message, Amavisd adding them at or
# above spam_tag_level; -999 is below any score SpamAssassin gives.
ALWAYS_TAG_LEVEL = -999.0
MAX_SCORE = 999.0

POLICY_PARAMS = (*BYPASS_PARAMS, *QUARANTINE_PARAMS, "prefix_spam_in_subject", "always_insert_x_spam_headers",
                 "spam_score", "banned_rulenames")


def policy_columns(values, subject_prefix):
    """{column: value} for the given parameters (yes/no as bool, spam_score float or None,
    banned_rulenames list)."""
    columns = {}
    for name in BYPASS_PARAMS:
        if name in values:
            columns[name] = "Y" if values[name] else "N"
    for name, (lover, quarantine_to, target, lover_if_no) in QUARANTINE_PARAMS.items():
        if name in values:
            columns[lover] = "N" if values[name] else lover_if_no
            columns[quarantine_to] = target if values[name] else ""
    if "prefix_spam_in_subject" in values:
        # spam_subject_tag2: prepended at tag2 level ("spam detected"); '' is a defined empty tag.
        columns["spam_subject_tag2"] = subject_prefix if values["prefix_spam_in_subject"] else ""
    if "always_insert_x_spam_headers" in values:
        # "no" clears the account's own tag level: the broader policy's (or amavisd.conf's) applies.
        columns["spam_tag_level"] = ALWAYS_TAG_LEVEL if values["always_insert_x_spam_headers"] else None
    if "spam_score" in values:
        # The score from which mail is spam: the "spam detected" headers (tag2) and the spam
        # action (kill: quarantine/discard per the lover and quarantine columns).  None: amavisd.conf's.
        columns["spam_tag2_level"] = columns["spam_kill_level"] = values["spam_score"]
    if "banned_rulenames" in values:
        # Names of amavisd.conf's %banned_rules (e.g. ALLOW_MS_WORD), comma-separated; None: inherit.
        columns["banned_rulenames"] = ",".join(values["banned_rulenames"]) or None
    return columns


def parse_score(text):
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise errors.InvalidInput(errors.INVALID_NUMBER, detail=f"{text!r} is not a number") from None
    if not math.isfinite(value) or not -MAX_SCORE <= value <= MAX_SCORE:
        raise errors.InvalidInput(errors.INVALID_NUMBER, detail=f"a number from {-MAX_SCORE:g} to {MAX_SCORE:g}")
    return value


def parse_rulenames(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
            raise errors.InvalidInput(
                errors.INVALID_PARAMETER,
                detail=f"{name!r}: rule names are letters, digits and _ (amavisd.conf's %banned_rules)")
    names = list(dict.fromkeys(names))
    if len(",".join(names)) > 64:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, detail="at most 64 characters (policy.banned_rulenames)")
    return names


def _yes_no(flag):
    # Amavisd: N, n, F, f, 0, NUL and space are false, any other character true; NULL is not set.
    if flag is None:
        return None
    return "yes" if flag.strip(" \0") not in ("", "N", "n", "F", "f", "0") else "no"


def policy_parameters(row):
    """The parameters a policy row holds (None: not set here, inherited)."""
    row = row or {}
    data = {name: _yes_no(row.get(name)) for name in BYPASS_PARAMS}
    for name, (_lover, quarantine_to, _target, _no) in QUARANTINE_PARAMS.items():
        value = row.get(quarantine_to)
        data[name] = None if value is None else ("yes" if value.strip() else "no")
    tag2 = row.get("spam_subject_tag2")
    data["prefix_spam_in_subject"] = None if tag2 is None else ("yes" if tag2 else "no")
    tag_level = row.get("spam_tag_level")
    data["always_insert_x_spam_headers"] = "yes" if tag_level is not None and tag_level <= ALWAYS_TAG_LEVEL else "no"
    score = row.get("spam_kill_level")
    if score is None:
        score = row.get("spam_tag2_level")
    data["spam_score"] = score
    data["banned_rulenames"] = row.get("banned_rulenames")
    return data


def get_policy(store, account):
    """The account's own policy row as a dict ({} when it has none)."""
    query = (sa.select(policy).select_from(users.join(policy, policy.c.id == users.c.policy_id))
             .where(users.c.email == account))
    with store.transaction(read_only=True) as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else {}


def set_policy(store, account, columns):
    """Write ``columns`` into the account's own policy row, creating the users row and the policy
    row (named after the account) when missing.  A users row linked to a policy of another name
    (shared by hand-made set-ups) is re-linked to a copy of it named after the account, so that
    the others keep theirs and the account keeps what it is not asked to change."""

    def work(conn):
        user = _user_row(conn, account, create=True)
        own = conn.execute(sa.select(policy.c.id).where(policy.c.policy_name == account)).scalar()
        if own is None:
            # Start from the policy the account is linked to now, so that only what is given changes.
            linked = conn.execute(sa.select(policy).where(policy.c.id == user.policy_id)).mappings().first()
            start = {k: v for k, v in (linked or {}).items() if k not in ("id", "policy_name")}
            own = conn.execute(policy.insert().values(**{**start, **columns, "policy_name": account})
                               ).inserted_primary_key[0]
        elif columns:
            conn.execute(policy.update().where(policy.c.id == own).values(**columns))
        if user.policy_id != own:
            conn.execute(users.update().where(users.c.id == user.id).values(policy_id=own))

    _retrying(store, work)


def delete_policy(store, account):
    """Remove the account's own policy: Amavisd then applies the broader ones.  The users row stays
    (white/blacklists hang on it), unlinked (policy_id 0), as iRedAPD leaves rows it creates; the
    rows of its alias-domain addresses linked to that policy go (``_release``).  Returns whether
    there was a policy."""

    def work(conn):
        # The policy row locked first: a concurrent link_alias_domains, which locks it too, either
        # committed its rows before (found below) or finds the policy gone.
        own = conn.execute(sa.select(policy.c.id).where(policy.c.policy_name == account).with_for_update()).scalar()
        user = _user_row(conn, account, create=False)
        if user is not None and user.policy_id:
            conn.execute(users.update().where(users.c.id == user.id).values(policy_id=0))
        if own is None:
            return False
        _release(conn, [id_ for id_, email in _linked(conn, [own]) if email != account])
        conn.execute(policy.delete().where(policy.c.id == own))
        return True

    return _retrying(store, work)


# -- alias domains ----------------------------------------------------------------------------------
# Amavisd builds its lookup keys from the recipient address as Postfix passes it (make_query_keys:
# user@alias.example, user, @alias.example, @.alias.example, @.example, @.), never from the domain
# the address is an alias of.  So a domain's or a user's policy is linked from the account's
# addresses in the domain's alias domains too: users rows "<local part>@<alias domain>" ("@<alias
# domain>" for a domain), with the account's priority, whose policy_id is the account's own policy.
# A linked row is known by its policy: one named after another account.  It never gets white/
# blacklist rows from us (our wblist targets are hosted domains and users' own addresses); one that
# has some (written by hand, e.g. with iRedAPD's wblist_admin.py) is unlinked, never deleted.


def alias_accounts(account, alias_domains):
    """The account's Amavisd accounts in ``alias_domains``: "@<alias>" for "@domain", else
    "<local part>@<alias>"."""
    if account == GLOBAL_ACCOUNT:
        return []
    local = account.rsplit("@", 1)[0]
    return [f"{local}@{name}" for name in dict.fromkeys(n.lower() for n in alias_domains)]


def link_alias_domains(store, domain, alias_domains, accounts=None):
    """Make the alias-domain rows of the domain's policies be exactly those of ``alias_domains``
    (the domain's alias domains as they are now): for the own policies of ``accounts`` ("@domain",
    "user@domain"), or, when None, of every account of the domain (paged by policy id, 500 at a
    time: work proportional to the number of the domain's own policies, not of its users).  Rows
    missing are added, rows linked elsewhere re-linked, rows of other names released.  Harmless to
    repeat.  Returns how many rows changed."""
    alias_domains = sorted({n.lower() for n in alias_domains})
    if accounts is not None:
        accounts = [a for a in accounts if a != GLOBAL_ACCOUNT]
        if not accounts:
            return 0
        return _retrying(store, lambda conn: _link_page(
            conn, _own_policies(conn, policy.c.policy_name.in_(accounts)), alias_domains))
    in_domain = _in_domain(policy.c.policy_name, domain)
    total, last = 0, 0
    while True:
        def work(conn, after=last):
            page = _own_policies(conn, sa.and_(in_domain, policy.c.id > after), limit=_BATCH)
            return page, _link_page(conn, page, alias_domains)

        page, changed = _retrying(store, work)
        total += changed
        if len(page) < _BATCH:
            return total
        last = max(page)


def release_foreign_links(store, domain, names):
    """Release the users rows at addresses in ``names`` ("@name", "x@name") that are linked to a
    policy named after an account outside ``domain``: rows an earlier owner of one of those names
    left (an alias domain removed, its link lost to a crash), which Amavisd would otherwise apply
    to ``domain``'s mail there (the old domain's or its users' spam policy), and which a policy PUT
    would copy as its start.  Rows linked to hand-made shared policies (names that are no account)
    and to the global "@." stay.  Paged (500 at a time); harmless to repeat.  Returns how many."""
    # (a name written by hand that is no domain name has no rows of ours: skipped, not a 500)
    names = sorted({n.lower() for n in names if _DOMAIN_NAME.fullmatch(n.lower())})
    if not names:
        return 0
    at_names = sa.or_(*(_in_domain(users.c.email, name) for name in names))
    domain = domain.lower()
    total, last = 0, 0
    while True:
        def work(conn, after=last):
            rows = conn.execute(
                sa.select(users.c.id, users.c.email, policy.c.policy_name)
                .select_from(users.join(policy, policy.c.id == users.c.policy_id))
                .where(at_names, users.c.id > after).order_by(users.c.id).limit(_BATCH).with_for_update()).all()
            foreign = [id_ for id_, email, name in rows if _foreign(_text(email), name, domain)]
            return [id_ for id_, _, _ in rows], _release(conn, foreign)

        page, released = _retrying(store, work)
        total += released
        if len(page) < _BATCH:
            return total
        last = max(page)


def _text(value):
    return bytes(value).decode() if isinstance(value, (bytes, memoryview)) else value


def _foreign(email, policy_name, domain):
    """Whether the row ``email`` is linked to another domain's account's policy."""
    name = (policy_name or "").lower()
    if name == email.lower() or "@" not in name or name == GLOBAL_ACCOUNT:
        return False
    return name.rsplit("@", 1)[1] != domain


_DOMAIN_NAME = re.compile(r"[a-z0-9.-]+")


def _in_domain(column, domain):
    if not _DOMAIN_NAME.fullmatch(domain):  # validated names: nothing LIKE would read as a pattern
        raise ValueError(f"not a domain name: {domain!r}")
    return sa.or_(column == "@" + domain, column.like("%@" + domain))


def _own_policies(conn, where, limit=None):
    """{policy id: account} of the policies matching ``where`` that their account's users row is
    linked to (a policy no account uses is not spread), locked (FOR UPDATE) against a concurrent
    delete_policy."""
    query = sa.select(policy.c.id, policy.c.policy_name).where(where).order_by(policy.c.id).with_for_update()
    if limit is not None:
        query = query.limit(limit)
    found = dict(conn.execute(query).all())
    if not found:
        return {}
    # (users.email is binary on MySQL and PostgreSQL: compared here, not joined with policy_name.)
    linked = dict(conn.execute(sa.select(users.c.email, users.c.policy_id)
                               .where(users.c.email.in_(list(found.values())))).all())
    return {id_: name for id_, name in found.items() if linked.get(name) == id_}


def _chunks(items, size=500):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _link_page(conn, page, alias_domains):
    if not page:
        return 0
    wanted = {address: id_ for id_, name in page.items() for address in alias_accounts(name, alias_domains)}
    changed = 0
    existing = {}
    for chunk in _chunks(sorted(wanted)):
        existing.update({email: (id_, policy_id) for id_, email, policy_id in conn.execute(
            sa.select(users.c.id, users.c.email, users.c.policy_id).where(users.c.email.in_(chunk)))})
    relink = {}
    for address, policy_id in wanted.items():
        if address in existing and existing[address][1] != policy_id:
            relink.setdefault(policy_id, []).append(existing[address][0])
    for policy_id, ids in relink.items():
        # An alias-domain address is the account's: a row there linked elsewhere follows it.
        changed += conn.execute(users.update().where(users.c.id.in_(ids)).values(policy_id=policy_id)).rowcount
    new = sorted(a for a in wanted if a not in existing)  # sorted: concurrent writers lock keys in one order
    if new:
        conn.execute(users.insert(), [{"email": a, "priority": account_priority(a), "policy_id": wanted[a]}
                                      for a in new])
        changed += len(new)
    stale = [id_ for id_, email in _linked(conn, list(page)) if email not in wanted and email not in page.values()]
    return changed + _release(conn, stale)


def _linked(conn, policy_ids):
    """(id, email) of the users rows linked to ``policy_ids``."""
    return conn.execute(sa.select(users.c.id, users.c.email).where(users.c.policy_id.in_(policy_ids))
                        .with_for_update()).all()


def _release(conn, ids):
    """Release linked users rows: deleted, but those holding white/blacklist rows (which hang on
    users.id), which stay, unlinked (policy_id 0).  Returns how many."""
    if not ids:
        return 0
    listed = set(conn.execute(sa.select(wblist.c.rid).where(wblist.c.rid.in_(ids))).scalars())
    listed |= set(conn.execute(sa.select(outbound_wblist.c.sid).where(outbound_wblist.c.sid.in_(ids))).scalars())
    gone = [id_ for id_ in ids if id_ not in listed]
    if gone:
        conn.execute(users.delete().where(users.c.id.in_(gone)))
    if listed:
        conn.execute(users.update().where(users.c.id.in_(sorted(listed))).values(policy_id=0))
    return len(ids)


# -- life-cycle -----------------------------------------------------------------------------------

_BATCH = 500


def delete_accounts(store, accounts):
    """Delete the Amavisd rows of ``accounts``: their users rows with their policies and their
    inbound and outbound list rows, and the rows of their alias-domain addresses linked to their
    policies (``_release``).  Shared mailaddr rows stay."""
    accounts = list(accounts)
    if not accounts:
        return 0
    with store.transaction() as conn:
        ids = conn.execute(sa.select(users.c.id).where(users.c.email.in_(accounts))).scalars().all()
        return _delete_rows(conn, ids, policy.c.policy_name.in_(accounts))


def delete_domain(store, domain, alias_domains=()):
    """Delete the Amavisd rows of "@domain" and of every "user@domain", and of the domain's alias
    domains ``alias_domains`` (every address there is one of the domain's accounts), in batches;
    rows elsewhere linked to the domain's policies are released.  A repeat finishes an interrupted
    run."""
    # (an alias name written by hand that is no domain name holds no rows of ours: skipped, or
    # every repeat of the domain's delete would fail)
    names = [domain, *(n.lower() for n in alias_domains if _DOMAIN_NAME.fullmatch(n.lower()))]
    in_domain_users = sa.or_(*(_in_domain(users.c.email, name) for name in names))
    in_domain_policies = _in_domain(policy.c.policy_name, domain)
    total = 0
    while True:
        with store.transaction() as conn:
            ids = conn.execute(sa.select(users.c.id).where(in_domain_users).limit(_BATCH)).scalars().all()
            total += _delete_rows(conn, ids, None)
        if len(ids) < _BATCH:
            break
    with store.transaction() as conn:
        own = conn.execute(sa.select(policy.c.id).where(in_domain_policies).with_for_update()).scalars().all()
        for chunk in _chunks(own):
            _release(conn, [id_ for id_, _ in _linked(conn, chunk)])
            conn.execute(policy.delete().where(policy.c.id.in_(chunk)))
    return total


def _delete_rows(conn, user_ids, own_policies):
    if user_ids:
        conn.execute(wblist.delete().where(wblist.c.rid.in_(user_ids)))
        conn.execute(outbound_wblist.delete().where(outbound_wblist.c.sid.in_(user_ids)))
        # Their own policies, named after the account; shared ones stay.
        accounts = conn.execute(sa.select(users.c.email).where(users.c.id.in_(user_ids))).scalars().all()
        own_policies = policy.c.policy_name.in_(accounts) if own_policies is None else \
            sa.or_(own_policies, policy.c.policy_name.in_(accounts))
    if own_policies is not None:
        # Locked first (FOR UPDATE), as delete_policy does: a link holding one of them commits its
        # rows before _linked reads, or finds the policy gone; else a row it wrote would point at a
        # deleted policy, out of reach of a repeat.
        policy_ids = conn.execute(sa.select(policy.c.id).where(own_policies).with_for_update()).scalars().all()
        if policy_ids:
            # the rows of their alias-domain addresses (linked to these policies) go with them
            doomed = set(user_ids)
            _release(conn, [id_ for id_, _ in _linked(conn, policy_ids) if id_ not in doomed])
            conn.execute(policy.delete().where(policy.c.id.in_(policy_ids)))
    if user_ids:
        conn.execute(users.delete().where(users.c.id.in_(user_ids)))
    return len(user_ids)


def rename_account(store, old, new):
    """An account was renamed: its ``users`` row (and so its spam policy and white/blacklists, which
    hang on its id) becomes ``new``'s, and its own policy (named after the account) is renamed with
    it.  One transaction: a repeat finds nothing left under ``old``.  Where ``new`` has rows of its own
    already (written while the rename was half-way), those stay: list entries of ``old`` join them
    unless ``new`` lists the same address, and ``old``'s policy goes unless ``new`` has none.
    Returns whether anything of ``old`` was found."""

    def work(conn):
        old_user = _user_row(conn, old, create=False)
        new_user = _user_row(conn, new, create=False)
        old_policy = conn.execute(sa.select(policy.c.id).where(policy.c.policy_name == old)).scalar()
        new_policy = conn.execute(sa.select(policy.c.id).where(policy.c.policy_name == new)).scalar()
        if old_user is None and old_policy is None:
            return False
        if old_user is not None and new_user is None:
            conn.execute(users.update().where(users.c.id == old_user.id).values(email=new))
        elif old_user is not None:
            for direction in DIRECTIONS:
                table, own, other = _list_table(direction)
                # (MySQL cannot delete from a table it selects from in a subquery: two statements.)
                taken = conn.execute(sa.select(other).where(own == new_user.id)).scalars().all()
                if taken:
                    conn.execute(table.delete().where(own == old_user.id, other.in_(taken)))
                conn.execute(table.update().where(own == old_user.id).values({own.name: new_user.id}))
            if not new_user.policy_id and old_user.policy_id:
                conn.execute(users.update().where(users.c.id == new_user.id).values(policy_id=old_user.policy_id))
            conn.execute(users.delete().where(users.c.id == old_user.id))
        if old_policy is not None:
            if new_policy is None:
                conn.execute(policy.update().where(policy.c.id == old_policy).values(policy_name=new))
            else:
                conn.execute(users.update().where(users.c.policy_id == old_policy).values(policy_id=new_policy))
                conn.execute(policy.delete().where(policy.c.id == old_policy))
        return True

    return _retrying(store, work)
