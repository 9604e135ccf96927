"""What users, aliases and lists share: looking up the addresses a request names,
adding an account entry, and taking a deleted account out of every entry that names it
(iRedAdmin libs/ldaplib/user.py, delete).
"""

from dataclasses import dataclass, field

from ldap.dn import str2dn

from .. import errors
from . import dn as dnlib
from . import limits as limitlib
from .connection import (
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    NO_SUCH_OBJECT,
    AddressTaken,
    LdapOperationError,
)
from .entries import delete_quietly, modify_quietly

# -- looking addresses up -------------------------------------------------------------


@dataclass
class AddressLookup:
    """What the directory holds for a set of addresses, from one search.

    ``accounts``: address -> the user, alias or list entry whose mail or
    shadowAddress it is.  ``domains``: domain name -> the hosted domain's entry,
    found by domainName or domainAliasName (backup-MX domains are not hosted).
    """

    accounts: dict = field(default_factory=dict)
    domains: dict = field(default_factory=dict)

    def account(self, address):
        return self.accounts.get(address)

    def domain_entry(self, address):
        return self.domains.get(address.rsplit("@", 1)[1])

    def in_primary_domain(self, address):
        """Whether the address is in a domain we host under its own name (not an alias domain):
        Postfix takes such an address as local and bounces it if no account has it."""
        domain = address.rsplit("@", 1)[1]
        entry = self.domains.get(domain)
        return entry is not None and entry.has_value("domainName", domain)


_LOOKUP_ATTRIBUTES = ["objectClass", "mail", "shadowAddress", "domainName", "domainAliasName", "domainAdmin"]


def lookup_addresses(directory, addresses):
    """One indexed subtree search, whatever the number of addresses: the accounts
    using any of them and the hosted domains they are in."""
    lookup = AddressLookup()
    addresses = list(dict.fromkeys(addresses))
    if not addresses:
        return lookup
    domains = sorted({a.rsplit("@", 1)[1] for a in addresses})
    accounts = dnlib.all_of(dnlib.ACCOUNT_CLASSES, dnlib.any_of(
        *(dnlib.eq(attribute, a) for a in addresses for attribute in ("mail", "shadowAddress"))))
    hosted = dnlib.all_of(
        dnlib.eq("objectClass", "mailDomain"), dnlib.negate(dnlib.eq("domainBackupMX", "yes")),
        dnlib.any_of(*(dnlib.eq(attribute, d) for d in domains for attribute in ("domainName", "domainAliasName"))))
    wanted = set(addresses)
    for entry in directory.search(directory.names.basedn, dnlib.any_of(accounts, hosted), _LOOKUP_ATTRIBUTES):
        if entry.has_value("objectClass", "mailDomain"):
            for name in entry.values("domainName") + entry.values("domainAliasName"):
                if name.lower() in domains:
                    lookup.domains[name.lower()] = entry
            continue
        for address in entry.values("mail") + entry.values("shadowAddress"):
            if address.lower() in wanted:
                lookup.accounts[address.lower()] = entry
    return lookup


@dataclass
class Members:
    """Member addresses sorted out: ``internal`` address -> the account entry that has it,
    ``external`` addresses outside every domain we host under its own name."""

    internal: dict = field(default_factory=dict)
    external: list = field(default_factory=list)


def classify_members(lookup, own_mail, addresses, param, in_scope=None):
    """Internal or external, for each member address of the account ``own_mail``.

    An address in a domain we host (by its own name) that no account has is refused
    (NO_SUCH_ACCOUNT): Postfix would take it as local and bounce every message.
    Addresses in alias domains and elsewhere are external.  ``in_scope(lookup, address)``:
    the caller's reach; an address outside it is external as it is, without looking at what
    the directory holds for it (None: every address is looked at).
    """
    members = Members()
    for address in addresses:
        if in_scope is not None and not in_scope(lookup, address):
            members.external.append(address)
            continue
        entry = lookup.account(address)
        if address == own_mail or (entry is not None and own_mail in (v.lower() for v in entry.values("mail"))):
            raise errors.InvalidInput(errors.INVALID_MAIL, param=param,
                                      detail=f"{address} is the account itself; it cannot be its own member")
        if entry is not None:
            members.internal[address] = entry
        elif lookup.in_primary_domain(address):
            raise errors.InvalidInput(errors.NO_SUCH_ACCOUNT, param=param,
                                      detail=f"{address}: no such account in a domain hosted here")
        else:
            members.external.append(address)
    return members


# -- deleting an account -----------------------------------------------------------------


def delete_account_entry(directory, domain, entry, counter, domain_entry=None):
    """Delete an alias or list: every reference to it first, then the entry, then its
    slot in the domain's ``counter`` (``domain_entry``: as the caller read it, which
    spares the counter a read).  Deleted meanwhile by another request (which gave the
    slot back): NO_SUCH_ACCOUNT."""
    remove_references(directory, entry.values("mail") + entry.values("shadowAddress"), entry.dn)
    try:
        directory.delete(entry.dn)
    except LdapOperationError as exc:
        if exc.result == NO_SUCH_OBJECT:
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=entry.first("mail")) from None
        raise
    limitlib.adjust_counters(directory, domain, {counter: -1}, domain_entry)


# -- DNs as values -----------------------------------------------------------------------


def dn_key(dn):
    """A DN in a form two spellings of the same DN share (case, escapes, spaces)."""
    try:
        return tuple((attribute.strip().lower(), value.strip().lower())
                     for rdn in str2dn(dn) for attribute, value, _ in rdn)
    except Exception:  # not a DN we can parse (written by another tool): compare it as text
        return (dn.strip().lower(),)


def address_of_dn(dn):
    """The address in an account DN's ``mail=`` RDN, or None."""
    key = dn_key(dn)
    if len(key) > 1 and key[0][0] == "mail" and "@" in key[0][1]:
        return key[0][1]
    return None


# mlmmj lists (enabledService: mlmmj) are mlmmjadmin's: their listOwner / listModerator /
# listAllowedUser mirror its spool's owners and moderators, so the sweeps here leave them alone
# and iredapi_ldap.mlmmj_lists has mlmmjadmin rewrite them.
_OLD_STYLE_LIST = dnlib.all_of(dnlib.eq("objectClass", "mailList"), dnlib.negate(dnlib.eq("enabledService", "mlmmj")))

# Attributes whose values are addresses of other accounts (moderators are searched by their
# indexed listAllowedUser, which we always write with listModerator).
_ADDRESS_REFERENCES = ("domainAdmin", "mailForwardingAddress", "memberOfGroup", "listAllowedUser", "listModerator")


# -- removing references -------------------------------------------------------------------


def remove_references(directory, addresses, dn):
    """Take a deleted account's ``addresses`` (its mail and shadow addresses) and ``dn``
    out of every entry that names them (as iRedAdmin's libs/ldaplib/user.py delete does):

    * domains' ``domainAdmin``;
    * aliases' and users' ``mailForwardingAddress``;
    * old-style lists' ``member`` DN, and ``listAllowedUser`` / ``listModerator`` / ``listOwner``
      (a future account at the address must not inherit a moderator's or owner's right to post);
    * ``memberOfGroup`` on users, aliases and lists (they were members of a deleted list);
    * external-member entries: ``mail`` values, the entry itself once its last address
      goes, and a deleted list's own entry (``memberOfGroup=<list>``).

    One paged search, plus one write per entry found; each write is harmless to repeat.
    """
    addresses = list(dict.fromkeys(a.lower() for a in addresses))
    if not addresses:
        return

    filter_ = _naming_any(addresses, dn)
    own_key = dn_key(dn)
    wanted = set(addresses)
    standalone = []  # filled once, when a domainAdmin value names one of the addresses

    def gone_admin(value):
        # A standalone admin at the same address (o=domainAdmins is outside the unique
        # overlay's scope) keeps its domainAdmin values: else a domain admin could take a
        # co-admin out of its domains by deleting a user it made at that address.
        if value.lower() not in wanted:
            return False
        if not standalone:
            standalone.append(_standalone_admins(directory, addresses))
        return value.lower() not in standalone[0]

    for entry in directory.paged_search(directory.names.basedn, filter_, _REFERENCE_ATTRIBUTES):
        if dn_key(entry.dn) != own_key:
            _remove_from_entry(directory, entry, lambda value: value.lower() in wanted,
                               lambda value: dn_key(value) == own_key, gone_admin=gone_admin)


def _naming_any(addresses, dn):
    """Entries that name one of ``addresses`` or the account entry ``dn``: domains'
    ``domainAdmin``; users' and aliases' ``mailForwardingAddress``; old-style lists' ``member``
    DN and ``listAllowedUser``; ``memberOfGroup`` on accounts and external members; external
    members' ``mail``.  (mlmmj lists are mlmmjadmin's: not here.)"""

    def naming(attribute):
        return dnlib.any_of(*(dnlib.eq(attribute, a) for a in addresses))

    is_external = dnlib.eq("objectClass", "mailExternalUser")
    return dnlib.any_of(
        dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), naming("domainAdmin")),
        dnlib.all_of(dnlib.any_of(dnlib.eq("objectClass", "mailAlias"), dnlib.eq("objectClass", "mailUser")),
                     naming("mailForwardingAddress")),
        dnlib.all_of(_OLD_STYLE_LIST, dnlib.any_of(dnlib.eq("member", dn), naming("listAllowedUser"))),
        dnlib.all_of(dnlib.any_of(dnlib.ACCOUNT_CLASSES, is_external), naming("memberOfGroup")),
        dnlib.all_of(is_external, naming("mail")),
    )


def _standalone_admins(directory, addresses):
    """The standalone admins' addresses among ``addresses`` (one search)."""
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailAdmin"),
                           dnlib.any_of(*(dnlib.eq("mail", a) for a in addresses)))
    return {v.lower() for entry in directory.search(directory.names.admin_basedn, filter_, ["mail"], scope="one")
            for v in entry.values("mail")}


# listOwner: iRedAPD lets a list's owners post whatever its access policy, as its moderators
# (plugins/ldap_maillist_access_policy.py); iRedAdmin writes them into listAllowedUser too, by
# which the searches find them.  enabledService: to know an mlmmj list (see above).
_LIST_ATTRIBUTES = ("listAllowedUser", "listModerator", "listOwner")
_REFERENCE_ATTRIBUTES = ["objectClass", "mail", "member", "enabledService", *_ADDRESS_REFERENCES, "listOwner"]
# Accounts whose DNs one search looks for in lists' ``member`` (an OR of indexed equality terms).
_MEMBER_BATCH = 200


def remove_domain_references(directory, domain, names):
    """Take a domain that is being deleted out of every entry outside it: values that are
    addresses in any of ``names`` (its own name and its alias domains' names), in the
    attributes ``remove_references`` cleans, and ``member`` DNs of its accounts.

    Standalone admins (``o=domainAdmins``) with such an address keep their ``domainAdmin``
    values: they are not accounts of the domain and outlive it.

    The domain may hold 100,000 accounts, so there is no search per account: one search for
    the address-valued attributes by substring filters on the domain names (iRedMail indexes
    them ``sub``; ``listModerator`` is found through ``listAllowedUser``, as in
    ``remove_references``), and, since DNs have no substring matching, one search per
    ``_MEMBER_BATCH`` of the domain's accounts for lists naming them in ``member`` (disabled
    lists keep ``member`` while their members' memberOfGroup is suspended).  Entries below
    the domain are left out by the filter.  Each write is harmless to repeat.
    """
    names = list(dict.fromkeys(n.lower() for n in names))
    suffixes = tuple("@" + name for name in names)
    domain_dn = directory.names.domain(domain)
    domain_key = dn_key(domain_dn)
    outside = dnlib.negate(dnlib.in_dn("domainName", domain))

    def gone(value):
        return value.lower().endswith(suffixes)

    def below_domain(value):
        key = dn_key(value)
        return len(key) > len(domain_key) and key[-len(domain_key):] == domain_key

    def naming(attribute):
        return dnlib.any_of(*(dnlib.ends_with(attribute, suffix) for suffix in suffixes))

    admins = dnlib.all_of(dnlib.eq("objectClass", "mailAdmin"), naming("mail"))
    standalone = {v.lower() for entry in directory.search(directory.names.admin_basedn, admins, ["mail"])
                  for v in entry.values("mail")}
    is_external = dnlib.eq("objectClass", "mailExternalUser")
    filter_ = dnlib.all_of(outside, dnlib.any_of(
        dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), naming("domainAdmin")),
        dnlib.all_of(dnlib.any_of(dnlib.eq("objectClass", "mailAlias"), dnlib.eq("objectClass", "mailUser")),
                     naming("mailForwardingAddress")),
        dnlib.all_of(_OLD_STYLE_LIST, naming("listAllowedUser")),
        dnlib.all_of(dnlib.any_of(dnlib.ACCOUNT_CLASSES, is_external), naming("memberOfGroup")),
        dnlib.all_of(is_external, naming("mail")),
    ))
    for entry in directory.paged_search(directory.names.basedn, filter_, _REFERENCE_ATTRIBUTES):
        _remove_from_entry(directory, entry, gone, below_domain,
                           gone_admin=lambda value: gone(value) and value.lower() not in standalone)

    def remove_members(dns):
        lists = dnlib.all_of(dnlib.eq("objectClass", "mailList"), outside,
                             dnlib.any_of(*(dnlib.eq("member", dn) for dn in dns)))
        for entry in directory.search(directory.names.basedn, lists, ["member"]):
            members = [v for v in entry.values("member") if below_domain(v)]
            if members:
                modify_quietly(directory, entry.dn, {"member": [(MODIFY_DELETE, members)]})

    batch = []
    for entry in directory.paged_search(domain_dn, dnlib.ACCOUNT_CLASSES, ["1.1"]):
        batch.append(entry.dn)
        if len(batch) == _MEMBER_BATCH:
            remove_members(batch)
            batch = []
    if batch:
        remove_members(batch)


def _remove_from_entry(directory, entry, gone, gone_dn, gone_admin=None):
    """Take out of one entry the address values ``gone(value)`` and the ``member`` DNs
    ``gone_dn(value)``; ``gone_admin``: the test for ``domainAdmin`` values, if another."""
    if entry.has_value("objectClass", "mailExternalUser"):
        _remove_from_external(directory, entry, gone)
        return
    changes = {}
    mlmmj = entry.has_value("enabledService", "mlmmj")  # its owners and moderators are mlmmjadmin's
    for attribute in (*_ADDRESS_REFERENCES, "listOwner"):
        if mlmmj and attribute in _LIST_ATTRIBUTES:
            continue
        test = gone_admin if attribute == "domainAdmin" and gone_admin is not None else gone
        matching = [v for v in entry.values(attribute) if test(v)]
        if matching:
            changes[attribute] = [(MODIFY_DELETE, matching)]
    members = [v for v in entry.values("member") if gone_dn(v)]
    if members:
        changes["member"] = [(MODIFY_DELETE, members)]
    modify_quietly(directory, entry.dn, changes)


def _remove_from_external(directory, entry, gone):
    """An external-member entry: deleted with its list or with its last address."""
    remaining = [v for v in entry.values("mail") if not gone(v)]
    if any(gone(v) for v in entry.values("memberOfGroup")) or not remaining:
        delete_quietly(directory, entry.dn)
        return
    removed = [v for v in entry.values("mail") if gone(v)]
    modify_quietly(directory, entry.dn, {"mail": [(MODIFY_DELETE, removed)]})


# -- admins ----------------------------------------------------------------------------------


def remove_domain_admin(directory, addresses):
    """Take ``addresses`` (admins' login addresses) out of every domain's ``domainAdmin``, and
    nothing else: a standalone admin's address may be anyone's forwarding target.  One paged
    search of the domains (domainAdmin is indexed), one write per domain found; harmless to
    repeat.  Returns the names of the domains changed."""
    addresses = list(dict.fromkeys(a.lower() for a in addresses))
    if not addresses:
        return []
    filter_ = dnlib.all_of(dnlib.eq("objectClass", "mailDomain"),
                           dnlib.any_of(*(dnlib.eq("domainAdmin", a) for a in addresses)))
    wanted = set(addresses)
    changed = []
    for entry in directory.paged_search(directory.names.basedn, filter_, ["domainName", "domainAdmin"], scope="one"):
        gone = [v for v in entry.values("domainAdmin") if v.lower() in wanted]
        if gone:
            modify_quietly(directory, entry.dn, {"domainAdmin": [(MODIFY_DELETE, gone)]})
            changed.append(entry.first("domainName").lower())
    return changed


# -- renaming references -----------------------------------------------------------------

# Address-valued attributes a rename rewrites: those remove_references cleans, and listOwner
# (found through listAllowedUser, which holds every owner; mlmmj lists are left alone, above).
_RENAMED_REFERENCES = (*_ADDRESS_REFERENCES, "listOwner")


def rename_references(directory, mapping, old_dn, new_dn):
    """Make every entry that names a renamed account name it anew: ``mapping`` is
    {old address: new address} (its mail and the alias-domain addresses that follow it),
    ``old_dn`` / ``new_dn`` where its entry was and is.

    The same places as ``remove_references``: domains' ``domainAdmin``; users' and aliases'
    ``mailForwardingAddress``; lists' ``member`` DN, ``listAllowedUser``, ``listModerator``
    and ``listOwner``; ``memberOfGroup`` on members of a renamed list; external-member entries
    (their ``mail`` values, and a renamed list's own entry, moved to ``memberOfGroup=<new>``).
    The renamed entry itself is left out (``finish_own_entry`` does it).

    One paged search, plus one write per entry found; each write replaces what is still old and
    is harmless to repeat, so a rename repeated after a crash finishes the job.
    """
    mapping = {old.lower(): new for old, new in mapping.items()}
    if not mapping:
        return 0

    filter_ = _naming_any(list(mapping), old_dn)
    own = {dn_key(old_dn), dn_key(new_dn)}
    admin_mapping = None  # mapping less standalone admins' addresses, read once if a domain names one
    written = 0
    for entry in directory.paged_search(directory.names.basedn, filter_, _REFERENCE_ATTRIBUTES):
        if dn_key(entry.dn) in own:
            continue
        if entry.has_value("objectClass", "mailExternalUser"):
            _rename_in_external(directory, entry, mapping)
        elif entry.has_value("objectClass", "mailDomain"):
            # A standalone admin at the renamed address (o=domainAdmins is outside the unique
            # overlay's scope) keeps its domainAdmin values, as on a delete (remove_references).
            if admin_mapping is None:
                standalone = _standalone_admins(directory, list(mapping))
                admin_mapping = {old: new for old, new in mapping.items() if old not in standalone}
            modify_quietly(directory, entry.dn, renamed_values(entry, admin_mapping, old_dn, new_dn))
        else:
            modify_quietly(directory, entry.dn, renamed_values(entry, mapping, old_dn, new_dn))
        written += 1
    return written


def renamed_values(entry, mapping, old_dn=None, new_dn=None, attributes=_RENAMED_REFERENCES):
    """The changes that replace, in ``entry``'s address-valued ``attributes``, every value that is a
    key of ``mapping`` by its new address, and the ``member`` DN ``old_dn`` by ``new_dn``."""
    changes = {}
    for attribute in attributes:
        changes.update(_replace(entry, attribute, [v for v in entry.values(attribute) if v.lower() in mapping],
                                [mapping[v.lower()] for v in entry.values(attribute) if v.lower() in mapping]))
    if old_dn is not None:
        old_key = dn_key(old_dn)
        changes.update(_replace(entry, "member", [v for v in entry.values("member") if dn_key(v) == old_key],
                                [new_dn]))
    return changes


def _replace(entry, attribute, old_values, new_values):
    if not old_values:
        return {}
    if attribute == "member":
        present = {dn_key(v) for v in entry.values(attribute)}
        fresh = [v for v in dict.fromkeys(new_values) if dn_key(v) not in present]
    else:
        fresh = [v for v in dict.fromkeys(new_values) if not entry.has_value(attribute, v)]
    return {attribute: [(MODIFY_DELETE, old_values)] + ([(MODIFY_ADD, fresh)] if fresh else [])}


def _rename_in_external(directory, entry, mapping):
    """An external-member entry: renamed addresses among its ``mail``; a renamed list's own entry
    (RDN memberOfGroup=<old list>) moves to memberOfGroup=<new list>."""
    try:
        modify_quietly(directory, entry.dn, renamed_values(entry, mapping, attributes=("mail",)))
    except AddressTaken:
        # slapd's unique overlay keeps an account's address out of external-member entries, so
        # this one (written before the overlay, or racing the rename) cannot take the new address
        # once it is the account's mail: the old one goes, as it would on a delete.
        old = [v for v in entry.values("mail") if v.lower() in mapping]
        remaining = [v for v in entry.values("mail") if v.lower() not in mapping]
        if remaining:
            modify_quietly(directory, entry.dn, {"mail": [(MODIFY_DELETE, old)]})
        else:
            delete_quietly(directory, entry.dn)
            return
    rdn = str2dn(entry.dn)[0][0]
    if rdn[0].lower() != "memberofgroup" or rdn[1].lower() not in mapping:
        return
    new_list = mapping[rdn[1].lower()]
    target = directory.names.list_externals(new_list)
    try:
        # deleteoldrdn takes the old list's address out of memberOfGroup; the new one may be there already
        directory.rename(entry.dn, dnlib.rdn("memberOfGroup", new_list))
    except LdapOperationError as exc:
        if exc.result == NO_SUCH_OBJECT:
            return  # a repeat: moved already
        if exc.result != ENTRY_ALREADY_EXISTS:
            raise
        # An earlier attempt moved it and another request re-created the old one: merge into the new.
        addresses = [v for v in entry.values("mail")]
        if addresses:
            modify_quietly(directory, target, {"mail": [(MODIFY_ADD, addresses)]})
        delete_quietly(directory, entry.dn)
