"""POST /api/login and POST /api/logout."""

import logging
from datetime import UTC, datetime

from .. import addresses, errors
from ..access import over_tls
from ..directory.admins import find_admin_account
from ..params import Param
from .common import Resource

log = logging.getLogger(__name__)


def _password(value):
    if not value or len(value) > 1024:
        raise errors.InvalidInput(errors.INVALID_PARAMETER, detail="must be 1 to 1024 characters")
    return value


_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)
LOGIN_PARAMS = (Param("username", addresses.email), Param("password", _password))


class Login(Resource):
    login_required = False

    def on_post(self, req, resp):
        services = self.services
        if "password" in req.params:  # URLs end up in access logs
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password",
                                      detail="send the password in the request body, not in the URL")
        values = self.params(req, LOGIN_PARAMS, required=("username", "password"))
        username = values["username"]
        throttle = services.login_throttle
        # Counted before the bind, so that parallel requests cannot overshoot the limit.
        attempt = throttle.begin(throttle.keys(req.context.client_ip, username))
        if attempt is None:
            raise errors.TooManyRequests(errors.TOO_MANY_LOGIN_FAILURES,
                                         detail="too many failed logins; wait and try again")
        try:
            account = find_admin_account(self.directory, username)
            # One answer for "no such admin", "not an admin", "disabled" and "wrong
            # password": the response never tells whether an account exists.
            valid = bool(account and account.is_active and account.may_administer
                         and self.directory.client.credentials_valid(account.dn, values["password"]))
        except BaseException:
            throttle.cancel(attempt)  # no answer (the directory failed): not a failed login
            raise
        if not valid:
            req.context.hide_round_trips = True
            throttle.failed(attempt)
            log.warning("failed API login for %s from %s", username, req.context.client_ip)
            raise errors.LoginRequired(errors.INVALID_CREDENTIALS)
        token = services.sessions.create(account, also=lambda conn: throttle.succeeded(attempt, conn))
        resp.set_cookie(
            services.settings.SESSION_COOKIE_NAME, token, path="/", http_only=True, same_site="Strict",
            secure=over_tls(req, services.settings.proxy_networks), max_age=None,
        )
        log.info("API login of %s from %s", username, req.context.client_ip)
        self.ok(resp)


class Logout(Resource):
    def on_post(self, req, resp):
        self.params(req)  # takes no parameters; an unknown one is refused, not ignored
        services = self.services
        services.sessions.delete(req.context.session_token)
        # Expired at once, with login's attributes (unset_cookie would say SameSite=Lax)
        resp.set_cookie(
            services.settings.SESSION_COOKIE_NAME, "", path="/", http_only=True, same_site="Strict",
            secure=over_tls(req, services.settings.proxy_networks), expires=_LONG_AGO,
        )
        self.ok(resp)

