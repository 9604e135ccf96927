"""/api/domain/<domain> and /api/domains."""

from .. import authorization, params, provisioning
from ..directory import admin_limits
from ..directory import domains as domain_directory
from ..params import Param
from .common import CREATED, Resource
from .domain_routing import ROUTING_PARAMS, check_combinations

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
UPDATE_PARAMS = DOMAIN_PARAMS + ROUTING_PARAMS  # PUT only: mail routing (README "Domain mail routing")
LIST_PARAMS = (Param("name_only", params.yes_no), Param("disabled_only", params.yes_no))


class DomainItem(Resource):
    def on_get(self, req, resp, domain):
        self.params(req)
        entry = authorization.managed_domain(self.directory, req.context.admin, domain)
        data = entry.as_dict()
        data.update(domain_directory.routing_view(self.directory, domain, entry))
        self.ok(resp, data)

    def on_post(self, req, resp, domain):
        admin = req.context.admin
        authorization.require_domain_creator(self.directory, admin)
        values = self.params(req, DOMAIN_PARAMS)
        authorization.check_domain_parameters(admin, values)
        # a normal admin with maxDomains creates domains it then manages, within its limits
        if not admin.is_global:
            # a normal admin may not claim another domain's alias domain (global admins are trusted
            # with their own configuration; their creates keep their round trips)
            domain_directory.require_not_alias_domain(self.directory, domain)
            authorization.check_name_claim(self.directory, admin, domain, [domain], None)
        with admin_limits.within(self.directory, admin, {admin_limits.DOMAINS: 1}):
            domain_directory.create_domain(self.directory, domain, values,
                                           domain_admins=() if admin.is_global else (admin.username,))
        provisioning.release_stale_spam_links(self.services, domain)
        self.ok(resp, status=CREATED)

    def on_put(self, req, resp, domain):
        admin = req.context.admin
        values = self.params(req, UPDATE_PARAMS)
        check_combinations(values)
        entry = authorization.managed_domain(self.directory, admin, domain, domain_directory.UPDATE_ATTRIBUTES)
        authorization.check_domain_parameters(admin, values, entry)
        authorization.check_domain_wide_mail_access(self.directory, admin, domain, entry, values)
        routing = domain_directory.RoutingChanges.from_params(values)
        if routing.touches_alias_domains():
            # (the domain's own name is refused as its alias domain by update_domain: 400)
            authorization.check_name_claim(self.directory, admin, domain,
                                           [n for n in routing.alias_names_added(entry) if n != domain],
                                           routing.alias_param())
        swept = domain_directory.update_domain(self.directory, domain, values, entry)
        if swept is not None:  # alias domains changed: the spam policies follow (Amavisd's rows)
            provisioning.link_spam_policy_aliases(self.services, domain)
        # The alias-domain sweep's account: how many accounts it changed, what it could not add.
        if values.get("accountStatus") == "disabled":
            # its users that are admins are out at their next request, not at the recheck
            self.services.sessions.end_sessions_below(self.directory.names.domain(domain))
        self.ok(resp, None if swept is None else swept.as_dict())

    def on_delete(self, req, resp, domain):
        self._delete(req, resp, domain, keep_days=None)

    def on_delete_keep_mailbox_days(self, req, resp, domain, days):
        self._delete(req, resp, domain, keep_days=days)

    def _delete(self, req, resp, domain, keep_days):
        authorization.require_global(req.context.admin)
        self.params(req)
        provisioning.delete_domain(self.services, domain, req.context.admin, keep_days)
        self.ok(resp)


class DomainCollection(Resource):
    def on_get(self, req, resp):
        values = self.params(req, LIST_PARAMS)
        admin = req.context.admin
        entries = domain_directory.list_domains(
            self.directory,
            managed_by=None if admin.is_global else admin.username,
            disabled_only=values.get("disabled_only", False),
            attributes=["domainName"] if values.get("name_only") else ["*"],
        )
        if values.get("name_only"):
            data = sorted(entry.first("domainName") for entry in entries)
        else:
            data = sorted((entry.as_dict() for entry in entries), key=lambda d: d.get("domainName", [""])[0])
        self.ok(resp, data)
