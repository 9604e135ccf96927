"""The only place DNs and search filters are built; every value is escaped here.

Values that reach this module have already been validated (addresses and domain
names are lower-case ASCII), but we escape anyway: no input may change which
entry a DN names or what a filter matches.
"""

from ldap.dn import escape_dn_chars
from ldap.filter import escape_filter_chars


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


class DirectoryNames:
    """DNs of iRedMail's tree (iRedMail's ldap/iredmail.ldif and iRedAdmin libs/ldaplib) under the configured bases."""

    def __init__(self, basedn, admin_basedn):
        self.basedn = basedn  # o=domains,<suffix>
        self.admin_basedn = admin_basedn  # o=domainAdmins,<suffix>

    def domain(self, domain):
        return f"domainName={escape_rdn_value(domain)},{self.basedn}"

    def ou(self, domain, ou):
        return f"ou={ou},{self.domain(domain)}"

    def user(self, mail):
        return f"mail={escape_rdn_value(mail)},{self.ou(_domain_of(mail), USERS_OU)}"

    def alias(self, mail):
        return f"mail={escape_rdn_value(mail)},{self.ou(_domain_of(mail), ALIASES_OU)}"

    def mail_list(self, mail):
        return f"mail={escape_rdn_value(mail)},{self.ou(_domain_of(mail), GROUPS_OU)}"

    def list_externals(self, list_mail):
        """The entry holding a list's external members (RDN memberOfGroup)."""
        return f"memberOfGroup={escape_rdn_value(list_mail)},{self.ou(_domain_of(list_mail), EXTERNALS_OU)}"

    def admin(self, mail):
        return f"mail={escape_rdn_value(mail)},{self.admin_basedn}"


def _domain_of(mail):
    return mail.rsplit("@", 1)[1]
