"""Authorization: may this admin do this to that?  The one place for the answer.

The access middleware (``access.py``) establishes who asks: an ``Admin`` on
``req.context.admin``, global or the admin of the domains whose ``domainAdmin`` names it.
Resources then ask here, before they call the directory layer, whether that admin may act
on what the request names: a domain, an account, a parameter, a member address.  Checks
that need the target's entry reuse the read the request makes anyway, so they cost no extra
directory round trip.  Nothing here knows HTTP; refusals are ``errors.NotPermitted``.
"""

from . import errors
from .directory import domains as domain_directory
from .directory import limits as limitlib

# What a domain admin may change on a domain it manages; limits, transport and status are the
# global admin's, or a domain admin could lift its own limits.
DOMAIN_ADMIN_MAY_CHANGE = frozenset({"cn", "preferredLanguage", "defaultQuota", "minPasswordLength",
                                     "maxPasswordLength"})
# User parameters only global admins may set: a maildir path can point into another domain's
# mail on the same disk, so domain admins get the hashed default.
GLOBAL_ONLY_USER_PARAMETERS = frozenset({"maildir"})


def require_global(admin):
    if not admin.is_global:
        raise errors.NotPermitted(errors.PERMISSION_DENIED, detail="only global admins may do this")


def _not_your_domain():
    return errors.NotPermitted(errors.PERMISSION_DENIED, detail="you do not manage this domain")


def managed_domain(directory, admin, domain, attributes=("*",)):
    """The domain's entry if the admin manages it.

    For a domain admin a missing domain is PERMISSION_DENIED too, so domain
    admins cannot probe which other domains exist.
    """
    try:
        entry = domain_directory.get_domain(directory, domain, attributes)
    except errors.NoSuchObject:
        if admin.is_global:
            raise
        raise _not_your_domain() from None
    if not admin.manages(entry):
        raise _not_your_domain()
    return entry


def managed_account_domain(directory, admin, mail):
    """The domain entry of the account ``mail``, checked to be managed by ``admin``; it
    carries what limit checks need (``limits.DOMAIN_ATTRIBUTES``), in one round trip."""
    return managed_domain(directory, admin, mail.split("@", 1)[1], limitlib.DOMAIN_ATTRIBUTES)


def check_domain_parameters(admin, values):
    """A domain admin may change only DOMAIN_ADMIN_MAY_CHANGE of a domain it manages."""
    if admin.is_global:
        return
    for name in values:
        if name not in DOMAIN_ADMIN_MAY_CHANGE:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name,
                                      detail="only global admins may change this")


def check_user_parameters(admin, values):
    if admin.is_global:
        return
    for name in GLOBAL_ONLY_USER_PARAMETERS:
        if name in values:
            raise errors.NotPermitted(errors.PERMISSION_DENIED, param=name, detail="only global admins may set this")


def require_manageable_account(admin, entry):
    """A global admin's own mail-user entry is only for global admins to change or delete."""
    if not admin.is_global and (entry.first("domainGlobalAdmin") or "").lower() == "yes":
        raise errors.NotPermitted(errors.PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE,
                                  detail="this user is a global admin")


def member_check(admin):
    """The rule for member addresses a list or alias request names, as a callable
    ``check(lookup, members, param)`` for the directory layer (None: no restriction).

    A domain admin makes accounts members only in domains it manages: enrolling writes
    memberOfGroup on the member's own entry.
    """
    if admin.is_global:
        return None

    def check(lookup, members, param):
        for address in members.internal:
            domain_entry = lookup.domain_entry(address)
            if domain_entry is None or not admin.manages(domain_entry):
                raise errors.NotPermitted(errors.PERMISSION_DENIED, param=param,
                                          detail=f"{address} is an account in a domain you do not manage")

    return check
