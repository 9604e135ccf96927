"""/api/user/<mail> and /api/users/<domain>."""

import re

from .. import addresses, authorization, errors, mlmmj_lists, params, provisioning
from ..directory import admin_limits, renames
from ..directory import domain_admins as admin_directory
from ..directory import limits as limitlib
from ..directory import users as user_directory
from ..directory.maildir import check_custom_maildir
from ..directory.passwords import check_password_hash
from ..params import Param, forbid_together
from ..store import dovecot
from .common import ACCOUNT_LIST_PARAMS, CREATED, Resource, rename, stream_accounts


def _raw(value):
    return value


def _service_names(value):
    names = [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise errors.InvalidInput(errors.INVALID_SERVICE, detail=f"{name!r} is not a service name")
    return _unique(names, str.lower)  # slapd's caseIgnoreIA5Match: "mail,Mail" is one value twice


def _phone_numbers(value):
    numbers = [v.strip() for v in value.split(",") if v.strip()]
    for number in numbers:
        if not re.fullmatch(r"[0-9+() ./-]{1,40}", number):
            raise errors.InvalidInput(errors.INVALID_PARAMETER, detail=f"{number!r} is not a telephone number")
    # telephoneNumberMatch ignores spaces and hyphens (RFC 4517 4.2.29): "1-23,1 23" is one value twice
    return _unique(numbers, lambda number: number.replace(" ", "").replace("-", ""))


def _unique(values, key):
    """``values`` without those slapd would take for an earlier one (a modify with both fails)."""
    unique = {}
    for value in values:
        unique.setdefault(key(value), value)
    return list(unique.values())


def _mailbox_folder(value):
    value = value.strip()
    # Dovecot opens ~/<mailboxFolder>: "." would be the home directory itself, ".." its parent.
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value) or value in (".", ".."):
        raise errors.InvalidInput(errors.INVALID_PARAMETER, detail="a folder name such as Maildir")
    return value


def _transport(value):
    """As a domain's transport; empty removes the user's own (PUT) or sets none (POST)."""
    return params.transport(value) if value.strip() else ""


_mailbox_format = params.choice("maildir", "mdbox", "sdbox", code=errors.INVALID_MAILBOX_FORMAT)

# Parameters both POST and PUT take.
_PROFILE = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("preferredLanguage", params.language, aliases=("language",)),
    Param("mailQuota", params.quota_mb, aliases=("quota",)),
    Param("password", _raw),
    Param("password_hash", check_password_hash),
    Param("transport", _transport),
    Param("employeeid", params.text(64), aliases=("employeeNumber",)),
    Param("mailboxFormat", _mailbox_format),
    Param("mailboxFolder", _mailbox_folder),
    Param("maildir", check_custom_maildir),
    # Pro documents these for PUT; clients send them on POST too (one sends accountStatus on
    # every create), and they mean the same there.
    Param("accountStatus", params.account_status),
    Param("gn", params.text(255), aliases=("givenName",)),
    Param("sn", params.text(255), aliases=("surname",)),
    Param("telephoneNumber", _phone_numbers),
    Param("mobile", _phone_numbers),
)
CREATE_PARAMS = _PROFILE
UPDATE_PARAMS = _PROFILE + (
    # BCC and relay host (outboundRelay: our extension)
    Param("senderBcc", params.optional_email),
    Param("recipientBcc", params.optional_email),
    Param("outboundRelay", params.relay_host),
    Param("forwarding", addresses.email_list),
    Param("addForwarding", addresses.email_list),
    Param("removeForwarding", addresses.email_list),
    Param("aliases", addresses.email_list),
    Param("addAlias", addresses.email_list),
    Param("removeAlias", addresses.email_list),
    Param("services", _service_names),
    Param("addService", _service_names),
    Param("removeService", _service_names),
    # a mail user as global admin (global admins only: GLOBAL_ONLY_USER_PARAMETERS)
    Param("isGlobalAdmin", params.yes_no),
)


def _field_names(value):
    return [name.strip() for name in value.split(",") if name.strip()]


GET_PARAMS = (Param("fields", _field_names),)


def _takes_admin_service(values):
    """Whether the request leaves the user without ``enabledService: domainadmin``."""
    service = admin_directory.ADMIN_SERVICE
    return (("services" in values and service not in (v.lower() for v in values["services"]))
            or service in (v.lower() for v in values.get("removeService", ())))


class UserItem(Resource):
    def on_post_change_email(self, req, resp, mail, new_mail):
        rename(self, req, resp, renames.USER, mail, new_mail)

    def on_get(self, req, resp, mail):
        """The LDAP profile plus iRedAdmin-Pro's computed keys; ``fields`` (comma-separated
        attribute or key names) returns only those, and computes only the keys it names."""
        fields = self.params(req, GET_PARAMS).get("fields")
        authorization.managed_account_domain(self.directory, req.context.admin, mail)
        entry = user_directory.get_user(self.directory, mail)
        data = entry.as_dict(hidden=user_directory.HIDDEN_ATTRIBUTES)
        wanted = {name.lower() for name in fields} if fields is not None else None
        if wanted is None or wanted & set(user_directory.MEMBERSHIP_KEYS):
            data.update(user_directory.memberships(self.directory, entry))
            self._add_mlmmj_lists(resp, mail, data)
        if wanted is None or wanted & set(dovecot.UNKNOWN):
            data.update(dovecot.mailbox_usage(self.services.admin_store, mail))
        if wanted is not None:
            data = {name: value for name, value in data.items() if name.lower() in wanted}
        self.ok(resp, data)

    def _add_mlmmj_lists(self, resp, mail, data):
        """``mailing_lists`` includes the mlmmj lists the user is subscribed to (mlmmjadmin
        knows them).  mlmmjadmin down must not break the profile: the old-style lists are
        answered and the header X-Incomplete names what is missing."""
        if self.services.mlmmjadmin is None:
            return
        try:
            subscribed = mlmmj_lists.subscribed_lists(self.directory, self.services.mlmmjadmin, mail)
        except (errors.BackendUnavailable, errors.PeerRefused):
            resp.set_header("X-Incomplete", "mailing_lists")
            return
        data["mailing_lists"] = sorted(set(data["mailing_lists"]) | set(subscribed))

    def on_post(self, req, resp, mail):
        values = self.params(req, CREATE_PARAMS)
        admin = req.context.admin
        authorization.check_user_parameters(admin, values)
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        # transport: the relay tab (an empty one sets none on a create: nothing to withhold)
        authorization.check_user_profile_tabs(admin, {k: v for k, v in values.items() if v != ""}, domain_entry)
        user_directory.create_user(self.directory, mail, values, domain_entry,
                                   admin_limits.for_admin(self.directory, admin, domain_entry))
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        values = self.params(req, UPDATE_PARAMS)
        admin = req.context.admin
        authorization.check_user_parameters(admin, values)
        authorization.check_own_admin_account(admin, mail, values)  # not disabled or demoted by itself
        for reset, add, remove, _ in user_directory.MULTI_VALUED:
            forbid_together(values, reset, add, remove)
        domain_entry = authorization.managed_account_domain(self.directory, admin, mail)
        authorization.check_user_profile_tabs(admin, values, domain_entry)
        current = user_directory.get_user(self.directory, mail)
        authorization.check_admin_service(admin, current, values)
        authorization.check_user_service_tabs(admin, current, values, domain_entry)
        authorization.require_manageable_account(self.directory, admin, current)
        user_directory.update_user(self.directory, current, values, domain_entry,
                                   admin_limits.for_admin(self.directory, admin, domain_entry))
        if "isGlobalAdmin" in values:
            admin_directory.set_global_admin(self.directory, user_directory.get_user(self.directory, mail),
                                             values["isGlobalAdmin"])
            # it logs in again with its new rights; by the sessions' own right, so that a repeat of
            # a request that died after the write (and sees no change) ends them too
            self.services.sessions.end_sessions(mail, unless_global=values["isGlobalAdmin"],
                                                except_below=self.directory.names.admin_basedn)
        if _takes_admin_service(values):
            # no admin any more: out at its next request
            self.services.sessions.end_sessions(mail, except_below=self.directory.names.admin_basedn)
        if "password" in values or "password_hash" in values or values.get("accountStatus") == "disabled":
            # Sessions of an admin whose password changed or who was disabled end now, not at
            # the next recheck; an admin changing its own password keeps the session it used.
            keep = req.context.session_token if mail == admin.username and "accountStatus" not in values else None
            self.services.sessions.end_sessions(mail, keep=keep, except_below=self.directory.names.admin_basedn)
        self.ok(resp)

    def on_delete(self, req, resp, mail):
        self._delete(req, resp, mail, keep_days=None)

    def on_delete_keep_mailbox_days(self, req, resp, mail, days):
        self._delete(req, resp, mail, keep_days=days)

    def _delete(self, req, resp, mail, keep_days):
        self.params(req)
        authorization.check_own_admin_account(req.context.admin, mail)  # a mail-user admin, as for /api/admin
        domain_entry = authorization.managed_account_domain(self.directory, req.context.admin, mail)
        provisioning.delete_user(self.services, mail, req.context.admin, keep_days, domain_entry)
        self.services.sessions.end_sessions(mail, except_below=self.directory.names.admin_basedn)
        self.ok(resp)


# PUT /api/users/<domain>: what Pro's bulk update takes.
BULK_PARAMS = (
    Param("accountStatus", params.account_status),
    Param("password", _raw),
    Param("preferredLanguage", params.language, aliases=("language",)),
    Param("transport", _transport),
)


class UserCollection(Resource):
    def on_get(self, req, resp, domain):
        values = self.params(req, ACCOUNT_LIST_PARAMS)
        stream_accounts(self, req, resp, domain, values, user_directory.list_users,
                        hidden=user_directory.HIDDEN_ATTRIBUTES)

    def on_put(self, req, resp, domain):
        """Every user of the domain at once; answers {"changed": n, "skipped": [addresses a
        domain admin may not change]}."""
        values = self.params(req, BULK_PARAMS)
        if not values:
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="accountStatus",
                                      detail="give at least one of accountStatus, password, language, transport")
        admin = req.context.admin
        domain_entry = authorization.managed_domain(self.directory, admin, domain,
                                                    ["domainName", *limitlib.DOMAIN_ATTRIBUTES])
        authorization.check_user_profile_tabs(admin, values, domain_entry)  # transport: the relay tab
        new_hash = user_directory.bulk_password_hash(self.directory, values, domain_entry)
        skip = authorization.bulk_user_skip(self.directory, admin, domain_entry,
                                            keep_own=values.get("accountStatus") == "disabled")
        changed, skipped, admins = user_directory.update_all_users(self.directory, domain, values, new_hash, skip)
        if new_hash or values.get("accountStatus") == "disabled":
            for entry in admins:  # as a single PUT does: their sessions end now
                mail = entry.first("mail").lower()
                keep = req.context.session_token if mail == admin.username and "accountStatus" not in values else None
                self.services.sessions.end_sessions(mail, keep=keep, except_below=self.directory.names.admin_basedn)
        self.ok(resp, {"changed": changed, "skipped": sorted(e.first("mail").lower() for e in skipped)})
