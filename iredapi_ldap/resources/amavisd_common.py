"""The account an Amavisd endpoint (spam policy, white/blacklists) acts on, after the checks."""

from .. import addresses, authorization
from ..directory import users as user_directory
from ..store import amavisd as amavisd_store

_DOMAIN_ATTRIBUTES = ["domainAdmin", "accountSetting"]
_USER_ATTRIBUTES = ["mail", "shadowAddress", "domainGlobalAdmin"]


def amavisd_account(resource, req, part, domain=None, mail=None, changing=False):
    """The Amavisd account ("@.", "@domain", "user@domain") of the global setting (neither
    ``domain`` nor ``mail``), a hosted domain or a user (validated, lower-case), once the admin
    may read it, and, when ``changing``, change its ``part`` ("spampolicy", "wblist")."""
    admin = req.context.admin
    if domain is None and mail is None:
        authorization.require_global(admin)
        return amavisd_store.GLOBAL_ACCOUNT
    if mail is not None:
        domain = mail.split("@", 1)[1]
    domain_entry = authorization.managed_domain(resource.directory, admin, domain, _DOMAIN_ATTRIBUTES)
    user_entry = user_directory.get_user(resource.directory, mail, _USER_ATTRIBUTES) if mail else None
    if changing:
        authorization.check_profile_part_change(resource.directory, admin, part, domain_entry, user_entry)
    return amavisd_store.account_of(mail or domain)


def target_parts(target):
    """A URL's ``global`` / ``<domain>`` / ``<mail>`` part as (domain, mail)."""
    if target == "global":
        return None, None
    if "@" in target:
        return None, addresses.email(target)
    return addresses.domain_name(target), None
