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

from .. import addresses, authorization, errors, params, provisioning
from ..directory import admin_limits, renames
from ..directory import lists as list_directory
from ..params import Param, forbid_overlap, forbid_together
from .common import ACCOUNT_LIST_PARAMS, CREATED, Resource, rename, stream_accounts

access_policy = params.choice(*list_directory.ACCESS_POLICIES, aliases={"allowedonly": "moderatorsonly"},
                              code=errors.INVALID_ACCESS_POLICY)

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


class MailListItem(Resource):
    def on_post_change_email(self, req, resp, mail, new_mail):
        rename(self, req, resp, renames.LIST, mail, new_mail)

    def on_get(self, req, resp, mail):
        self.params(req)
        authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = list_directory.get_list(self.directory, mail)
        data = entry.as_dict()
        data["members"] = list_directory.read_membership(self.directory, entry).addresses()
        data["moderators"] = list_directory.moderators_of(entry)
        self.ok(resp, data)

    def on_post(self, req, resp, mail):
        values = self.params(req, CREATE_PARAMS)
        admin = req.context.admin
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        list_directory.create_list(self.directory, mail, values, domain_entry, authorization.member_check(admin),
                                   admin_limits.for_admin(self.directory, admin, domain_entry))
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        values = self.params(req, UPDATE_PARAMS)
        forbid_together(values, "members", "addMember", "removeMember")
        forbid_together(values, "moderators", "addModerator", "removeModerator")
        forbid_overlap(values, "addMember", "removeMember")
        forbid_overlap(values, "addModerator", "removeModerator")
        admin = req.context.admin
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        current = list_directory.get_list(self.directory, mail)
        list_directory.update_list(self.directory, current, values, domain_entry, authorization.member_check(admin))
        self.ok(resp)

    def on_delete(self, req, resp, mail):
        self.params(req, DELETE_PARAMS)
        domain_entry = authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = list_directory.get_list(self.directory, mail, ["mail", "shadowAddress"])
        provisioning.delete_alias_or_list(self.services, entry, list_directory.delete_list, domain_entry)
        self.ok(resp)


class MailListCollection(Resource):
    def on_get(self, req, resp, domain):
        values = self.params(req, ACCOUNT_LIST_PARAMS)
        stream_accounts(self, req, resp, domain, values, list_directory.list_lists)
