"""Access checks as middleware, in the order they run for every request:

1. ``RequestContext``: the client address (believing X-Forwarded-For only from
   trusted proxies) and the directory round-trip counter.
2. ``ApiSwitch``: ``ENABLE_RESTFUL_API``.
3. ``ClientAllowList``: ``RESTRICT_API_ACCESS`` + ``RESTFUL_API_CLIENTS``.
4. ``SessionCheck``: a valid login session, except on resources that say
   ``login_required = False``; puts the ``Admin`` on ``req.context.admin``.

This says who is asking; whether that admin may act on what a request names (a domain
admin acting on domain B) is decided in ``authorization``.
"""

import ipaddress
import logging
import re

from . import errors
from .directory.admins import Admin, read_admin_account

log = logging.getLogger(__name__)

ROUND_TRIPS_HEADER = "X-Directory-Round-Trips"
IGNORED_PARAMETERS_HEADER = "X-Ignored-Parameters"
_EMPTY_SEGMENTS = re.compile("/{2,}")


def from_trusted_proxy(req, trusted_proxies):
    peer = _ip(req.remote_addr)
    return peer is not None and any(peer in net for net in trusted_proxies)


def over_tls(req, trusted_proxies):
    """Whether the client reached us over TLS (X-Forwarded-Proto only from trusted proxies)."""
    if req.scheme == "https":
        return True
    if from_trusted_proxy(req, trusted_proxies):
        return (req.get_header("X-Forwarded-Proto") or "").lower() == "https"
    return False


def client_address(req, trusted_proxies):
    """The socket's peer, or the last untrusted hop of X-Forwarded-For when the
    peer is a trusted proxy (hops are walked from the right)."""
    peer = _ip(req.remote_addr)
    if not from_trusted_proxy(req, trusted_proxies):
        return peer
    forwarded = req.get_header("X-Forwarded-For") or ""
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        address = _ip(hop)
        if address is None:
            return peer  # a malformed header is not believed at all
        if not any(address in net for net in trusted_proxies):
            return address
    return peer


def _ip(text):
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    # A dual-stack listener ([::]) reports IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class RequestContext:
    def __init__(self, settings, directory):
        self._proxies = settings.proxy_networks
        self._ldap = directory.client

    def process_request(self, req, resp):
        if "//" in req.path or req.path.endswith("/"):
            # A client that joins a base URL ending in "/" with "/login" asks for "…/api//login":
            # empty path segments mean nothing here, so they are dropped before routing.
            req.path = _EMPTY_SEGMENTS.sub("/", req.path).rstrip("/") or "/"
        req.context.client_ip = client_address(req, self._proxies)
        req.context.admin = None
        req.context.hide_round_trips = False
        self._ldap.reset_round_trips()

    def process_response(self, req, resp, resource, req_succeeded):
        # A failed login says nothing of its cost: the count would tell which
        # accounts exist, are disabled or are mail users.
        if not req.context.get("hide_round_trips"):
            resp.set_header(ROUND_TRIPS_HEADER, str(self._ldap.round_trips))
        ignored = req.context.get("ignored_parameters")
        if ignored:
            resp.set_header(IGNORED_PARAMETERS_HEADER, ", ".join(ignored))


class ApiSwitch:
    def __init__(self, settings):
        self._enabled = settings.ENABLE_RESTFUL_API

    def process_request(self, req, resp):
        if not self._enabled:
            raise errors.NotPermitted(errors.API_DISABLED, detail="set ENABLE_RESTFUL_API = True to enable the API")


class ClientAllowList:
    def __init__(self, settings):
        self._restricted = settings.RESTRICT_API_ACCESS
        self._networks = settings.api_networks

    def process_request(self, req, resp):
        if not self._restricted:
            return
        address = req.context.client_ip
        if address is None or not any(address in net for net in self._networks):
            raise errors.NotPermitted(errors.NOT_AUTHORIZED, detail="this client address may not use the API")


class SessionCheck:
    def __init__(self, settings, sessions, directory):
        self._cookie = settings.SESSION_COOKIE_NAME
        self._sessions = sessions
        self._directory = directory

    def process_resource(self, req, resp, resource, params):
        if resource is None or not getattr(resource, "login_required", True):
            return
        token = _session_token(req, self._cookie)
        session = self._sessions.lookup(token) if token else None
        if session is None:
            raise errors.LoginRequired(errors.LOGIN_REQUIRED)
        is_global = bool(session["is_global_admin"])
        if session["needs_recheck"]:
            # A disabled or demoted admin loses access within SESSION_RECHECK_INTERVAL.
            account = read_admin_account(self._directory, session["admin_dn"], session["username"])
            if account is None or not account.is_active or not account.may_administer:
                self._sessions.delete(token)
                raise errors.LoginRequired(errors.LOGIN_REQUIRED, detail="the admin account is no longer active")
            is_global = account.is_global
            self._sessions.rechecked(token, is_global)
        req.context.admin = Admin(username=session["username"], dn=session["admin_dn"], is_global=is_global)
        req.context.session_token = token


def _session_token(req, cookie_name):
    values = req.get_cookie_values(cookie_name)
    return values[0] if values else None

