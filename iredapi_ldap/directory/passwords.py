"""Passwords: hashing in iRedMail's stored ``userPassword`` formats, and iRedAdmin's policy.

What we write must verify in two places: slapd (Dovecot 2.3 on iRedMail binds as the
user, so slapd checks the hash; Debian's slapd knows ``{SSHA}``, ``{SHA}``, ``{CRYPT}``
through crypt(3), and ``{SSHA512}``/``{SHA512}`` with the pw-sha2 module) and Dovecot
itself (2.4, or ``auth_bind = no``).  So bcrypt and SHA512-crypt are stored under
``{CRYPT}``, which both understand, never under Dovecot-only ``{BLF-CRYPT}`` or
``{SHA512-CRYPT}`` (iRedAdmin libs/iredpwd.py; slapd-pw-sha2(5); Dovecot's password schemes).

Nothing here logs, and no exception carries a password or a hash.
"""

import base64
import hashlib
import os
import re
import string
from dataclasses import dataclass

import bcrypt
from passlib.hash import md5_crypt, sha512_crypt

from iredapi_ldap import errors
from iredapi_ldap.errors import InvalidInput

SALT_BYTES = 8  # as iRedAdmin and doveadm write {SSHA} / {SSHA512}
BCRYPT_COST = 12  # bcrypt.gensalt()'s default, which iRedAdmin uses
BCRYPT_MAX_BYTES = 72  # bcrypt ignores the rest; bcrypt 5 raises instead
# 5000 is crypt(3)'s and doveadm's default, written without a "rounds=" field; libpass's
# own default (656,000) costs a third of a second per hash in its pure-Python backend.
_sha512_crypt = sha512_crypt.using(rounds=5000)

# {SCHEME} -> (hashlib name, salted) for the digest-and-base64 schemes.
_DIGEST_SCHEMES = {
    "SHA": ("sha1", False),
    "SSHA": ("sha1", True),
    "SHA512": ("sha512", False),
    "SSHA512": ("sha512", True),
}
_BCRYPT_IDS = ("$2a$", "$2b$", "$2y$")
# Other names under which a crypt(3) hash arrives -> the hash ids each may carry.  We
# store all of them as {CRYPT}, which slapd verifies as well as Dovecot.  {BCRYPT} is
# iRedAdmin's scheme name, not a prefix anything verifies; {MD5} is iRedAdmin's
# md5-crypt (slapd's {MD5} digest form is not accepted).
_CRYPT_ALIASES = {
    "BCRYPT": _BCRYPT_IDS,
    "BLF-CRYPT": _BCRYPT_IDS,
    "SHA512-CRYPT": ("$6$",),
    "MD5": ("$1$",),
    "MD5-CRYPT": ("$1$",),
}


def _prefixed(scheme, body):
    return "{" + scheme + "}" + body


# -- hashing ---------------------------------------------------------------------------

def _digest_hash(scheme, plain):
    algorithm, salted = _DIGEST_SCHEMES[scheme]
    salt = os.urandom(SALT_BYTES) if salted else b""
    digest = hashlib.new(algorithm, plain.encode() + salt).digest()
    return _prefixed(scheme, base64.b64encode(digest + salt).decode())


def _bcrypt_hash(plain):
    secret = plain.encode()
    if len(secret) > BCRYPT_MAX_BYTES:
        # Truncating would let every password sharing the first 72 bytes log in.
        raise InvalidInput(
            errors.PW_GREATER_THAN_MAX_LENGTH, param="password",
            detail=f"the BCRYPT scheme takes at most {BCRYPT_MAX_BYTES} bytes (UTF-8) of a password",
        )
    # $2y$ is what doveadm writes; crypt(3), slapd and Dovecot all read it.
    salt = bcrypt.gensalt(BCRYPT_COST).replace(b"$2b$", b"$2y$", 1)
    return "{CRYPT}" + bcrypt.hashpw(secret, salt).decode()


_HASHERS = {
    "SSHA512": lambda plain: _digest_hash("SSHA512", plain),
    "SSHA": lambda plain: _digest_hash("SSHA", plain),
    "SHA512": lambda plain: _digest_hash("SHA512", plain),
    "BCRYPT": _bcrypt_hash,
    "SHA512-CRYPT": lambda plain: "{CRYPT}" + _sha512_crypt.hash(plain),
    "MD5": lambda plain: "{CRYPT}" + md5_crypt.hash(plain),
    "PLAIN-MD5": lambda plain: "{PLAIN-MD5}" + hashlib.md5(plain.encode()).hexdigest(),
    "PLAIN": lambda plain: "{PLAIN}" + plain,
}
PASSWORD_SCHEMES = tuple(_HASHERS)


def hash_password(plain, scheme="SSHA512"):
    """The ``userPassword`` value for ``plain`` in ``scheme`` (a name of
    ``PASSWORD_SCHEMES``, any case)."""
    hasher = _HASHERS.get(str(scheme).upper())
    if hasher is None:
        raise InvalidInput(errors.INVALID_PASSWORD_SCHEME, detail="supported schemes: " + ", ".join(PASSWORD_SCHEMES))
    return hasher(plain)


# -- verifying -------------------------------------------------------------------------

def _split_scheme(stored):
    """``{scheme}body`` -> (SCHEME, body); (None, stored) without a prefix."""
    if stored.startswith("{") and "}" in stored:
        scheme, body = stored[1:].split("}", 1)
        return scheme.upper(), body
    return None, stored


# -- ready-made hashes (the API's password_hash) ----------------------------------------

PASSWORD_HASH_MAX_LENGTH = 1024
# iRedAdmin's accepted prefixes (is_supported_password_scheme) plus BLF-CRYPT, which
# iRedMail's installer writes, and Dovecot's ARGON2I/ARGON2ID, for imports.  PLAIN-MD5,
# CRAM-MD5, NTLM and ARGON2* verify only where Dovecot checks passwords itself (not with
# Dovecot 2.3's auth_bind); that is the importer's choice, as it is in iRedAdmin.
_STORED_AS_GIVEN = (
    "PLAIN", "CRYPT", "PLAIN-MD5", "SHA", "SSHA", "SHA512", "SSHA512",
    "CRAM-MD5", "NTLM", "ARGON2I", "ARGON2ID",
)
PASSWORD_HASH_SCHEMES = _STORED_AS_GIVEN + tuple(_CRYPT_ALIASES)

# What a well-formed body looks like, per scheme, so that a malformed hash (which no password
# can ever match) is refused when it is given, not found out at the user's first login.
_HASH64 = "[./0-9A-Za-z]"  # crypt(3)'s alphabet
_CRYPT_FORM = re.compile("|".join(f"(?:{form})" for form in (
    # crypt(5) of libxcrypt, as on Debian: md5-crypt, sha256-crypt, sha512-crypt, bcrypt (cost 4-31),
    # yescrypt (Debian's default for /etc/shadow).
    rf"\$1\${_HASH64}{{0,8}}\${_HASH64}{{22}}",
    rf"\$5\$(rounds=[0-9]{{1,9}}\$)?{_HASH64}{{0,16}}\${_HASH64}{{43}}",
    rf"\$6\$(rounds=[0-9]{{1,9}}\$)?{_HASH64}{{0,16}}\${_HASH64}{{86}}",
    rf"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\${_HASH64}{{53}}",
    rf"\$y\${_HASH64}+\${_HASH64}*\${_HASH64}{{43}}",
)))
_DES_CRYPT = re.compile(f"{_HASH64}{{13}}")  # traditional crypt(3): 2 salt + 11 hash characters
_HEX_DIGESTS = {"PLAIN-MD5": 32, "NTLM": 32, "CRAM-MD5": 64}  # hex digits (CRAM-MD5: HMAC-MD5 context)
# Dovecot's ARGON2I/ARGON2ID: the PHC string of libargon2 (version 19, or none for 1.0), unpadded
# base64 salt of at least 8 bytes and hash of at least 4 bytes (the library's minimums).
_ARGON2 = r"\$%s\$(v=(16|19)\$)?m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{6,}"
_ARGON2_FORMS = {"ARGON2I": re.compile(_ARGON2 % "argon2i"), "ARGON2ID": re.compile(_ARGON2 % "argon2id")}


def _well_formed(scheme, body):
    """Whether ``body`` has the structure ``scheme`` (a canonical name, not an alias) writes."""
    if scheme in _DIGEST_SCHEMES:
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            return False
        algorithm, salted = _DIGEST_SCHEMES[scheme]
        size = hashlib.new(algorithm).digest_size
        return len(raw) > size if salted else len(raw) == size
    if scheme == "CRYPT":
        return bool(_CRYPT_FORM.fullmatch(body) or _DES_CRYPT.fullmatch(body))
    if scheme in _HEX_DIGESTS:
        return bool(re.fullmatch(f"[0-9a-fA-F]{{{_HEX_DIGESTS[scheme]}}}", body))
    if scheme in _ARGON2_FORMS:
        return bool(_ARGON2_FORMS[scheme].fullmatch(body))
    return True  # PLAIN: any printable text


_EXPECTED = {
    "SHA": "base64 of a 20-byte SHA-1 digest", "SSHA": "base64 of a 20-byte SHA-1 digest and a salt",
    "SHA512": "base64 of a 64-byte SHA-512 digest", "SSHA512": "base64 of a 64-byte SHA-512 digest and a salt",
    "CRYPT": "a crypt(3) hash ($1$, $5$, $6$, $2a$/$2b$/$2y$, $y$ or traditional DES)",
    "PLAIN-MD5": "32 hex digits", "NTLM": "32 hex digits", "CRAM-MD5": "64 hex digits",
    "ARGON2I": "an $argon2i$ PHC string", "ARGON2ID": "an $argon2id$ PHC string",
}


def check_password_hash(value):
    """The ``userPassword`` value to store for an API ``password_hash``: a known
    ``{SCHEME}`` prefix (upper-cased; crypt(3) aliases become ``{CRYPT}``) and a
    body of the form that scheme writes, printable ASCII, at most 1024 characters in all."""
    def invalid(detail):
        return InvalidInput(errors.INVALID_PASSWORD_SCHEME, param="password_hash", detail=detail)

    if not isinstance(value, str) or not (value.isascii() and value.isprintable()):
        raise invalid("must be printable ASCII text on one line")
    if len(value) > PASSWORD_HASH_MAX_LENGTH:
        raise invalid(f"longer than {PASSWORD_HASH_MAX_LENGTH} characters")
    scheme, body = _split_scheme(value)
    if scheme not in PASSWORD_HASH_SCHEMES:
        raise invalid("must start with one of " + ", ".join(_prefixed(s, "") for s in PASSWORD_HASH_SCHEMES))
    if not body:
        raise invalid("nothing after the scheme prefix")
    if scheme in _CRYPT_ALIASES:
        if not body.startswith(_CRYPT_ALIASES[scheme]):
            raise invalid(f"a {_prefixed(scheme, '')} hash must start with " + " or ".join(_CRYPT_ALIASES[scheme]))
        scheme = "CRYPT"
    if not _well_formed(scheme, body):
        raise invalid(f"a {_prefixed(scheme, '')} hash is {_EXPECTED[scheme]}")
    return _prefixed(scheme, body)


# -- policy ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PasswordPolicy:
    """iRedAdmin's rules for a new password (``iredpwd.verify_new_password``)."""

    min_length: int
    max_length: int  # 0 = no limit
    has_letter: bool
    has_uppercase: bool
    has_number: bool
    has_special_char: bool
    special_characters: str

    @classmethod
    def from_settings(cls, settings, domain_min=None, domain_max=None):
        """The global policy, with the domain's ``accountSetting``
        ``minPasswordLength``/``maxPasswordLength`` in place of the global
        lengths where set (0 or None: not set)."""
        return cls(
            min_length=domain_min or settings.min_passwd_length,
            max_length=domain_max or settings.max_passwd_length,
            has_letter=settings.PASSWORD_HAS_LETTER,
            has_uppercase=settings.PASSWORD_HAS_UPPERCASE,
            has_number=settings.PASSWORD_HAS_NUMBER,
            has_special_char=settings.PASSWORD_HAS_SPECIAL_CHAR,
            special_characters=settings.PASSWORD_SPECIAL_CHARACTERS,
        )

    def check(self, plain):
        """Raise InvalidInput with iRedAdmin's PW_* code(s) unless ``plain`` passes."""
        def invalid(code, detail):
            return InvalidInput(code, param="password", detail=detail)

        if not plain:
            raise invalid(errors.PW_EMPTY, "the password is empty")
        if not (plain.isascii() and plain.isprintable()):
            raise invalid(errors.PW_NON_ASCII, "only printable ASCII characters (and space) are allowed")
        if len(plain) < self.min_length:
            raise invalid(errors.PW_SHORTER_THAN_MIN_LENGTH, f"at least {self.min_length} characters are required")
        if self.max_length and len(plain) > self.max_length:
            raise invalid(errors.PW_GREATER_THAN_MAX_LENGTH, f"at most {self.max_length} characters are allowed")
        # In iRedAdmin's order; every failing rule is reported, codes joined by ",".
        class_rules = (
            (self.has_letter, string.ascii_letters, errors.PW_NO_LETTER, "a letter"),
            (self.has_uppercase, string.ascii_uppercase, errors.PW_NO_UPPERCASE, "an upper-case letter"),
            (self.has_number, string.digits, errors.PW_NO_DIGIT_NUMBER, "a digit"),
            (self.has_special_char, self.special_characters, errors.PW_NO_SPECIAL_CHAR,
             "one of the special characters " + self.special_characters),
        )
        missing = [(code, words) for required, chars, code, words in class_rules
                   if required and not any(c in chars for c in plain)]
        if missing:
            raise invalid(",".join(code for code, _ in missing),
                          "the password must contain " + ", ".join(words for _, words in missing))
