"""/api/spampolicy/global, /api/spampolicy/domain/<domain>, /api/spampolicy/user/<mail>:
Amavisd's per-account spam policy (``store/amavisd.py`` has the column mapping).

GET answers iRedAdmin-Pro's parameters as the account's own policy holds them (null: not set
here, the broader policy applies); PUT writes the given ones and keeps the others; DELETE removes
the account's own policy (and, with it, the rows linking the account's alias-domain addresses
to it: ``store/amavisd.py``, "alias domains").
"""

from .. import errors, params, provisioning
from ..params import Param
from ..store import amavisd as amavisd_store
from .amavisd_common import amavisd_account
from .common import Resource

PART = "spampolicy"
PUT_PARAMS = (
    *(Param(name, params.yes_no) for name in amavisd_store.BYPASS_PARAMS),
    *(Param(name, params.yes_no) for name in amavisd_store.QUARANTINE_PARAMS),
    Param("prefix_spam_in_subject", params.yes_no),
    Param("always_insert_x_spam_headers", params.yes_no),
    Param("spam_score", amavisd_store.parse_score),
    Param("banned_rulenames", amavisd_store.parse_rulenames),
)


class SpamPolicy(Resource):
    def _get(self, req, resp, **target):
        account = amavisd_account(self, req, PART, **target)
        self.params(req)
        row = amavisd_store.get_policy(self.services.amavisd_store, account)
        self.ok(resp, amavisd_store.policy_parameters(row))

    def _put(self, req, resp, **target):
        account = amavisd_account(self, req, PART, changing=True, **target)
        values = self.params(req, PUT_PARAMS)
        if not values:
            raise errors.InvalidInput(errors.INVALID_PARAMETER,
                                      detail="give at least one of " + ", ".join(amavisd_store.POLICY_PARAMS))
        columns = amavisd_store.policy_columns(values, self.services.settings.AMAVISD_SPAM_SUBJECT_PREFIX)
        amavisd_store.set_policy(self.services.amavisd_store, account, columns)
        if account != amavisd_store.GLOBAL_ACCOUNT:  # the policy also applies at the alias-domain addresses
            provisioning.link_spam_policy_aliases(self.services, account.rsplit("@", 1)[1], account)
        provisioning.confirm_account_write(self.services, account, "amavisd")
        self.ok(resp)

    def _delete(self, req, resp, **target):
        account = amavisd_account(self, req, PART, changing=True, **target)
        self.params(req)
        amavisd_store.delete_policy(self.services.amavisd_store, account)
        self.ok(resp)

    def on_get_global(self, req, resp):
        self._get(req, resp)

    def on_put_global(self, req, resp):
        self._put(req, resp)

    def on_delete_global(self, req, resp):
        self._delete(req, resp)

    def on_get_domain(self, req, resp, domain):
        self._get(req, resp, domain=domain)

    def on_put_domain(self, req, resp, domain):
        self._put(req, resp, domain=domain)

    def on_delete_domain(self, req, resp, domain):
        self._delete(req, resp, domain=domain)

    def on_get_user(self, req, resp, mail):
        self._get(req, resp, mail=mail)

    def on_put_user(self, req, resp, mail):
        self._put(req, resp, mail=mail)

    def on_delete_user(self, req, resp, mail):
        self._delete(req, resp, mail=mail)
