"""Mail aliases, as iRedMail's LDAP edition keeps them (iredmail-ldap.md §2.3).  No HTTP here.

A ``mailAlias`` under ``ou=Aliases``; its members are its ``mailForwardingAddress``
values, which Postfix's virtual_alias_maps returns while the alias is active and its
domain is not disabled (§6).  An alias may itself be a member of a list (memberOfGroup
on the alias entry, written by the list layer).

``accessPolicy`` is stored when given (the schema allows it on mailAlias), but iRedAPD
enforces access policies on mailing lists only.
"""

from dataclasses import dataclass, field

from .. import errors
from . import dn as dnlib
from . import limits as limitlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .references import add_account_entry, delete_account_entry, list_accounts

SERVICES = ("mail", "deliver")
MEMBERS = "mailForwardingAddress"

IS_ALIAS = dnlib.eq("objectClass", "mailAlias")
_ATTEMPTS = 8


@dataclass
class NewAlias:
    mail: str
    cn: str | None = None
    access_policy: str | None = None
    members: list = field(default_factory=list)


@dataclass
class AliasChanges:
    """Changes to one alias; None / empty means "not given"; ``members`` replaces them all."""

    cn: str | None = None  # "" removes the display name
    access_policy: str | None = None
    account_status: str | None = None
    members: list | None = None
    add_members: list = field(default_factory=list)
    remove_members: list = field(default_factory=list)


def get_alias(ldap, names, mail, attributes=("*",)):
    entry = ldap.read(names.alias(mail), attributes, IS_ALIAS)
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def create_alias(ldap, names, domain, domain_entry, new):
    """Add the alias within the domain's numberOfAliases (reserved first, given back on failure)."""
    attributes = {
        "objectClass": ["mailAlias"],
        "mail": [new.mail],
        "accountStatus": ["active"],
        "cn": [new.cn or new.mail.split("@", 1)[0]],
        "enabledService": list(SERVICES),
    }
    if new.members:
        attributes[MEMBERS] = list(new.members)
    if new.access_policy:
        attributes["accessPolicy"] = [new.access_policy]
    if limitlib.DomainLimits.of(domain_entry).disabled:
        attributes["domainStatus"] = ["disabled"]
    reservation = {limitlib.ALIASES: 1}
    limitlib.adjust_counters(ldap, names, domain, reservation, domain_entry)
    try:
        add_account_entry(ldap, names, domain, names.alias(new.mail), attributes)
    except Exception:
        limitlib.release(ldap, names, domain, reservation)
        raise


def update_alias(ldap, names, current, changes):
    """One modify of the alias whose entry (as read) is ``current``; if another request
    changed its members meanwhile, read it again and retry."""
    mail = current.first("mail").lower()
    for _ in range(_ATTEMPTS):
        modification = _modification(current, changes)
        if not modification:
            return
        try:
            ldap.modify(current.dn, modification)
            return
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail) from None
            if exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS):
                raise
        current = get_alias(ldap, names, mail)
    raise errors.Conflict("CONCURRENT_UPDATE", detail="the alias kept changing; try again")


def _modification(current, changes):
    modification = {}
    if changes.cn is not None:
        modification["cn"] = [(MODIFY_REPLACE, [changes.cn] if changes.cn else [])]
    if changes.access_policy is not None:
        modification["accessPolicy"] = [(MODIFY_REPLACE, [changes.access_policy])]
    if changes.account_status is not None:
        modification["accountStatus"] = [(MODIFY_REPLACE, [changes.account_status])]
    if changes.members is not None:
        modification[MEMBERS] = [(MODIFY_REPLACE, list(changes.members))]
    else:
        operations = []
        new = [v for v in changes.add_members if not current.has_value(MEMBERS, v)]
        if new:
            operations.append((MODIFY_ADD, new))
        removed = set(changes.remove_members)
        gone = [v for v in current.values(MEMBERS) if v.lower() in removed]
        if gone:
            operations.append((MODIFY_DELETE, gone))
        if operations:
            modification[MEMBERS] = operations
    return modification


def delete_alias(ldap, names, domain, entry, domain_entry=None):
    """Every reference to the alias first (other aliases, users' forwardings, lists),
    then the entry, then the domain's alias counter."""
    delete_account_entry(ldap, names, domain, entry, limitlib.ALIASES, domain_entry)


def list_aliases(ldap, names, domain, disabled_only=False, attributes=("*",)):
    """The domain's aliases, page by page."""
    return list_accounts(ldap, names, domain, dnlib.ALIASES_OU, IS_ALIAS, disabled_only, attributes)
