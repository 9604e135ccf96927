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

from .. import addresses, authorization, params, provisioning
from ..directory import admin_limits, renames
from ..directory import aliases as alias_directory
from ..params import Param, forbid_overlap, forbid_together
from .common import ACCOUNT_LIST_PARAMS, CREATED, Resource, rename, stream_accounts
from .maillist import access_policy

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


class AliasItem(Resource):
    def on_post_change_email(self, req, resp, mail, new_mail):
        rename(self, req, resp, renames.ALIAS, mail, new_mail)

    # Pro's documentation labels this POST but styles it as a PUT: clients may send either.
    on_put_change_email = on_post_change_email

    def on_get(self, req, resp, mail):
        self.params(req)
        authorization.managed_account_domain(self.directory, req.context.admin, mail)
        self.ok(resp, alias_directory.get_alias(self.directory, mail).as_dict())

    def on_post(self, req, resp, mail):
        values = self.params(req, CREATE_PARAMS)
        admin = req.context.admin
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        alias_directory.create_alias(self.directory, mail, values, domain_entry, authorization.member_check(admin),
                                     admin_limits.for_admin(self.directory, admin, domain_entry))
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        values = self.params(req, UPDATE_PARAMS)
        forbid_together(values, "members", "addMember", "removeMember")
        forbid_overlap(values, "addMember", "removeMember")
        admin = req.context.admin
        authorization.managed_account_domain(self.directory, admin, mail)
        current = alias_directory.get_alias(self.directory, mail)
        alias_directory.update_alias(self.directory, current, values, authorization.member_check(admin))
        self.ok(resp)

    def on_delete(self, req, resp, mail):
        self.params(req)
        domain_entry = authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = alias_directory.get_alias(self.directory, mail, ["mail", "shadowAddress"])
        provisioning.delete_alias_or_list(self.services, entry, alias_directory.delete_alias, domain_entry)
        self.ok(resp)


class AliasCollection(Resource):
    def on_get(self, req, resp, domain):
        values = self.params(req, ACCOUNT_LIST_PARAMS)
        stream_accounts(self, req, resp, domain, values, alias_directory.list_aliases)
