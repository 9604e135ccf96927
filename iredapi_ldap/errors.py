"""Errors: one exception family carrying an iRedAdmin code, and its HTTP meaning.

The directory and store layers raise these without knowing HTTP; the kind of
error (not the layer) decides the status, in one table here.  The web layer
(`iredapi_ldap.app`) turns every error into the envelope
``{"success": false, "msg": CODE}``.
"""


class ApiError(Exception):
    """An error with an iRedAdmin-style code (``msg`` in the envelope).

    ``param`` names the offending request parameter, ``detail`` says in words
    what is wrong; both are optional extras in the error envelope.
    ``close_connection``: the request's body was not read to its end, so the
    connection cannot carry another request.
    """

    status = 400
    close_connection = False

    def __init__(self, code, *, param=None, detail=None):
        super().__init__(code if detail is None else f"{code}: {detail}")
        self.code = code
        self.param = param
        self.detail = detail


class InvalidInput(ApiError):
    """A parameter or URL part is malformed, unknown or out of range (400)."""

    status = 400


class UnreadableBody(InvalidInput):
    """The body broke off or its chunked framing is wrong; the connection is closed (400)."""

    close_connection = True


class LoginRequired(ApiError):
    """No valid session, or wrong credentials (401)."""

    status = 401


class NotPermitted(ApiError):
    """The caller may not do this: API disabled, address not allowed, wrong
    scope, or a domain limit reached (403)."""

    status = 403


class NoSuchObject(ApiError):
    """The domain or account named in the URL does not exist (404)."""

    status = 404


class AlreadyExists(ApiError):
    """The address or domain is taken (409)."""

    status = 409


class Conflict(ApiError):
    """The directory changed under us and retrying did not settle it (409)."""

    status = 409


class PayloadTooLarge(ApiError):
    """The body is over the limit; it is left unread and the connection closed (413)."""

    status = 413
    close_connection = True


class RequestTimeout(ApiError):
    """The request did not arrive in time (iredapi_ldap.server); the connection is closed (408)."""

    status = 408
    close_connection = True


class TooManyRequests(ApiError):
    """Too many failed logins from this address or for this user (429)."""

    status = 429


class BackendUnavailable(ApiError):
    """LDAP or SQL server unreachable or timing out (503)."""

    status = 503


class PeerRefused(ApiError):
    """A service we drive (mlmmjadmin) refused the request with its own code; ``status`` is the
    HTTP meaning of that code (404, 409, 400, ...)."""

    def __init__(self, code, status, *, param=None, detail=None):
        super().__init__(code, param=param, detail=detail)
        self.status = status


# Every code the API answers with, and nowhere else as a literal.  iRedAdmin's own names
# where one exists (iRedAdmin-Pro's RESTful API documentation); the few we add are marked.
API_DISABLED = "API_DISABLED"  # ours: ENABLE_RESTFUL_API = False
NOT_AUTHORIZED = "NOT_AUTHORIZED"
LOGIN_REQUIRED = "LOGIN_REQUIRED"
INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
PERMISSION_DENIED = "PERMISSION_DENIED"
PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE = "PERMISSION_DENIED_UPDATE_GLOBAL_ADMIN_PROFILE"
NO_SUCH_DOMAIN = "NO_SUCH_DOMAIN"
NO_SUCH_ACCOUNT = "NO_SUCH_ACCOUNT"
ALREADY_EXISTS = "ALREADY_EXISTS"
EXCEEDED_DOMAIN_ACCOUNT_LIMIT = "EXCEEDED_DOMAIN_ACCOUNT_LIMIT"
EXCEEDED_DOMAIN_QUOTA_SIZE = "EXCEEDED_DOMAIN_QUOTA_SIZE"
EXCEEDED_MAX_USER_QUOTA = "EXCEEDED_MAX_USER_QUOTA"  # ours: above the domain's maxUserQuota
INVALID_DOMAIN_NAME = "INVALID_DOMAIN_NAME"
INVALID_MAIL = "INVALID_MAIL"
INVALID_NUMBER = "INVALID_NUMBER"
INVALID_LANGUAGE = "INVALID_LANGUAGE"
INVALID_TRANSPORT = "INVALID_TRANSPORT"
INVALID_ACCOUNT_STATUS = "INVALID_ACCOUNT_STATUS"
INVALID_SERVICE = "INVALID_SERVICE"
INVALID_MAILBOX_FORMAT = "INVALID_MAILBOX_FORMAT"
INVALID_ACCESS_POLICY = "INVALID_ACCESS_POLICY"
INVALID_PASSWORD_SCHEME = "INVALID_PASSWORD_SCHEME"
MISS_PERIOD = "MISS_PERIOD"
MISS_THROTTLE_SETTING = "MISS_THROTTLE_SETTING"
INVALID_PARAMETER = "INVALID_PARAMETER"  # ours: a value of the wrong form
UNKNOWN_PARAMETER = "UNKNOWN_PARAMETER"  # ours: a parameter we do not take
CONFLICTING_PARAMETERS = "CONFLICTING_PARAMETERS"  # ours: reset with add/remove
MALFORMED_REQUEST = "MALFORMED_REQUEST"  # ours: body we cannot parse
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # ours: the request arrived too slowly
NOT_FOUND = "NOT_FOUND"  # ours: no such URL
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # ours
CONCURRENT_UPDATE = "CONCURRENT_UPDATE"  # ours: compare-and-set kept failing
SERVER_DOWN = "SERVER_DOWN"
SQL_SERVER_DOWN = "SQL_SERVER_DOWN"  # ours: SQL store unreachable
TOO_MANY_LOGIN_FAILURES = "TOO_MANY_LOGIN_FAILURES"  # ours
INTERNAL_ERROR = "INTERNAL_ERROR"  # ours: a bug; details go to the log only
# a normal admin's maxDomains, maxUsers, maxAliases, maxLists, maxQuota
EXCEEDED_ADMIN_LIMIT = "EXCEEDED_ADMIN_LIMIT"  # ours

# iRedAdmin's password policy codes (several may be joined with ",").
PW_EMPTY = "PW_EMPTY"
PW_NON_ASCII = "PW_NON_ASCII"
PW_SHORTER_THAN_MIN_LENGTH = "PW_SHORTER_THAN_MIN_LENGTH"
PW_GREATER_THAN_MAX_LENGTH = "PW_GREATER_THAN_MAX_LENGTH"
PW_NO_LETTER = "PW_NO_LETTER"
PW_NO_UPPERCASE = "PW_NO_UPPERCASE"
PW_NO_DIGIT_NUMBER = "PW_NO_DIGIT_NUMBER"
PW_NO_SPECIAL_CHAR = "PW_NO_SPECIAL_CHAR"

# Subscribable (mlmmj) lists, /api/ml and /api/mls
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # ours: mlmmjadmin unreachable, timing out or failing
MLMMJADMIN_ERROR = "MLMMJADMIN_ERROR"  # ours: mlmmjadmin failed with a message that is no code
# Greylisting (iRedAPD's libs/greylisting.py names its refusal INVALID_SENDER).
INVALID_SENDER = "INVALID_SENDER"
