"""The only place DNs and search filters are built; every value is escaped here.

Values that reach this module have already been validated (addresses and domain
names are lower-case ASCII), but we escape anyway: no input may change which
entry a DN names or what a filter matches.
"""

from ldap.dn import escape_dn_chars
from ldap.filter import escape_filter_chars

from .. import errors


def escape_rdn_value(value):
    """Escape ``value`` for use as an attribute value in an RDN (RFC 4514)."""
    if not value:
        raise ValueError("an RDN value must not be empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        # Validators reject control characters long before this; a DN with one is a bug.
        raise ValueError("control characters are not allowed in an RDN value")
    return escape_dn_chars(value)


def escape_filter_value(value):
    """Escape ``value`` for an assertion value in a search filter (RFC 4515)."""
    return escape_filter_chars(value)


# -- filters -------------------------------------------------------------------


def eq(attribute, value):
    """``(attribute=value)`` with the value escaped."""
    return f"({attribute}={escape_filter_value(value)})"


def present(attribute):
    return f"({attribute}=*)"


def ends_with(attribute, value):
    """``(attribute=*value)``: a substring filter on the value's end, escaped."""
    return f"({attribute}=*{escape_filter_value(value)})"


def in_dn(attribute, value):
    """``(attribute:dn:=value)`` (RFC 4515 extensible match): entries with ``attribute=value``
    in their DN, or as a value of their own."""
    return f"({attribute}:dn:={escape_filter_value(value)})"


def starts_with(attribute, prefix):
    """``(attribute=prefix*)`` with the prefix escaped."""
    return f"({attribute}={escape_filter_value(prefix)}*)"


def all_of(*filters):
    return "(&" + "".join(filters) + ")"


def any_of(*filters):
    return "(|" + "".join(filters) + ")"


def negate(filter_):
    return f"(!{filter_})"


# Users, aliases and lists: the objects that own an address (mail or shadowAddress).
ACCOUNT_CLASSES = any_of(eq("objectClass", "mailUser"), eq("objectClass", "mailList"), eq("objectClass", "mailAlias"))


# -- DNs ----------------------------------------------------------------------------

USERS_OU = "Users"
GROUPS_OU = "Groups"
ALIASES_OU = "Aliases"
EXTERNALS_OU = "Externals"
DOMAIN_OUS = (USERS_OU, GROUPS_OU, ALIASES_OU, EXTERNALS_OU)


# slapd's back-mdb keeps an entry's RDN twice (normalised and as given) in one record of its
# dn2id index, and LMDB caps such a record at 511 bytes: with Debian's slapd 2.5 an RDN of 245
# bytes is stored and one of 246 is refused with result 80 ("other").  Valid names can be that
# long (a 240-character domain, a 64-character local part on a 200-character domain), so a
# longer RDN is refused here, before any write, as the input error it is, not as a 500.
MAX_RDN_BYTES = 245


def rdn(attribute, value, code=errors.INVALID_MAIL):
    """``attribute=value`` escaped, or 400 ``code`` when slapd could not store it."""
    text = f"{attribute}={escape_rdn_value(value)}"
    if len(text.encode()) > MAX_RDN_BYTES:
        raise errors.InvalidInput(code, detail=f"{value} is too long for the directory "
                                                f"(an entry's name holds at most {MAX_RDN_BYTES} bytes)")
    return text


class DirectoryNames:
    """DNs of iRedMail's tree (iRedMail's ldap/iredmail.ldif and iRedAdmin libs/ldaplib) under the configured bases."""

    def __init__(self, basedn, admin_basedn):
        self.basedn = basedn  # o=domains,<suffix>
        self.admin_basedn = admin_basedn  # o=domainAdmins,<suffix>

    def domain(self, domain):
        return f"{rdn('domainName', domain, errors.INVALID_DOMAIN_NAME)},{self.basedn}"

    def ou(self, domain, ou):
        return f"ou={ou},{self.domain(domain)}"

    def user(self, mail):
        return f"{rdn('mail', mail)},{self.ou(_domain_of(mail), USERS_OU)}"

    def alias(self, mail):
        return f"{rdn('mail', mail)},{self.ou(_domain_of(mail), ALIASES_OU)}"

    def mail_list(self, mail):
        return f"{rdn('mail', mail)},{self.ou(_domain_of(mail), GROUPS_OU)}"

    def list_externals(self, list_mail):
        """The entry holding a list's external members (RDN memberOfGroup)."""
        return f"{rdn('memberOfGroup', list_mail)},{self.ou(_domain_of(list_mail), EXTERNALS_OU)}"

    def admin(self, mail):
        return f"{rdn('mail', mail)},{self.admin_basedn}"


def _domain_of(mail):
    return mail.rsplit("@", 1)[1]
