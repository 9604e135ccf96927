"""Loading a domain with many users offline: LDIF from the API's own attribute builder
(``users.new_user_attributes``), ``slapadd -q`` with slapd stopped, then ``limits.recount``."""

import base64
import time

from iredapi_ldap.directory import users as userlib
from iredapi_ldap.directory.maildir import maildir_path


def _line(name, value):
    # RFC 2849 SAFE-STRING, else base64.
    if (not value or value[0] in " :<" or value[-1] == " " or not value.isascii()
            or any(ch in value for ch in "\0\r\n")):
        return f"{name}:: {base64.b64encode(value.encode()).decode()}\n"
    return f"{name}: {value}\n"


def write_users_ldif(path, directory, domain, domain_entry, count, password, quota_mb=0,
                     storage="/var/vmail/vmail1"):
    """``count`` users u0..u<count-1>@domain, shaped exactly as POST /api/user shapes them
    (the settings' password scheme, each with its own salt)."""
    started = time.monotonic()
    with open(path, "w", encoding="ascii") as out:
        for index in range(count):
            mail = f"u{index}@{domain}"
            params = {"password": password, "maildir": maildir_path(mail, storage), "cn": "Bench",
                      "preferredLanguage": "en_US", "mailQuota": quota_mb}
            out.write(_line("dn", directory.names.user(mail)))
            for name, values in userlib.new_user_attributes(directory, mail, params, domain_entry).items():
                for value in values:
                    out.write(_line(name, value))
            out.write("\n")
    return time.monotonic() - started
