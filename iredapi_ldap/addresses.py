"""Validation of domain names and email addresses: the one place for both rules.

Everything returned is lower-case ASCII.  Internationalised domain names are
converted to their punycode (``xn--``) form, which is what Postfix looks up.
"""

import re

from . import errors
from .errors import InvalidInput

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_LOCAL_PART = re.compile(r"[a-z0-9_+=-]+(\.[a-z0-9_+=-]+)*")


def domain_name(text):
    """A valid domain name, lower-cased (and punycode-encoded if needed)."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="empty domain name")
    name = text.lower()
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="white space or control characters in domain name")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="not a valid internationalised domain name") from None
    if len(name) > 253:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="a domain name needs at least two labels")
    if not all(_LABEL.fullmatch(label) for label in labels[:-1]) or not _TLD.fullmatch(labels[-1]):
        raise InvalidInput(errors.INVALID_DOMAIN_NAME,
                           detail="labels are letters, digits and inner hyphens; the last is alphabetic")
    return name


def email(text, code=errors.INVALID_MAIL):
    """A valid address ``local@domain``, lower-cased; the domain as ``domain_name``."""
    if not isinstance(text, str) or text.count("@") != 1:
        raise InvalidInput(code, detail="expected one address of the form user@domain")
    local, _, domain = text.lower().partition("@")
    if not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidInput(code, detail="the part before @ may hold letters, digits and . _ + = -")
    try:
        domain = domain_name(domain)
    except InvalidInput as exc:
        raise InvalidInput(code, detail=exc.detail) from None
    return f"{local}@{domain}"


def email_list(text, code=errors.INVALID_MAIL):
    """Comma-separated addresses -> list (order kept, duplicates dropped)."""
    result = []
    for item in text.split(","):
        item = item.strip(" ")
        if not item:
            continue
        address = email(item, code)
        if address not in result:
            result.append(address)
    return result
