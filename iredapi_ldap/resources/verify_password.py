"""POST /api/verify_password/user/<mail> and /api/verify_password/admin/<mail> (global admins only)."""

from .. import authorization, errors
from ..directory import dn as dnlib
from ..params import Param
from .common import Resource
from .login import _password

PARAMS = (Param("password", _password),)


class VerifyPassword(Resource):
    """Whether ``password`` is the account's: slapd decides, by a simple bind as the account on a
    connection of its own.  Nothing changes; the password is never logged.  Each wrong answer
    counts against the account's login throttling (the ``user:<mail>`` key a login counts), a
    right one gives its attempt back: a global admin's session cannot be used to guess an
    account's password faster than the login allows."""

    def __init__(self, services, kind):
        super().__init__(services)
        self.kind = kind  # "user" (a mail user) or "admin" (a standalone admin)

    def on_post(self, req, resp, mail):
        authorization.require_global(req.context.admin)
        if "password" in req.params:  # URLs end up in access logs
            raise errors.InvalidInput(errors.INVALID_PARAMETER, param="password",
                                      detail="send the password in the request body, not in the URL")
        values = self.params(req, PARAMS, required=("password",))
        names = self.directory.names
        dn, object_class = (names.user(mail), "mailUser") if self.kind == "user" else (names.admin(mail), "mailAdmin")
        if self.directory.read(dn, ["1.1"], dnlib.eq("objectClass", object_class)) is None:
            raise errors.NoSuchObject(errors.NO_SUCH_ACCOUNT, detail=mail)
        throttle = self.services.login_throttle
        attempt = throttle.begin((throttle.keys(None, mail)[1],))
        if attempt is None:
            raise errors.TooManyRequests(errors.TOO_MANY_LOGIN_FAILURES,
                                         detail="too many wrong passwords for this account; wait and try again")
        try:
            verified = self.directory.client.bind_once(dn, values["password"])
        except BaseException:
            throttle.cancel(attempt)  # no answer: not a wrong password
            raise
        if verified:
            throttle.cancel(attempt)
        else:
            throttle.failed(attempt)
        self.ok(resp, {"verified": verified})
