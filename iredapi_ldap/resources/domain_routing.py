"""Domain PUT's mail-routing parameters (iRedAdmin-Pro's newest): declared here, with
the checks of how they combine, for ``resources.domain``."""

from .. import addresses, errors, params
from ..directory import account_settings as setting_keys
from ..directory import domains as domain_directory
from ..params import Param, forbid_overlap, forbid_together

_domain_services = params.names_from(domain_directory.DOMAIN_SERVICES, errors.INVALID_SERVICE, "domain service")

ROUTING_PARAMS = (
    Param("aliasDomains", params.domain_list),
    Param("addAliasDomain", params.domain_list),
    Param("removeAliasDomain", params.domain_list),
    Param("catchall", addresses.email_list),
    Param("senderBcc", params.optional_email),
    Param("recipientBcc", params.optional_email),
    Param("outboundRelay", params.relay_host),
    Param("is_backupmx", params.yes_no),
    Param("primarymx", params.primary_mx),
    Param("services", _domain_services),
    Param("addService", _domain_services),
    Param("removeService", _domain_services),
    *(Param(name, params.names_from(names, what="profile name"))
      for disable, enable, _, names in setting_keys.PROFILE_SWITCHES for name in (disable, enable)),
)
# (reset, add, remove) of the multi-valued routing parameters
_MULTI = (("aliasDomains", "addAliasDomain", "removeAliasDomain"), ("services", "addService", "removeService"))


def check_combinations(values):
    """A reset with its add/remove twins, or one name both added and removed: CONFLICTING_PARAMETERS."""
    for reset, add, remove in _MULTI:
        forbid_together(values, reset, add, remove)
        forbid_overlap(values, add, remove)
    for disable, enable, _key, _names in setting_keys.PROFILE_SWITCHES:
        forbid_overlap(values, disable, enable)
