"""Who administers a domain: its ``domainAdmin`` values, standalone admins or mail users; and
the marks iRedAdmin puts on a mail user that is an admin (iRedAdmin libs/ldaplib/user.py
__mark_user_as_admin, general.py enable_disable_admins): ``enabledService: domainadmin`` while it
administers a domain or is a global admin, ``domainGlobalAdmin: yes`` for a global admin.

Nothing here knows HTTP.
"""

from dataclasses import dataclass, field

from .. import errors
from . import dn as dnlib
from .connection import MODIFY_ADD, MODIFY_DELETE, NO_SUCH_OBJECT, LdapOperationError
from .domains import get_domain
from .entries import modify_quietly, replace_value, retry_on_conflict, value_changes

ADMIN_SERVICE = "domainadmin"
_ATTEMPTS = 8
_ACCOUNT_ATTRIBUTES = ["objectClass", "mail", "enabledService", "domainGlobalAdmin"]


def domain_admins(domain_entry):
    return sorted({v.lower() for v in domain_entry.values("domainAdmin")})


@dataclass
class AdminAccounts:
    """Existing admin candidates by address: ``standalone`` (mailAdmin) and ``users`` (mailUser)."""

    standalone: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)

    def get(self, address):
        return self.standalone.get(address) or self.users.get(address)


def find_accounts(directory, addresses):
    """The standalone admins and mail users among ``addresses`` (by their login address, not
    alias addresses): two indexed searches, whatever the number of addresses."""
    found = AdminAccounts()
    addresses = list(dict.fromkeys(addresses))
    if not addresses:
        return found
    by_mail = dnlib.any_of(*(dnlib.eq("mail", a) for a in addresses))
    names = directory.names
    for entry in directory.search(names.admin_basedn, dnlib.all_of(dnlib.eq("objectClass", "mailAdmin"), by_mail),
                                  _ACCOUNT_ATTRIBUTES, scope="one"):
        found.standalone[entry.first("mail").lower()] = entry
    for entry in directory.search(names.basedn, dnlib.all_of(dnlib.eq("objectClass", "mailUser"), by_mail),
                                  _ACCOUNT_ATTRIBUTES):
        # a user's DN names its own address; anything else (a copy elsewhere) is not the login account
        if entry.dn.lower() == names.user(entry.first("mail").lower()).lower():
            found.users[entry.first("mail").lower()] = entry
    return found


def require_existing(found, addresses, param, listed=()):
    """400 NO_SUCH_ACCOUNT naming every address of ``addresses`` that is neither a standalone
    admin nor a mail user (nor, for removals, a value the domain lists: ``listed``)."""
    listed = set(listed)
    missing = [a for a in addresses if found.get(a) is None and a not in listed]
    if missing:
        raise errors.InvalidInput(errors.NO_SUCH_ACCOUNT, param=param,
                                  detail="no standalone admin or mail user: " + ", ".join(missing))


def change_domain_admins(directory, domain, found, add=(), remove=(), remove_all=False):
    """Make the domain's domainAdmin what the request asks (``remove_all``: none but ``add``),
    by compare-and-set, then mark the mail users added as admins and unmark those removed that
    administer nothing any more.  Returns the mail users whose marks changed (their sessions
    should end).  A repeat of a request that died half-way finishes it."""
    add = list(dict.fromkeys(add))
    removed = []

    def attempt(n):
        entry = get_domain(directory, domain, ["domainAdmin"])
        before = {v.lower() for v in entry.values("domainAdmin")}
        operations = value_changes(entry, "domainAdmin", reset=add if remove_all else None, add=add, remove=remove)
        if operations:
            try:
                directory.modify(entry.dn, {"domainAdmin": operations})
            except LdapOperationError as exc:
                if exc.result == NO_SUCH_OBJECT:
                    raise errors.NoSuchObject(errors.NO_SUCH_DOMAIN, detail=domain) from None
                raise
        # every address removeAdmin names, listed or not: a repeat of a request that died after
        # this write, before the unmarking, no longer finds them listed and must unmark them all
        # the same (unmark_if_idle looks for itself)
        removed[:] = sorted(before - set(add)) if remove_all else list(remove)

    retry_on_conflict(attempt, "domain's admins", attempts=_ATTEMPTS)
    changed = []
    for address in add:
        # a mail user at a standalone admin's address (o=domainAdmins is outside the unique
        # overlay) is not the admin named: the login finds the standalone admin first
        user = None if address in found.standalone else found.users.get(address)
        if user is not None and not user.has_value("enabledService", ADMIN_SERVICE):
            modify_quietly(directory, user.dn, {"enabledService": [(MODIFY_ADD, [ADMIN_SERVICE])]})
            changed.append(address)
    unknown = [a for a in removed if found.get(a) is None]  # removeAllAdmins: not named in the request
    users = {**found.users, **find_accounts(directory, unknown).users}
    for address in removed:
        user = users.get(address)
        if user is None or (user.first("domainGlobalAdmin") or "").lower() == "yes":
            continue
        # unmarked now, or by an earlier run that died before the caller ended its sessions
        if not user.has_value("enabledService", ADMIN_SERVICE) or unmark_if_idle(directory, user):
            changed.append(address)
    return changed


def administers_something(directory, mail, excluding=None):
    """Whether a domain's domainAdmin names ``mail`` (one indexed search); the domain
    ``excluding`` (one being deleted) does not count."""
    parts = [dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAdmin", mail)]
    if excluding:
        parts.append(dnlib.negate(dnlib.eq("domainName", excluding)))
    filter_ = dnlib.all_of(*parts)
    return any(True for _ in directory.search(directory.names.basedn, filter_, ["1.1"], scope="one"))


def unmark_if_idle(directory, user, excluding=None):
    """Take ``enabledService: domainadmin`` from a mail user that is no global admin and
    administers no domain (but ``excluding``) any more; True if it was taken.

    A request making it an admin of another domain meanwhile writes that domainAdmin before
    it adds the service; so the service is taken only after a look that finds no domain, and
    given back if a second look, after the write, finds one."""
    mail = user.first("mail").lower()
    if (user.first("domainGlobalAdmin") or "").lower() == "yes" or administers_something(directory, mail, excluding):
        return False
    modify_quietly(directory, user.dn, {"enabledService": [(MODIFY_DELETE, [ADMIN_SERVICE])]})
    if administers_something(directory, mail, excluding):
        modify_quietly(directory, user.dn, {"enabledService": [(MODIFY_ADD, [ADMIN_SERVICE])]})
        return False
    return True


def set_global_admin(directory, user, is_global):
    """Mark (or unmark) the mail user ``user`` (as read, with enabledService and
    domainGlobalAdmin) a global admin as iRedAdmin does: ``domainGlobalAdmin: yes`` and
    ``enabledService: domainadmin``; unmarked, it keeps the service while it administers a
    domain.  Returns whether its rights changed."""
    was_global = (user.first("domainGlobalAdmin") or "").lower() == "yes"
    if is_global:
        changes = {}
        if not was_global:
            changes["domainGlobalAdmin"] = replace_value("yes")
        if not user.has_value("enabledService", ADMIN_SERVICE):
            changes["enabledService"] = [(MODIFY_ADD, [ADMIN_SERVICE])]
        modify_quietly(directory, user.dn, changes)
        return not was_global
    if was_global:
        modify_quietly(directory, user.dn, {"domainGlobalAdmin": replace_value(None)})
    if user.has_value("enabledService", ADMIN_SERVICE):
        reread = directory.read(user.dn, _ACCOUNT_ATTRIBUTES)
        if reread is not None:
            unmark_if_idle(directory, reread)
    return was_global


def unmark_idle_users(directory, addresses, excluding=None):
    """``unmark_if_idle`` for the mail users among ``addresses`` (the admins of the domain
    ``excluding``, about to be deleted); returns those that are admins no more, unmarked now or
    by an earlier run that died before it ended their sessions.  One search for the users, then
    one or two per user."""
    idle = []
    for mail, user in find_accounts(directory, [a.lower() for a in addresses]).users.items():
        if (user.first("domainGlobalAdmin") or "").lower() == "yes":
            continue
        if not user.has_value("enabledService", ADMIN_SERVICE) or unmark_if_idle(directory, user, excluding):
            idle.append(mail)
    return idle
