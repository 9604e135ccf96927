"""What every resource shares: a base class, URL parts as middleware, streamed listings.

A resource is "parameters in, call, envelope out": it parses the request with its declared
``Param`` tuples, asks ``authorization`` whether the admin may act, calls the directory layer
(or a store) and answers with the envelope.
"""

import json
import logging

import falcon

from .. import addresses, authorization, errors, params, provisioning
from ..directory import users as user_directory
from ..params import Param, integer, parse, read_params

log = logging.getLogger(__name__)

CREATED = falcon.HTTP_201
# GET /api/users|aliases|maillists/<domain>
ACCOUNT_LIST_PARAMS = (Param("email_only", params.yes_no), Param("disabled_only", params.yes_no))


class Resource:
    """Base of every resource: the application's services, and the responders' plumbing."""

    def __init__(self, services):
        self.services = services
        self.directory = services.directory

    def params(self, req, accepted=(), required=()):
        """The request's parameters, validated against ``accepted`` (``params.Param`` objects).

        Parameters the endpoint does not take are ignored as iRedAdmin-Pro ignores them, but
        never silently: they are named in the answer's X-Ignored-Parameters header and in a
        warning in the log.  ``STRICT_PARAMETERS = True`` refuses them (400 UNKNOWN_PARAMETER)."""
        ignored = None if self.services.settings.STRICT_PARAMETERS else []
        values = parse(read_params(req), accepted, required, ignored)
        if ignored:
            req.context.ignored_parameters = ignored
            log.warning("%s %s: ignored parameters it does not take: %s", req.method, req.path, ", ".join(ignored))
        return values

    def ok(self, resp, data=None, status=falcon.HTTP_200, legacy=None):
        self.services.envelope.ok(resp, data, status, legacy)


def _keep_days(text):
    try:
        return integer(0, 36500)(text)
    except errors.InvalidInput as exc:
        exc.param = "keep_mailbox_days"
        raise


class UrlParts:
    """Middleware: the route table's ``{mail}``, ``{domain}`` and ``{days}`` arrive validated
    and normalised (lower case, punycode), or the request ends here with a 400."""

    CONVERTERS = {"mail": addresses.email, "domain": addresses.domain_name, "days": _keep_days,
                  "new_mail": addresses.email}

    def process_resource(self, req, resp, resource, params):
        for name, convert in self.CONVERTERS.items():
            if name in params:
                try:
                    params[name] = convert(params[name])
                except errors.InvalidInput as exc:
                    exc.param = exc.param or (name if name == "new_mail" else None)
                    raise


def rename(resource, req, resp, kind, mail, new_mail):
    """POST /api/<kind>/<mail>/change_email/<new_mail>: 200 with {"mail": new_mail}, also for a
    repeat of a rename that is done (so a client may repeat one whose answer it lost)."""
    resource.params(req)
    domain_entry = authorization.managed_account_domain(resource.directory, req.context.admin, mail)
    provisioning.rename_account(resource.services, kind, mail, new_mail, req.context.admin, domain_entry)
    resource.ok(resp, {"mail": new_mail})


def stream_accounts(resource, req, resp, domain, values, list_accounts, hidden=()):
    """GET /api/<kind>s/<domain>: profiles (less ``hidden`` attributes), or addresses with
    ``email_only``; only disabled accounts with ``disabled_only``."""
    authorization.managed_domain(resource.directory, req.context.admin, domain, ["domainAdmin"])
    email_only = values.get("email_only", False)
    entries = list_accounts(resource.directory, domain, disabled_only=values.get("disabled_only", False),
                            attributes=["mail"] if email_only else ["*"])
    if email_only:
        items = (entry.first("mail") for entry in entries)
    else:
        items = (entry.as_dict(hidden=hidden) for entry in entries)
    stream_list(resource.services.envelope, resp, items)


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
        yield json.dumps(envelope.head(True))[:-1].encode() + b', "' + envelope.data_key.encode() + b'": ['
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


# -- policy endpoints (throttling, greylisting, spam policy, white/blacklists) ----------------------

# What the permission checks read (in the read the scope check makes anyway).
_POLICY_DOMAIN_ATTRIBUTES = ["domainAdmin", "accountSetting"]
_POLICY_USER_ATTRIBUTES = ["mail", "shadowAddress", "domainGlobalAdmin"]


def policy_target(target):
    """A policy URL's ``global`` / ``<domain>`` / ``<mail>`` part as (domain, mail), validated."""
    if target == "global":
        return None, None
    if "@" in target:
        return None, addresses.email(target)
    return addresses.domain_name(target), None


def checked_policy_target(resource, req, part, domain=None, mail=None, changing=False):
    """The user's address or the domain's name a policy endpoint acts on, None for the global
    setting (global admins only), once the admin may read it and, when ``changing``, change its
    ``part`` (the profile tab: "throttle", "greylisting", "spampolicy", "wblist")."""
    admin = req.context.admin
    if domain is None and mail is None:
        authorization.require_global(admin)
        return None
    if mail is not None:
        domain = mail.split("@", 1)[1]
    domain_entry = authorization.managed_domain(resource.directory, admin, domain, _POLICY_DOMAIN_ATTRIBUTES)
    user_entry = user_directory.get_user(resource.directory, mail, _POLICY_USER_ATTRIBUTES) if mail else None
    if changing:
        authorization.check_profile_part_change(resource.directory, admin, part, domain_entry, user_entry)
    return mail or domain
