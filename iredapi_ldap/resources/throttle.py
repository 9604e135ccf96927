"""/api/throttle/<global|domain|mail>/<inbound|outbound>: iRedAPD's throttle settings.

The rows live in iRedAPD's own SQL table, written exactly as iRedAPD reads
them (``store/throttle.py``); this resource checks who may touch which
account and validates the numbers.  A domain admin may only make the limits in
force stricter (``authorization.throttle_guard``).
"""

from .. import authorization, errors, params, provisioning
from ..params import Param
from ..store import throttle as throttle_store
from .common import Resource, checked_policy_target, policy_target

KINDS = ("inbound", "outbound")
_LIMIT = params.integer(-1, 2**63 - 1)
# Sizes in bytes, period in seconds; -1 = inherit from the next lower-priority
# setting, 0 = unlimited (iRedAPD 6.1, plugins/throttle.py).
SET_PARAMS = (
    Param("period", params.integer(0, 2**32 - 1)),
    Param("msg_size", _LIMIT),
    Param("max_msgs", _LIMIT),
    Param("max_quota", _LIMIT),
    Param("max_rcpts", _LIMIT),
)
_LIMIT_NAMES = ("msg_size", "max_msgs", "max_quota", "max_rcpts")


class ThrottleSetting(Resource):
    def _account(self, req, target, kind, changing=False):
        """The iRedAPD account for the URL's target, after the scope checks (and, when
        ``changing``, the checks of who may change its throttling)."""
        if kind not in KINDS:
            raise errors.NoSuchObject(errors.NOT_FOUND, detail="use .../inbound or .../outbound")
        name = checked_policy_target(self, req, "throttle", *policy_target(target), changing=changing)
        return throttle_store.throttle_account("global" if name is None else name)

    def on_get(self, req, resp, target, kind):
        account = self._account(req, target, kind)
        self.params(req)
        setting = throttle_store.get_setting(self.services.iredapd_store, account, kind)
        self.ok(resp, setting, legacy={"setting": setting})

    def on_post(self, req, resp, target, kind):
        account = self._account(req, target, kind, changing=True)
        values = self.params(req, SET_PARAMS)
        if "period" not in values:
            raise errors.InvalidInput(errors.MISS_PERIOD, param="period", detail="period (seconds) is required")
        if not any(name in values for name in _LIMIT_NAMES):
            raise errors.InvalidInput(errors.MISS_THROTTLE_SETTING,
                                      detail="give at least one of msg_size, max_msgs, max_quota, max_rcpts")
        if kind == "inbound" and "max_rcpts" in values:
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="max_rcpts",
                                      detail="max_rcpts applies to outbound mail only")
        throttle_store.set_setting(self.services.iredapd_store, account, kind, values["period"],
                                   *(values.get(name) for name in _LIMIT_NAMES),
                                   guard=authorization.throttle_guard(req.context.admin))
        provisioning.confirm_account_write(self.services, account, "iredapd")
        self.ok(resp)

    def on_delete(self, req, resp, target, kind):
        account = self._account(req, target, kind, changing=True)
        self.params(req)
        throttle_store.delete_setting(self.services.iredapd_store, account, kind,
                                      guard=authorization.throttle_guard(req.context.admin))
        self.ok(resp)
