"""The raw baseline: for each scenario, the LDAP (and SQL) operations the API performs for
one request, issued directly with ldap3 (SAFE_SYNC, as the API uses it) or python-ldap, with
no HTTP, no validation, no serialisation.

Run by the bench as ``python -m bench.raw SPEC.json``, one process per API worker, each
with as many threads as the concurrency asks; prints its counts as JSON.

What one request does (the API's code, read and cross-checked with X-Directory-Round-Trips):

  every request with a session   SQL: SELECT the session row by the token's hash
  login              SQL: SELECT login_failures (2 keys); LDAP: read admin entry; bind;
                     SQL: DELETE the username's failures (only if there were any); INSERT session
                     + DELETE expired
  domain_create      LDAP: add domain; add ou=Users, ou=Groups, ou=Aliases, ou=Externals
  user_create        LDAP: read domain; search "address taken" (lookup_addresses); modify counters
                     (compare-and-set, re-read + retry on conflict; a process's threads take
                     turns per domain and reuse what the last one wrote, as
                     limits.adjust_counters does); add user; read the domain's status again
  user_get           LDAP: read domain; read user
  user_put_quota     LDAP: read domain; read user; modify quota counter (CAS); modify user
  alias_add_member   LDAP: read domain; read alias; search the member address; modify alias
  list_add_member    LDAP: read domain; read list; search the member address; paged search of
                     the list's membership; modify member (memberOfGroup); modify list (member)
  throttle_post      LDAP: read domain; read user; SQL: lock, UPDATE (INSERT if none), unlock
  throttle_get       LDAP: read domain; read user; SQL: SELECT the setting
"""

import contextlib
import hashlib
import json
import random
import secrets
import sqlite3
import sys
import threading
import time
import types
import zlib

from iredapi_ldap.directory import dn as dnlib
from iredapi_ldap.directory import limits as limitlib
from iredapi_ldap.directory import users as userlib
from iredapi_ldap.directory.admins import _ATTRIBUTES as ADMIN_ATTRIBUTES
from iredapi_ldap.directory.connection import Entry
from iredapi_ldap.directory.domains import COUNTERS as DOMAIN_COUNTERS
from iredapi_ldap.directory.lists import _IS_EXTERNAL, _MEMBER_ATTRIBUTES, IS_LIST
from iredapi_ldap.directory.maildir import maildir_path
from iredapi_ldap.directory.passwords import hash_password
from iredapi_ldap.directory.references import _LOOKUP_ATTRIBUTES
from iredapi_ldap.settings import build_settings

MB = 1024 * 1024
_COUNTER_LOCKS = tuple(threading.Lock() for _ in range(64))
_LAST_WRITTEN = [None] * len(_COUNTER_LOCKS)  # as limits._LAST_WRITTEN
_SQLITE_WRITER = threading.Lock()  # store.engine: a process's SQLite writers queue in turn
SUCCESS, NO_SUCH_ATTRIBUTE, VALUE_EXISTS, NO_SUCH_OBJECT = 0, 16, 20, 32
# users.new_user_attributes reads the server's defaults from a Directory's settings; the raw
# client passes every value it would take from there.
_SHAPER = types.SimpleNamespace(settings=build_settings({}))


class RawError(Exception):
    pass


# -- LDAP clients with one interface ---------------------------------------------------------


class Ldap3Client:
    """ldap3 SAFE_SYNC, one connection per thread, as the API's LdapClient opens it."""

    def __init__(self, uri, bind_dn, password):
        import ldap3

        self.ldap3 = ldap3
        self.server = ldap3.Server(uri, get_info=ldap3.NONE)
        self.conn = self._connection(bind_dn, password)
        self.auth = self._connection(None, None, bind=False)
        self.ops = 0
        self._ops = {"add": ldap3.MODIFY_ADD, "delete": ldap3.MODIFY_DELETE, "replace": ldap3.MODIFY_REPLACE}

    def _connection(self, user, password, bind=True):
        conn = self.ldap3.Connection(self.server, user=user, password=password,
                                     client_strategy=self.ldap3.SAFE_SYNC, raise_exceptions=False,
                                     return_empty_attributes=False, auto_referrals=False)
        conn.open()
        if bind and not conn.bind()[0]:
            raise RawError("bind failed")
        return conn

    def read(self, dn, attributes, filter_="(objectClass=*)"):
        self.ops += 1
        status, result, response, _ = self.conn.search(dn, filter_, search_scope=self.ldap3.BASE,
                                                       attributes=list(attributes))
        if result["result"] == NO_SUCH_OBJECT:
            return None
        _ok(result["result"], dn)
        for item in response:
            if item.get("type") == "searchResEntry":
                return item["raw_attributes"]
        return None

    def search(self, base, filter_, attributes, scope="subtree", paged=False):
        self.ops += 1
        scope = {"one": self.ldap3.LEVEL, "subtree": self.ldap3.SUBTREE}[scope]
        extra = {"paged_size": 500} if paged else {}
        status, result, response, _ = self.conn.search(base, filter_, search_scope=scope,
                                                       attributes=list(attributes), **extra)
        _ok(result["result"], base)
        return [(i["dn"], i["raw_attributes"]) for i in response if i.get("type") == "searchResEntry"]

    def add(self, dn, attributes):
        self.ops += 1
        status, result, _, _ = self.conn.add(dn, attributes=attributes)
        return result["result"]

    def modify(self, dn, changes):
        """``changes``: [(op, attribute, [values])], op in add/delete/replace."""
        self.ops += 1
        modification = {}
        for op, attribute, values in changes:
            modification.setdefault(attribute, []).append((self._ops[op], values))
        status, result, _, _ = self.conn.modify(dn, modification)
        return result["result"]

    def bind(self, dn, password):
        self.ops += 1
        status, result, _, _ = self.auth.rebind(user=dn, password=password)
        return bool(status)


class PythonLdapClient:
    """python-ldap (libldap, releases the GIL), one connection per thread."""

    def __init__(self, uri, bind_dn, password):
        import ldap
        from ldap.controls import SimplePagedResultsControl

        self.ldap = ldap
        self.paged_control = SimplePagedResultsControl
        self.conn = self._connection(uri)
        self.conn.simple_bind_s(bind_dn, password)
        self.auth = self._connection(uri)
        self.ops = 0
        self._ops = {"add": ldap.MOD_ADD, "delete": ldap.MOD_DELETE, "replace": ldap.MOD_REPLACE}

    def _connection(self, uri):
        conn = self.ldap.initialize(uri)
        conn.set_option(self.ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(self.ldap.OPT_REFERRALS, 0)
        return conn

    def read(self, dn, attributes, filter_="(objectClass=*)"):
        self.ops += 1
        try:
            found = self.conn.search_ext_s(dn, self.ldap.SCOPE_BASE, filter_, list(attributes))
        except self.ldap.NO_SUCH_OBJECT:
            return None
        return found[0][1] if found else None

    def search(self, base, filter_, attributes, scope="subtree", paged=False):
        self.ops += 1
        scope = {"one": self.ldap.SCOPE_ONELEVEL, "subtree": self.ldap.SCOPE_SUBTREE}[scope]
        controls = [self.paged_control(True, size=500, cookie="")] if paged else None
        msgid = self.conn.search_ext(base, scope, filter_, list(attributes), serverctrls=controls)
        _, data, _, _ = self.conn.result3(msgid)
        return [(dn, attrs) for dn, attrs in data if dn]

    def add(self, dn, attributes):
        self.ops += 1
        modlist = [(name, [v.encode() for v in values]) for name, values in attributes.items()]
        return self._result(self.conn.add_ext_s, dn, modlist)

    def modify(self, dn, changes):
        self.ops += 1
        modlist = [(self._ops[op], attribute, [v.encode() for v in values]) for op, attribute, values in changes]
        return self._result(self.conn.modify_ext_s, dn, modlist)

    def _result(self, call, *args):
        try:
            call(*args)
            return SUCCESS
        except self.ldap.LDAPError as exc:
            info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            return info.get("result", -1)

    def bind(self, dn, password):
        self.ops += 1
        try:
            self.auth.simple_bind_s(dn, password)
            return True
        except self.ldap.INVALID_CREDENTIALS:
            return False


def _ok(code, dn):
    if code != SUCCESS:
        raise RawError(f"LDAP result {code} on {dn}")


def _first(attributes, name):
    for key, values in attributes.items():
        if key.lower() == name.lower() and values:
            value = values[0]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


# -- SQL, with the DB-API driver directly -----------------------------------------------------


class Sql:
    """The statements the API sends, through sqlite3 or PyMySQL without SQLAlchemy."""

    def __init__(self, spec):
        self.kind = spec["sql"]
        self.id_hash = spec["id_hash"]
        if self.kind == "sqlite":
            self.admin = sqlite3.connect(spec["sqlite_admin"], timeout=5, isolation_level=None)
            self.apd = sqlite3.connect(spec["sqlite_apd"], timeout=5, isolation_level=None)
            self.mark = "?"
            self.key = '"key"'
        else:
            import pymysql
            from pymysql.constants import CLIENT

            def connect(db):
                conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=db, autocommit=True,
                                       client_flag=CLIENT.FOUND_ROWS)
                conn.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                return conn

            self.admin = connect(spec["mysql_admin_db"])
            self.apd = connect(spec["mysql_apd_db"])
            self.mark = "%s"
            self.key = "`key`"
        self.statements = 0

    def _run(self, conn, sql, params=()):
        self.statements += 1
        cursor = conn.cursor()
        cursor.execute(sql.replace("?", self.mark), params)
        return cursor

    def _begin(self, conn):
        self._run(conn, "BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")

    def _writing(self):
        return _SQLITE_WRITER if self.kind == "sqlite" else contextlib.nullcontext()

    def session(self):
        row = self._run(self.admin, "SELECT * FROM api_sessions WHERE id_hash = ?", (self.id_hash,)).fetchone()
        if row is None:
            raise RawError("no session")

    def login_failures(self, keys):
        return self._run(self.admin, f"SELECT * FROM login_failures WHERE {self.key} IN (?, ?)", keys).fetchall()

    def login_clear(self, key):
        with self._writing():
            self._run(self.admin, f"DELETE FROM login_failures WHERE {self.key} = ?", (key,))

    def create_session(self, username, dn):
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._writing():
            self._begin(self.admin)
            self._run(self.admin, "INSERT INTO api_sessions (id_hash, username, admin_dn, is_global_admin, "
                                  "created_at, last_seen, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (hashlib.sha256(token.encode()).hexdigest(), username, dn, 1, now, now, now))
            self._run(self.admin, "DELETE FROM api_sessions WHERE last_seen < ?", (now - 1800,))
            self._run(self.admin, "COMMIT")

    def throttle_get(self, account):
        self._run(self.apd, "SELECT * FROM throttle WHERE account = ? AND kind = ? ORDER BY id LIMIT 1",
                  (account, "outbound")).fetchall()

    def throttle_set(self, account, max_msgs):
        with self._writing():
            self._throttle_set(account, max_msgs)

    def _throttle_set(self, account, max_msgs):
        lock = f"iredapi-ldap throttle outbound {account}"
        self._begin(self.apd)
        if self.kind != "sqlite":
            self._run(self.apd, "SELECT GET_LOCK(SHA1(?), 5)", (lock,)).fetchall()
        values = (60, 3600, 0, max_msgs, 0, 0, account, "outbound")
        cursor = self._run(self.apd, "UPDATE throttle SET priority = ?, period = ?, msg_size = ?, max_msgs = ?, "
                                     "max_quota = ?, max_rcpts = ? WHERE account = ? AND kind = ?", values)
        if not cursor.rowcount:
            self._run(self.apd, "INSERT INTO throttle (priority, period, msg_size, max_msgs, max_quota, max_rcpts, "
                                "account, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        self._run(self.apd, "COMMIT")
        if self.kind != "sqlite":
            self._run(self.apd, "SELECT RELEASE_LOCK(SHA1(?))", (lock,)).fetchall()


# -- one request of each scenario ----------------------------------------------------------------


class Work:
    def __init__(self, spec, ldap, sql):
        self.spec = spec
        self.ldap = ldap
        self.sql = sql
        self.names = dnlib.DirectoryNames(spec["basedn"], spec["admin_basedn"])
        self.domain = spec["domain"]
        self.count = spec["count"]
        self.prefix = spec["prefix"]
        self.password_hash = hash_password(spec["user_password"], "SSHA512")

    def spread(self, n):
        return (n * 7919) % self.count

    def _read_domain(self, domain, attributes=limitlib.DOMAIN_ATTRIBUTES):
        self.domain_asked_at = time.monotonic()  # as Entry.read_at
        entry = self.ldap.read(self.names.domain(domain), attributes, dnlib.eq("objectClass", "mailDomain"))
        if entry is None:
            raise RawError(f"no domain {domain}")
        return entry

    def _adjust(self, domain, entry, deltas):
        """limits.adjust_counters: the process's threads take turns per domain, comparing against
        what the process last wrote when that is newer than the read, compare-and-set, re-read and
        retry on conflict."""
        stripe = zlib.crc32(domain.encode()) % len(_COUNTER_LOCKS)
        with _COUNTER_LOCKS[stripe]:
            known = None
            last = _LAST_WRITTEN[stripe]
            if (last is not None and last[0] == domain and last[2] > self.domain_asked_at
                    and set(deltas) <= set(last[1])):
                known = last[1]
            self._adjust_locked(domain, entry, deltas, known, stripe)

    def _adjust_locked(self, domain, entry, deltas, known, stripe):
        give_up_at = time.monotonic() + 10  # as limits._CONTENTION_SECONDS
        for attempt in range(1000):
            if attempt and entry is None and time.monotonic() > give_up_at:
                break
            if entry is None:
                entry = self._read_domain(domain)
                known = None
            current = {counter: known[counter] if known else int(_first(entry, counter)) for counter in deltas}
            changes = []
            for counter, delta in deltas.items():
                if delta:
                    changes += [("delete", counter, [str(current[counter])]),
                                ("add", counter, [str(current[counter] + delta)])]
            if not changes:
                return
            code = self.ldap.modify(self.names.domain(domain), changes)
            if code == SUCCESS:
                written = {counter: current[counter] + delta for counter, delta in deltas.items()}
                last = _LAST_WRITTEN[stripe]
                _LAST_WRITTEN[stripe] = (domain, {**last[1], **written} if last and last[0] == domain else written,
                                         time.monotonic())
                return
            if code not in (NO_SUCH_ATTRIBUTE, VALUE_EXISTS):
                raise RawError(f"counter modify: {code}")
            entry = None
            time.sleep(random.uniform(0, min(0.002 * attempt, 0.02)))
        raise RawError("counters kept changing")

    # scenarios

    def login(self, n):
        username = self.spec["admin"]
        keys = ("ip:127.0.0.1", f"user:{username}")
        recorded = self.sql.login_failures(keys)
        dn = self.names.admin(username)
        entry = self.ldap.read(dn, ADMIN_ATTRIBUTES, dnlib.eq("objectClass", "mailAdmin"))
        if entry is None or not self.ldap.bind(dn, self.spec["admin_password"]):
            raise RawError("login failed")
        if recorded:  # as the API: the username's failures are deleted only when there are some
            self.sql.login_clear(keys[1])
        self.sql.create_session(username, dn)

    def domain_create(self, n):
        self.sql.session()
        domain = f"{self.prefix}n{n}.bench"
        attributes = {"objectClass": ["mailDomain"], "domainName": [domain], "mtaTransport": ["dovecot"],
                      "enabledService": ["mail"], "accountStatus": ["active"],
                      **{name: [value] for name, value in DOMAIN_COUNTERS.items()}, "cn": ["bench"]}
        _ok(self.ldap.add(self.names.domain(domain), attributes), domain)
        for ou in dnlib.DOMAIN_OUS:
            _ok(self.ldap.add(self.names.ou(domain, ou), {"objectClass": ["top", "organizationalUnit"], "ou": [ou]}),
                ou)

    def user_create(self, n):
        self.sql.session()
        mail = f"{self.prefix}n{n}@{self.domain}"
        entry = self._read_domain(self.domain)
        if any(dn.lower().startswith("mail=") for dn, _ in self._lookup(mail)):
            raise RawError("address taken")
        self._adjust(self.domain, entry, {limitlib.USERS: 1})
        values = {"password_hash": self.password_hash, "cn": "Bench", "preferredLanguage": "en_US",
                  "maildir": maildir_path(mail, "/var/vmail/vmail1")}
        attributes = userlib.new_user_attributes(_SHAPER, mail, values, Entry(self.names.domain(self.domain), entry))
        _ok(self.ldap.add(self.names.user(mail), attributes), mail)
        # as entries.add_account_entry: an alias address that raced the add
        self.ldap.search(self.names.basedn, dnlib.all_of(dnlib.ACCOUNT_CLASSES, dnlib.eq("shadowAddress", mail)),
                         ["1.1"])
        self._read_domain(self.domain)  # as domains.settle_domain_status

    def user_get(self, n):
        self.sql.session()
        self._read_domain(self.domain)
        mail = f"u{self.spread(n)}@{self.domain}"
        if self.ldap.read(self.names.user(mail), ["*"], dnlib.eq("objectClass", "mailUser")) is None:
            raise RawError(f"no user {mail}")
        # as users.memberships (Pro's computed keys; the Dovecot SQL reads are not mirrored)
        self.ldap.search(self.names.basedn, dnlib.any_of(
            dnlib.all_of(dnlib.eq("objectClass", "mailDomain"), dnlib.eq("domainAdmin", mail)),
            dnlib.all_of(dnlib.eq("objectClass", "mailAlias"), dnlib.eq("mailForwardingAddress", mail)),
            dnlib.all_of(dnlib.eq("objectClass", "mailList"), dnlib.eq("member", self.names.user(mail)))),
            ["objectClass", "domainName", "mail"])

    def user_put_quota(self, n):
        self.sql.session()
        entry = self._read_domain(self.domain)
        mail = f"u{self.spread(n)}@{self.domain}"
        new = (1 + n) * MB
        for _ in range(20):  # as users.update_user: another request changed the quota: give back, retry
            user = self.ldap.read(self.names.user(mail), ["*"], dnlib.eq("objectClass", "mailUser"))
            old = int(_first(user, "mailQuota") or 0)
            self._adjust(self.domain, entry, {limitlib.QUOTA_BYTES: new - old})
            entry = None
            changes = ([("delete", "mailQuota", [str(old)])] if old else []) + [("add", "mailQuota", [str(new)])]
            code = self.ldap.modify(self.names.user(mail), changes)
            if code != NO_SUCH_ATTRIBUTE:
                return _ok(code, mail)
            self._adjust(self.domain, None, {limitlib.QUOTA_BYTES: old - new})
        raise RawError(f"{mail} kept changing")

    def _lookup(self, address):
        """references.lookup_addresses for one address: accounts using it, hosted domain."""
        domain = address.rsplit("@", 1)[1]
        accounts = dnlib.all_of(dnlib.ACCOUNT_CLASSES, dnlib.any_of(
            *(dnlib.eq(attribute, address) for attribute in ("mail", "shadowAddress"))))
        hosted = dnlib.all_of(
            dnlib.eq("objectClass", "mailDomain"), dnlib.negate(dnlib.eq("domainBackupMX", "yes")),
            dnlib.any_of(*(dnlib.eq(attribute, domain) for attribute in ("domainName", "domainAliasName"))))
        return self.ldap.search(self.names.basedn, dnlib.any_of(accounts, hosted), _LOOKUP_ATTRIBUTES)

    def alias_add_member(self, n):
        self.sql.session()
        self._read_domain(self.domain)
        mail = f"a{n % self.spec['aliases']}@{self.domain}"
        if self.ldap.read(self.names.alias(mail), ["*"], dnlib.eq("objectClass", "mailAlias")) is None:
            raise RawError(f"no alias {mail}")
        member = f"{self.prefix}m{n}@{self.spec['external']}"
        self._lookup(member)
        _ok(self.ldap.modify(self.names.alias(mail), [("add", "mailForwardingAddress", [member])]), mail)

    def list_add_member(self, n):
        self.sql.session()
        lists, users = self.spec["lists"], self.spec["users"]
        self._read_domain(self.domain)
        mail = f"l{n % lists}@{self.domain}"
        if self.ldap.read(self.names.mail_list(mail), ["*"], IS_LIST) is None:
            raise RawError(f"no list {mail}")
        member = f"u{(n // lists) % users}@{self.domain}"
        found = [dn for dn, attrs in self._lookup(member) if dn.lower().startswith("mail=")]
        if not found:
            raise RawError(f"no member {member}")
        membership = dnlib.all_of(dnlib.eq("memberOfGroup", mail), dnlib.any_of(dnlib.ACCOUNT_CLASSES, _IS_EXTERNAL))
        self.ldap.search(self.names.basedn, membership, _MEMBER_ATTRIBUTES, paged=True)
        _ok(self.ldap.modify(found[0], [("add", "memberOfGroup", [mail])]), found[0])
        _ok(self.ldap.modify(self.names.mail_list(mail), [("add", "member", [found[0]])]), mail)

    def _throttle_target(self, n):
        mail = f"u{n % self.spec['users']}@{self.domain}"
        self._read_domain(self.domain, ["domainAdmin"])
        if self.ldap.read(self.names.user(mail), ["1.1"], dnlib.eq("objectClass", "mailUser")) is None:
            raise RawError(f"no user {mail}")
        return mail

    def throttle_post(self, n):
        self.sql.session()
        self.sql.throttle_set(self._throttle_target(n), 100 + n)

    def throttle_get(self, n):
        self.sql.session()
        self.sql.throttle_get(self._throttle_target(n))


# -- the driver --------------------------------------------------------------------------------


CLIENTS = {"ldap3": Ldap3Client, "python-ldap": PythonLdapClient}


def run(spec):
    """Threads x closed loop of one scenario until the deadline; counts, latencies, ops."""
    threads = spec["threads"]
    start_at, end_at = spec["start_at"], spec["start_at"] + spec["duration"]
    results = [None] * threads
    ready = threading.Barrier(threads + 1)

    def worker(slot):
        out = {"latencies_ms": [], "errors": 0, "rt": {}, "sql": 0, "last_n": 0, "error_samples": []}
        results[slot] = out
        try:
            ldap = CLIENTS[spec["lib"]](spec["ldap_uri"], spec["bind_dn"], spec["bind_password"])
            sql = Sql(spec)
            work = Work(spec, ldap, sql)
            operation = getattr(work, spec["op"])
        except Exception as exc:  # cannot even start: every request is an error
            out["error_samples"].append(f"setup: {exc!r}")
            ready.wait()
            return
        ready.wait()
        time.sleep(max(0.0, start_at - time.time()))
        stride = spec["stride"]
        index = spec["slot_base"] + slot
        for i in range(spec["max_requests"]):
            if time.time() >= end_at:
                break
            n = spec["n_base"] + i * stride + index
            out["last_n"] = n
            ops_before, sql_before = ldap.ops, sql.statements
            t0 = time.perf_counter()
            try:
                operation(n)
            except Exception as exc:
                out["errors"] += 1
                if len(out["error_samples"]) < 3:
                    out["error_samples"].append(repr(exc)[:300])
                continue
            out["latencies_ms"].append((time.perf_counter() - t0) * 1000.0)
            ops = str(ldap.ops - ops_before)
            out["rt"][ops] = out["rt"].get(ops, 0) + 1
            out["sql"] += sql.statements - sql_before

    pool = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    for thread in pool:
        thread.join(spec["duration"] + 60)
    merged = {"requests": 0, "errors": 0, "rt": {}, "sql_statements": 0, "last_n": 0, "latencies_ms": [],
              "error_samples": []}
    for out in results:
        merged["requests"] += len(out["latencies_ms"])
        merged["errors"] += out["errors"]
        merged["latencies_ms"] += out["latencies_ms"]
        merged["sql_statements"] += out["sql"]
        merged["last_n"] = max(merged["last_n"], out["last_n"])
        merged["error_samples"] += out["error_samples"]
        for key, value in out["rt"].items():
            merged["rt"][key] = merged["rt"].get(key, 0) + value
    return merged


def main(argv):
    with open(argv[0]) as handle:
        spec = json.load(handle)
    json.dump(run(spec), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
