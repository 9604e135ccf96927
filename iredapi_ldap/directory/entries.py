"""Entry operations every kind of account shares: containers, adding, listing, deleting,
writes that may already be done, multi-valued attribute changes and compare-and-set retries.

Functions take a ``base.Directory``; nothing here knows HTTP.
"""

import random
import time

from .. import errors
from . import dn as dnlib
from .connection import (
    ASSERTION_FAILED,
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    NOT_ALLOWED_ON_NON_LEAF,
    LdapOperationError,
)

# A compare-and-set modify failed: the value it deleted by exact value was gone, the
# value it added was already there, or the entry no longer matched what the modify
# asserted, because another writer got there first.
CAS_CONFLICTS = (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS, ASSERTION_FAILED)
# Results that mean "this write was already done" for a write that may be repeated.
_ALREADY_DONE = (NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT, ATTRIBUTE_OR_VALUE_EXISTS)


# -- compare-and-set ---------------------------------------------------------------------------


def retry_on_conflict(attempt, what, *, attempts=8, seconds=None, conflicts=CAS_CONFLICTS):
    """Return ``attempt(n)`` for the first n = 0, 1, … that does not end in a conflict.

    ``attempt`` writes by compare-and-set; an ``LdapOperationError`` whose result is in
    ``conflicts`` means another writer came first, and ``attempt`` is called again (it reads
    what it compares against anew when n > 0), after a short random pause that grows with n,
    so that writers in two workers that keep colliding fall out of step.  Gives up after
    ``attempts`` tries, or, with ``seconds``, once that much time has passed as well:
    409 CONCURRENT_UPDATE.
    """
    give_up_at = None if seconds is None else time.monotonic() + seconds
    n = 0
    while True:
        try:
            return attempt(n)
        except LdapOperationError as exc:
            if exc.result not in conflicts:
                raise
        n += 1
        if n >= attempts or (give_up_at is not None and time.monotonic() > give_up_at):
            break
        time.sleep(random.uniform(0, min(0.002 * n, 0.02)))
    raise errors.Conflict(errors.CONCURRENT_UPDATE, detail=f"the {what} kept changing; try again")


def value_changes(current, attribute, reset=None, add=(), remove=()):
    """[(MODIFY_*, values)] that make ``current``'s values of the multi-valued ``attribute`` what
    a request asks: ``reset`` replaces them all; else the ``add`` values not there yet are added
    and the ``remove`` values that are there are deleted (compared case-insensitively)."""
    if reset is not None:
        return [(MODIFY_REPLACE, list(reset))]
    operations = []
    new = [v for v in add if not current.has_value(attribute, v)]
    if new:
        operations.append((MODIFY_ADD, new))
    removed = {v.lower() for v in remove}
    gone = [v for v in current.values(attribute) if v.lower() in removed]
    if gone:
        operations.append((MODIFY_DELETE, gone))
    return operations


def replace_value(value):
    """A single-valued attribute's change: ``value``, or "" / None to remove the attribute."""
    return [(MODIFY_REPLACE, [value] if value else [])]


# -- adding ------------------------------------------------------------------------------------


def ensure_containers(directory, domain, ous=dnlib.DOMAIN_OUS):
    """Add the domain's ``ou=`` containers that are missing; NO_SUCH_DOMAIN if the domain
    itself is missing (deleted while a request was adding to it)."""
    for ou in ous:
        try:
            directory.add(directory.names.ou(domain, ou), {"objectClass": ["top", "organizationalUnit"], "ou": [ou]})
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
            if exc.result != ENTRY_ALREADY_EXISTS:
                raise


def add_account_entry(directory, domain, dn, attributes):
    """Add a user, alias or list entry; ALREADY_EXISTS if the DN is taken.  A missing
    container (a domain made by hand) is added and the add retried; NO_SUCH_DOMAIN if the
    domain is gone, or its container went again (the domain is being deleted)."""
    for attempt in (1, 2):
        try:
            directory.add(dn, attributes)
            break
        except LdapOperationError as exc:
            if exc.result == ENTRY_ALREADY_EXISTS:
                raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=attributes["mail"][0]) from None
            if exc.result != NO_SUCH_OBJECT:
                raise
            if attempt == 2:
                raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
        ensure_containers(directory, domain)
    mail = attributes["mail"][0]
    if others_with(directory, "shadowAddress", [mail], dn):
        # Another request made the address someone's alias address after our look: slapd's unique
        # overlay compares mail with mail and shadowAddress with shadowAddress only, so this is
        # the one race it cannot settle.  The entry that finds the other one yields (if both find
        # each other, both do: never two owners).
        undo_add(directory, dn)
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)


def others_with(directory, attribute, addresses, own_dn):
    """The users, aliases and lists other than ``own_dn`` that have one of ``addresses`` as
    ``attribute`` (mail or shadowAddress); one indexed search."""
    filter_ = dnlib.all_of(dnlib.ACCOUNT_CLASSES, dnlib.any_of(*(dnlib.eq(attribute, a) for a in addresses)))
    own = own_dn.lower()
    return [e for e in directory.search(directory.names.basedn, filter_, ["mail"]) if e.dn.lower() != own]


# -- listing -----------------------------------------------------------------------------------


def list_accounts(directory, domain, ou, kind_filter, disabled_only=False, attributes=("*",)):
    """Accounts of one kind in one of the domain's containers, page by page."""
    parts = [kind_filter]
    if disabled_only:
        parts.append(dnlib.eq("accountStatus", "disabled"))
    return directory.paged_search(directory.names.ou(domain, ou), dnlib.all_of(*parts), attributes, scope="one")


# -- writes that may already be done -------------------------------------------------------------


def modify_quietly(directory, dn, changes):
    """A modify whose work may already be done (a retry, a concurrent request).

    A modify is all or nothing, so if part of it was already done the rest is
    applied one value at a time.
    """
    if not changes:
        return
    try:
        directory.modify(dn, changes)
        return
    except LdapOperationError as exc:
        if exc.result not in _ALREADY_DONE:
            raise
        if exc.result == NO_SUCH_OBJECT:
            return
    for attribute, operations in changes.items():
        for operation, values in operations:
            for value in values:
                try:
                    directory.modify(dn, {attribute: [(operation, [value])]})
                except LdapOperationError as exc:
                    if exc.result not in _ALREADY_DONE:
                        raise


def delete_quietly(directory, dn):
    """Delete one leaf entry; already gone is fine."""
    try:
        directory.delete(dn)
    except LdapOperationError as exc:
        if exc.result != NO_SUCH_OBJECT:
            raise


def undo_add(directory, dn):
    """Take back an entry this request just added, after a later step failed: any error here
    is dropped, so that the caller reports the failure that matters."""
    try:
        directory.delete(dn)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


# -- deleting ------------------------------------------------------------------------------------

_DELETE_ATTRIBUTES = ["objectClass", "mail", "homeDirectory", "storageBaseDirectory", "mailMessageStore"]


def delete_entry(directory, dn, before_delete=None):
    """Delete one entry (one round trip), or its subtree if it turns out to have children."""
    try:
        directory.delete(dn)
    except LdapOperationError as exc:
        if exc.result == NOT_ALLOWED_ON_NON_LEAF:
            delete_subtree(directory, dn, before_delete)
        elif exc.result != NO_SUCH_OBJECT:
            raise


def delete_subtree(directory, base_dn, before_delete=None, keep_base=False):
    """Delete ``base_dn`` and its descendants, streaming one level at a time; with
    ``keep_base``, only the descendants.

    ``before_delete(entry)`` is called for each entry below ``base_dn`` just before it is
    deleted (entries carry objectClass, mail and the maildir attributes); it must be
    harmless to repeat, since a retry after a crash calls it again for what is left.
    """
    for entry in directory.paged_search(base_dn, "(objectClass=*)", _DELETE_ATTRIBUTES, scope="one"):
        if _is_container(entry.dn):
            delete_subtree(directory, entry.dn, before_delete)
        else:
            if before_delete is not None:
                before_delete(entry)
            delete_entry(directory, entry.dn, before_delete)
    if keep_base:
        return
    try:
        directory.delete(base_dn)
    except LdapOperationError as exc:
        if exc.result == NOT_ALLOWED_ON_NON_LEAF:  # a child was added meanwhile: go round again
            delete_subtree(directory, base_dn, before_delete)
        elif exc.result != NO_SUCH_OBJECT:
            raise


def _is_container(dn):
    # Accounts are leaves; only ou= containers hold children.  A leaf that turns out to have
    # children is handled by delete_entry.
    return dn.lower().startswith("ou=")
