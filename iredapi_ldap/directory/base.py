"""The directory as the rest of the directory layer sees it: one object per application.

``Directory`` bundles what every directory function needs: the LDAP client (one connection
per thread), the naming rules of the tree (``dn.DirectoryNames``), the server's settings
(defaults for new entries, password policy) and the per-process state of the counter
updates.  Functions in this package take it as their first argument; nothing here knows HTTP.
"""

from .connection import LdapClient
from .dn import DirectoryNames
from .limits import CounterState


class Directory:
    """One iRedMail tree: ``client`` (an ``LdapClient``), ``names``, ``settings``, ``counters``.

    The LDAP operations are passed through, so directory code reads ``directory.modify(dn, …)``.
    Per-process state lives here, not in module globals, so that two applications in one
    process (tests, a bulk importer beside a server) never share it.
    """

    __slots__ = ("client", "names", "settings", "counters", "hints")

    def __init__(self, client, names, settings):
        self.client = client
        self.names = names
        self.settings = settings
        self.counters = CounterState()
        # Answers a read path may reuse for a few seconds: {name: (monotonic time, answer)}.
        # Only for what a stale answer cannot make wrong beyond a display (directory/mlmmj_lists.py).
        self.hints = {}

    @classmethod
    def from_settings(cls, settings):
        return cls(LdapClient(settings), DirectoryNames(settings.ldap_basedn, settings.ldap_domainadmin_dn),
                   settings)

    def read(self, dn, attributes=("*",), filter_="(objectClass=*)"):
        return self.client.read(dn, attributes, filter_)

    def search(self, base, filter_, attributes=("*",), scope="subtree"):
        return self.client.search(base, filter_, attributes, scope)

    def paged_search(self, base, filter_, attributes=("*",), scope="subtree", page_size=500):
        return self.client.paged_search(base, filter_, attributes, scope, page_size)

    def paged_search_raw(self, base, filter_, attributes=("*",), scope="subtree", page_size=500):
        return self.client.paged_search_raw(base, filter_, attributes, scope, page_size)

    def add(self, dn, attributes):
        self.client.add(dn, attributes)

    def modify(self, dn, changes, assertion=None):
        # the two-argument call unless asserting: stand-ins for the client's modify in tests keep working
        if assertion is None:
            self.client.modify(dn, changes)
        else:
            self.client.modify(dn, changes, assertion=assertion)

    def delete(self, dn):
        self.client.delete(dn)

    def rename(self, dn, new_rdn, keep_old_rdn=False):
        if keep_old_rdn:
            self.client.rename(dn, new_rdn, keep_old_rdn=True)
        else:
            self.client.rename(dn, new_rdn)

    def close(self):
        self.client.close()
