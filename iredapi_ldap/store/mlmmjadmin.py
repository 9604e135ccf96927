"""A client of mlmmjadmin's REST API (iRedMail's daemon that owns mlmmj lists).

mlmmjadmin owns a subscribable list: its LDAP entry (its ``bk_iredmail_ldap`` backend writes
``mail=<list>,ou=Groups,...`` with ``enabledService: mlmmj`` and ``mtaTransport: mlmmj:...``)
and the mlmmj spool.  We only ask it, over HTTP, with the token header it checks
(``X-MLMMJADMIN-API-AUTH-TOKEN`` by default).

It answers HTTP 200 with ``{"_success": bool, "_msg": CODE, "_data": ...}`` for its own
refusals; anything else (no connection, a timeout, HTTP 5xx, a body that is not its JSON) means
it is not usable now: ``BackendUnavailable(SERVICE_UNAVAILABLE)``.  A refusal becomes
``PeerRefused`` carrying its code.  Stdlib only (urllib): one short request per call, no
connection state kept between requests, so nothing is shared between threads or workers.
"""

import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

from .. import errors

log = logging.getLogger(__name__)

# mlmmjadmin's own codes that have an HTTP meaning of ours (libs/mlmmj.py, controllers/*.py,
# backends/bk_iredmail_ldap.py); any other code is a 400.
_STATUS = {
    "NO_SUCH_ACCOUNT": 404,
    "ACCOUNT_NOT_EXIST": 404,
    "NO_SUCH_DOMAIN": 404,
    "ALREADY_EXISTS": 409,
    # Our settings are wrong (token, client address): the service is unusable for us.
    "NO_API_AUTH_TOKEN": 503,
    "INVALID_MLMMJADMIN_API_AUTH_TOKEN": 503,
    "NOT_AUTHORIZED_API_CLIENT": 503,
}
_CODE = re.compile(r"[A-Z][A-Z0-9_]{1,63}")
# The addresses mlmmjadmin 3.6.3 takes (its libs/regxes.py ``email``, matched whole): its URL
# routes (``/api/<list>``, ``subscriber/<address>/subscribed``) match only these, so another one
# is answered with web.py's plain "not found"; and its subscriber, owner and moderator parsers
# drop the others without a word.  Narrower than ours in two ways: the local part begins with a
# letter, digit, ``_``, ``-`` or ``#`` (not ``+`` or ``=``), and the top-level label has 2 to 15
# characters (``xn--vermgensberatung-pwb`` has 24).
_ITS_ADDRESS = re.compile(r"[\w#-][\w.+=/&#-]*@[\w-][\w.-]*\.[a-z0-9-]{2,15}", re.IGNORECASE)


def takes(address):
    """Whether mlmmjadmin takes ``address`` (as a list, subscriber, owner or moderator)."""
    return _ITS_ADDRESS.fullmatch(address) is not None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """mlmmjadmin never redirects: a 3xx (something else at its address) is an answer we do not
    take, not a place to send the token to."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class MlmmjadminClient:
    def __init__(self, base_url, token, header, verify_ssl=True, timeout=10):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.header = header
        self.timeout = timeout
        self.context = None
        if self.base_url.startswith("https://"):
            self.context = ssl.create_default_context()
            if not verify_ssl:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        # Straight to MLMMJADMIN_API_BASE_URL: no proxy from the environment (http_proxy set for
        # the host's other traffic would get every request and the token), no redirect followed
        # (urllib would send the token header on to wherever it points).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect,
                                                   urllib.request.HTTPSHandler(context=self.context))

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.MLMMJADMIN_API_BASE_URL, settings.mlmmjadmin_api_auth_token,
                   settings.MLMMJADMIN_API_AUTH_HEADER, settings.MLMMJADMIN_API_VERIFY_SSL,
                   settings.MLMMJADMIN_API_TIMEOUT)

    # -- the calls -------------------------------------------------------------------------

    def profile(self, mail):
        return self._call("GET", mail)

    def create(self, mail, form):
        self._call("POST", mail, form=form)

    def update(self, mail, form):
        self._call("PUT", mail, form=form)

    def delete(self, mail, keep_archive=True):
        # mlmmjadmin takes DELETE's parameters from the URL only (docs/API.md).
        self._call("DELETE", mail, query={"archive": "yes" if keep_archive else "no"})

    def subscribers(self, mail):
        """The list's subscribers, sorted, all subscription versions together."""
        return sorted({a.lower() for a in self._call("GET", f"{mail}/subscribers", query={"email_only": "yes"}) or []})

    def add_subscribers(self, mail, subscribers, subscription="normal", require_confirm=True):
        self._call("POST", f"{mail}/subscribers", form={
            "add_subscribers": ",".join(subscribers),
            "subscription": subscription,
            "require_confirm": "yes" if require_confirm else "no",
        })

    def remove_subscribers(self, mail, subscribers):
        self._call("POST", f"{mail}/subscribers", form={"remove_subscribers": ",".join(subscribers)})

    def subscribed_lists(self, subscriber):
        """The mlmmj lists (of every domain) that ``subscriber`` is subscribed to; none for an
        address mlmmjadmin does not take (it could not have subscribed it, nor answer for it)."""
        if not takes(subscriber):
            return []
        data = self._call("GET", f"subscriber/{subscriber}/subscribed",
                          query={"query_all_lists": "yes", "email_only": "yes"})
        return sorted({a.lower() for a in data or []})

    def subscriptions(self, subscriber):
        """[(list address, subscription version)] of every mlmmj list (of every domain) that
        ``subscriber`` is subscribed to; the version is normal, digest or nomail.  None for an
        address mlmmjadmin does not take (as ``subscribed_lists``)."""
        if not takes(subscriber):
            return []
        data = self._call("GET", f"subscriber/{subscriber}/subscribed", query={"query_all_lists": "yes"})
        return sorted({(str(item["mail"]).lower(), str(item.get("subscription") or "normal"))
                       for item in data or [] if isinstance(item, dict) and item.get("mail")})

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, method, path, form=None, query=None):
        url = f"{self.base_url}/{urllib.parse.quote(path, safe='@/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=body, method=method, headers={self.header: self.token})
        if body is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read() if exc.code < 500 else b""
            if exc.code >= 500 or not raw:
                raise self._unavailable(f"{method} {path}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # refused, unreachable, timeout, TLS, bad URL
            raise self._unavailable(f"{method} {path}: {exc}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise self._unavailable(f"{method} {path}: not a JSON answer") from None
        if not isinstance(answer, dict) or "_success" not in answer:
            raise self._unavailable(f"{method} {path}: not mlmmjadmin's envelope")
        if answer["_success"] is True:
            return answer.get("_data")
        message = str(answer.get("_msg") or "")
        log.warning("mlmmjadmin refused %s %s: %s", method, path, message)
        if _CODE.fullmatch(message):
            raise errors.PeerRefused(message, _STATUS.get(message, 400), detail="mlmmjadmin's answer")
        # Its backend's LDAP error as python-ldap's repr, e.g. "ALREADY_EXISTS({... 'result': 68 ...})"
        # when a racing create added the entry first, or slapd's unique overlay refusing the
        # address ("CONSTRAINT_VIOLATION({... 'info': 'some attributes not unique'})"): a taken address.
        # (slapd 2.5's unique overlay says "some attributes not unique" or "non-unique attributes found")
        if message.startswith("ALREADY_EXISTS(") or (message.startswith("CONSTRAINT_VIOLATION(")
                                                     and ("not unique" in message or "non-unique" in message)):
            raise errors.PeerRefused(errors.ALREADY_EXISTS, 409, detail="mlmmjadmin: the entry exists")
        # Not one of its codes but an exception's text (its backend's LDAP error, a spool error with
        # the server's paths): its failure.  The text is for the operator (logged above), not for
        # the client, which may be a domain admin.
        raise errors.PeerRefused(errors.MLMMJADMIN_ERROR, 502, detail="mlmmjadmin failed; its message is in our log")

    @staticmethod
    def _unavailable(why):
        log.error("mlmmjadmin not usable: %s", why)
        return errors.BackendUnavailable(errors.SERVICE_UNAVAILABLE, detail="mlmmjadmin: " + why)
