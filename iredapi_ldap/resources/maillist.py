"""/api/maillist/<mail> and /api/maillists/<domain>: old-style (unsubscribable) mailing lists.

POST: ``cn``|``name``, ``accessPolicy`` (default ``public``), ``members``, ``moderators``.
PUT: the same, plus ``accountStatus``, ``addMember``/``removeMember`` and
``addModerator``/``removeModerator`` (comma-separated; a reset parameter cannot come
with its add/remove twins).  DELETE: ``archive`` is accepted for iRedAdmin-Pro clients
and has no effect (it applies to subscribable lists).

``accessPolicy``: public, domain, subdomain, membersonly, moderatorsonly,
membersandmoderatorsonly (the legacy ``allowedonly`` means moderatorsonly); any case,
stored lower-case, which is what iRedAPD compares.  iRedAPD enforces it; moderators are
stored as listModerator and listAllowedUser, the senders iRedAPD always lets through.

Members: an address some user, alias or list has (as mail or alias address) is an
internal member; an address in a domain hosted here that nobody has is refused
(NO_SUCH_ACCOUNT), as Postfix would bounce it; anything else is external.  A domain
admin may make accounts of its own domains members only.  Adding a member twice or
removing one that is absent is no error and changes nothing.

GET returns the LDAP profile plus ``members`` and ``moderators`` (sorted addresses).
A disabled list keeps its members, but Postfix stops expanding it (see directory/lists.py).
"""

from .. import addresses, errors, params
from ..directory import lists as list_directory
from ..directory import references
from ..params import Param, forbid_together, parse, read_params
from .common import CREATED, domain_from_url, managed_account_domain, managed_domain, stream_list
from .user import mail_from_url

access_policy = params.choice(*list_directory.ACCESS_POLICIES, aliases={"allowedonly": "moderatorsonly"},
                              code="INVALID_ACCESS_POLICY")

_PROFILE = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("accessPolicy", access_policy),
    Param("members", addresses.email_list),
    Param("moderators", addresses.email_list),
)
CREATE_PARAMS = _PROFILE
UPDATE_PARAMS = _PROFILE + (
    Param("accountStatus", params.account_status),
    Param("addMember", addresses.email_list),
    Param("removeMember", addresses.email_list),
    Param("addModerator", addresses.email_list),
    Param("removeModerator", addresses.email_list),
)
DELETE_PARAMS = (Param("archive", params.yes_no),)
LIST_PARAMS = (Param("email_only", params.yes_no), Param("disabled_only", params.yes_no))


def forbid_overlap(values, add, remove):
    """The same address to add and to remove in one request is a contradiction."""
    both = set(values.get(add, ())) & set(values.get(remove, ()))
    if both:
        raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param=remove,
                                  detail=f"{', '.join(sorted(both))} given to both {add} and {remove}")


def check_member_scope(admin, lookup, members, param):
    """A domain admin makes accounts members only in domains it manages: enrolling
    writes memberOfGroup on the member's own entry."""
    if admin.is_global:
        return
    for address in members.internal:
        domain_entry = lookup.domain_entry(address)
        if domain_entry is None or not admin.manages(domain_entry):
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param,
                                      detail=f"{address} is an account in a domain you do not manage")


class MailListItem:
    def __init__(self, services):
        self._services = services

    def _members(self, req, lookup, mail, values, param):
        if param not in values:
            return None
        members = references.classify_members(lookup, mail, values[param], param)
        check_member_scope(req.context.admin, lookup, members, param)
        return members

    def on_get(self, req, resp, mail):
        mail = mail_from_url(mail)
        parse(read_params(req), ())
        managed_account_domain(self._services, req.context.admin, mail)
        services = self._services
        entry = list_directory.get_list(services.ldap, services.names, mail)
        membership = list_directory.read_membership(services.ldap, services.names, entry)
        data = entry.as_dict()
        data["members"] = membership.addresses()
        data["moderators"] = list_directory.moderators_of(entry)
        services.envelope.ok(resp, data)

    def on_post(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), CREATE_PARAMS)
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        # One search: is the address free, and what are the members?
        lookup = references.lookup_addresses(services.ldap, services.names, [mail, *values.get("members", [])])
        if lookup.account(mail) is not None:
            raise errors.AlreadyExists(errors.ALREADY_EXISTS, detail=mail)
        members = self._members(req, lookup, mail, values, "members") or references.Members()
        new = list_directory.NewList(mail=mail, cn=values.get("cn") or None,
                                     access_policy=values.get("accessPolicy", "public"),
                                     moderators=values.get("moderators", []))
        list_directory.create_list(services.ldap, services.names, domain, domain_entry, new, members)
        services.envelope.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), UPDATE_PARAMS)
        forbid_together(values, "members", "addMember", "removeMember")
        forbid_together(values, "moderators", "addModerator", "removeModerator")
        forbid_overlap(values, "addMember", "removeMember")
        forbid_overlap(values, "addModerator", "removeModerator")
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        current = list_directory.get_list(services.ldap, services.names, mail)
        joining = values.get("members", values.get("addMember", []))
        lookup = references.lookup_addresses(services.ldap, services.names, joining)
        changes = list_directory.ListChanges(
            cn=values.get("cn"),
            access_policy=values.get("accessPolicy"),
            account_status=values.get("accountStatus"),
            members=self._members(req, lookup, mail, values, "members"),
            add_members=self._members(req, lookup, mail, values, "addMember"),
            remove_members=values.get("removeMember", []),
            moderators=values.get("moderators"),
            add_moderators=values.get("addModerator", []),
            remove_moderators=values.get("removeModerator", []),
        )
        list_directory.update_list(services.ldap, services.names, domain_entry, current, changes)
        services.envelope.ok(resp)

    def on_delete(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        parse(read_params(req), DELETE_PARAMS)
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        entry = list_directory.get_list(services.ldap, services.names, mail, ["mail", "shadowAddress"])
        list_directory.delete_list(services.ldap, services.names, domain, entry, domain_entry)
        services.envelope.ok(resp)


def stream_accounts(services, req, resp, domain, list_accounts):
    """GET /api/<kind>s/<domain>: profiles, or addresses with ``email_only``; ``disabled_only``."""
    values = parse(read_params(req), LIST_PARAMS)
    domain = domain_from_url(domain)
    managed_domain(services, req.context.admin, domain, ["domainAdmin"])
    email_only = values.get("email_only", False)
    entries = list_accounts(services.ldap, services.names, domain, disabled_only=values.get("disabled_only", False),
                            attributes=["mail"] if email_only else ["*"])
    items = (entry.first("mail") for entry in entries) if email_only else (entry.as_dict() for entry in entries)
    stream_list(services.envelope, resp, items)


class MailListCollection:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, domain):
        stream_accounts(self._services, req, resp, domain, list_directory.list_lists)
