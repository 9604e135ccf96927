"""/api/domain/<domain> and /api/domains."""

from .. import errors, params, provisioning
from ..access import require_global
from ..directory import account_settings as keys
from ..directory import domains as domain_directory
from ..params import Param, parse, read_params
from .common import CREATED, domain_from_url, keep_days_from_url, managed_domain

# Parameters of POST and PUT, with the seed's and the newer Pro spellings.
DOMAIN_PARAMS = (
    Param("cn", params.text(255), aliases=("name",)),
    Param("quota", params.quota_mb),
    Param("preferredLanguage", params.language, aliases=("language",)),
    Param("defaultQuota", params.quota_mb),
    Param("maxUserQuota", params.quota_mb),
    Param("numberOfUsers", params.account_limit),
    Param("numberOfAliases", params.account_limit),
    Param("numberOfLists", params.account_limit),
    Param("minPasswordLength", params.integer(0, 1024)),
    Param("maxPasswordLength", params.integer(0, 1024)),
    Param("transport", params.transport),
    Param("accountStatus", params.account_status),
)

# What a domain admin may change on a domain it manages; limits, transport and
# status are the global admin's, or a domain admin could lift its own limits.
DOMAIN_ADMIN_MAY_CHANGE = {"cn", "preferredLanguage", "defaultQuota", "minPasswordLength", "maxPasswordLength"}

# API parameter -> accountSetting key; a 0 removes the key (0 = unlimited/unset).
_SETTING_KEYS = {
    "quota": keys.DOMAIN_QUOTA,
    "defaultQuota": keys.DEFAULT_QUOTA,
    "maxUserQuota": keys.MAX_USER_QUOTA,
    "numberOfUsers": keys.NUMBER_OF_USERS,
    "numberOfAliases": keys.NUMBER_OF_ALIASES,
    "numberOfLists": keys.NUMBER_OF_LISTS,
    "minPasswordLength": keys.MIN_PASSWORD_LENGTH,
    "maxPasswordLength": keys.MAX_PASSWORD_LENGTH,
}

LIST_PARAMS = (Param("name_only", params.yes_no), Param("disabled_only", params.yes_no))


def domain_changes(values):
    """Typed parameters -> DomainChanges (accountSetting encoding lives in keys)."""
    settings = {key: (values[name] or None) for name, key in _SETTING_KEYS.items() if name in values}
    if "preferredLanguage" in values:
        settings[keys.DEFAULT_LANGUAGE] = values["preferredLanguage"]
    low, high = values.get("minPasswordLength"), values.get("maxPasswordLength")
    if low and high and low > high:
        raise errors.InvalidInput(errors.INVALID_NUMBER, param="minPasswordLength",
                                  detail="minPasswordLength is greater than maxPasswordLength")
    return domain_directory.DomainChanges(
        cn=values.get("cn"), transport=values.get("transport"),
        account_status=values.get("accountStatus"), settings=settings,
    )


class DomainItem:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp, domain):
        domain = domain_from_url(domain)
        parse(read_params(req), ())
        entry = managed_domain(self._services, req.context.admin, domain)
        self._services.envelope.ok(resp, entry.as_dict())

    def on_post(self, req, resp, domain):
        require_global(req.context.admin)
        domain = domain_from_url(domain)
        changes = domain_changes(parse(read_params(req), DOMAIN_PARAMS))
        services = self._services
        domain_directory.create_domain(services.ldap, services.names, domain, changes,
                                       services.settings.default_mta_transport)
        services.envelope.ok(resp, status=CREATED)

    def on_put(self, req, resp, domain):
        admin = req.context.admin
        domain = domain_from_url(domain)
        values = parse(read_params(req), DOMAIN_PARAMS)
        if not admin.is_global:
            for name in values:
                if name not in DOMAIN_ADMIN_MAY_CHANGE:
                    raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name,
                                              detail="only global admins may change this")
        changes = domain_changes(values)
        services = self._services
        entry = managed_domain(services, admin, domain, ["accountSetting", "domainAdmin"])
        domain_directory.update_domain(services.ldap, services.names, domain, changes, entry)
        services.envelope.ok(resp)

    def on_delete(self, req, resp, domain):
        self._delete(req, resp, domain, keep_days=None)

    def on_delete_keep_mailbox_days(self, req, resp, domain, days):
        self._delete(req, resp, domain, keep_days=keep_days_from_url(days))

    def _delete(self, req, resp, domain, keep_days):
        require_global(req.context.admin)
        domain = domain_from_url(domain)
        parse(read_params(req), ())
        provisioning.delete_domain(self._services, domain, req.context.admin, keep_days)
        self._services.envelope.ok(resp)


class DomainCollection:
    def __init__(self, services):
        self._services = services

    def on_get(self, req, resp):
        values = parse(read_params(req), LIST_PARAMS)
        admin = req.context.admin
        services = self._services
        entries = domain_directory.list_domains(
            services.ldap, services.names,
            managed_by=None if admin.is_global else admin.username,
            disabled_only=values.get("disabled_only", False),
            attributes=["domainName"] if values.get("name_only") else ["*"],
        )
        if values.get("name_only"):
            data = sorted(entry.first("domainName") for entry in entries)
        else:
            data = sorted((entry.as_dict() for entry in entries), key=lambda d: d.get("domainName", [""])[0])
        services.envelope.ok(resp, data)
