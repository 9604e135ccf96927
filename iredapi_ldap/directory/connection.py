"""LDAP connections: one bound ldap3 connection per thread, opened lazily.

Connections are never opened at import and never shared across a fork: each
thread of each gunicorn worker opens its own on first use (ldap3's SYNC
strategies are not safe to share, stack.md §2.2).  Every operation counts as one
directory round trip; the web layer reports the count per request.
"""

import logging
import os
import ssl
import threading
from urllib.parse import unquote

import ldap3
from ldap3.core import exceptions as ldap3_exceptions

from .. import errors

log = logging.getLogger(__name__)

# LDAP result codes we act on (RFC 4511 and extensions).
SUCCESS = 0
NO_SUCH_ATTRIBUTE = 16
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
UNWILLING_TO_PERFORM = 53
NOT_ALLOWED_ON_NON_LEAF = 66
ENTRY_ALREADY_EXISTS = 68
ASSERTION_FAILED = 122

_DISCONNECTS = (
    ldap3_exceptions.LDAPSocketOpenError,
    ldap3_exceptions.LDAPSocketReceiveError,
    ldap3_exceptions.LDAPSocketSendError,
    ldap3_exceptions.LDAPSessionTerminatedByServerError,
    ldap3_exceptions.LDAPResponseTimeoutError,
    ldap3_exceptions.LDAPSocketCloseError,
    ldap3_exceptions.LDAPStartTLSError,
)


class LdapOperationError(Exception):
    """slapd answered an operation with a result code other than success."""

    def __init__(self, result, message, dn):
        super().__init__(f"LDAP result {result} ({message}) on {dn!r}")
        self.result = result
        self.message = message
        self.dn = dn


class Entry:
    """An entry's attributes, looked up case-insensitively, values as str."""

    __slots__ = ("dn", "_attrs")

    def __init__(self, dn, raw_attributes):
        self.dn = dn
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
    """Per-thread ldap3 connections to one directory, bound as ``ldap_bind_dn``."""

    def __init__(self, settings):
        self._uri = _strip_trailing_slash(settings.ldap_uri)
        self._bind_dn = settings.ldap_bind_dn
        self._bind_password = settings.ldap_bind_password
        self._starttls = settings.ldap_starttls
        self._timeout = settings.ldap_timeout
        self._tls = None
        if self._uri.startswith("ldaps://") or self._starttls:
            self._tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if settings.ldap_tls_verify else ssl.CERT_NONE,
                ca_certs_file=settings.ldap_tls_ca_file,
            )
        self._state = _ThreadState()

    # -- connections ------------------------------------------------------

    def _server(self):
        # One Server per connection: a shared Server with schema info is not
        # thread-safe in ldap3 2.9 (stack.md §2.2); we ask for no info at all.
        return _server_for(self._uri, self._tls, self._timeout)

    def _open(self, user=None, password=None, bind=True):
        conn = ldap3.Connection(
            self._server(),
            user=user,
            password=password,
            client_strategy=ldap3.SAFE_SYNC,
            receive_timeout=self._timeout,
            raise_exceptions=False,
            return_empty_attributes=False,
            read_only=False,
            auto_referrals=False,
        )
        conn.open()
        if self._starttls:
            conn.start_tls()
        if bind:
            status, result, _, _ = conn.bind()
            if not status:
                conn.unbind()
                log.error("binding as %s failed: %s", user, result.get("description"))
                raise errors.BackendUnavailable(errors.SERVER_DOWN, detail="cannot bind to the directory")
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
                raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=str(exc)) from exc
        return state.connection

    def _drop_connection(self):
        state = self._state
        if state.connection is not None:
            try:
                state.connection.unbind()
            except Exception:  # already broken; nothing to release
                pass
        state.connection = None

    def close(self):
        self._drop_connection()
        if self._state.auth_connection is not None:
            try:
                self._state.auth_connection.unbind()
            except Exception:
                pass
            self._state.auth_connection = None

    # -- round trips --------------------------------------------------------

    def reset_round_trips(self):
        self._state.round_trips = 0

    @property
    def round_trips(self):
        return self._state.round_trips

    def _call(self, operation, *args, **kwargs):
        """Run one operation; reconnect once if the connection went away."""
        for attempt in (1, 2):
            conn = self.connection()
            self._state.round_trips += 1
            try:
                return getattr(conn, operation)(*args, **kwargs)
            except _DISCONNECTS as exc:
                self._drop_connection()
                if attempt == 2:
                    raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=str(exc)) from exc
                log.warning("LDAP connection lost (%s); reconnecting", exc)

    # -- operations -----------------------------------------------------------

    def read(self, dn, attributes=("*",), filter_="(objectClass=*)", controls=None):
        """The entry at ``dn`` if it exists and matches ``filter_``, else None."""
        status, result, response, _ = self._call(
            "search", dn, filter_, search_scope=ldap3.BASE, attributes=list(attributes), controls=controls
        )
        if result["result"] == NO_SUCH_OBJECT:
            return None
        _check(result, dn)
        for item in response:
            if item.get("type") == "searchResEntry":
                return Entry(item["dn"], item["raw_attributes"])
        return None

    def search(self, base, filter_, attributes=("*",), scope="subtree", size_limit=0):
        """All entries below ``base`` matching ``filter_`` (a list)."""
        scope = {"base": ldap3.BASE, "one": ldap3.LEVEL, "subtree": ldap3.SUBTREE}[scope]
        status, result, response, _ = self._call(
            "search", base, filter_, search_scope=scope, attributes=list(attributes), size_limit=size_limit
        )
        if result["result"] == NO_SUCH_OBJECT:
            return []
        _check(result, base)
        return [Entry(i["dn"], i["raw_attributes"]) for i in response if i.get("type") == "searchResEntry"]

    def paged_search(self, base, filter_, attributes=("*",), scope="subtree", page_size=500):
        """Yield entries page by page (RFC 2696), so memory stays flat on big domains."""
        scope = {"base": ldap3.BASE, "one": ldap3.LEVEL, "subtree": ldap3.SUBTREE}[scope]
        cookie = None
        while True:
            status, result, response, _ = self._call(
                "search", base, filter_, search_scope=scope, attributes=list(attributes),
                paged_size=page_size, paged_cookie=cookie,
            )
            if result["result"] == NO_SUCH_OBJECT:
                return
            _check(result, base)
            for item in response:
                if item.get("type") == "searchResEntry":
                    yield Entry(item["dn"], item["raw_attributes"])
            cookie = (
                result.get("controls", {}).get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            )
            if not cookie:
                return

    def add(self, dn, attributes):
        status, result, _, _ = self._call("add", dn, attributes=attributes)
        _check(result, dn)

    def modify(self, dn, changes, controls=None):
        """Apply ``changes`` ({attr: [(op, values)]}) atomically to one entry."""
        status, result, _, _ = self._call("modify", dn, changes, controls=controls)
        _check(result, dn)

    def delete(self, dn):
        status, result, _, _ = self._call("delete", dn)
        _check(result, dn)

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
                status, result, _, _ = state.auth_connection.rebind(user=dn, password=password)
                return bool(status)
            except ldap3_exceptions.LDAPBindError:
                return False
            except _DISCONNECTS as exc:
                state.auth_connection = None
                if attempt == 2:
                    raise errors.BackendUnavailable(errors.SERVER_DOWN, detail=str(exc)) from exc
        return False


def _check(result, dn):
    if result["result"] != SUCCESS:
        raise LdapOperationError(result["result"], result.get("message") or result.get("description"), dn)


def _strip_trailing_slash(uri):
    # ldap3 2.9.1 rejects "ldap://host:port/" (stack.md §2.3).
    return uri.rstrip("/") if not uri.startswith("ldapi://") else uri


def _server_for(uri, tls, timeout):
    if uri.startswith("ldapi://"):
        socket_path = unquote(uri[len("ldapi://"):]) or "/var/run/slapd/ldapi"
        return ldap3.Server("ldapi://" + socket_path, get_info=ldap3.NONE, connect_timeout=timeout)
    return ldap3.Server(uri, get_info=ldap3.NONE, tls=tls, connect_timeout=timeout)


def open_external(ldapi_uri, timeout=10):
    """A connection over ldapi:// authenticated by SASL EXTERNAL (the peer's uid).

    Used by the CLI for schema and tree set-up on the LDAP server itself.
    """
    conn = ldap3.Connection(
        _server_for(ldapi_uri, None, timeout),
        authentication=ldap3.SASL,
        sasl_mechanism=ldap3.EXTERNAL,
        sasl_credentials="",
        client_strategy=ldap3.SAFE_SYNC,
        raise_exceptions=False,
        receive_timeout=timeout,
    )
    conn.open()
    status, result, _, _ = conn.bind()
    if not status:
        raise LdapOperationError(result["result"], result.get("description"), "SASL EXTERNAL")
    return conn
