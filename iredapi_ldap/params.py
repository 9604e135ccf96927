"""Request parameters: reading form or JSON bodies, and typed validation.

Each resource declares the parameters it takes as ``Param`` objects; ``parse``
returns canonical names mapped to typed values, or raises ``InvalidInput`` that
names the offending parameter.  Unknown parameters are refused, never ignored.
"""

import ipaddress
import json
import re
from dataclasses import dataclass, field

import falcon

from . import errors
from .directory.limits import MAX_QUOTA_MB
from .errors import InvalidInput

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Param:
    """One accepted parameter: its canonical name, other spellings, and parser.

    ``parse`` takes the raw string and returns the typed value or raises
    ``InvalidInput`` (the parameter name is filled in here).
    """

    name: str
    parse: object
    aliases: tuple = field(default=())


def read_params(req):
    """The request's parameters as {name: str}: query string plus body.

    Bodies may be form-encoded (what ``curl -d`` sends) or JSON, with a
    Content-Length or chunked (``Transfer-Encoding: chunked``, which PHP's and
    Go's HTTP clients send).  JSON lists become comma-separated strings, the
    API's own list form.
    """
    params = {}
    for name, value in req.params.items():
        params[_text(name, name)] = _text(name, _single(name, value))
    chunked = req.content_length is None and req.get_header("Transfer-Encoding")
    if not req.content_length and not chunked:
        return params
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        body = _read_json(_read_body(req))
    elif media_type in ("application/x-www-form-urlencoded", ""):
        body = _read_form(_read_body(req))
    else:
        raise InvalidInput(errors.MALFORMED_REQUEST,
                           detail="send application/x-www-form-urlencoded or application/json")
    for name, value in body.items():
        if name in params:
            raise InvalidInput(errors.INVALID_PARAMETER, param=name, detail="given more than once")
        params[name] = value
    return params


def _read_body(req):
    """The whole body as bytes, or 413 past MAX_BODY_BYTES (the connection is then closed:
    the rest of the body is never read)."""
    if req.content_length is not None:
        if req.content_length > MAX_BODY_BYTES:
            raise _too_large()
        stream = req.bounded_stream
    else:
        # Chunked: the WSGI server decodes the chunks and its input ends after the last one
        # (gunicorn sets wsgi.input_terminated); Falcon's bounded_stream would read nothing.
        stream = req.stream
    parts, size = [], 0
    while size <= MAX_BODY_BYTES:
        try:
            part = stream.read(MAX_BODY_BYTES + 1 - size)
        except errors.ApiError:
            raise  # e.g. the request took too long to arrive (iredapi_ldap.server)
        except Exception:  # the server's reader: wrong chunk framing, a connection cut off
            raise errors.UnreadableBody(errors.MALFORMED_REQUEST,
                                        detail="the body could not be read to its end") from None
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > MAX_BODY_BYTES:
        raise _too_large()
    return b"".join(parts)


def _too_large():
    return errors.PayloadTooLarge(errors.MALFORMED_REQUEST, detail="request body is larger than 1 MiB")


def _read_form(raw):
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput(errors.MALFORMED_REQUEST,
                           detail="form bodies must be percent-encoded ASCII (curl --data-urlencode)") from None
    form = falcon.uri.parse_query_string(text, keep_blank=True, csv=False)
    return {_text(name, name): _text(name, _single(name, value)) for name, value in form.items()}


def _read_json(raw):
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(errors.MALFORMED_REQUEST, detail="the body is not valid JSON") from None
    except RecursionError:  # json's parser recurses once per level of [ or {
        raise InvalidInput(errors.MALFORMED_REQUEST, detail="the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidInput(errors.MALFORMED_REQUEST, detail="the JSON body must be an object")
    return {_text(name, name): _json_value(name, value) for name, value in body.items()}


def _json_value(name, value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _text(name, value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _text(name, ",".join(value))
    raise InvalidInput(errors.INVALID_PARAMETER, param=name, detail="expected a string, number or list of strings")


def _text(name, value):
    """``value`` if it can be written out as UTF-8.  JSON's ``"\\ud800"`` decodes to a lone
    surrogate, which no UTF-8 encoder (python-ldap, the SQL drivers) accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        printable = name.encode("utf-8", "backslashreplace").decode("utf-8")
        raise InvalidInput(errors.INVALID_PARAMETER, param=printable,
                           detail="contains a lone UTF-16 surrogate, which is not text") from None
    return value


def _single(name, value):
    if isinstance(value, list):
        raise InvalidInput(errors.INVALID_PARAMETER, param=name,
                           detail="given more than once; send lists comma-separated")
    return value


def parse(raw, accepted, required=(), ignored=None):
    """Validate ``raw`` against ``accepted`` Params; {canonical name: value}.

    A parameter the endpoint does not take is refused (UNKNOWN_PARAMETER), or, when ``ignored``
    is a list, appended to it and left out: iRedAdmin-Pro ignores form fields it does not know,
    and real clients send some on every request.  Invalid values of known parameters are refused
    either way."""
    by_spelling = {}
    for param in accepted:
        for spelling in (param.name, *param.aliases):
            by_spelling[spelling] = param
    values = {}
    for spelling, text in raw.items():
        param = by_spelling.get(spelling)
        if param is None:
            if ignored is not None:
                ignored.append(spelling)
                continue
            raise InvalidInput(errors.UNKNOWN_PARAMETER, param=spelling,
                               detail=f"this endpoint does not take {spelling!r}")
        if param.name in values:
            raise InvalidInput(errors.CONFLICTING_PARAMETERS, param=spelling,
                               detail=f"{spelling!r} and another spelling of it were both given")
        try:
            values[param.name] = param.parse(text)
        except InvalidInput as exc:
            exc.param = spelling
            raise
    for name in required:
        if name not in values:
            raise InvalidInput(errors.INVALID_PARAMETER, param=name, detail="is required")
    return values


def forbid_together(values, reset, *incremental):
    """A reset parameter (``members``) cannot come with its add/remove twins."""
    if reset in values:
        for other in incremental:
            if other in values:
                raise InvalidInput(errors.CONFLICTING_PARAMETERS, param=other,
                                   detail=f"{reset!r} replaces the whole list; do not combine it with {other!r}")


def forbid_overlap(values, add, remove):
    """The same value to add and to remove in one request is a contradiction."""
    both = set(values.get(add, ())) & set(values.get(remove, ()))
    if both:
        raise InvalidInput(errors.CONFLICTING_PARAMETERS, param=remove,
                           detail=f"{', '.join(sorted(both))} given to both {add} and {remove}")


# -- parsers -----------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def integer(minimum=None, maximum=None, code=errors.INVALID_NUMBER):
    def parse_integer(text):
        text = text.strip()
        if not re.fullmatch(r"-?[0-9]{1,18}", text):
            raise InvalidInput(code, detail=f"{text!r} is not a whole number")
        value = int(text)
        if minimum is not None and value < minimum:
            raise InvalidInput(code, detail=f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise InvalidInput(code, detail=f"must be at most {maximum}")
        return value

    return parse_integer


def text(max_length=255, allow_empty=True):
    def parse_text(value):
        if _CONTROL.search(value):
            raise InvalidInput(errors.INVALID_PARAMETER, detail="control characters are not allowed")
        value = value.strip()
        if not value and not allow_empty:
            raise InvalidInput(errors.INVALID_PARAMETER, detail="must not be empty")
        if len(value) > max_length:
            raise InvalidInput(errors.INVALID_PARAMETER, detail=f"longer than {max_length} characters")
        return value

    return parse_text


def choice(*allowed, aliases=None, code=errors.INVALID_PARAMETER):
    """Case-insensitive choice; ``aliases`` maps legacy spellings to a value."""
    aliases = aliases or {}

    def parse_choice(value):
        lowered = value.strip().lower()
        lowered = aliases.get(lowered, lowered)
        if lowered not in allowed:
            raise InvalidInput(code, detail=f"must be one of {', '.join(allowed)}")
        return lowered

    return parse_choice


def yes_no(value):
    return choice("yes", "no")(value) == "yes"


account_status = choice("active", "disabled", code=errors.INVALID_ACCOUNT_STATUS)

# The languages iRedAdmin accepts for preferredLanguage and a domain's defaultLanguage: those with
# a translation under i18n/ that libs/l10n.py's langmaps also names (iredutils.get_language_maps();
# form_utils.get_language drops any other value).  https://github.com/iredmail/iRedAdmin/tree/master/i18n
LANGUAGES = (
    "bg_BG", "cs_CZ", "da_DK", "de_DE", "en_US", "es_ES", "fi_FI", "fr_FR", "hu_HU", "it_IT", "ja_JP",
    "ko_KR", "lv_LV", "nl_NL", "pl_PL", "pt_BR", "ro_RO", "ru_RU", "sl_SI", "sv_SE", "vi_VN", "zh_CN",
    "zh_TW",
)
_LANGUAGE_BY_LOWER = {code.lower(): code for code in LANGUAGES}


def language(value):
    """One of ``LANGUAGES``, in its canonical spelling (``de_de`` -> ``de_DE``)."""
    code = _LANGUAGE_BY_LOWER.get(value.strip().lower())
    if code is None:
        raise InvalidInput(errors.INVALID_LANGUAGE, detail="one of iRedAdmin's languages: " + ", ".join(LANGUAGES))
    return code


def transport(value):
    """A Postfix transport (``dovecot``, ``lmtp:unix:private/dovecot-lmtp`` …)."""
    value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9._:/\[\]@+=-]{1,255}", value):
        raise InvalidInput(errors.INVALID_TRANSPORT, detail="expected a Postfix transport such as dovecot")
    return value


# -- mail routing: alias domains, BCC, relay hosts, backup MX, domain services, profile tabs ------

def domain_list(value):
    """Comma-separated domain names -> list (lower case, punycode; order kept, duplicates dropped)."""
    from .addresses import domain_name

    names = []
    for item in value.split(","):
        item = item.strip()
        if item:
            name = domain_name(item)
            if name not in names:
                names.append(name)
    return names


def optional_email(value):
    """One address, or "" (remove)."""
    from .addresses import email

    return email(value.strip()) if value.strip() else ""


_HOSTNAME = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_IPV4 = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# smtp(8): "[ipv6:address]"; Postfix's host_port() takes "[address]" too (any case of "ipv6:");
# the address is checked below
_IPV6 = r"(?:[Ii][Pp][Vv]6:)?[0-9A-Fa-f:.]{2,45}"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
# Postfix's nexthop: a host or [host] (no MX lookup), an optional :port; a relay host may name
# its transport first (smtp:, relay:, lmtp:), as iRedMail's how-to writes smtp:[192.0.2.2]:25.
_NEXTHOP = rf"(?:\[(?:{_HOSTNAME}|{_IPV4}|{_IPV6})\]|{_HOSTNAME}|{_IPV4}){_PORT}"
_RELAY_HOST = re.compile(rf"(?:(?:smtp|relay|lmtp):)?{_NEXTHOP}")


_HOST_PART = re.compile(r"(?:(?:smtp|relay|lmtp):)?(?:\[(ipv6:)?([^\]]*)\]|([^:]*))", re.IGNORECASE)


def _valid_ipv6_literals(value):
    """Whether the host of a nexthop the patterns took is one Postfix takes (host_port()): an
    ``[ipv6:…]``, or ``[…]`` with a colon, holds an IPv6 address (the pattern lets any hex
    digits, colons and dots through: ``[ipv6:1:2]`` leaves Postfix deferring the mail,
    "malformed IPv6 address"); an all-numeric name is an IPv4 address (``999.1.1.1`` is
    neither a hostname nor an address to Postfix)."""
    prefix, literal, bare = _HOST_PART.match(value).groups()
    host = literal if bare is None else bare
    try:
        if prefix or ":" in host:
            ipaddress.IPv6Address(host)
        elif re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def relay_host(value):
    """A sender-dependent relay host (``smtp:[192.0.2.2]:25``, ``[relay.example.com]:587``),
    or "" (remove)."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > 255 or not _RELAY_HOST.fullmatch(value) or not _valid_ipv6_literals(value):
        raise InvalidInput(errors.INVALID_PARAMETER,
                           detail="expected a relay host such as smtp:[192.0.2.2]:25, [relay.example.com]:587 "
                                  "or [ipv6:2001:db8::1]:25")
    return value


def primary_mx(value):
    """The primary MX of a backup-MX domain: ``host``, ``[host]``, with an optional ``:port``,
    or "" (ask DNS for the MX).  As a Postfix nexthop: a bare host becomes ``[host]``, which
    skips the MX lookup (it is the primary MX already)."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > 255 or not re.fullmatch(_NEXTHOP, value) or not _valid_ipv6_literals(value):
        raise InvalidInput(errors.INVALID_PARAMETER,
                           detail="expected the primary MX as host, [host] or [host]:port ([ipv6:address])")
    if value.startswith("["):
        return value
    host, sep, port = value.rpartition(":") if re.search(r":[0-9]+$", value) else (value, "", "")
    return f"[{host}]{sep}{port}"


def names_from(allowed, code=errors.INVALID_PARAMETER, what="name"):
    """Comma-separated names, each one of ``allowed`` (case-insensitive) -> list."""
    by_lower = {name.lower(): name for name in allowed}

    def parse_names(value):
        names = []
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name = by_lower.get(item.lower())
            if name is None:
                raise InvalidInput(code, detail=f"{item!r} is not a {what}; one of {', '.join(allowed)}")
            if name not in names:
                names.append(name)
        return names

    return parse_names


# Quotas and quota limits, in MB (directory.limits.MAX_QUOTA_MB: 1 PiB).
quota_mb = integer(0, MAX_QUOTA_MB)
# Account-count limits (numberOfUsers …; -1 = none, 0 = unlimited): far above any real domain,
# and within a signed 32-bit integer for any tool that reads the setting.
MAX_ACCOUNTS = 2 ** 31 - 1
account_limit = integer(-1, MAX_ACCOUNTS)

# Standalone admins' limits (maxDomains, maxUsers …; 0 = unlimited, or no domain creation for
# maxDomains) and maxQuota's unit.
admin_limit = integer(0, MAX_ACCOUNTS)


def quota_unit(value):
    return choice("tb", "gb", "mb")(value).upper()

# -- subscribable (mlmmj) lists: mail headers and footers ------------------------------------


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def header_lines(text):
    """``Header: value`` lines separated by newlines (``\\n``); empty removes them."""
    headers = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name.strip()) or _CONTROL.search(value):
            raise InvalidInput(errors.INVALID_PARAMETER, detail=f"{line!r} is not a 'Header: value' line")
        headers.append(f"{name.strip()}: {value.strip()}")
    return headers


def header_names(text):
    """Comma-separated header names (a trailing ``:`` is allowed, as mlmmjadmin allows it)."""
    names = []
    for item in text.split(","):
        item = item.strip().rstrip(":").strip()
        if not item:
            continue
        if not _HEADER_NAME.fullmatch(item):
            raise InvalidInput(errors.INVALID_PARAMETER, detail=f"{item!r} is not a header name")
        names.append(item)
    return names


def multiline_text(text):
    """Multi-line text: newlines and tabs allowed, other control characters not."""
    if _CONTROL_BUT_NEWLINE.search(text):
        raise InvalidInput(errors.INVALID_PARAMETER, detail="control characters are not allowed")
    if len(text) > 20000:
        raise InvalidInput(errors.INVALID_PARAMETER, detail="longer than 20000 characters")
    return text.strip()
