"""Old-style ("unsubscribable") mailing lists, as iRedMail's LDAP edition keeps them
(iRedAdmin libs/ldaplib; Postfix's
virtual_group_maps in iRedMail's ldap/*.cf).  Nothing here knows HTTP.

Not mlmmj lists: no mtaTransport, mailingListID or ``enabledService: mlmmj`` is written,
and lists that have ``mlmmj`` (managed through /api/ml) are not found here.

Membership is stored where Postfix's virtual_group_maps looks (§6):

* an internal member (an existing user, alias or list) carries ``memberOfGroup: <list>``
  on its own entry, and its DN is in the list's ``member`` (iRedAdmin's default
  LDAP_ADD_MEMBER_DN_TO_GROUP);
* external members are the ``mail`` values of the list's one mailExternalUser entry
  ``memberOfGroup=<list>,ou=Externals,domainName=<domain>``, added with the first
  external member and deleted with the last.

A member is a member if either side says so (memberOfGroup on it, or its DN on the
list); every membership write reconciles both sides towards the wanted state, so a
request repeated after a crash half-way finishes the job.

Postfix never looks at a list's own accountStatus (iRedAPD rejects mail sent straight to
a disabled list, but mail reaching it through an alias or another list would still be
expanded).  So a disabled list's memberships are suspended: memberOfGroup is taken off
its internal members (the list's ``member`` DNs remember them) and its external entry
is disabled; enabling the list puts both back.  The work is proportional to the list's
members, never to the domain's size.
"""

from dataclasses import dataclass, field

from .. import errors
from . import admin_limits, mlmmj_lists
from . import dn as dnlib
from . import limits as limitlib
from .alias_domains import addresses_for_new_account
from .alias_domains import names_of as alias_domain_names
from .connection import (
    ATTRIBUTE_OR_VALUE_EXISTS,
    ENTRY_ALREADY_EXISTS,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_OBJECT,
    LdapOperationError,
)
from .domains import settle_domain_status
from .entries import (
    add_account_entry,
    delete_quietly,
    ensure_containers,
    list_accounts,
    modify_quietly,
    replace_value,
    retry_on_conflict,
    value_changes,
)
from .references import Members, address_of_dn, classify_members, delete_account_entry, dn_key, lookup_addresses

# iRedAPD's policy names (libs/__init__.py), lower-case as it compares them.
ACCESS_POLICIES = ("public", "domain", "subdomain", "membersonly", "moderatorsonly", "membersandmoderatorsonly")
SERVICES = ("mail", "deliver")
# Moderators: iRedAPD lets listAllowedUser senders through under every policy; mlmmj lists
# keep listModerator with listAllowedUser as its superset.  We write both.
MODERATOR_ATTRIBUTES = ("listModerator", "listAllowedUser")

IS_LIST = dnlib.all_of(dnlib.eq("objectClass", "mailList"), dnlib.negate(dnlib.eq("enabledService", "mlmmj")))
_IS_EXTERNAL = dnlib.eq("objectClass", "mailExternalUser")
_MEMBER_ATTRIBUTES = ["objectClass", "mail", "shadowAddress", "accountStatus"]
_RETRIABLE = (NO_SUCH_ATTRIBUTE, ATTRIBUTE_OR_VALUE_EXISTS, ENTRY_ALREADY_EXISTS, NO_SUCH_OBJECT)
_ATTEMPTS = 8


@dataclass
class ListChanges:
    """Changes to one list; None / empty means "not given".  ``members`` (a
    ``references.Members``) replaces the whole membership; ``add_members`` adds to it."""

    cn: str | None = None  # "" removes the display name
    access_policy: str | None = None
    account_status: str | None = None
    members: object = None
    add_members: object = None
    remove_members: list = field(default_factory=list)
    moderators: list | None = None
    add_moderators: list = field(default_factory=list)
    remove_moderators: list = field(default_factory=list)

    @classmethod
    def from_params(cls, values, members, add_members):
        """The changes the API's parameters ask for; ``members`` / ``add_members``: the
        classified addresses of ``members`` / ``addMember`` (None when not given)."""
        return cls(
            cn=values.get("cn"),
            access_policy=values.get("accessPolicy"),
            account_status=values.get("accountStatus"),
            members=members,
            add_members=add_members,
            remove_members=values.get("removeMember", []),
            moderators=values.get("moderators"),
            add_moderators=values.get("addModerator", []),
            remove_moderators=values.get("removeModerator", []),
        )

    def touches_membership(self):
        return (self.members is not None or self.add_members is not None or bool(self.remove_members)
                or self.account_status is not None)


@dataclass
class Member:
    dn: str
    address: str  # the account's own mail
    addresses: frozenset  # mail and shadow addresses: what removeMember may name


def _member_of(entry):
    mail = (entry.first("mail") or "").lower()
    names = {v.lower() for v in entry.values("mail") + entry.values("shadowAddress")}
    return Member(dn=entry.dn, address=mail or entry.dn, addresses=frozenset(names))


@dataclass
class Membership:
    """A list's members as the directory holds them now."""

    enrolled: dict  # dn_key -> Member: entries carrying memberOfGroup=<list>
    recorded: dict  # dn_key -> the DN value in the list's ``member``
    externals: list  # mailExternalUser entries with memberOfGroup=<list>

    def internal(self):
        members = dict(self.enrolled)
        for key, value in self.recorded.items():
            if key not in members:
                address = address_of_dn(value) or value
                members[key] = Member(dn=value, address=address, addresses=frozenset({address}))
        return members

    def external_addresses(self):
        return {v.lower() for entry in self.externals for v in entry.values("mail")}

    def addresses(self):
        return sorted({m.address for m in self.internal().values()} | self.external_addresses())


def get_list(directory, mail, attributes=("*",)):
    entry = directory.read(directory.names.mail_list(mail), attributes, IS_LIST)
    if entry is None:
        raise mlmmj_lists.not_old_style(directory, mail)
    return entry


def read_membership(directory, list_entry):
    """One paged subtree search for everything carrying memberOfGroup=<list>, plus the
    ``member`` DNs of the list entry as read."""
    mail = list_entry.first("mail").lower()
    filter_ = dnlib.all_of(dnlib.eq("memberOfGroup", mail), dnlib.any_of(dnlib.ACCOUNT_CLASSES, _IS_EXTERNAL))
    enrolled, externals = {}, []
    for entry in directory.paged_search(directory.names.basedn, filter_, _MEMBER_ATTRIBUTES):
        if entry.has_value("objectClass", "mailExternalUser"):
            externals.append(entry)
        elif dn_key(entry.dn) != dn_key(list_entry.dn):
            enrolled[dn_key(entry.dn)] = _member_of(entry)
    recorded = {dn_key(value): value for value in list_entry.values("member")}
    return Membership(enrolled=enrolled, recorded=recorded, externals=externals)


def moderators_of(list_entry):
    return sorted({v.lower() for attribute in MODERATOR_ATTRIBUTES for v in list_entry.values(attribute)})


# -- create -----------------------------------------------------------------------------


def _classified(lookup, mail, values, param, check_members):
    if param not in values:
        return None
    if check_members is not None:
        # An address of another domain hosted here cannot be an external member: slapd's unique
        # overlay checks the mail values of external-member entries against the accounts (see
        # README, "One address, one account").  So a caller whose scope ends short of that domain
        # is refused for every such address alike, whether an account has it or not: the answer
        # tells which domains are hosted here (as their MX records do), never which accounts exist.
        for address in values[param]:
            if not check_members(lookup, address) and lookup.domain_entry(address) is not None:
                raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param,
                                          detail=f"{address.rsplit('@', 1)[1]}: a domain hosted here that you "
                                          "do not manage")
    return classify_members(lookup, mail, values[param], param, check_members)


def create_list(directory, mail, values, domain_entry, check_members=None, admin_limit=admin_limits.no_limit):
    """Add the list ``mail`` from the API's parameters (``cn``, ``accessPolicy``, ``members``,
    ``moderators``) within the domain's numberOfLists, then enrol its members.
    ``check_members(lookup, address)``: whether a member address is within the caller's scope
    (``references.classify_members``).

    Entry first, members after: a crash in between leaves a list whose ``member`` DNs
    name members not yet enrolled; a PUT with the same members finishes it.
    """
    domain = mail.split("@", 1)[1]
    # One search: is the address free, and what are the members?
    lookup = lookup_addresses(directory, [mail, *values.get("members", []),
                                          *addresses_for_new_account(mail, domain_entry)])
    if lookup.account(mail) is not None:
        raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)
    members = _classified(lookup, mail, values, "members", check_members) or Members()
    limits = limitlib.DomainLimits.of(domain_entry)
    internal = {dn_key(entry.dn): entry for entry in members.internal.values()}
    attributes = {
        "objectClass": ["mailList"],
        "mail": [mail],
        "accountStatus": ["active"],
        "cn": [values.get("cn") or mail.split("@", 1)[0]],
        "enabledService": list(SERVICES),
        "accessPolicy": [values.get("accessPolicy", "public")],
    }
    if values.get("moderators"):
        for attribute in MODERATOR_ATTRIBUTES:
            attributes[attribute] = list(values["moderators"])
    if internal:
        attributes["member"] = [entry.dn for entry in internal.values()]
    shadow = addresses_for_new_account(mail, domain_entry, lookup)
    if shadow:
        attributes["shadowAddress"] = shadow
    if limits.disabled:
        attributes["domainStatus"] = ["disabled"]
    with admin_limit({limitlib.LISTS: 1}), limitlib.reserved(directory, domain, {limitlib.LISTS: 1}, domain_entry):
        add_account_entry(directory, domain, directory.names.mail_list(mail), attributes)
    for entry in internal.values():
        modify_quietly(directory, entry.dn, {"memberOfGroup": [(MODIFY_ADD, [mail])]})
    added = [directory.names.mail_list(mail)]
    if members.external:
        added += _write_externals(directory, mail, [], set(members.external), True, limits.disabled,
                                  replace_leftover=True)
    settle_domain_status(directory, domain, added, limits.disabled,
                         (added[0], mail, alias_domain_names(domain_entry)))


# -- update -----------------------------------------------------------------------------


def update_list(directory, current, values, domain_entry, check_members=None):
    """Apply the API's parameters to the list whose entry (as read) is ``current``.

    Members' entries and the external entry are written first, the list entry last.
    If a concurrent request changed the list meanwhile, it is read again and the
    changes reconciled against what is there now.
    """
    mail = current.first("mail").lower()
    lookup = lookup_addresses(directory, values.get("members", values.get("addMember", [])))
    changes = ListChanges.from_params(values, _classified(lookup, mail, values, "members", check_members),
                                      _classified(lookup, mail, values, "addMember", check_members))
    domain_disabled = limitlib.DomainLimits.of(domain_entry).disabled

    def attempt(n):
        entry = current if n == 0 else get_list(directory, mail)
        try:
            _apply(directory, entry, changes, domain_disabled)
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT and dn_key(exc.dn) == dn_key(entry.dn):
                raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail) from None
            raise

    retry_on_conflict(attempt, "list", attempts=_ATTEMPTS, conflicts=_RETRIABLE)


def _apply(directory, current, changes, domain_disabled):
    modification = {}
    if changes.cn is not None:
        modification["cn"] = replace_value(changes.cn)
    if changes.access_policy is not None:
        modification["accessPolicy"] = [(MODIFY_REPLACE, [changes.access_policy])]
    if changes.account_status is not None:
        modification["accountStatus"] = [(MODIFY_REPLACE, [changes.account_status])]
    for attribute in MODERATOR_ATTRIBUTES:
        operations = value_changes(current, attribute, changes.moderators, changes.add_moderators,
                                   changes.remove_moderators)
        if operations:
            modification[attribute] = operations
    if changes.touches_membership():
        status = changes.account_status or current.first("accountStatus") or "active"
        member_operations = _reconcile_members(directory, current, changes, status.lower() == "active",
                                               domain_disabled)
        if member_operations:
            modification["member"] = member_operations
    if modification:
        directory.modify(current.dn, modification)


def _reconcile_members(directory, current, changes, active, domain_disabled):
    """Write members' memberOfGroup and the external entry; return the list's ``member`` changes."""
    mail = current.first("mail").lower()
    state = read_membership(directory, current)
    if changes.members is not None:
        wanted = {dn_key(e.dn): _member_of(e) for e in changes.members.internal.values()}
        wanted_external = set(changes.members.external)
    else:
        wanted = state.internal()
        wanted_external = state.external_addresses()
        removed = set(changes.remove_members)
        wanted = {key: m for key, m in wanted.items() if not (m.addresses & removed)}
        wanted_external -= removed
        if changes.add_members is not None:
            for entry in changes.add_members.internal.values():
                wanted.setdefault(dn_key(entry.dn), _member_of(entry))
            wanted_external |= set(changes.add_members.external)
    # One membership per address: a domain admin adds accounts of other domains as external
    # members (authorization.member_check), a global admin the same accounts as internal ones.
    wanted_external -= {address for member in wanted.values() for address in member.addresses}
    enrolled_wanted = wanted if active else {}
    # Leave first (mail stops reaching whoever is no longer wanted), then join.
    for key, member in state.enrolled.items():
        if key not in enrolled_wanted:
            modify_quietly(directory, member.dn, {"memberOfGroup": [(MODIFY_DELETE, [mail])]})
    for key, member in list(enrolled_wanted.items()):
        if key in state.enrolled:
            continue
        try:
            directory.modify(member.dn, {"memberOfGroup": [(MODIFY_ADD, [mail])]})
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                del wanted[key]  # a DN left on the list by an account deleted elsewhere
            elif exc.result != ATTRIBUTE_OR_VALUE_EXISTS:
                raise
    added = _write_externals(directory, mail, state.externals, wanted_external, active, domain_disabled)
    if added:
        settle_domain_status(directory, mail.split("@", 1)[1], added, domain_disabled)
    operations = []
    gone = [value for key, value in state.recorded.items() if key not in wanted]
    if gone:
        operations.append((MODIFY_DELETE, gone))
    new = [member.dn for key, member in wanted.items() if key not in state.recorded]
    if new:
        operations.append((MODIFY_ADD, new))
    return operations


def _write_externals(directory, mail, entries, wanted, active, domain_disabled, replace_leftover=False):
    """Make the external-member entries hold exactly ``wanted``, in the list's status.

    Entries another tool added for the list keep what is still wanted; what is
    missing goes into the list's own entry, which exists only while it has addresses.
    ``replace_leftover``: on create, an entry left by an earlier list of the same
    address is taken over (on update, finding one means a concurrent write: retry).
    Returns the DNs of entries it added (their domainStatus is the caller's to settle).
    """
    status = "active" if active else "disabled"
    own_dn = directory.names.list_externals(mail)
    own = next((e for e in entries if dn_key(e.dn) == dn_key(own_dn)), None)
    remaining = set(wanted)
    for entry in [e for e in entries if e is not own] + ([own] if own is not None else []):
        present = {v.lower(): v for v in entry.values("mail")}
        keep = {address for address in present if address in remaining}
        remaining -= keep
        add = sorted(remaining) if entry is own else []
        remaining -= set(add)
        if not keep and not add:
            delete_quietly(directory, entry.dn)
            continue
        changes = {}
        gone = [value for address, value in present.items() if address not in keep]
        operations = ([(MODIFY_DELETE, gone)] if gone else []) + ([(MODIFY_ADD, add)] if add else [])
        if operations:
            changes["mail"] = operations
        if (entry.first("accountStatus") or "").lower() != status:
            changes["accountStatus"] = [(MODIFY_REPLACE, [status])]
        if changes:
            directory.modify(entry.dn, changes)
    if remaining:
        attributes = {
            "objectClass": ["mailExternalUser"],
            "memberOfGroup": [mail],
            "mail": sorted(remaining),
            "accountStatus": [status],
            "enabledService": list(SERVICES),
        }
        if domain_disabled:
            attributes["domainStatus"] = ["disabled"]
        try:
            directory.add(own_dn, attributes)
        except LdapOperationError as exc:
            if exc.result == ENTRY_ALREADY_EXISTS and replace_leftover:
                directory.modify(own_dn, {name: [(MODIFY_REPLACE, values)] for name, values in attributes.items()
                                     if name not in ("objectClass", "memberOfGroup")})
            elif exc.result == NO_SUCH_OBJECT:
                ensure_containers(directory, mail.split("@", 1)[1])
                directory.add(own_dn, attributes)
            else:
                raise
        return [own_dn]
    return []


# -- delete and list ----------------------------------------------------------------------


def delete_list(directory, entry, domain_entry=None):
    """Members' memberOfGroup, the external entry and every other reference first,
    then the list entry, then the domain's list counter."""
    domain = entry.first("mail").lower().split("@", 1)[1]
    delete_account_entry(directory, domain, entry, limitlib.LISTS, domain_entry)


def list_lists(directory, domain, disabled_only=False, attributes=("*",)):
    """The domain's old-style lists, page by page."""
    return list_accounts(directory, domain, dnlib.GROUPS_OU, IS_LIST, disabled_only, attributes)
