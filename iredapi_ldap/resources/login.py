"""POST /api/login and POST /api/logout."""

import logging
from datetime import UTC, datetime

from .. import addresses, errors
from ..access import over_tls
from ..directory.admins import find_admin_account
from ..params import Param, parse, read_params

log = logging.getLogger(__name__)


def _password(value):
    if not value or len(value) > 1024:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, detail="must be 1 to 1024 characters")
    return value


_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)
LOGIN_PARAMS = (Param("username", addresses.email), Param("password", _password))


class Login:
    login_required = False

    def __init__(self, services):
        self._services = services

    def on_post(self, req, resp):
        services = self._services
        if "password" in req.params:  # URLs end up in access logs
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password",
                                      detail="send the password in the request body, not in the URL")
        values = parse(read_params(req), LOGIN_PARAMS, required=("username", "password"))
        username = values["username"]
        keys = services.login_throttle.keys(req.context.client_ip, username)
        blocked, recorded = services.login_throttle.check(keys)
        if blocked:
            raise errors.TooManyRequests(errors.TOO_MANY_LOGIN_FAILURES,
                                         detail="too many failed logins; wait and try again")
        account = find_admin_account(services.ldap, services.names, username)
        # One answer for "no such admin", "not an admin", "disabled" and "wrong
        # password": the response never tells whether an account exists.
        if not (account and account.is_active and account.may_administer
                and services.ldap.credentials_valid(account.dn, values["password"])):
            req.context.hide_round_trips = True
            services.login_throttle.record_failure(keys)
            log.warning("failed API login for %s from %s", username, req.context.client_ip)
            raise errors.LoginRequired(errors.INVALID_CREDENTIALS)
        if keys[1] in recorded:  # most logins have no failures to forget: no write for them
            services.login_throttle.clear(keys[1])
        token = services.sessions.create(account)
        resp.set_cookie(
            services.settings.SESSION_COOKIE_NAME, token, path="/", http_only=True, same_site="Strict",
            secure=over_tls(req, services.settings.proxy_networks), max_age=None,
        )
        log.info("API login of %s from %s", username, req.context.client_ip)
        services.envelope.ok(resp)


class Logout:
    def __init__(self, services):
        self._services = services

    def on_post(self, req, resp):
        services = self._services
        parse(read_params(req), ())  # takes no parameters; an unknown one is refused, not ignored
        services.sessions.delete(req.context.session_token)
        # Expired at once, with login's attributes (unset_cookie would say SameSite=Lax)
        resp.set_cookie(
            services.settings.SESSION_COOKIE_NAME, "", path="/", http_only=True, same_site="Strict",
            secure=over_tls(req, services.settings.proxy_networks), expires=_LONG_AGO,
        )
        services.envelope.ok(resp)

