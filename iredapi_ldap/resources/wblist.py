"""/api/wblist/<inbound|outbound>/<whitelist|blacklist>/<global|domain|mail>: Amavisd's
white/blacklists, as iRedAPD's amavisd_wblist plugin reads them (``store/amavisd.py``).

iRedAdmin-Pro's semantics: GET lists, POST adds ``addresses``, PUT removes the given
``addresses``, DELETE empties the list.  Unlike Pro, which drops invalid entries silently, a
request naming one is refused (400, naming them) and nothing is written.
"""

from .. import errors, provisioning
from ..params import Param
from ..store import amavisd as amavisd_store
from .amavisd_common import amavisd_account
from .common import Resource, policy_target

PART = "wblist"
ADDRESSES = (Param("addresses", amavisd_store.parse_entries),)


class WbList(Resource):
    def _account(self, req, direction, listname, target, changing=False):
        if direction not in amavisd_store.DIRECTIONS or listname not in amavisd_store.LISTS:
            raise errors.NoSuchObject(errors.NOT_FOUND,
                                      detail="use /wblist/<inbound|outbound>/<whitelist|blacklist>/<target>")
        domain, mail = policy_target(target)
        return amavisd_account(self, req, PART, domain=domain, mail=mail, changing=changing)

    def on_get(self, req, resp, direction, listname, target):
        account = self._account(req, direction, listname, target)
        self.params(req)
        self.ok(resp, amavisd_store.list_entries(self.services.amavisd_store, account, direction, listname))

    def on_post(self, req, resp, direction, listname, target):
        account = self._account(req, direction, listname, target, changing=True)
        values = self.params(req, ADDRESSES, required=("addresses",))
        amavisd_store.add_entries(self.services.amavisd_store, account, direction, listname, values["addresses"])
        provisioning.confirm_account_write(self.services, account, "amavisd")
        self.ok(resp)

    def on_put(self, req, resp, direction, listname, target):
        account = self._account(req, direction, listname, target, changing=True)
        values = self.params(req, ADDRESSES, required=("addresses",))
        amavisd_store.remove_entries(self.services.amavisd_store, account, direction, listname, values["addresses"])
        self.ok(resp)

    def on_delete(self, req, resp, direction, listname, target):
        account = self._account(req, direction, listname, target, changing=True)
        self.params(req)
        amavisd_store.clear_entries(self.services.amavisd_store, account, direction, listname)
        self.ok(resp)
