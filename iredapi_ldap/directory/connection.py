"""LDAP connections: one bound python-ldap connection per thread, opened lazily.

Connections are never opened at import and never shared across a fork: each
thread of each gunicorn worker opens its own on first use.  Every operation
counts as one directory round trip; the web layer reports the count per request.

Why python-ldap and not ldap3 here: profiles of the API under load spent 58% of a
worker's CPU inside ldap3 (BER encoding and decoding in pure Python, under the GIL);
python-ldap does that in libldap with the GIL released (bench/README.md has the
figures).  Changes are given in one library-neutral shape, ``{attribute: [(MODIFY_*,
values)]}``, and entries come back as ``Entry``; nothing else of python-ldap leaks out.
"""

import logging
import os
import re
import threading
import time
from urllib.parse import quote, unquote

import ldap
from ldap.controls.libldap import AssertionControl
from ldap.controls.pagedresults import SimplePagedResultsControl

from .. import errors

log = logging.getLogger(__name__)

# LDAP result codes we act on (RFC 4511 and extensions).
NO_SUCH_ATTRIBUTE = 16
CONSTRAINT_VIOLATION = 19
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
UNWILLING_TO_PERFORM = 53
NOT_ALLOWED_ON_NON_LEAF = 66
ENTRY_ALREADY_EXISTS = 68
ASSERTION_FAILED = 122

# Kinds of change in a modification ({attribute: [(kind, values)]}).
MODIFY_ADD = "MODIFY_ADD"
MODIFY_DELETE = "MODIFY_DELETE"  # no values: the whole attribute
MODIFY_REPLACE = "MODIFY_REPLACE"  # no values: remove the attribute
_MOD_OPS = {MODIFY_ADD: ldap.MOD_ADD, MODIFY_DELETE: ldap.MOD_DELETE, MODIFY_REPLACE: ldap.MOD_REPLACE}

_SCOPES = {"base": ldap.SCOPE_BASE, "one": ldap.SCOPE_ONELEVEL, "subtree": ldap.SCOPE_SUBTREE}

# The connection is gone (or never came): reconnect and try once more.
_DISCONNECTS = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)


class LdapOperationError(Exception):
    """slapd answered an operation with a result code other than success."""

    def __init__(self, result, message, dn):
        super().__init__(f"LDAP result {result} ({message}) on {dn!r}")
        self.result = result
        self.message = message
        self.dn = dn


class AddressTaken(errors.AlreadyExists, LdapOperationError):
    """slapd's unique overlay refused a write: another account holds one of its addresses.

    ALREADY_EXISTS (409) for the client; an LdapOperationError too, so directory code that
    undoes its reservations on a failed write does so before passing it on.
    """

    def __init__(self, addresses, message, dn):
        # Neither parent's __init__: each would hand the other's arguments up the MRO.
        detail = ", ".join(addresses) or None
        Exception.__init__(self, errors.ALREADY_EXISTS if detail is None else f"{errors.ALREADY_EXISTS}: {detail}")
        self.code, self.param, self.detail = errors.ALREADY_EXISTS, None, detail
        self.result, self.message, self.dn = CONSTRAINT_VIOLATION, message, dn
        self.addresses = addresses


# slapo-unique's refusal: "non-unique attributes found with <its search filter>" (OpenLDAP 2.5,
# 2.6), "some attributes not unique" (2.4).  The filter ends with (|(attr=value)...), the values written.
_UNIQUE_REFUSALS = ("non-unique attributes found", "some attributes not unique")
_FILTER_TERM = re.compile(r"\(([^()=]+)=([^()]*)\)")
_FILTER_ESCAPE = re.compile(rb"\\([0-9A-Fa-f]{2})")


def _refused_values(message):
    """The values slapo-unique found taken, from its message (unescaped), or None if it is not its message."""
    if not message.startswith(_UNIQUE_REFUSALS):
        return None
    written = message[message.rfind("(|"):] if "(|" in message else ""
    return [_FILTER_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode()).decode("utf-8", "replace")
            for _, value in _FILTER_TERM.findall(written)]


class Entry:
    """An entry's attributes, looked up case-insensitively, values as str.  ``read_at``: the
    ``time.monotonic()`` at which it was asked for; it shows no write that ended after that."""

    __slots__ = ("dn", "_attrs", "read_at")

    def __init__(self, dn, raw_attributes, read_at=None):
        self.dn = dn
        self.read_at = time.monotonic() if read_at is None else read_at
        # lower-cased name -> (name as slapd spells it, values)
        self._attrs = {
            name.lower(): (name, [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values])
            for name, values in raw_attributes.items()
            if values
        }

    def values(self, name):
        return list(self._attrs.get(name.lower(), (None, ()))[1])

    def first(self, name, default=None):
        values = self._attrs.get(name.lower(), (None, ()))[1]
        return values[0] if values else default

    def has(self, name):
        return name.lower() in self._attrs

    def has_value(self, name, value):
        value = value.lower()
        return any(v.lower() == value for v in self._attrs.get(name.lower(), (None, ()))[1])

    def as_dict(self, hidden=()):
        """{attribute: [values]} as iRedAdmin-Pro's LDAP edition returns profiles."""
        hidden = {h.lower() for h in hidden}
        return {name: list(values) for key, (name, values) in self._attrs.items() if key not in hidden}


class _ThreadState(threading.local):
    connection = None
    auth_connection = None
    pid = None
    round_trips = 0


class LdapClient:
    """Per-thread connections to one directory, bound as ``ldap_bind_dn``."""

    def __init__(self, settings):
        self._uri = libldap_uri(settings.ldap_uri)
        self._bind_dn = settings.ldap_bind_dn
        self._bind_password = settings.ldap_bind_password
        self._starttls = settings.ldap_starttls
        self._timeout = settings.ldap_timeout
        self._tls = self._uri.startswith("ldaps://") or self._starttls
        self._tls_verify = settings.ldap_tls_verify
        self._tls_ca_file = settings.ldap_tls_ca_file
        self._state = _ThreadState()

    # -- connections ------------------------------------------------------

    def _open(self, user=None, password=None, bind=True):
        conn = ldap.initialize(self._uri)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self._timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self._timeout)
        conn.timeout = self._timeout  # python-ldap's own wait for each synchronous answer
        if self._tls:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT,
                            ldap.OPT_X_TLS_DEMAND if self._tls_verify else ldap.OPT_X_TLS_NEVER)
            if self._tls_ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self._tls_ca_file)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the TLS options above
        try:
            if self._starttls:
                conn.start_tls_s()
            if bind:
                conn.simple_bind_s(user, password)
        except _DISCONNECTS:
            raise
        except ldap.LDAPError as exc:
            _unbind_quietly(conn)
            log.error("connecting or binding as %s failed: %s", user, _message(exc))
            raise errors.BackendUnavailable(errors.SERVER_DOWN, detail="cannot bind to the directory") from exc
        return conn

    def _fresh_state(self):
        state = self._state
        if state.pid != os.getpid():  # a forked child must not reuse the parent's sockets
            state.connection = state.auth_connection = None
            state.pid = os.getpid()
        return state

    def connection(self):
        state = self._fresh_state()
        if state.connection is None:
            try:
                state.connection = self._open(self._bind_dn, self._bind_password)
            except _DISCONNECTS as exc:
                raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=_message(exc)) from exc
        return state.connection

    def _drop_connection(self):
        state = self._state
        if state.connection is not None:
            _unbind_quietly(state.connection)
        state.connection = None

    def close(self):
        self._drop_connection()
        if self._state.auth_connection is not None:
            _unbind_quietly(self._state.auth_connection)
            self._state.auth_connection = None

    # -- round trips --------------------------------------------------------

    def reset_round_trips(self):
        self._state.round_trips = 0

    @property
    def round_trips(self):
        return self._state.round_trips

    def _call(self, dn, operation):
        """Run ``operation(connection)``, one round trip; reconnect once if the connection went away.

        A timeout is not retried: the operation may have been carried out.
        """
        for attempt in (1, 2):
            conn = self.connection()
            self._state.round_trips += 1
            try:
                return operation(conn)
            except _DISCONNECTS as exc:
                self._drop_connection()
                if attempt == 2:
                    raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=_message(exc)) from exc
                log.warning("LDAP connection lost (%s); reconnecting", _message(exc))
            except ldap.TIMEOUT as exc:
                self._drop_connection()  # a late answer must not meet the next request
                raise errors.BackendUnavailable(errors.SERVER_DOWN, detail="the directory did not answer") from exc
            except ldap.LDAPError as exc:
                taken = _refused_values(_message(exc)) if _result_code(exc) == CONSTRAINT_VIOLATION else None
                if taken is not None:
                    raise AddressTaken(taken, _message(exc), dn) from exc
                raise LdapOperationError(_result_code(exc), _message(exc), dn) from exc

    # -- operations -----------------------------------------------------------

    def read(self, dn, attributes=("*",), filter_="(objectClass=*)"):
        """The entry at ``dn`` if it exists and matches ``filter_``, else None."""
        found = self.search(dn, filter_, attributes, scope="base")
        return found[0] if found else None

    def search(self, base, filter_, attributes=("*",), scope="subtree"):
        """All entries below ``base`` matching ``filter_`` (a list)."""
        asked = time.monotonic()
        try:
            found = self._call(base, lambda conn: conn.search_ext_s(
                base, _SCOPES[scope], filter_, list(attributes), timeout=self._timeout))
        except LdapOperationError as exc:
            if exc.result == NO_SUCH_OBJECT:
                return []
            raise
        return [Entry(found_dn, attrs, asked) for found_dn, attrs in found if found_dn is not None]  # no referrals

    def paged_search(self, base, filter_, attributes=("*",), scope="subtree", page_size=500):
        """Yield entries page by page (RFC 2696), so memory stays flat on big domains."""
        for found_dn, attrs, asked in self._pages(base, filter_, attributes, scope, page_size):
            yield Entry(found_dn, attrs, asked)

    def paged_search_raw(self, base, filter_, attributes=("*",), scope="subtree", page_size=500):
        """As ``paged_search``, but (dn, {attribute: [bytes]}) as slapd sent them: for an export,
        which must not decode (binary values) nor lose the attribute names' spelling."""
        for found_dn, attrs, _ in self._pages(base, filter_, attributes, scope, page_size):
            yield found_dn, attrs

    def _pages(self, base, filter_, attributes, scope, page_size):
        paging = SimplePagedResultsControl(True, size=page_size, cookie="")
        while True:
            asked = time.monotonic()
            try:
                _, found, _, controls = self._call(base, lambda conn: _search_page(
                    conn, base, _SCOPES[scope], filter_, list(attributes), paging, self._timeout))
            except LdapOperationError as exc:
                if exc.result == NO_SUCH_OBJECT:
                    return
                raise
            for found_dn, attrs in found:
                if found_dn is not None:
                    yield found_dn, attrs, asked
            cookies = [c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType]
            if not cookies or not cookies[0]:
                return
            paging.cookie = cookies[0]

    def add(self, dn, attributes):
        """Add an entry: ``attributes`` is {name: value or [values]}."""
        addlist = [(name, _encode_values(values)) for name, values in attributes.items()]
        self._call(dn, lambda conn: conn.add_ext_s(dn, [(name, values) for name, values in addlist if values]))

    def modify(self, dn, changes, assertion=None):
        """Apply ``changes`` ({attr: [(MODIFY_*, values)]}) atomically to one entry; with
        ``assertion`` (a filter), only if the entry still matches it (RFC 4528), else
        ASSERTION_FAILED."""
        modlist = []
        for name, operations in changes.items():
            for kind, values in operations:
                modlist.append((_MOD_OPS[kind], name, _encode_values(values) or None))
        controls = [AssertionControl(True, assertion)] if assertion else None
        self._call(dn, lambda conn: conn.modify_ext_s(dn, modlist, serverctrls=controls))

    def delete(self, dn):
        self._call(dn, lambda conn: conn.delete_ext_s(dn))

    def rename(self, dn, new_rdn, keep_old_rdn=False):
        """Move the entry ``dn`` to ``new_rdn`` under the same parent (modrdn, RFC 4511 4.9),
        dropping the old RDN value unless ``keep_old_rdn``: one atomic operation, the entry keeps
        everything else."""
        self._call(dn, lambda conn: conn.rename_s(dn, new_rdn, None, 0 if keep_old_rdn else 1))

    def credentials_valid(self, dn, password):
        """Bind as ``dn`` on a separate per-thread connection: slapd checks its own hashes."""
        if not password:
            return False  # an empty password would be an unauthenticated bind
        state = self._fresh_state()
        for attempt in (1, 2):
            try:
                if state.auth_connection is None:
                    state.auth_connection = self._open(bind=False)
                self._state.round_trips += 1
                state.auth_connection.simple_bind_s(dn, password)
                return True
            except _DISCONNECTS + (ldap.TIMEOUT,) as exc:
                state.auth_connection = None
                if attempt == 2:
                    raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=_message(exc)) from exc
            except ldap.LDAPError:
                return False  # wrong password, no such entry, a DN slapd will not take
        return False

    def bind_once(self, dn, password):
        """Whether slapd accepts ``password`` for ``dn``: a simple bind on a connection opened for
        it and closed after it, so that no connection of ours keeps that identity (for
        verify_password; the request's connection is never rebound)."""
        if not password:
            return False  # an empty password would be an unauthenticated bind
        self._fresh_state().round_trips += 1
        conn = None
        try:
            conn = self._open(bind=False)
            conn.simple_bind_s(dn, password)
            return True
        except _DISCONNECTS + (ldap.TIMEOUT,) as exc:
            raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=_message(exc)) from exc
        except ldap.LDAPError:
            return False  # wrong password, no such entry, an entry without a password
        finally:
            if conn is not None:
                _unbind_quietly(conn)


def _search_page(conn, base, scope, filter_, attributes, paging, timeout):
    msgid = conn.search_ext(base, scope, filter_, attributes, serverctrls=[paging], timeout=timeout)
    return conn.result3(msgid, all=1, timeout=timeout)


def _encode_values(values):
    if values is None:
        return []
    if isinstance(values, (str, bytes, int)):
        values = [values]
    return [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values]


def _details(exc):
    """python-ldap's dict of an LDAPError (result, desc, info), or {}."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}


def _result_code(exc):
    return _details(exc).get("result", -1)


def _message(exc):
    details = _details(exc)
    return details.get("info") or details.get("desc") or str(exc)


def _unbind_quietly(conn):
    try:
        conn.unbind_s()
    except Exception:  # already broken; nothing to release
        pass


def libldap_uri(uri):
    """``uri`` as libldap takes it: no trailing slash, an ldapi:// socket path percent-encoded."""
    if uri.startswith("ldapi://"):
        return "ldapi://" + quote(unquote(uri[len("ldapi://"):]), safe="")
    return uri.rstrip("/")
