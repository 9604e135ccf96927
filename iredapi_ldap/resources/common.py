"""Helpers every resource shares: URL parts and scoped lookups."""

import falcon

from .. import addresses, errors
from ..directory import domains as domain_directory
from ..params import integer


def domain_from_url(text):
    return addresses.domain_name(text)


def keep_days_from_url(text):
    try:
        return integer(0, 36500)(text)
    except errors.InvalidInput as exc:
        exc.param = "keep_mailbox_days"
        raise


def managed_domain(services, admin, domain, attributes=("*",)):
    """The domain's entry if the admin manages it.

    For a domain admin a missing domain is PERMISSION_DENIED too, so domain
    admins cannot probe which other domains exist.
    """
    try:
        entry = domain_directory.get_domain(services.ldap, services.names, domain, attributes)
    except errors.NoSuchObject:
        if admin.is_global:
            raise
        raise errors.NotPermitted(errors.PERMISSION_DENIED, detail="you do not manage this domain") from None
    if not admin.manages(entry):
        raise errors.NotPermitted(errors.PERMISSION_DENIED, detail="you do not manage this domain")
    return entry


CREATED = falcon.HTTP_201
