"""/api/ml/<mail> and /api/mls/<domain>: subscribable (mlmmj) mailing lists, iRedAdmin-Pro's
parameters, carried out by mlmmjadmin (iredapi_ldap.mlmmj_lists).

GET ml: ``with_subscribers``.  POST: the profile options below, ``subscribers``,
``require_confirm`` (default yes), ``subscription`` (normal, digest, nomail).  PUT: the same
options, ``add_subscribers``, ``remove_subscribers``, ``require_confirm``, ``subscription``.
DELETE: ``keep_archive`` (default yes).  GET mls: ``email_only``.

POST and PUT also take ``accountStatus`` (active, disabled) and ``accessPolicy`` (public, domain,
subdomain, membersonly, moderatorsonly): mlmmj's posting flags through mlmmjadmin, then both
written on the list's entry, which Postfix and iRedAPD read (iredapi_ldap.mlmmj_policy).

Not taken (so ignored and named in X-Ignored-Parameters, or refused with STRICT_PARAMETERS):
``newsletter_description``: mlmmjadmin has no newsletter page to show it on.
"""

from .. import addresses, authorization, errors, mlmmj_policy, params
from .. import mlmmj_lists as operations
from ..directory import admin_limits
from ..directory import mlmmj_lists as directory_lists
from ..params import Param, forbid_overlap
from .common import CREATED, Resource, stream_list

_MAX_MESSAGE_SIZE = 2 ** 31 - 1  # bytes; mlmmj reads maxmailsize as a C int
subscription = params.choice("normal", "digest", "nomail")

PROFILE_PARAMS = (
    *(Param(name, params.yes_no) for name in operations.BOOLEAN_OPTIONS),
    *(Param(name, addresses.email_list) for name in operations.ADDRESS_OPTIONS),
    Param("name", params.text(255)),
    Param("subject_prefix", params.text(255)),
    Param("footer_text", params.multiline_text),
    Param("footer_html", params.multiline_text),
    Param("max_message_size", params.integer(0, _MAX_MESSAGE_SIZE)),
    Param("custom_headers", params.header_lines),
    Param("remove_headers", params.header_names),
    Param("accountStatus", params.account_status),
    Param("accessPolicy", params.choice(*mlmmj_policy.ACCESS_POLICIES, aliases={"allowedonly": "moderatorsonly"},
                                        code=errors.INVALID_ACCESS_POLICY)),
)
_SUBSCRIBING = (Param("require_confirm", params.yes_no), Param("subscription", subscription))
CREATE_PARAMS = PROFILE_PARAMS + _SUBSCRIBING + (Param("subscribers", addresses.email_list),)
UPDATE_PARAMS = PROFILE_PARAMS + _SUBSCRIBING + (
    Param("add_subscribers", addresses.email_list),
    Param("remove_subscribers", addresses.email_list),
)
GET_PARAMS = (Param("with_subscribers", params.yes_no),)
DELETE_PARAMS = (Param("keep_archive", params.yes_no),)
LIST_PARAMS = (Param("email_only", params.yes_no),)


class MlItem(Resource):
    @property
    def client(self):
        if self.services.mlmmjadmin is None:
            raise errors.BackendUnavailable(errors.SERVICE_UNAVAILABLE, detail="no mlmmjadmin is configured "
                                            "(MLMMJADMIN_API_BASE_URL is empty)")
        return self.services.mlmmjadmin

    def on_get(self, req, resp, mail):
        values = self.params(req, GET_PARAMS)
        authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = directory_lists.get_list(self.directory, mail)
        self.ok(resp, operations.profile(self.directory, self.client, entry, values.get("with_subscribers", False)))

    def on_post(self, req, resp, mail):
        values = self.params(req, CREATE_PARAMS)
        values = mlmmj_policy.with_posting_flags(values)
        mail = _checked_address(mail)
        admin = req.context.admin
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        operations.create_list(self.directory, self.client, mail, values, domain_entry,
                               admin_limits.for_admin(self.directory, admin, domain_entry))
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        values = self.params(req, UPDATE_PARAMS)
        forbid_overlap(values, "add_subscribers", "remove_subscribers")
        values = mlmmj_policy.with_posting_flags(values)
        authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = directory_lists.get_list(self.directory, mail)
        operations.update_list(self.directory, self.client, entry, values)
        self.ok(resp)

    def on_delete(self, req, resp, mail):
        values = self.params(req, DELETE_PARAMS)
        domain_entry = authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = directory_lists.get_list(self.directory, mail, ["mail", "shadowAddress"])
        operations.delete_list(self.directory, self.client, entry, values.get("keep_archive", True), domain_entry)
        self.ok(resp)


def _checked_address(mail):
    try:
        return addresses.list_address(mail)
    except errors.InvalidInput as exc:
        exc.param = "mail"
        raise


class MlCollection(Resource):
    def on_get(self, req, resp, domain):
        values = self.params(req, LIST_PARAMS)
        authorization.managed_domain(self.directory, req.context.admin, domain, ["domainAdmin"])
        if values.get("email_only"):
            items = (e.first("mail").lower() for e in directory_lists.list_lists(self.directory, domain, ["mail"]))
        else:
            items = (operations.listing_item(e) for e in directory_lists.list_lists(
                self.directory, domain, directory_lists.PROFILE_ATTRIBUTES))
        stream_list(self.services.envelope, resp, items)
