"""Helpers every resource shares: URL parts and scoped lookups."""

import json

import falcon

from .. import addresses, errors
from ..directory import domains as domain_directory
from ..directory import limits as limitlib
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


def managed_account_domain(services, admin, mail):
    """(domain, domain entry) of the account ``mail``, checked to be managed by
    ``admin``; the entry carries what limit checks need (one round trip)."""
    domain = mail.split("@", 1)[1]
    return domain, managed_domain(services, admin, domain, limitlib.DOMAIN_ATTRIBUTES)


CREATED = falcon.HTTP_201


_END = object()


def stream_list(envelope, resp, items):
    """Send ``{"success": true, "data": [...]}`` item by item.

    Large listings (100,000 users) are produced page by page from a paged
    search and never held in memory whole.  The first item is fetched before
    the response starts, so an error up to there still gets a proper envelope.
    """
    items = iter(items)
    first = next(items, _END)

    def body():
        yield json.dumps({envelope.success_key: True})[:-1].encode() + b', "' + envelope.data_key.encode() + b'": ['
        if first is not _END:
            yield json.dumps(first).encode()
            batch = []
            for item in items:
                batch.append(json.dumps(item))
                if len(batch) >= 500:
                    yield ("," + ",".join(batch)).encode()
                    batch = []
            if batch:
                yield ("," + ",".join(batch)).encode()
        yield b"]}"

    resp.content_type = falcon.MEDIA_JSON
    resp.stream = body()
