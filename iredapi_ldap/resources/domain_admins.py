"""/api/domain/admins/<domain>: who administers a domain."""

from .. import addresses, authorization, errors
from ..directory import domain_admins as admin_directory
from ..params import Param, forbid_overlap
from .common import Resource


def _empty(value):
    """removeAllAdmins is sent empty (``removeAllAdmins=``); any value means the same."""
    return True


PARAMS = (
    Param("addAdmin", addresses.email_list),
    Param("removeAdmin", addresses.email_list),
    Param("removeAllAdmins", _empty),
)


class DomainAdmins(Resource):
    def on_get(self, req, resp, domain):
        """The domain's admins (ours; Pro has no GET here): sorted addresses."""
        self.params(req)
        entry = authorization.managed_domain(self.directory, req.context.admin, domain, ["domainAdmin"])
        self.ok(resp, admin_directory.domain_admins(entry))

    def on_put(self, req, resp, domain):
        admin = req.context.admin
        values = self.params(req, PARAMS)
        if not values:
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="addAdmin",
                                      detail="give addAdmin, removeAdmin or removeAllAdmins")
        add, remove = values.get("addAdmin", []), values.get("removeAdmin", [])
        remove_all = values.get("removeAllAdmins", False)
        forbid_overlap(values, "addAdmin", "removeAdmin")
        entry = authorization.managed_domain(self.directory, admin, domain, ["domainAdmin"])
        found = admin_directory.find_accounts(self.directory, add + remove)
        admin_directory.require_existing(found, add, "addAdmin")
        admin_directory.require_existing(found, remove, "removeAdmin",
                                         listed=admin_directory.domain_admins(entry))
        authorization.check_domain_admin_changes(self.directory, admin, found, add, remove, remove_all)
        changed = admin_directory.change_domain_admins(self.directory, domain, found, add, remove, remove_all)
        for mail in changed:
            # a mail user made or unmade an admin logs in again with its new rights
            if mail != admin.username:
                self.services.sessions.end_sessions(mail)
        self.ok(resp)
