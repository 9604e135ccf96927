"""Admins: who may use the API, and over which domains.

Two kinds exist in iRedMail's tree (iRedAdmin libs/ldaplib/admin.py): standalone
``mailAdmin`` entries under ``o=domainAdmins`` and mail users promoted to admin.
Either is a global admin with ``domainGlobalAdmin: yes``; otherwise it is the
admin of the domains whose ``domainAdmin`` names it.
"""

from dataclasses import dataclass

from . import dn as dnlib

_ATTRIBUTES = ["objectClass", "mail", "accountStatus", "domainStatus", "domainGlobalAdmin", "enabledService"]


@dataclass(frozen=True)
class Admin:
    """An authenticated admin, as the access checks see it."""

    username: str
    dn: str
    is_global: bool

    def manages(self, domain_entry):
        """Whether this admin may manage the domain whose entry is given."""
        return self.is_global or domain_entry.has_value("domainAdmin", self.username)


@dataclass(frozen=True)
class AdminAccount:
    dn: str
    username: str
    is_global: bool
    is_active: bool
    may_administer: bool  # global, standalone admin, or a mail user with domainadmin


def find_admin_account(directory, username):
    """The admin account for ``username`` (standalone admins first), or None.

    Two base reads at most: both DNs are known from the address, so no search
    of the tree is needed.
    """
    names = directory.names
    entry = directory.read(names.admin(username), _ATTRIBUTES, dnlib.eq("objectClass", "mailAdmin"))
    if entry is None:
        entry = directory.read(names.user(username), _ATTRIBUTES, dnlib.eq("objectClass", "mailUser"))
    return None if entry is None else _account(entry, username)


def read_admin_account(directory, dn, username):
    """Re-read a logged-in admin by DN (one round trip), or None if gone."""
    entry = directory.read(dn, _ATTRIBUTES)
    return None if entry is None else _account(entry, username)


def _account(entry, username):
    is_global = (entry.first("domainGlobalAdmin") or "").lower() == "yes"
    standalone = entry.has_value("objectClass", "mailAdmin")
    return AdminAccount(
        dn=entry.dn,
        username=username,
        is_global=is_global,
        is_active=(entry.first("accountStatus") or "").lower() == "active"
        and not entry.has_value("domainStatus", "disabled"),
        may_administer=standalone or is_global or entry.has_value("enabledService", "domainadmin"),
    )
