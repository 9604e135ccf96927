"""Alias domains: ``domainAliasName`` on a domain, and the addresses its accounts get there.

iRedMail's LDAP edition makes ``<local part>@<alias domain>`` reach an account through the
account's own ``shadowAddress`` (Postfix's virtual_mailbox_maps, virtual_alias_maps and the
group maps query ``(|(mail=%s)(shadowAddress=%s))``; virtual_mailbox_domains accepts the alias
domain by ``domainAliasName`` with ``enabledService: domainalias``).  So every user, list and
alias of the domain, and its catch-all (``@<alias domain>``, which catchall_maps finds), carries
one shadowAddress per alias domain: written at creation (``addresses_for_new_account`` and
``settle_new_account``) and by a sweep over the domain when an alias domain comes or goes
(``sweep``).  Nothing here knows HTTP.

Adding an alias domain is work proportional to the domain's size.  The sweep is paged and
harmless to repeat: a new ``domainAliasName`` is written first, then every account is brought
to what the request asks, and only then does the domain lose the names it removes; so a
repeated request, which finds the names it adds on the domain and the ones it removes still
there, finishes what a crashed one began and adds nothing twice.  Afterwards ``catch_up`` reads
the domain again and sweeps the names the domain lost or regained meanwhile (a racing request).

An address an account should get but another account already holds
(an explicit per-user alias address of that other account, which slapd's unique overlay keeps)
stays with its holder; the sweep reports it (``SweepResult.not_added``).
"""

from dataclasses import dataclass, field

from .. import errors
from . import dn as dnlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    CONSTRAINT_VIOLATION,
    MODIFY_ADD,
    MODIFY_DELETE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)

SERVICE = "domainalias"
ATTRIBUTE = "domainAliasName"
_ACCOUNT_ATTRIBUTES = ["mail", "shadowAddress"]


def names_of(domain_entry):
    """The domain's alias domain names, lower-case, in the order stored."""
    return list(dict.fromkeys(v.lower() for v in domain_entry.values(ATTRIBUTE)))


def shadow_addresses(mail, alias_names):
    """The shadowAddress values an account ``mail`` of a domain gets from the domain's alias
    domains ``alias_names``: ``<local part>@<alias domain>`` each.  The catch-all ``@domain``
    gets ``@<alias domain>``.  Creation, renames and the sweep all ask here."""
    local = mail.lower().rsplit("@", 1)[0]
    return [f"{local}@{name}" for name in dict.fromkeys(n.lower() for n in alias_names)]


def addresses_for_new_account(mail, domain_entry, lookup=None):
    """The alias-domain addresses to write into a new account's entry: ``shadow_addresses`` of
    the domain as read, less those ``lookup`` (a ``references.AddressLookup`` that looked them
    up) shows held by another account, which keeps them."""
    wanted = shadow_addresses(mail, names_of(domain_entry))
    if lookup is None:
        return wanted
    return [a for a in wanted if lookup.account(a) is None]


def settle_new_account(directory, domain, dn, mail, given_names, domain_entry=None):
    """Bring a just-added account to its domain's alias domains as they are now.

    The entry was written with the addresses of ``given_names`` (the domain as read before the
    add).  An alias domain added or removed in between may have been swept before the add, so
    the domain is read once more after it (``domain_entry``, read with domainAliasName after
    the add, or one base read here) and the difference written.  A sweep whose domain write
    comes after this read runs after it and finds the entry."""
    entry = domain_entry or directory.read(directory.names.domain(domain), [ATTRIBUTE],
                                           dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        return
    now, given = set(names_of(entry)), {n.lower() for n in given_names}
    add = shadow_addresses(mail, sorted(now - given))
    remove = shadow_addresses(mail, sorted(given - now))
    if add or remove:
        _apply(directory, dn, add, remove)


@dataclass
class SweepResult:
    """``changed``: accounts written; ``not_added``: addresses held by another account."""

    changed: int = 0
    not_added: list = field(default_factory=list)

    def as_dict(self):
        return {"accounts_changed": self.changed, "addresses_not_added": sorted(set(self.not_added))}

    def merge(self, other):
        self.changed += other.changed
        self.not_added += other.not_added
        return self


def sweep(directory, domain, add_names=(), remove_names=()):
    """Give every account of ``domain`` its address in each of ``add_names`` and take away its
    addresses in ``remove_names`` (per-user alias addresses there included), page by page.

    Only accounts not yet as wanted are written; a repeat finds nothing left to do.  With
    alias domains to add, every account of the domain is read (500 a page); with only some to
    remove, just the accounts having an address there (an indexed substring search).
    """
    add_names = [n.lower() for n in add_names]
    remove_suffixes = tuple("@" + n.lower() for n in remove_names)
    result = SweepResult()
    if not add_names and not remove_suffixes:
        return result
    filter_ = dnlib.ACCOUNT_CLASSES
    if not add_names:
        filter_ = dnlib.all_of(filter_, dnlib.any_of(*(dnlib.ends_with("shadowAddress", s) for s in remove_suffixes)))
    for entry in directory.paged_search(directory.names.domain(domain), filter_, _ACCOUNT_ATTRIBUTES):
        mail = entry.first("mail")
        if not mail:
            continue
        held = {v.lower() for v in entry.values("shadowAddress")}
        add = [a for a in shadow_addresses(mail, add_names) if a not in held]
        remove = [v for v in entry.values("shadowAddress") if v.lower().endswith(remove_suffixes)] \
            if remove_suffixes else []
        if not add and not remove:
            continue
        not_added = _apply(directory, entry.dn, add, remove)
        result.not_added += not_added
        if remove or len(not_added) < len(add):
            result.changed += 1
    return result


def apply_addresses(directory, dn, add, remove):
    """``_apply`` for callers outside this module (a rename's finish)."""
    return _apply(directory, dn, add, remove)


def _apply(directory, dn, add, remove):
    """Add the addresses ``add`` to the entry's shadowAddress and delete ``remove``, in one
    modify if it can; else value by value, dropping what is already done and the additions
    another account holds (slapd's unique overlay).  Returns the addresses not added."""
    changes = {}
    if remove:
        changes.setdefault("shadowAddress", []).append((MODIFY_DELETE, list(remove)))
    if add:
        changes.setdefault("shadowAddress", []).append((MODIFY_ADD, list(add)))
    try:
        directory.modify(dn, changes)
        return []
    except LdapOperationError as exc:
        if exc.result == NO_SUCH_OBJECT:  # deleted meanwhile
            return []
        if exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS, CONSTRAINT_VIOLATION):
            raise
    not_added = []
    for operation, values in changes["shadowAddress"]:
        for value in values:
            try:
                directory.modify(dn, {"shadowAddress": [(operation, [value])]})
            except LdapOperationError as exc:
                if exc.result == CONSTRAINT_VIOLATION and operation == MODIFY_ADD:
                    not_added.append(value.lower())
                elif exc.result == NO_SUCH_OBJECT:
                    return not_added
                elif exc.result not in (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS):
                    raise
    return not_added


def catch_up(directory, domain, names):
    """Bring the domain's accounts to what the domain says now for each of ``names``: read the
    domain once more and sweep in those it has, sweep out those it has not.  After a sweep: a
    request that changed the same names meanwhile may have written the domain after this one and
    swept before it (an add sweeping in after a remove swept out), and the later of the two
    catches up when it reads this."""
    entry = directory.read(directory.names.domain(domain), [ATTRIBUTE], dnlib.eq("objectClass", "mailDomain"))
    if entry is None:
        return SweepResult()
    now = set(names_of(entry))
    names = list(dict.fromkeys(n.lower() for n in names))
    return sweep(directory, domain, [n for n in names if n in now], [n for n in names if n not in now])


# -- one name, one domain ------------------------------------------------------------------


def domains_named(directory, names, except_domain=None):
    """{name: domainName} of the domains (other than ``except_domain``) that have one of
    ``names`` as their domainName or domainAliasName; one one-level search."""
    names = [n.lower() for n in names]
    if not names:
        return {}
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.any_of(
        *(dnlib.eq(attribute, n) for n in names for attribute in ("domainName", ATTRIBUTE))))
    found = {}
    for entry in directory.search(directory.names.basedn, filter_, ["domainName", ATTRIBUTE], scope="one"):
        owner = (entry.first("domainName") or "").lower()
        if except_domain is not None and owner == except_domain.lower():
            continue
        for value in entry.values("domainName") + entry.values(ATTRIBUTE):
            if value.lower() in names:
                found.setdefault(value.lower(), owner)
    return found


def require_unclaimed(directory, names, domain, param):
    """ALREADY_EXISTS (naming ``param``) if another domain has one of ``names`` as its name or
    as an alias domain: a name is one domain's, once in the whole directory."""
    taken = domains_named(directory, names, except_domain=domain)
    if taken:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param=param, detail=", ".join(
            f"{name} (domain {owner})" for name, owner in sorted(taken.items())))


# Address-valued attributes a delete cleans of a deleted account's addresses (references.py),
# and the addresses of accounts and external members (mail, shadowAddress); all indexed ``sub``.
_USED_IN = ("mail", "shadowAddress", "mailForwardingAddress", "domainAdmin", "listAllowedUser")


def used_outside(directory, names, domain):
    """The names among ``names`` in which some address is used outside the domain ``domain``'s
    own entry and subtree: another domain's forwardings, admins, list senders, external members
    or accounts, or a standalone admin's address.  Once the name is the domain's, a delete of an
    account there takes such addresses out of the entries that name them.  Two indexed searches,
    paged and left once every name is found (a name may be used by many entries)."""
    names = [n.lower() for n in names]
    if not names:
        return []
    suffixes = ["@" + n for n in names]
    filter_ = dnlib.any_of(*(dnlib.ends_with(attribute, s) for attribute in _USED_IN for s in suffixes))
    own = dnlib.in_dn("domainName", domain)
    found = set()
    for base, query in ((directory.names.basedn, dnlib.all_of(filter_, dnlib.negate(own))),
                        (directory.names.admin_basedn, filter_)):
        for entry in directory.paged_search(base, query, list(_USED_IN), page_size=50):
            for attribute in _USED_IN:
                for value in entry.values(attribute):
                    found.update(n for n in names if value.lower().endswith("@" + n))
            if len(found) == len(names):
                return sorted(found)
    return sorted(found)
