"""/api/admin/<mail> and /api/admins: standalone admins (global admins only)."""

from .. import authorization, params
from ..directory import standalone_admins as admin_directory
from ..directory.limits import MAX_QUOTA_MB
from ..directory.passwords import check_password_hash
from ..params import Param
from .common import ACCOUNT_LIST_PARAMS, CREATED, Resource, stream_list


def _raw(value):
    return value


# POST and PUT take the same parameters (Pro's "same parameter set as POST").
ADMIN_PARAMS = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("password", _raw),
    Param("password_hash", check_password_hash),
    Param("accountStatus", params.account_status),
    Param("preferredLanguage", params.language, aliases=("language",)),
    Param("isGlobalAdmin", params.yes_no),
    Param("maxDomains", params.admin_limit),
    Param("maxQuota", params.integer(0, MAX_QUOTA_MB)),
    Param("quotaUnit", params.quota_unit),
    Param("maxUsers", params.admin_limit),
    Param("maxAliases", params.admin_limit),
    Param("maxLists", params.admin_limit),
    Param("disableViewingMailLog", params.yes_no),
    Param("disableManagingQuarantinedMails", params.yes_no),
)


def _discard_normal_admin_parameters(req, values, will_be_global):
    """Pro discards the normal-admin parameters for a global admin; we too, but say so in
    X-Ignored-Parameters."""
    if not will_be_global:
        return values
    dropped = [name for name in admin_directory.NORMAL_ADMIN_PARAMETERS if name in values]
    if dropped:
        ignored = req.context.get("ignored_parameters") or []
        req.context.ignored_parameters = ignored + dropped
    return {name: value for name, value in values.items() if name not in dropped}


class AdminItem(Resource):
    def on_get(self, req, resp, mail):
        authorization.require_global(req.context.admin)
        self.params(req)
        entry = admin_directory.get_admin(self.directory, mail)
        self.ok(resp, admin_directory.profile(self.directory, entry))

    def on_post(self, req, resp, mail):
        authorization.require_global(req.context.admin)
        values = self.params(req, ADMIN_PARAMS)
        values = _discard_normal_admin_parameters(req, values, values.get("isGlobalAdmin", False))
        admin_directory.create_admin(self.directory, mail, values)
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        admin = req.context.admin
        authorization.require_global(admin)
        values = self.params(req, ADMIN_PARAMS)
        authorization.check_own_admin_account(admin, mail, values)
        current = admin_directory.get_admin(self.directory, mail)
        is_global = (current.first("domainGlobalAdmin") or "").lower() == "yes"
        values = _discard_normal_admin_parameters(req, values, values.get("isGlobalAdmin", is_global))
        admin_directory.update_admin(self.directory, current, values)
        # Its sessions end now, not at the next recheck: a disabled admin is out at its next
        # request, and a promoted or demoted one logs in again with its new rights.  An admin
        # changing its own password keeps the session it used.
        keep = req.context.session_token if mail == admin.username else None
        if "password" in values or "password_hash" in values or values.get("accountStatus") == "disabled":
            self.services.sessions.end_sessions(mail, keep=keep)
        elif "isGlobalAdmin" in values:
            # by the sessions' own right, not by a change seen here: a repeat of a request that
            # died after the write sees no change, and the sessions must end all the same
            self.services.sessions.end_sessions(mail, keep=keep, unless_global=values["isGlobalAdmin"])
        self.ok(resp)

    def on_delete(self, req, resp, mail):
        admin = req.context.admin
        authorization.require_global(admin)
        self.params(req)
        authorization.check_own_admin_account(admin, mail)
        entry = admin_directory.get_admin(self.directory, mail, ["mail"])
        # before the entry goes too: a repeat of a delete that died after it answers 404
        self.services.sessions.end_sessions(mail)
        admin_directory.delete_admin(self.directory, entry)
        self.services.sessions.end_sessions(mail)  # a login that raced the delete
        self.ok(resp)


class AdminCollection(Resource):
    def on_get(self, req, resp):
        """GET /api/admins (ours; Pro has no list): the standalone admins' profiles, or their
        addresses with ``email_only``; only disabled ones with ``disabled_only``."""
        authorization.require_global(req.context.admin)
        values = self.params(req, ACCOUNT_LIST_PARAMS)
        email_only = values.get("email_only", False)
        entries = admin_directory.list_admins(self.directory, disabled_only=values.get("disabled_only", False),
                                              attributes=["mail"] if email_only else ["*"])
        if email_only:
            items = (entry.first("mail") for entry in entries)
        else:
            items = (admin_directory.shown(entry) for entry in entries)
        stream_list(self.services.envelope, resp, items)

