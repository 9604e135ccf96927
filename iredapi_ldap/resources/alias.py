"""/api/alias/<mail> and /api/aliases/<domain>: mail aliases.

POST: ``cn``|``name``, ``accessPolicy``, ``members``.  PUT: the same, plus
``accountStatus`` and ``addMember``/``removeMember`` (comma-separated; ``members``
replaces them all and cannot come with its twins).  GET returns the LDAP profile;
the members are its ``mailForwardingAddress``.

Members: an address some user, alias or list has is accepted as it is; an address in a
domain hosted here that nobody has is refused (NO_SUCH_ACCOUNT), as Postfix would bounce
it; any other valid address is external.  Adding a member twice or removing one that is
absent is no error and changes nothing.

``accessPolicy``: iRedAdmin-Pro documents it for SQL servers only.  Here it is validated
as for mailing lists and stored on the alias entry (the LDAP schema allows it), but
iRedAPD enforces access policies on mailing lists only: on an LDAP server an alias's
policy is recorded, not enforced.  Use a mailing list (/api/maillist) to restrict senders.
"""

from .. import addresses, errors, params
from ..directory import aliases as alias_directory
from ..directory import references
from ..params import Param, forbid_together, parse, read_params
from .common import CREATED, managed_account_domain
from .maillist import access_policy, forbid_overlap, stream_accounts
from .user import mail_from_url

_PROFILE = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("accessPolicy", access_policy),
    Param("members", addresses.email_list),
)
CREATE_PARAMS = _PROFILE
UPDATE_PARAMS = _PROFILE + (
    Param("accountStatus", params.account_status),
    Param("addMember", addresses.email_list),
    Param("removeMember", addresses.email_list),
)
def _check_members(lookup, mail, values, param):
    """Refuse the alias itself and unknown addresses of hosted domains (before any write)."""
    if param in values:
        references.classify_members(lookup, mail, values[param], param)


class AliasItem:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, mail):
        mail = mail_from_url(mail)
        parse(read_params(req), ())
        managed_account_domain(self._services, req.context.admin, mail)
        services = self._services
        services.envelope.ok(resp, alias_directory.get_alias(services.ldap, services.names, mail).as_dict())

    def on_post(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), CREATE_PARAMS)
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        # One search: is the address free, and do the members exist where they must?
        lookup = references.lookup_addresses(services.ldap, services.names, [mail, *values.get("members", [])])
        if lookup.account(mail) is not None:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)
        _check_members(lookup, mail, values, "members")
        new = alias_directory.NewAlias(mail=mail, cn=values.get("cn") or None,
                                       access_policy=values.get("accessPolicy"), members=values.get("members", []))
        alias_directory.create_alias(services.ldap, services.names, domain, domain_entry, new)
        services.envelope.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), UPDATE_PARAMS)
        forbid_together(values, "members", "addMember", "removeMember")
        forbid_overlap(values, "addMember", "removeMember")
        managed_account_domain(self._services, req.context.admin, mail)
        current = alias_directory.get_alias(services.ldap, services.names, mail)
        joining = values.get("members", values.get("addMember", []))
        lookup = references.lookup_addresses(services.ldap, services.names, joining)
        for param in ("members", "addMember"):
            _check_members(lookup, mail, values, param)
        changes = alias_directory.AliasChanges(
            cn=values.get("cn"),
            access_policy=values.get("accessPolicy"),
            account_status=values.get("accountStatus"),
            members=values.get("members"),
            add_members=values.get("addMember", []),
            remove_members=values.get("removeMember", []),
        )
        alias_directory.update_alias(services.ldap, services.names, current, changes)
        services.envelope.ok(resp)

    def on_delete(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        parse(read_params(req), ())
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        entry = alias_directory.get_alias(services.ldap, services.names, mail, ["mail", "shadowAddress"])
        alias_directory.delete_alias(services.ldap, services.names, domain, entry, domain_entry)
        services.envelope.ok(resp)


class AliasCollection:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, domain):
        stream_accounts(self._services, req, resp, domain, alias_directory.list_aliases)
