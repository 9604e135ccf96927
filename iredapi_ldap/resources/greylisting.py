"""/api/greylisting/...: iRedAPD's greylisting settings and whitelists.

The rows live in iRedAPD's own SQL tables, written as iRedAPD's tools write them
(``store/greylisting.py``); this resource checks who may touch which account and validates
the senders.  Targets: ``global`` (global admins), a domain or a user (their domain's admins,
unless a global admin withheld the domain's or its users' ``greylisting`` profile tab).
"""

from .. import addresses, authorization, errors, params, provisioning
from ..params import Param, forbid_overlap, forbid_together
from ..store import greylisting as greylisting_store
from .common import Resource, checked_policy_target, policy_target

SET_PARAMS = (Param("status", params.choice(*greylisting_store.STATUSES)),)
WHITELIST_PARAMS = (
    Param("senders", addresses.policy_sender_list),
    Param("addSenders", addresses.policy_sender_list),
    Param("removeSenders", addresses.policy_sender_list),
)
SPF_DOMAIN_PARAMS = (
    Param("domains", addresses.domain_list),
    Param("addDomains", addresses.domain_list),
    Param("removeDomains", addresses.domain_list),
)


def _incremental(values, reset, add, remove):
    forbid_together(values, reset, add, remove)
    forbid_overlap(values, add, remove)
    if not values:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, param=reset,
                                  detail=f"give {reset}, or {add} and/or {remove}")
    return values.get(reset), values.get(add, ()), values.get(remove, ())


class _Target(Resource):
    def _account(self, req, target, changing=False):
        """The iRedAPD account of the URL's target, after the scope checks (and, when
        ``changing``, the checks of who may change its greylisting)."""
        name = checked_policy_target(self, req, "greylisting", *policy_target(target), changing=changing)
        return greylisting_store.GLOBAL_ACCOUNT if name is None else greylisting_store.greylisting_account(name)


class GreylistingSetting(_Target):
    """/greylisting/{all|global|<domain>|<mail>}"""

    def on_get(self, req, resp, target):
        self.params(req)
        store = self.services.iredapd_store
        if target == "all":
            authorization.require_global(req.context.admin)
            self.ok(resp, greylisting_store.all_settings(store))
            return
        self.ok(resp, greylisting_store.get_setting(store, self._account(req, target)))

    def on_post(self, req, resp, target):
        account = self._account(req, target, changing=True)
        values = self.params(req, SET_PARAMS, required=("status",))
        greylisting_store.set_setting(self.services.iredapd_store, account, values["status"])
        provisioning.confirm_account_write(self.services, account, "iredapd")
        self.ok(resp)

    def on_delete(self, req, resp, target):
        account = self._account(req, target, changing=True)
        self.params(req)
        greylisting_store.delete_setting(self.services.iredapd_store, account)
        self.ok(resp)


class GreylistingWhitelists(_Target):
    """/greylisting/{global|<domain>|<mail>}/whitelists"""

    def on_get(self, req, resp, target):
        account = self._account(req, target)
        self.params(req)
        self.ok(resp, greylisting_store.get_whitelists(self.services.iredapd_store, account))

    def on_post(self, req, resp, target):
        account = self._account(req, target, changing=True)
        reset, add, remove = _incremental(self.params(req, WHITELIST_PARAMS), "senders", "addSenders",
                                          "removeSenders")
        greylisting_store.update_whitelists(self.services.iredapd_store, account, reset, add, remove)
        provisioning.confirm_account_write(self.services, account, "iredapd")
        self.ok(resp)


class GreylistingSpfDomains(Resource):
    """/greylisting/whitelist_spf_domains: sender domains whose SPF/MX hosts iRedAPD's cron job
    whitelists for everyone (global admins only)."""

    def on_get(self, req, resp):
        authorization.require_global(req.context.admin)
        self.params(req)
        self.ok(resp, greylisting_store.get_spf_domains(self.services.iredapd_store))

    def on_post(self, req, resp):
        authorization.require_global(req.context.admin)
        reset, add, remove = _incremental(self.params(req, SPF_DOMAIN_PARAMS), "domains", "addDomains",
                                          "removeDomains")
        greylisting_store.update_spf_domains(self.services.iredapd_store, reset, add, remove)
        self.ok(resp)
