"""Renaming a user, alias or list: a new address (and DN) in the same domain.  No HTTP here.

The entry moves to its new DN with one modrdn and keeps everything else, the maildir
(``homeDirectory``) included, so Dovecot finds the old mail under the new login.  Every entry
that names it follows (``references.rename_references``), and so do its own addresses in the
domain's alias domains (``<old local part>@<alias domain>`` becomes ``<new local part>@…``).

The steps are ordered so that mail to either address is delivered at every moment, and so
that the same request repeated after a crash finishes the job:

1. ``prepare``: read and check everything; nothing is written if anything is refused.
2. ``claim``: the new addresses become alias addresses (shadowAddress) of the entry at its old
   DN (slapd's unique overlay and the same look for a racing ``mail`` as a create makes keep them
   ours), and a list's members get ``memberOfGroup: <new>`` beside the old one: from here on the
   new address reaches the account too.
3. ``rename_references`` (old -> new in every other entry).
4. ``move``: modrdn to ``mail=<new>``, keeping ``mail: <old>`` beside it, so that the old address
   stays this account's (slapd's unique overlay refuses it to a new account) until everything
   kept under it elsewhere has followed: else a crash here and a new account made at the old
   address would inherit the SQL rows, mlmmj subscriptions and sessions a repeat then moves.
5. (the SQL side: provisioning.rename_account)
6. ``finish_own_entry``: the old ``mail``, the claim's and the old alias-domain addresses go (the
   alias-domain addresses as the domain has them now: an alias domain may have come or gone),
   ``uid`` follows.
7. ``rename_references`` again: references a racing request wrote to the old address meanwhile.

A repeat finds the entry at its old DN (and redoes 2-7, each harmless to repeat) or at its new
DN with the old one gone (and does 5-7).  A rename that is done answers the same.
"""

from dataclasses import dataclass

from .. import errors
from . import alias_domains, mlmmj_lists
from . import dn as dnlib
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .domains import get_domain
from .entries import modify_quietly, others_with
from .references import (
    address_of_dn,
    dn_key,
    lookup_addresses,
    remove_references,
    rename_references,
    renamed_values,
)

USER, ALIAS, LIST = "user", "alias", "list"
# kind -> (the DN of an address, the filter its entry matches)
_KINDS = {
    USER: ("user", dnlib.eq("objectClass", "mailUser")),
    ALIAS: ("alias", dnlib.eq("objectClass", "mailAlias")),
    LIST: ("mail_list", dnlib.all_of(dnlib.eq("objectClass", "mailList"),
                                     dnlib.negate(dnlib.eq("enabledService", "mlmmj")))),
}
_ENTRY_ATTRIBUTES = ["objectClass", "mail", "shadowAddress", "uid", "cn", "sn", "domainGlobalAdmin",
                     "mailForwardingAddress", "memberOfGroup", "listAllowedUser", "listModerator", "listOwner",
                     "member"]


@dataclass
class Rename:
    """A rename as ``prepare`` found it: ``entry`` (where it is now), ``moved`` (whether it is at
    its new DN already: a repeat), ``mapping`` {old address: new address}."""

    kind: str
    old: str
    new: str
    old_dn: str
    new_dn: str
    entry: object
    moved: bool
    mapping: dict

    @property
    def claimed(self):
        """The addresses the entry holds as shadowAddress while it moves."""
        return list(dict.fromkeys(self.mapping.values()))


def _dn(directory, kind, mail):
    return getattr(directory.names, _KINDS[kind][0])(mail)


def _read(directory, kind, mail):
    return directory.read(_dn(directory, kind, mail), _ENTRY_ATTRIBUTES, _KINDS[kind][1])


def prepare(directory, kind, old, new, domain_entry=None):
    """Check the rename of the ``kind`` account ``old`` to ``new`` (validated, lower-case) and find
    where it stands.  Refusals (nothing written): INVALID_MAIL (another domain, the same
    address), NO_SUCH_ACCOUNT, ALREADY_EXISTS (``new`` or one of its alias-domain twins is an
    address of another account)."""
    local, domain = old.split("@", 1)
    new_local, new_domain = new.split("@", 1)
    if new_domain != domain:
        raise errors.InvalidInput(errors.INVALID_MAIL, param="new_mail",
                                  detail=f"{new} is not in the domain of {old}; an account stays in its domain")
    if new == old:
        raise errors.InvalidInput(errors.INVALID_MAIL, param="new_mail", detail="the address it has")
    old_dn = _dn(directory, kind, old)
    try:
        new_dn = _dn(directory, kind, new)
    except errors.InvalidInput as exc:  # longer than slapd can hold as an entry's name
        exc.param = "new_mail"
        raise
    entry = _read(directory, kind, old)
    moved = False
    if entry is None:
        entry = _read(directory, kind, new)
        if entry is None:
            if kind == LIST:
                raise mlmmj_lists.not_old_style(directory, old)
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=old)
        moved = True
    if domain_entry is None:  # else the caller's read, with domainAliasName (limits.DOMAIN_ATTRIBUTES)
        domain_entry = get_domain(directory, domain, ["domainAliasName"])
    mapping = {old: new}
    # A mail beside the entry's own is an earlier rename's old address (``move`` keeps it until
    # that rename finishes): one that died and is now renamed on follows too, all at once.
    for earlier in entry.values("mail"):
        if earlier.lower() not in (old, new):
            mapping[earlier.lower()] = new
    for alias_domain in sorted({d.lower() for d in domain_entry.values("domainAliasName")}):
        before, after = f"{local}@{alias_domain}", f"{new_local}@{alias_domain}"
        if entry.has_value("shadowAddress", before) or entry.has_value("shadowAddress", after):
            mapping[before] = after
    lookup = lookup_addresses(directory, list(mapping.values()))
    taken = sorted(address for address in mapping.values()
                   if lookup.account(address) is not None and dn_key(lookup.account(address).dn) != dn_key(entry.dn))
    if taken:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param="new_mail", detail=", ".join(taken))
    if kind == USER and directory.read(directory.names.admin(new), ["1.1"],
                                       dnlib.eq("objectClass", "mailAdmin")) is not None:
        # A standalone admin logs in with this address and domains name it in domainAdmin: a user
        # admin renamed to it (and its sessions, which follow) would manage that admin's domains.
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, param="new_mail",
                                   detail=f"{new} is a standalone admin's address")
    return Rename(kind, old, new, old_dn, new_dn, entry, moved, mapping)


def claim(directory, rename):
    """Step 2: the new addresses reach the account before anything names them (see the module)."""
    entry = rename.entry
    fresh = [a for a in rename.claimed if not entry.has_value("shadowAddress", a)]
    if fresh:
        modify_quietly(directory, entry.dn, {"shadowAddress": [(MODIFY_ADD, fresh)]})
        # slapd's unique overlay compares mail with mail and shadowAddress with shadowAddress only:
        # an account created with one of them as its mail meanwhile wins, as in a create.
        taken = others_with(directory, "mail", fresh, entry.dn)
        if taken:
            modify_quietly(directory, entry.dn, {"shadowAddress": [(MODIFY_DELETE, fresh)]})
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, param="new_mail",
                                       detail=", ".join(sorted({m.lower() for e in taken for m in e.values("mail")})))
    if rename.kind == LIST:
        _enrol_under_new_address(directory, rename)


def _enrol_under_new_address(directory, rename):
    """A list's address works through ``memberOfGroup`` on its members (Postfix's
    virtual_group_maps): each member, and the external-member entry, gets the new address
    beside the old one, so that both expand while the list moves."""
    filter_ = dnlib.all_of(dnlib.eq("memberOfGroup", rename.old), dnlib.negate(dnlib.eq("memberOfGroup", rename.new)),
                           dnlib.any_of(dnlib.ACCOUNT_CLASSES, dnlib.eq("objectClass", "mailExternalUser")))
    for member in directory.paged_search(directory.names.basedn, filter_, ["1.1"]):
        try:
            directory.modify(member.dn, {"memberOfGroup": [(MODIFY_ADD, [rename.new])]})
        except LdapOperationError as exc:
            if exc.result not in (ATTRIBUTE_OR_VALUE_EXISTS, NO_SUCH_OBJECT):
                raise


def move(directory, rename):
    """Step 4: modrdn to the new DN.  Gone meanwhile: NO_SUCH_ACCOUNT; the new DN taken: ALREADY_EXISTS."""
    if rename.moved:
        return
    try:
        directory.rename(rename.old_dn, dnlib.rdn("mail", rename.new), keep_old_rdn=True)
    except LdapOperationError as exc:
        if exc.result == NO_SUCH_OBJECT:
            if _read(directory, rename.kind, rename.new) is not None:
                return  # a concurrent repeat of this rename moved it
            _withdraw(directory, rename)
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=rename.old) from None
        if exc.result == ENTRY_ALREADY_EXISTS:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, param="new_mail", detail=rename.new) from None
        raise
    rename.moved = True


def _withdraw(directory, rename):
    """The entry left its old DN under this rename's feet (another request renamed it elsewhere, or
    deleted it): the addresses this rename claimed and the references it rewrote to them go to
    wherever the entry is now (its mail), or are removed with it."""
    holder = lookup_addresses(directory, [rename.new]).account(rename.new)
    if holder is None:
        remove_references(directory, rename.claimed, rename.new_dn)
        return
    # (its address is its DN's: a holder half-way through a rename of its own has two mail values)
    local = (address_of_dn(holder.dn) or holder.first("mail").lower()).split("@", 1)[0]
    # each claimed address (the new one, its alias-domain twins) -> the holder's own in that domain
    redirect = {claimed: f"{local}@{claimed.split('@', 1)[1]}" for claimed in rename.claimed}
    rename_references(directory, redirect, rename.new_dn, holder.dn)
    ours = [a for a in rename.claimed if holder.has_value("shadowAddress", a)]
    if ours:
        modify_quietly(directory, holder.dn, {"shadowAddress": [(MODIFY_DELETE, ours)]})


def finish_own_entry(directory, rename):
    """Step 6, on the entry at its new DN: the new address is its mail now, so the old mail and
    the claim's shadowAddress go, as do the old alias-domain addresses (their new twins stay); ``uid`` (a
    user's local part) and the entry's own references to its old address (a forwarding that
    keeps a copy) follow, and so do ``cn`` and ``sn`` where they are the old local part."""
    entry = directory.read(rename.new_dn, _ENTRY_ATTRIBUTES)
    if entry is None:
        return
    changes = renamed_values(entry, {old: new for old, new in rename.mapping.items()},
                             attributes=("mailForwardingAddress", "listAllowedUser", "listModerator", "listOwner"))
    old_mail = [v for v in entry.values("mail") if v.lower() != rename.new]  # kept by ``move``
    if old_mail:
        changes["mail"] = [(MODIFY_DELETE, old_mail)]
    old_local, new_local = rename.old.split("@", 1)[0], rename.new.split("@", 1)[0]
    if rename.kind == USER and entry.values("uid") != [new_local]:
        changes["uid"] = [(MODIFY_REPLACE, [new_local])]
    # Names iRedAdmin derives from the local part when none is given (a user's sn always, cn
    # without a name) follow it; a name someone chose stays.
    for attribute in ("cn", "sn"):
        if entry.values(attribute) == [old_local]:
            changes[attribute] = [(MODIFY_REPLACE, [new_local])]
    modify_quietly(directory, entry.dn, changes)
    _settle_alias_domain_addresses(directory, rename, entry)


def _settle_alias_domain_addresses(directory, rename, entry):
    """The claim's shadowAddress values go, and the entry's addresses in alias domains become
    ``<new local part>@<alias domain>`` for each alias domain the domain has *now*: one added or
    removed while the rename ran (its sweep wrote the entry under the old address, or took the
    claim away) is not in ``rename.mapping``.  An old-local-part address left there would stay
    with this account once the old address is a new account's; a new one in a removed alias
    domain would catch mail once that name is another domain's.  (Addresses another account holds
    stay with it, as in the sweep.)"""
    domain = rename.old.split("@", 1)[1]
    domain_entry = directory.read(directory.names.domain(domain), [alias_domains.ATTRIBUTE],
                                  dnlib.eq("objectClass", "mailDomain"))
    mapped = {old.split("@", 1)[1] for old in rename.mapping} - {domain}
    now = set(alias_domains.names_of(domain_entry)) if domain_entry is not None else mapped
    old_locals = {old.split("@", 1)[0] for old in rename.mapping}
    new_local = rename.new.split("@", 1)[0]

    def gone(value):
        local, _, name = value.lower().partition("@")
        if value.lower() == rename.new or value.lower() in rename.mapping:
            return True  # the claim, or an earlier rename's (that rename died after its move)
        if name in now or name in mapped:
            return local in old_locals or (local == new_local and name not in now)
        return False

    remove = [v for v in entry.values("shadowAddress") if gone(v)]
    held = {v.lower() for v in entry.values("shadowAddress")} - {v.lower() for v in remove}
    add = [a for a in alias_domains.shadow_addresses(rename.new, sorted(now)) if a not in held]
    if add or remove:
        alias_domains.apply_addresses(directory, entry.dn, add, remove)


def references(directory, rename):
    """Steps 3 and 7."""
    return rename_references(directory, rename.mapping, rename.old_dn, rename.new_dn)
