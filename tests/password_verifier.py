"""Checks the hashes the API writes, independently of slapd: test-only (production never verifies a
password itself; slapd does, at the bind)."""

import base64
import hashlib
import hmac

import bcrypt
from passlib.hash import md5_crypt, sha512_crypt

_DIGESTS = {"SHA": ("sha1", False), "SSHA": ("sha1", True), "SHA512": ("sha512", False),
            "SSHA512": ("sha512", True)}
_CRYPT_NAMES = ("CRYPT", "BCRYPT", "BLF-CRYPT", "SHA512-CRYPT", "MD5", "MD5-CRYPT")


def _split(stored):
    if stored.startswith("{") and "}" in stored:
        scheme, body = stored[1:].split("}", 1)
        return scheme.upper(), body
    return None, stored


def _digest_matches(scheme, plain, body):
    algorithm, salted = _DIGESTS[scheme]
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        return False
    size = hashlib.new(algorithm).digest_size
    if len(raw) < size or (not salted and len(raw) != size):
        return False
    return hmac.compare_digest(hashlib.new(algorithm, plain.encode() + raw[size:]).digest(), raw[:size])


def _crypt_matches(plain, body):
    try:
        if body.startswith(("$2a$", "$2b$", "$2y$")):
            return bcrypt.checkpw(plain.encode(), body.encode())
        if body.startswith("$6$"):
            return sha512_crypt.verify(plain, body)
        if body.startswith("$1$"):
            return md5_crypt.verify(plain, body)
    except ValueError:
        return False
    return False


def verify_password(plain, stored):
    """Whether ``plain`` matches the stored ``userPassword`` value (str or bytes)."""
    if isinstance(stored, bytes):
        stored = stored.decode("utf-8", "replace")
    scheme, body = _split(stored)
    if scheme in _DIGESTS:
        return _digest_matches(scheme, plain, body)
    if scheme in _CRYPT_NAMES:
        return _crypt_matches(plain, body)
    if scheme == "PLAIN-MD5":
        return hmac.compare_digest(hashlib.md5(plain.encode()).hexdigest().encode(), body.lower().encode())
    if scheme == "PLAIN":
        return hmac.compare_digest(plain.encode(), body.encode())
    return False
