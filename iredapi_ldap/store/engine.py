"""SQL engines and transactions, shared by every store module.

An engine is made lazily in each process, because pooled connections must never be shared
across gunicorn's fork.  Every error that means "the database is not there" becomes
``BackendUnavailable(SQL_SERVER_DOWN)``.
"""

import contextlib
import functools
import os
import threading

import sqlalchemy as sa

from .. import errors


def create_sql_engine(url, timeout, autocommit=False):
    """An Engine for ``url`` whose connects (and MySQL reads/writes, SQLite lock waits) give up
    after ``timeout`` seconds.  ``autocommit`` (MySQL, PostgreSQL): its connections are put in
    autocommit once, when they connect, so a statement needs no COMMIT after it."""
    if timeout <= 0:
        raise ValueError("SQL timeout must be a positive number of seconds")
    url = sa.make_url(url)
    backend = url.get_backend_name()
    options = {}
    if backend in ("mysql", "mariadb"):
        connect_args = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
        # READ COMMITTED (PostgreSQL's default): under REPEATABLE READ an UPDATE that matches
        # nothing takes a gap lock, and two such transactions then deadlock on their INSERTs.
        options["isolation_level"] = "READ COMMITTED"
    elif backend == "postgresql":
        connect_args = {"connect_timeout": timeout}
    elif backend == "sqlite":
        connect_args = {"timeout": timeout}
        if url.database and url.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    else:
        raise ValueError(f"unsupported SQL backend {backend!r}")
    if autocommit and backend != "sqlite":
        # Without skip_autocommit_rollback SQLAlchemy still sends a ROLLBACK when the block ends.
        options.update(isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True)
    # Every connection is used through transaction(), whose block ends in COMMIT or ROLLBACK, so
    # the pool's own ROLLBACK on check-in (one more round trip per transaction) is not needed.
    engine = sa.create_engine(url, pool_pre_ping=True, pool_reset_on_return=None, connect_args=connect_args,
                              **options)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connected)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(dbapi_connection, _record):
    dbapi_connection.isolation_level = None  # the driver emits no BEGIN; _sqlite_begin does
    dbapi_connection.execute("PRAGMA journal_mode=WAL")  # readers and a writer in several workers
    dbapi_connection.execute("PRAGMA foreign_keys=ON")  # as MySQL and PostgreSQL enforce them


_READ_ONLY = "iredapi_read_only"


def _sqlite_begin(connection):
    # Take the file's write lock up front: a deferred transaction that has read cannot wait for
    # the lock later and fails with "database is locked".  This also serializes writers, which is
    # what transaction(lock_key=...) asks for.  A read-only transaction takes no lock: in WAL mode
    # readers neither wait for nor block anyone.
    read_only = connection.get_execution_options().get(_READ_ONLY)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def update_or_insert(conn, table, match, values):
    """UPDATE the rows of ``table`` whose columns equal ``match`` to ``values``; INSERT one if none
    matched.  Return "updated" or "created".  Run it under a transaction lock on ``match``."""
    update, insert = _upsert_statements(table, tuple(match))
    # MySQL counts matched (not changed) rows: SQLAlchemy connects with CLIENT.FOUND_ROWS.
    if conn.execute(update, {**{"match_" + name: value for name, value in match.items()}, **values}).rowcount:
        return "updated"
    conn.execute(insert, {**match, **values})
    return "created"


@functools.lru_cache(maxsize=64)
def _upsert_statements(table, match_names):
    # Built once per shape, with bound parameters: building and cache-keying a statement on
    # every request cost more than running it (bench/README.md).
    # The columns set are the executed parameters' names that are columns (SQLAlchemy's rule).
    where = sa.and_(*(table.c[name] == sa.bindparam("match_" + name) for name in match_names))
    return table.update().where(where), table.insert()


class SqlStore:
    """One SQL database: its URL, and an engine made on first use in each process."""

    def __init__(self, url, timeout):
        self.url = sa.make_url(url)
        self.timeout = timeout
        self._engines = {}  # autocommit (bool) -> Engine, made on first use
        self._engine_pid = None
        self._engine_lock = threading.Lock()
        self._parent_pools = []
        # SQLite has one write lock per file; a worker's threads queue for it here, in turn,
        # instead of in SQLite's busy handler, which sleeps up to 100 ms between tries.
        self._sqlite_writer = threading.Lock()

    def __repr__(self):
        return f"SqlStore({self.url!r})"

    @property
    def dialect_name(self):
        """"mysql" (also for MariaDB), "postgresql" or "sqlite"."""
        name = self.url.get_backend_name()
        return "mysql" if name == "mariadb" else name

    @property
    def engine(self):
        return self._engine(autocommit=False)

    def _engine(self, autocommit):
        if self._engine_pid != os.getpid() or autocommit not in self._engines:
            with self._engine_lock:
                if self._engine_pid != os.getpid():
                    for engine in self._engines.values():
                        # Inherited through fork: a new pool for this process.  The parent's
                        # connections stay referenced, so they are never closed (nor garbage
                        # collected) here: SQLite forbids touching a connection across fork.
                        self._parent_pools.append(engine.pool)
                        engine.dispose(close=False)
                    self._engine_pid = os.getpid()
                if autocommit not in self._engines:
                    self._engines[autocommit] = create_sql_engine(self.url, self.timeout, autocommit=autocommit)
        return self._engines[autocommit]

    @contextlib.contextmanager
    def transaction(self, lock_key=None, read_only=False):
        """Yield a Connection in a transaction, committed at the end of the block.

        With ``lock_key`` (a string), transactions holding the same key run one at a time; the
        lock is held until the transaction ends.  ``read_only``: the block only reads, and each of
        its statements may see the database as of its own start: on SQLite it holds no write lock
        (which every other transaction waits for), on MySQL and PostgreSQL it runs in autocommit.
        """
        sqlite = self.dialect_name == "sqlite"
        if read_only and not sqlite and lock_key is None:
            # Reads in autocommit: each statement is a transaction of its own (every caller's
            # block is one SELECT), and no COMMIT round trip follows it.
            yield from self._autocommit_block()
            return
        writer = self._sqlite_writer if sqlite and not read_only else None
        if writer is not None and not writer.acquire(timeout=self.timeout):
            raise errors.BackendUnavailable(errors.SQL_SERVER_DOWN, detail="timed out waiting for a lock")
        try:
            with self.engine.connect() as conn:
                if read_only:
                    conn.execution_options(**{_READ_ONLY: True})
                try:
                    with conn.begin():
                        if lock_key is not None:
                            self._lock(conn, lock_key)
                        yield conn
                finally:
                    if lock_key is not None and self.dialect_name == "mysql" and not conn.invalidated:
                        # Released only after COMMIT, so the next holder sees our rows.
                        conn.execute(sa.text("SELECT RELEASE_LOCK(SHA1(:key))"), {"key": lock_key})
        except sa.exc.SQLAlchemyError as exc:
            if _means_unavailable(exc):
                raise errors.BackendUnavailable(errors.SQL_SERVER_DOWN) from exc
            raise
        finally:
            if writer is not None:
                writer.release()

    def dispose(self):
        """Close this process's pooled connections (tests, and commands that are done)."""
        for engine in self._engines.values():
            engine.dispose()

    def _autocommit_block(self):
        try:
            with self._engine(autocommit=True).connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            if _means_unavailable(exc):
                raise errors.BackendUnavailable(errors.SQL_SERVER_DOWN) from exc
            raise

    def _lock(self, conn, key):
        if self.dialect_name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
        elif self.dialect_name == "mysql":
            got = conn.execute(
                sa.text("SELECT GET_LOCK(SHA1(:key), :timeout)"), {"key": key, "timeout": self.timeout}
            ).scalar()
            if got != 1:
                raise errors.BackendUnavailable(errors.SQL_SERVER_DOWN, detail="timed out waiting for a lock")
        # SQLite: BEGIN IMMEDIATE already holds the database's only write lock.


def _means_unavailable(exc):
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError))
