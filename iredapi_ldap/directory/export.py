"""LDIF export (RFC 2849) of an account or a whole domain.  No HTTP here.

Entries are read as slapd sends them (bytes, attribute names as spelled) and written with
python-ldap's ``ldif.LDIFWriter``, which base64-encodes every value (and DN) the RFC does not
allow as a plain SAFE-STRING: non-ASCII text, a leading space, colon or "<", a trailing space.
Only user attributes are exported ("*"), so ``ldapadd`` of the output into a tree without
these entries recreates them as they were (slapd sets the operational ones anew).
"""

import io

import ldif

from .. import errors
from . import dn as dnlib
from .admin_limits import LEASE_PREFIX

# What GET /api/ldif/<kind>/<name> exports: kind -> (the DN of the name, the filter its entry
# matches, the error when it is missing).
_ACCOUNT = errors.NO_SUCH_ACCOUNT
KINDS = {
    "user": (lambda names, mail: names.user(mail), dnlib.eq("objectClass", "mailUser"), _ACCOUNT),
    "alias": (lambda names, mail: names.alias(mail), dnlib.eq("objectClass", "mailAlias"), _ACCOUNT),
    "maillist": (lambda names, mail: names.mail_list(mail), dnlib.eq("objectClass", "mailList"), _ACCOUNT),
    "admin": (lambda names, mail: names.admin(mail), dnlib.eq("objectClass", "mailAdmin"), _ACCOUNT),
    # iRedMail's per-domain catch-all: mail=@<domain> under ou=Users (catchall_maps.cf queries mail=@domain)
    "catchall": (lambda names, domain: names.user("@" + domain), dnlib.eq("objectClass", "mailUser"), _ACCOUNT),
    "domain": (lambda names, domain: names.domain(domain), dnlib.eq("objectClass", "mailDomain"),
               errors.NO_SUCH_DOMAIN),
}
_HAS_CHILDREN = "hasSubordinates"  # operational (RFC 3673 asks for it by name), slapd's back-mdb answers it


def export(directory, kind, name, page_size=500):
    """Yield the LDIF of the ``kind`` entry ``name`` as text chunks: a version line, then the
    entry (for a domain, the domain entry and everything under it, parents before children,
    one page at a time).  Raises NoSuchObject before yielding anything if the entry is missing."""
    make_dn, filter_, missing = KINDS[kind]
    base = make_dn(directory.names, name)
    found = list(directory.paged_search_raw(base, filter_, ["*", _HAS_CHILDREN], scope="base"))
    if not found:
        raise errors.NoSuchObject(missing, detail=name)
    return _chunks(directory, found[0], kind == "domain", page_size)


def _exported(attribute, values):
    """The values an export carries: not a limited admin's lease (``admin_limits``), which
    belongs to the request that holds it; restored from a file, it would hold up that admin's
    creates until it expired."""
    if attribute.lower() != "accountsetting":
        return values
    prefix = LEASE_PREFIX.lower().encode()
    return [v for v in values if not v.lower().startswith(prefix)]


def _chunks(directory, first, subtree, page_size):
    buffer = io.StringIO()
    writer = ldif.LDIFWriter(buffer)
    buffer.write("version: 1\n\n")

    def drained():
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    def write(dn, attributes):
        """Write one entry; return whether it may have children."""
        flags = [v.upper() for k, values in attributes.items() if k.lower() == _HAS_CHILDREN.lower() for v in values]
        writer.unparse(dn, {k: _exported(k, v) for k, v in attributes.items() if k.lower() != _HAS_CHILDREN.lower()})
        if flags:
            return flags[0] == b"TRUE"
        # A server (or an ACL) that does not answer hasSubordinates: in iRedMail's tree the domain
        # and its ou= containers hold entries, accounts are leaves.
        return dn == first[0] or dn.lower().startswith("ou=")

    def below(dn):
        # One level at a time, a parent always before its children.  The entries with children
        # (the ou= containers) are visited once the level's search is over: slapd keeps one paged
        # search per connection, and a second one started between two pages ends the first.
        parents = []
        for child_dn, attributes in directory.paged_search_raw(dn, "(objectClass=*)", ["*", _HAS_CHILDREN],
                                                               scope="one", page_size=page_size):
            if write(child_dn, attributes):
                parents.append(child_dn)
            if buffer.tell() > 64 * 1024:
                yield drained()
        for parent in parents:
            yield drained()
            yield from below(parent)

    has_children = write(*first)
    yield drained()
    if subtree and has_children:
        yield from below(first[0])
    rest = drained()
    if rest:
        yield rest
