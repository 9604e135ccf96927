"""Mail aliases, as iRedMail's LDAP edition keeps them (iRedAdmin libs/ldaplib/iredldif.py).  No HTTP here.

A ``mailAlias`` under ``ou=Aliases``; its members are its ``mailForwardingAddress``
values, which Postfix's virtual_alias_maps returns while the alias is active and its
domain is not disabled (§6).  An alias may itself be a member of a list (memberOfGroup
on the alias entry, written by the list layer).

``accessPolicy`` is stored when given (the schema allows it on mailAlias), but iRedAPD
enforces access policies on mailing lists only.
"""

from .. import errors
from . import admin_limits
from . import dn as dnlib
from . import limits as limitlib
from .connection import MODIFY_REPLACE, NO_SUCH_OBJECT, LdapOperationError
from .domains import settle_domain_status
from .entries import add_account_entry, list_accounts, replace_value, retry_on_conflict, value_changes
from .references import classify_members, delete_account_entry, lookup_addresses

SERVICES = ("mail", "deliver")
MEMBERS = "mailForwardingAddress"

IS_ALIAS = dnlib.eq("objectClass", "mailAlias")
_ATTEMPTS = 8


def get_alias(directory, mail, attributes=("*",)):
    entry = directory.read(directory.names.alias(mail), attributes, IS_ALIAS)
    if entry is None:
        raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
    return entry


def _check_members(lookup, mail, values, check_members):
    """Refuse the alias itself and unknown addresses of hosted domains (before any write)."""
    for param in ("members", "addMember"):
        if param in values:
            classify_members(lookup, mail, values[param], param, check_members)


def create_alias(directory, mail, values, domain_entry, check_members=None, admin_limit=admin_limits.no_limit):
    """Add the alias ``mail`` from the API's parameters (``cn``, ``accessPolicy``, ``members``)
    within the domain's numberOfAliases (reserved first, given back on failure).
    ``check_members(lookup, address)``: whether a member address is within the caller's scope
    (``references.classify_members``)."""
    domain = mail.split("@", 1)[1]
    # One search: is the address free, and do the members exist where they must?
    lookup = lookup_addresses(directory, [mail, *values.get("members", [])])
    if lookup.account(mail) is not None:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)
    _check_members(lookup, mail, values, check_members)
    attributes = {
        "objectClass": ["mailAlias"],
        "mail": [mail],
        "accountStatus": ["active"],
        "cn": [values.get("cn") or mail.split("@", 1)[0]],
        "enabledService": list(SERVICES),
    }
    if values.get("members"):
        attributes[MEMBERS] = list(values["members"])
    if values.get("accessPolicy"):
        attributes["accessPolicy"] = [values["accessPolicy"]]
    if limitlib.DomainLimits.of(domain_entry).disabled:
        attributes["domainStatus"] = ["disabled"]
    with admin_limit({limitlib.ALIASES: 1}), limitlib.reserved(directory, domain, {limitlib.ALIASES: 1}, domain_entry):
        add_account_entry(directory, domain, directory.names.alias(mail), attributes)
    settle_domain_status(directory, domain, [directory.names.alias(mail)], "domainStatus" in attributes)


def update_alias(directory, current, values, check_members=None):
    """Apply the API's parameters (``cn``, ``accessPolicy``, ``accountStatus``, ``members`` |
    ``addMember`` / ``removeMember``) to the alias whose entry (as read) is ``current``, in one
    modify; if another request changed its members meanwhile, read it again and retry."""
    mail = current.first("mail").lower()
    _check_members(lookup_addresses(directory, values.get("members", values.get("addMember", []))), mail, values,
                   check_members)
    plain = {}
    if "cn" in values:
        plain["cn"] = replace_value(values["cn"])
    for name in ("accessPolicy", "accountStatus"):
        if name in values:
            plain[name] = [(MODIFY_REPLACE, [values[name]])]

    def attempt(n):
        entry = current if n == 0 else get_alias(directory, mail)
        modification = dict(plain)
        operations = value_changes(entry, MEMBERS, values.get("members"), values.get("addMember", ()),
                                   values.get("removeMember", ()))
        if operations:
            modification[MEMBERS] = operations
        if not modification:
            return
        try:
            directory.modify(entry.dn, modification)
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail) from None
            raise

    retry_on_conflict(attempt, "alias", attempts=_ATTEMPTS)


def delete_alias(directory, entry, domain_entry=None):
    """Every reference to the alias first (other aliases, users' forwardings, lists),
    then the entry, then the domain's alias counter."""
    domain = entry.first("mail").lower().split("@", 1)[1]
    delete_account_entry(directory, domain, entry, limitlib.ALIASES, domain_entry)


def list_aliases(directory, domain, disabled_only=False, attributes=("*",)):
    """The domain's aliases, page by page."""
    return list_accounts(directory, domain, dnlib.ALIASES_OU, IS_ALIAS, disabled_only, attributes)
