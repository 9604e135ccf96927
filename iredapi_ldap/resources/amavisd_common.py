"""The account an Amavisd endpoint (spam policy, white/blacklists) acts on, after the checks."""

from ..store import amavisd as amavisd_store
from .common import checked_policy_target


def amavisd_account(resource, req, part, domain=None, mail=None, changing=False):
    """The Amavisd account ("@.", "@domain", "user@domain") of the global setting (neither
    ``domain`` nor ``mail``), a hosted domain or a user (validated, lower-case), once the admin
    may read it, and, when ``changing``, change its ``part`` ("spampolicy", "wblist")."""
    name = checked_policy_target(resource, req, part, domain, mail, changing)
    return amavisd_store.GLOBAL_ACCOUNT if name is None else amavisd_store.account_of(name)
