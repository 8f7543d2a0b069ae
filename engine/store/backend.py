"""The two SQL backends of the store: SQLite (embedded default) and PostgreSQL (shared).

Both offer the same small interface, :class:`Transaction`, with ``?`` placeholders; the
PostgreSQL backend rewrites them to ``$n``. SQLite runs on one connection, its calls in a worker
thread behind a capacity limiter of one (or inline for ``:memory:`` databases, which never
block, so tests can run the engine in virtual time).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from connectors.errors import ConnectorError, TransientError
from engine.errors import StoreError
from engine.owner_only import secure_store_file
from engine.store.trips import Trips, run_each

T = TypeVar("T")
log = logging.getLogger("headrace.store")
Row = tuple[Any, ...]


class Transaction(Protocol):
    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *params: Any) -> list[Row]: ...


#: One statement of a batch: SQL, parameters, and whether the batch stops (and rolls back)
#: when the statement changes no row (a compare-and-set that lost).
Step = tuple[str, Sequence[Any], bool]


class Backend(Protocol):
    dialect: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def transaction(self) -> Any:
        """``async with backend.transaction() as tx:`` commits on exit, rolls back on error."""
        ...

    async def batch(self, steps: Sequence[Step]) -> tuple[bool, list[int]]:
        """Run ``steps`` in one transaction, in one round trip where the backend can: returns
        (committed, rows changed per step run). A guarded step that changes nothing rolls
        the whole batch back: (False, counts so far)."""
        ...

    async def query(self, sql: str, *params: Any) -> list[Row]:
        """One statement (atomic on its own: no explicit transaction): a read, or a single
        ``UPDATE ... RETURNING``."""
        ...

    async def compact(self, table: str) -> None:
        """Rewrite ``table`` so the bytes of rows replaced or deleted leave the files (the
        old, unencrypted versions of re-encrypted definitions)."""
        ...


# --- SQLite ----------------------------------------------------------------------------------

class _SqliteTx:
    def __init__(self, backend: SqliteBackend) -> None:
        self._b = backend

    async def execute(self, sql: str, *params: Any) -> int:
        return await self._b.call(lambda c: c.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._b.call(lambda c: c.executemany(sql, rows))

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return await self._b.call(lambda c: c.execute(sql, params).fetchall())


class SqliteBackend:
    """One SQLite connection, WAL journal, serialized transactions."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.inline = path == ":memory:"
        self._conn: sqlite3.Connection | None = None
        self._lock = anyio.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self._trips: Trips | None = None

    def __repr__(self) -> str:
        return f"<SqliteBackend {self.path}>"

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError("the store is not open")
        try:
            if self.inline:
                return fn(conn)
            return await anyio.to_thread.run_sync(fn, conn, limiter=self._limiter)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    async def open(self) -> None:
        if self._conn is not None:
            return
        def connect() -> sqlite3.Connection:
            if not self.inline:
                secure_store_file(Path(self.path))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn

        try:
            self._conn = connect() if self.inline else await anyio.to_thread.run_sync(connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        # group commit: writes and reads that arrive together share one thread trip and one
        # transaction; the lock keeps trips out of an open transaction() on this connection
        self._trips = Trips(runner=self._trip, limiter=self._limiter, inline=self.inline,
                            lock=self._lock)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self.inline:
                conn.close()
            else:
                await anyio.to_thread.run_sync(conn.close)

    def _trip(self, calls: Sequence[Any]) -> None:
        """One worker-thread trip: every call in one transaction, each in a savepoint."""
        conn = self._conn
        if conn is None:
            raise StoreError("the store is not open")
        conn.execute("BEGIN IMMEDIATE")
        try:
            run_each(calls)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def _ride(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None or self._trips is None:
            raise StoreError("the store is not open")
        try:
            return await self._trips.run(lambda: fn(conn))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    async def batch(self, steps: Sequence[Step]) -> tuple[bool, list[int]]:
        def run(conn: sqlite3.Connection) -> tuple[bool, list[int]]:
            conn.execute("SAVEPOINT hr_batch")
            counts: list[int] = []
            try:
                for sql, params, guard in steps:
                    counts.append(conn.execute(sql, tuple(params)).rowcount)
                    if guard and counts[-1] == 0:
                        conn.execute("ROLLBACK TO hr_batch")
                        conn.execute("RELEASE hr_batch")
                        return False, counts
            except BaseException:
                conn.execute("ROLLBACK TO hr_batch")
                conn.execute("RELEASE hr_batch")
                raise
            conn.execute("RELEASE hr_batch")
            return True, counts

        return await self._ride(run)

    async def query(self, sql: str, *params: Any) -> list[Row]:
        return await self._ride(lambda c: c.execute(sql, params).fetchall())

    async def compact(self, table: str) -> None:
        # VACUUM rebuilds the whole file without its free pages (it takes no table name);
        # the checkpoint then empties the WAL, which held the pages as they were written
        def vacuum(conn: sqlite3.Connection) -> None:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        async with self._lock:
            await self.call(vacuum)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        async with self._lock:
            await self.call(lambda c: c.execute("BEGIN IMMEDIATE"))
            tx = _SqliteTx(self)
            try:
                yield tx
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.call(lambda c: c.execute("ROLLBACK"))
                raise
            with anyio.CancelScope(shield=True):
                await self.call(lambda c: c.execute("COMMIT"))


# --- PostgreSQL ------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def to_dollar(sql: str) -> str:
    """``?`` placeholders to ``$1, $2, ...`` (our SQL never has ``?`` inside literals)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._c = conn

    async def execute(self, sql: str, *params: Any) -> int:
        status = await self._c.execute(to_dollar(sql), *params)
        parts = status.split()
        return int(parts[-1]) if parts and parts[-1].isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._c.executemany(to_dollar(sql), rows)

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return [tuple(r) for r in await self._c.fetch(to_dollar(sql), *params)]


class PostgresBackend:
    """An asyncpg pool; each transaction on its own connection (several engines share it)."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._pool: Any = None

    def __repr__(self) -> str:
        return "<PostgresBackend>"

    async def open(self) -> None:
        import asyncpg

        from connectors.postgres import map_errors
        from connectors.sql import connection_dsn

        if self._pool is None:
            try:
                dsn = connection_dsn(self.dsn)  # postgresql://@name/db: a named connection
                with map_errors("PostgreSQL store", "connect", connecting=True):
                    self._pool = await asyncpg.create_pool(dsn, min_size=1,
                                                           max_size=self.max_size,
                                                           reset=_no_reset)
            except ConnectorError as exc:
                raise StoreError(f"cannot open the PostgreSQL store: {_driver_text(exc)}") \
                    from None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.CancelScope(shield=True):
                await pool.close()

    async def batch(self, steps: Sequence[Step]) -> tuple[bool, list[int]]:
        if len(steps) == 1:  # one statement is atomic on its own: no BEGIN/COMMIT trips
            sql, params, guard = steps[0]

            async def single() -> tuple[bool, list[int]]:
                count = await self._on_connection(lambda c: _PgTx(c).execute(sql, *params))
                return not (guard and count == 0), [count]

            return await self._reconnecting(single)

        async def once() -> tuple[bool, list[int]]:
            counts: list[int] = []
            try:
                async with self.transaction() as tx:
                    for sql, params, guard in steps:
                        counts.append(await tx.execute(sql, *params))
                        if guard and counts[-1] == 0:
                            raise _RollBack
            except _RollBack:
                return False, counts
            return True, counts

        return await self._reconnecting(once)

    async def query(self, sql: str, *params: Any) -> list[Row]:
        return await self._reconnecting(
            lambda: self._on_connection(lambda c: _PgTx(c).fetch(sql, *params)))

    async def _on_connection(self, call: Callable[[Any], Awaitable[T]]) -> T:
        """One statement on a pooled connection, outside any explicit transaction."""
        from connectors.postgres import map_errors

        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            with map_errors("PostgreSQL store", "statement"):
                async with self._pool.acquire() as conn:
                    return await call(conn)
        except ConnectorError as exc:
            raise StoreError(f"PostgreSQL store: {_driver_text(exc)}") from exc

    async def _reconnecting(self, once: Callable[[], Awaitable[T]]) -> T:
        """Run ``once`` again on a fresh connection when the connection was lost (the server
        restarted, a network reset): the pool drops the broken one. A batch whose commit
        was lost on the way may run twice; the store's batches are compare-and-set (a
        second run changes nothing) or idempotent, so that is safe."""
        for delay in RECONNECT_DELAYS:
            try:
                return await once()
            except StoreError as exc:
                if not isinstance(exc.__cause__, TransientError):
                    raise
                log.warning("PostgreSQL store: %s; trying again in %g s", exc, delay)
            await anyio.sleep(delay)
        return await once()

    async def compact(self, table: str) -> None:
        from connectors.postgres import map_errors

        if self._pool is None:
            raise StoreError("the store is not open")
        try:  # VACUUM cannot run in a transaction block: a connection of its own
            with map_errors("PostgreSQL store", "vacuum"):
                async with self._pool.acquire() as conn:
                    await conn.execute(f"VACUUM FULL {table}")
        except ConnectorError as exc:
            raise StoreError(f"PostgreSQL store: {_driver_text(exc)}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        from connectors.postgres import map_errors

        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            with map_errors("PostgreSQL store", "transaction"):
                async with self._pool.acquire() as conn, conn.transaction():
                    yield _PgTx(conn)
        except ConnectorError as exc:
            raise StoreError(f"PostgreSQL store: {_driver_text(exc)}") from exc


#: waits before each new try of a statement whose connection was lost (then a last try)
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


async def _no_reset(conn: Any) -> None:
    """The pool's reset of a store connection going back to it: nothing more than what
    asyncpg always does first (roll back a transaction left open by a cancelled caller).
    Its default reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs a round
    trip and a transaction per statement, and store connections keep no session state."""
    del conn


class _RollBack(Exception):
    """Internal: a guarded batch step lost its compare-and-set."""


def _driver_text(exc: ConnectorError) -> str:
    """What the driver said (its exception's class and message, password masked): the
    connector error wraps it as ``__cause__``."""
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {_no_secret(str(cause))}"


def _no_secret(text: str) -> str:
    return re.sub(r"(://[^:/@\s]+):[^@\s]+@", r"\1:****@", text)
