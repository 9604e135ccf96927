"""Validation of domain names and email addresses: the one place for both rules.

Everything returned is lower-case ASCII.  Internationalised domain names are
converted to their punycode (``xn--``) form, which is what Postfix looks up, with
IDNA 2008 and the UTS #46 mapping (RFC 5891, https://unicode.org/reports/tr46/),
as registries and browsers do.  Python's own "idna" codec is IDNA 2003, which maps
``straße.de`` to ``strasse.de``: a different domain.
"""

import ipaddress
import re

import idna

from . import errors
from .errors import InvalidInput

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_LOCAL_PART = re.compile(r"[a-z0-9_+=-]+(\.[a-z0-9_+=-]+)*")


def domain_name(text):
    """A valid domain name, lower-cased (and punycode-encoded if needed)."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="empty domain name")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="white space or control characters in domain name")
    if text.isascii():
        name = text.lower()
    else:
        try:
            # UTS #46 non-transitional processing: case folding and width mapping, then the
            # IDNA 2008 rules (code points, contextual rules, bidi, no leading combining mark).
            name = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise InvalidInput(errors.INVALID_DOMAIN_NAME,
                               detail="not a valid internationalised domain name (IDNA 2008)") from None
    if len(name) > 253:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="longer than 253 characters")
    labels = name.split(".")
    for label in labels:
        if label.startswith("xn--"):
            _check_a_label(label)
    if len(labels) < 2:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail="a domain name needs at least two labels")
    if not all(_LABEL.fullmatch(label) for label in labels[:-1]) or not _TLD.fullmatch(labels[-1]):
        raise InvalidInput(errors.INVALID_DOMAIN_NAME,
                           detail="labels are letters, digits and inner hyphens; the last is alphabetic")
    return name


def _check_a_label(label):
    """An ``xn--`` label must be the canonical punycode of a valid IDNA 2008 label
    (RFC 5891 section 5.3): ``xn--zz`` decodes to nothing valid, ``xn--n3h`` to a snowman."""
    try:
        valid = idna.alabel(idna.ulabel(label)).decode("ascii") == label
    except (idna.IDNAError, UnicodeError):
        valid = False
    if not valid:
        raise InvalidInput(errors.INVALID_DOMAIN_NAME, detail=f"{label!r} is not a valid IDNA 2008 A-label")


def email(text, code=errors.INVALID_MAIL):
    """A valid address ``local@domain``, lower-cased; the domain as ``domain_name``."""
    if not isinstance(text, str) or text.count("@") != 1:
        raise InvalidInput(code, detail="expected one address of the form user@domain")
    local, _, domain = text.partition("@")
    local = local.lower()
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


def list_address(text):
    """A list's address: mlmmj takes ``<list>+<command>@`` as commands, so no ``+`` in the name."""
    mail = email(text)
    if "+" in mail.split("@", 1)[0]:
        raise InvalidInput(errors.INVALID_MAIL, detail="a list's name cannot hold '+' (mlmmj's delimiter)")
    return mail


# -- policy senders (iRedAPD's greylisting whitelists) ----------------------------------------

# iRedAPD's MySQL greylisting tables hold account and sender in VARCHAR(100).
POLICY_ADDRESS_MAX = 100


def policy_sender(text):
    """A sender as iRedAPD matches it in greylisting whitelists: an IPv4/IPv6 address, a CIDR
    network (host bits clear: iRedAPD's ipaddress.ip_network() refuses others, so such a row
    would never match), ``user@domain``, ``@domain``, ``@.domain`` (the domain and its
    subdomains) or ``@.`` (anyone).  Normalised (lower case, punycode, compressed IPv6)."""
    if not isinstance(text, str) or not text or any(ch.isspace() for ch in text):
        raise InvalidInput(errors.INVALID_SENDER, detail="empty or contains white space")
    if len(text) > POLICY_ADDRESS_MAX:
        raise InvalidInput(errors.INVALID_SENDER, detail=f"longer than {POLICY_ADDRESS_MAX} characters")
    if text == "@.":
        return text
    if text.startswith("@."):
        name = text[2:]
        if name and "." not in name:
            # a top-level domain: iRedAPD matches a sender's "@.com" too; punycode as domains are
            return "@." + domain_name("tld." + name)[len("tld."):]
        return "@." + domain_name(name)
    if text.startswith("@"):
        return "@" + domain_name(text[1:])
    if "@" in text:
        return email(text, errors.INVALID_SENDER)
    if "%" in text:
        raise InvalidInput(errors.INVALID_SENDER, detail="an IPv6 zone is never a client address")
    try:
        return client_address(text)[0]
    except ValueError:
        raise InvalidInput(errors.INVALID_SENDER, detail="not an IP address or network") from None


def client_address(text):
    """An IP address or network as Postfix hands iRedAPD the client address, and its kind:
    ``("192.0.2.1", "ip")`` or ``("2001:db8::/32", "cidr_network")``; ValueError if it is
    neither.  Python's canonical text (compressed IPv6); a network must have no host bits set
    (iRedAPD's ipaddress.ip_network() refuses others, so such a row would never match); an
    IPv6 zone (``fe80::1%eth0``) is never a client address."""
    if "%" in text:
        raise ValueError("an IPv6 zone is never a client address")
    if "/" in text:
        network = ipaddress.ip_network(text, strict=True)
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and \
                network.network_address.ipv4_mapped is not None:
            network = ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
        return str(network), "cidr_network"
    address = ipaddress.ip_address(text)
    # Postfix hands iRedAPD an IPv4 client as a.b.c.d, also on an IPv6 socket (and Python's own
    # text of ::ffff:a.b.c.d changed in 3.13): a mapped address is written as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), "ip"


def _checked_list(text, check, code, what):
    """Comma-separated values -> list (order kept, duplicates dropped); every invalid value is
    named in one refusal."""
    result, bad = [], []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = check(item)
        except InvalidInput:
            bad.append(item)
            continue
        if value not in result:
            result.append(value)
    if bad:
        raise InvalidInput(code, detail=f"not {what}: {', '.join(bad)}")
    return result


def policy_sender_list(text):
    return _checked_list(text, policy_sender, errors.INVALID_SENDER,
                         "an IP address, CIDR network, user@domain, @domain, @.domain or @.")


def domain_list(text):
    return _checked_list(text, domain_name, errors.INVALID_DOMAIN_NAME, "a domain name")
