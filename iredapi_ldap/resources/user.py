"""/api/user/<mail> and /api/users/<domain>."""

import re

from .. import addresses, errors, params, provisioning
from ..directory import limits as limitlib
from ..directory import users as user_directory
from ..directory.maildir import check_custom_maildir, maildir_path
from ..directory.passwords import PasswordPolicy, check_password_hash, hash_password
from ..params import Param, forbid_together, parse, read_params
from .common import CREATED, domain_from_url, keep_days_from_url, managed_account_domain, managed_domain, stream_list


def _raw(value):
    return value


def _service_names(value):
    names = [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise errors.InvalidInput("INVALID_SERVICE", detail=f"{name!r} is not a service name")
    return list(dict.fromkeys(names))


def _phone_numbers(value):
    numbers = [v.strip() for v in value.split(",") if v.strip()]
    for number in numbers:
        if not re.fullmatch(r"[0-9+() ./-]{1,40}", number):
            raise errors.InvalidInput(errors.INVALID_PARAMETER, detail=f"{number!r} is not a telephone number")
    return numbers


def _mailbox_folder(value):
    value = value.strip()
    # Dovecot opens ~/<mailboxFolder>: "." would be the home directory itself, ".." its parent.
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", value) or value in (".", ".."):
        raise errors.InvalidInput(errors.INVALID_PARAMETER, detail="a folder name such as Maildir")
    return value


def _transport(value):
    """As a domain's transport; empty removes the user's own (PUT) or sets none (POST)."""
    return params.transport(value) if value.strip() else ""


_mailbox_format = params.choice("maildir", "mdbox", "sdbox", code="INVALID_MAILBOX_FORMAT")

# Parameters both POST and PUT take.
_PROFILE = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("preferredLanguage", params.language, aliases=("language",)),
    Param("mailQuota", params.quota_mb, aliases=("quota",)),
    Param("password", _raw),
    Param("password_hash", check_password_hash),
    Param("transport", _transport),
    Param("employeeid", params.text(64)),
    Param("mailboxFormat", _mailbox_format),
    Param("mailboxFolder", _mailbox_folder),
    Param("maildir", check_custom_maildir),
)
CREATE_PARAMS = _PROFILE
UPDATE_PARAMS = _PROFILE + (
    Param("accountStatus", params.account_status),
    Param("gn", params.text(255)),
    Param("sn", params.text(255)),
    Param("forwarding", addresses.email_list),
    Param("addForwarding", addresses.email_list),
    Param("removeForwarding", addresses.email_list),
    Param("aliases", addresses.email_list),
    Param("addAlias", addresses.email_list),
    Param("removeAlias", addresses.email_list),
    Param("services", _service_names),
    Param("addService", _service_names),
    Param("removeService", _service_names),
    Param("telephoneNumber", _phone_numbers),
    Param("mobile", _phone_numbers),
)
LIST_PARAMS = (Param("email_only", params.yes_no), Param("disabled_only", params.yes_no))

# (reset parameter, add twin, remove twin, LDAP attribute)
_MULTI_VALUED = (
    ("forwarding", "addForwarding", "removeForwarding", "mailForwardingAddress"),
    ("aliases", "addAlias", "removeAlias", "shadowAddress"),
    ("services", "addService", "removeService", "enabledService"),
)

MB = limitlib.MB


def mail_from_url(text):
    return addresses.email(text)


def _password_hash(services, values, limits):
    """userPassword from ``password`` (policy-checked, hashed) or ``password_hash``."""
    if "password" in values and "password_hash" in values:
        raise errors.InvalidInput(errors.CONFLICTING_PARAMETERS, param="password_hash",
                                  detail="give password or password_hash, not both")
    if "password_hash" in values:
        return values["password_hash"]
    if "password" not in values:
        return None
    settings = services.settings
    PasswordPolicy.from_settings(settings, limits.min_password_length or None,
                                 limits.max_password_length or None).check(values["password"])
    return hash_password(values["password"], settings.DEFAULT_PASSWORD_SCHEME)


def _check_shadow_addresses(values, mail, domain, domain_entry):
    """Per-user alias addresses belong to the user's domain or one of its alias domains."""
    domains = {domain, *(d.lower() for d in domain_entry.values("domainAliasName"))}
    for name in ("aliases", "addAlias"):
        for address in values.get(name, ()):
            if address == mail:
                raise errors.InvalidInput(errors.INVALID_MAIL, param=name, detail="the user's own address")
            if address.split("@", 1)[1] not in domains:
                raise errors.InvalidInput(errors.INVALID_MAIL, param=name,
                                          detail=f"{address} is not in the user's domain or its alias domains")


# A maildir path can point into another domain's mail on the same disk, so only
# global admins may choose one; domain admins get the hashed default.
GLOBAL_ONLY = ("maildir",)


def _check_global_only(admin, values):
    for name in GLOBAL_ONLY:
        if name in values and not admin.is_global:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name, detail="only global admins may set this")


class UserItem:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, mail):
        mail = mail_from_url(mail)
        parse(read_params(req), ())
        managed_account_domain(self._services, req.context.admin, mail)
        services = self._services
        entry = user_directory.get_user(services.ldap, services.names, mail)
        services.envelope.ok(resp, entry.as_dict(hidden=user_directory.HIDDEN_ATTRIBUTES))

    def on_post(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), CREATE_PARAMS)
        _check_global_only(req.context.admin, values)
        if "password" not in values and "password_hash" not in values:
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password",
                                      detail="give password or password_hash")
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        limits = limitlib.DomainLimits.of(domain_entry)
        quota_mb = values.get("mailQuota") or limits.default_quota // MB
        if quota_mb > params.MAX_QUOTA_MB:  # a defaultQuota another tool wrote
            raise errors.InvalidInput(errors.INVALID_NUMBER, param="mailQuota",
                                      detail=f"the domain's defaultQuota ({quota_mb} MB) is above "
                                      f"{params.MAX_QUOTA_MB} MB: give mailQuota")
        user = user_directory.NewUser(
            mail=mail,
            password_hash=_password_hash(services, values, limits),
            home_directory=values.get("maildir") or maildir_path(
                mail, limits.storage_base_directory or services.settings.storage_base_directory),
            cn=values.get("cn") or None,
            language=values.get("preferredLanguage") or limits.default_language
            or services.settings.default_language,
            quota_bytes=quota_mb * MB,
            transport=values.get("transport") or None,
            employee_id=values.get("employeeid") or None,
            mailbox_format=values.get("mailboxFormat", "maildir"),
            mailbox_folder=values.get("mailboxFolder", "Maildir"),
        )
        user_directory.create_user(services.ldap, services.names, domain, domain_entry, user)
        services.envelope.ok(resp, status=CREATED)

    def on_put(self, req, resp, mail):
        services = self._services
        mail = mail_from_url(mail)
        values = parse(read_params(req), UPDATE_PARAMS)
        _check_global_only(req.context.admin, values)
        for reset, add, remove, _ in _MULTI_VALUED:
            forbid_together(values, reset, add, remove)
        domain, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        _check_shadow_addresses(values, mail, domain, domain_entry)
        limits = limitlib.DomainLimits.of(domain_entry)
        changes = self._changes(values, mail, limits)
        current = user_directory.get_user(services.ldap, services.names, mail)
        user_directory.require_manageable(req.context.admin, current)
        new_aliases = values.get("aliases", []) + values.get("addAlias", [])
        user_directory.require_free(services.ldap, services.names, new_aliases, except_dn=current.dn,
                                    param="aliases" if "aliases" in values else "addAlias")
        user_directory.update_user(services.ldap, services.names, domain, current, changes, domain_entry)
        services.envelope.ok(resp)

    def _changes(self, values, mail, limits):
        """Validated parameters -> UserChanges (all checks before any write)."""
        local_part = mail.split("@", 1)[0]
        changes = user_directory.UserChanges()
        replace = changes.replace
        if "mailQuota" in values:
            changes.quota_bytes = values["mailQuota"] * MB
            limits.check_user_quota(changes.quota_bytes)
        password_hash = _password_hash(self._services, values, limits)
        if password_hash:
            replace["userPassword"] = [password_hash]
            replace["shadowLastChange"] = [str(user_directory.days_since_epoch())]
        # Empty values remove optional attributes; cn and sn are required by
        # inetOrgPerson, so they fall back to the local part as on create.
        simple = {"cn": "cn", "preferredLanguage": "preferredLanguage", "transport": "mtaTransport",
                  "employeeid": "employeeNumber", "gn": "givenName", "sn": "sn", "accountStatus": "accountStatus",
                  "mailboxFormat": "mailboxFormat", "mailboxFolder": "mailboxFolder", "maildir": "homeDirectory"}
        for name, attribute in simple.items():
            if name in values:
                value = values[name]
                if not value and name in ("cn", "sn"):
                    value = local_part
                replace[attribute] = [value] if value else []
        for name in ("telephoneNumber", "mobile"):
            if name in values:
                replace[name] = values[name]
        for reset, add, remove, attribute in _MULTI_VALUED:
            if reset in values:
                replace[attribute] = values[reset]
            if add in values:
                changes.add[attribute] = values[add]
            if remove in values:
                changes.remove[attribute] = values[remove]
        return changes

    def on_delete(self, req, resp, mail):
        self._delete(req, resp, mail, keep_days=None)

    def on_delete_keep_mailbox_days(self, req, resp, mail, days):
        self._delete(req, resp, mail, keep_days=keep_days_from_url(days))

    def _delete(self, req, resp, mail, keep_days):
        mail = mail_from_url(mail)
        parse(read_params(req), ())
        _, domain_entry = managed_account_domain(self._services, req.context.admin, mail)
        provisioning.delete_user(self._services, mail, req.context.admin, keep_days, domain_entry)
        self._services.envelope.ok(resp)


class UserCollection:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, domain):
        values = parse(read_params(req), LIST_PARAMS)
        domain = domain_from_url(domain)
        services = self._services
        managed_domain(services, req.context.admin, domain, ["domainAdmin"])
        email_only = values.get("email_only", False)
        entries = user_directory.list_users(
            services.ldap, services.names, domain, disabled_only=values.get("disabled_only", False),
            attributes=["mail"] if email_only else ["*"])
        if email_only:
            items = (entry.first("mail") for entry in entries)
        else:
            items = (entry.as_dict(hidden=user_directory.HIDDEN_ATTRIBUTES) for entry in entries)
        stream_list(services.envelope, resp, items)
