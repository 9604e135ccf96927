"""Maildir paths for a user's ``homeDirectory`` (iRedAdmin libs/ldaplib/iredldif.py, settings MAILDIR_*).

iRedAdmin's default style (MAILDIR_HASHED, MAILDIR_PREPEND_DOMAIN,
MAILDIR_APPEND_TIMESTAMP): ``<base>/<domain>/<c1>/<c2>/<c3>/<username>-<timestamp>/``.
The timestamp keeps a re-created user from reusing a deleted user's mail.
"""

from datetime import UTC, datetime

from iredapi_ldap.errors import INVALID_PARAMETER, InvalidInput

TIMESTAMP_FORMAT = "%Y.%m.%d.%H.%M.%S"


def maildir_path(mail, storage_base_directory, now=None):
    """The ``homeDirectory`` of a new user ``mail`` (an already validated address)
    under ``storage_base_directory``; ``now`` (UTC) defaults to the current time."""
    username, _, domain = mail.lower().partition("@")
    if not username or not domain or "/" in mail:
        # The address is validated before we get here; never build a path from a bad one.
        raise ValueError("not an e-mail address")
    # First three characters, "_"-padded for short names; "." and "~" would make odd
    # directory names ("..", "~"), so they become "_" too.
    hash_chars = ["_" if c in ".~" else c for c in username[:3].ljust(3, "_")]
    stamp = (now or datetime.now(UTC)).strftime(TIMESTAMP_FORMAT)
    parts = [storage_base_directory.rstrip("/"), domain, *hash_chars, f"{username}-{stamp}"]
    return "/".join(parts) + "/"


def check_custom_maildir(path):
    """The ``homeDirectory`` to store for the API's ``maildir`` parameter: an absolute
    path of printable ASCII (the attribute is an IA5 string) without ``.`` or ``..``
    components, lower-cased, with repeated ``/`` collapsed and one ``/`` at the end."""
    def invalid(detail):
        return InvalidInput(INVALID_PARAMETER, param="maildir", detail=detail)

    if not isinstance(path, str) or not (path.isascii() and path.isprintable()):
        raise invalid("must be printable ASCII text on one line")
    if not path.startswith("/"):
        raise invalid("must be an absolute path")
    components = [c for c in path.lower().split("/") if c]
    if not components:
        raise invalid("must name a directory below /")
    if any(c in (".", "..") for c in components):
        raise invalid("must not contain '.' or '..' components")
    return "/" + "/".join(components) + "/"
