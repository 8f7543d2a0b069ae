"""PostgreSQL (and Redshift-protocol) source and sink on asyncpg.

Bytes lane: ``COPY ... TO STDOUT`` / ``COPY ... FROM STDIN`` in CSV or text format, so the
server formats and parses every value and Python only moves buffers (BASELINES.md: asyncpg's
COPY reads as fast as psql). Rows lane: a server-side cursor out, binary
``copy_records_to_table`` in (or ``insertQuery`` through ``executemany``), with values coerced to
the target column's type.

A load runs in one transaction: end-of-stream commits, any failure or cancellation rolls back
(in shielded cleanup), so a reader never sees part of a load. Table names are always quoted
identifiers and values always bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal

import anyio
import asyncpg
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from connectors.base import (
    BytesIn,
    BytesOut,
    EndpointOptions,
    Progress,
    RowBatch,
    RowsIn,
    RowsOut,
    Schema,
    TextFormat,
)
from connectors.errors import (
    AuthenticationFailed,
    BadDataError,
    ConfigError,
    ConnectionLost,
    ConnectorError,
    NotFoundError,
    TerminalError,
    TransientError,
    Unreachable,
)
from connectors.sqlbase import SqlSink, SqlSource, first_line, next_batch
from connectors.sqltext import (
    convert_placeholders,
    quote_ident,
    split_qualified,
    split_statements,
)
from connectors.sqltypes import (
    PG_STRINGIFY,
    pg_coercer,
    pg_column_fits,
    pg_ddl_type,
    pg_logical,
    schema_of,
    truthy,
)
from connectors.sqlurl import SqlUrl, from_fields, parse_sql_url
from connectors.tracing_pg import TracedConnection

CONNECT_TIMEOUT = 10.0
#: Rows per RowBatch from the cursor and per executemany call: big enough to amortise the
#: per-batch cost, small enough to keep a batch a few MB.
ROWS_PER_BATCH = 5000
#: Bytes gathered from COPY output before one chunk is sent on (capped by the copy's chunk size).
MAX_CHUNK = 1024 * 1024
_CLEANUP_TIMEOUT = 5.0


# --- configuration ----------------------------------------------------------------------------

class PostgresEndpoint(BaseModel):
    """Everything needed to reach one PostgreSQL table or query (a data node or a URL)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 5432
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    table: str | None = None
    schema_name: str | None = None
    select_query: str | None = None
    insert_query: str | None = None
    create_table_sql: str | None = None
    create: bool = False
    redshift: bool = False
    chunk_size: int = MAX_CHUNK
    #: Set to make a load idempotent under this key (see connectors.pg_batched): on the rows
    #: lane batches + checkpoint + swap (resumable); on the bytes lane one transaction that
    #: also marks the key finished. A key found finished loads nothing.
    checkpoint_key: str | None = None
    batch_rows: int = 50_000

    @field_validator("select_query")
    @classmethod
    def _one_statement(cls, query: str | None) -> str | None:
        """A query is wrapped as a subquery (COPY (...), SELECT ... FROM (...)): no ';'."""
        if query is None:
            return None
        query = query.strip().rstrip(";").strip()
        return query or None

    @classmethod
    def from_sql_url(cls, url: SqlUrl, **fields: Any) -> PostgresEndpoint:
        if url.dialect != "postgresql":
            raise ConfigError(f"not a PostgreSQL URL: {url.describe()}", connector="postgresql")
        return cls(host=url.host, port=url.port, database=url.database, user=url.user,
                   password=SecretStr(url.password) if url.password is not None else None,
                   redshift=url.redshift, **{"table": url.table, **fields})

    @classmethod
    def from_url(cls, url: str, options: EndpointOptions | None = None) -> PostgresEndpoint:
        opts = options or EndpointOptions()
        parsed = parse_sql_url(url)
        return cls.from_sql_url(parsed, select_query=opts.query, create=opts.create,
                                schema_name=parsed.params.get("schema"),
                                chunk_size=min(opts.chunk_size, MAX_CHUNK))

    @classmethod
    def from_fields(cls, connection_string: str, username: str | None = None,
                    password: str | None = None, database_name: str | None = None,
                    **fields: Any) -> PostgresEndpoint:
        """From a database object's fields (``connectionString``, ``username``...)."""
        return cls.from_sql_url(from_fields(connection_string, username, password,
                                            database_name), **fields)

    def describe(self) -> str:
        """Display name without the password."""
        scheme = "redshift" if self.redshift else "postgresql"
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"{scheme}://{user}{host}:{self.port}/{self.database or ''}"
        if self.table:
            where += f"?table={self.table}"
        elif self.select_query:
            where += " (query)"
        return where

    def table_parts(self) -> tuple[str | None, str]:
        """(schema, table) unquoted, as the server names them."""
        if not self.table:
            raise ConfigError("no table given", connector=self.describe())
        parts = split_qualified(self.table, "postgresql")
        if len(parts) == 3:
            parts = parts[1:]  # database.schema.table: the database is the connection's
        if len(parts) == 2:
            return parts[0], parts[1]
        schema = split_qualified(self.schema_name, "postgresql")[-1] if self.schema_name else None
        return schema, parts[0]

    def quoted_table(self) -> str:
        schema, name = self.table_parts()
        q = quote_ident(name, "postgresql")
        return f"{quote_ident(schema, 'postgresql')}.{q}" if schema else q

    async def connect(self, operation: str = "connect") -> asyncpg.Connection:
        stage = operation if operation == "connect" else f"connect for {operation}"
        with translate_errors(self.describe(), stage, connecting=True):
            return await asyncpg.connect(
                host=self.host, port=self.port, user=self.user, database=self.database,
                password=self.password.get_secret_value() if self.password else None,
                timeout=CONNECT_TIMEOUT, ssl=False, connection_class=TracedConnection,
                server_settings={"application_name": "headrace", "TimeZone": "UTC"})

    def source(self) -> PostgresSource:
        return PostgresSource(self)

    def sink(self) -> PostgresSink:
        return PostgresSink(self)


def source_from_url(url: str, options: EndpointOptions) -> PostgresSource:
    """``postgresql://user:pw@host:port/db?table=schema.t`` (or ``options.query``) as a Source."""
    return PostgresEndpoint.from_url(url, options).source()


def sink_from_url(url: str, options: EndpointOptions) -> PostgresSink:
    """``postgresql://user:pw@host:port/db?table=schema.t`` as a Sink (``options.create``)."""
    return PostgresEndpoint.from_url(url, options).sink()


# --- errors -----------------------------------------------------------------------------------

_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")


def map_error(exc: BaseException, where: str, operation: str, *,
              connecting: bool = False) -> ConnectorError | None:
    """The connector error for a driver or socket exception, or None when it is not one."""
    kw = {"connector": where, "operation": operation}
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        # client-side errors (a link closed under the driver) carry no server message
        text = f"{exc.message or str(exc) or type(exc).__name__} (SQLSTATE {state})"
        if state in ("28P01", "28000"):
            return AuthenticationFailed(
                f"authentication failed (SQLSTATE {state}); the credentials come from the URL "
                "or the database object's username/*password", **kw)
        if state in ("42P01", "3D000", "3F000"):
            return NotFoundError(text, **kw)
        if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
            return (Unreachable if connecting else ConnectionLost)(text, **kw)
        if state in ("53300", "40001", "40P01", "55P03", "53200"):
            return TransientError(text, **kw)
        if state[:2] in ("22", "23"):
            line = column = None
            m = _COPY_CONTEXT.search(getattr(exc, "context", None) or "")
            if m:
                line = int(m.group(1))
                column = m.group(2)
            column = column or getattr(exc, "column_name", None)
            detail = f", column {column}" if column else ""
            err = BadDataError(f"{exc.message} (SQLSTATE {state}{detail})",
                               line=line, **kw)
            err.sqlstate = state  # type: ignore[attr-defined]
            err.column_name = column  # type: ignore[attr-defined]
            return err
        err2 = TerminalError(text, **kw)
        err2.sqlstate = state  # type: ignore[attr-defined]
        return err2
    if isinstance(exc, asyncpg.exceptions.DataError):  # client-side encoding of a value
        return BadDataError(str(exc), **kw)
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError) or (
            isinstance(exc, asyncpg.exceptions.InterfaceError)
            and "connection is closed" in str(exc)):
        return ConnectionLost(str(exc), **kw)
    if isinstance(exc, (OSError, TimeoutError)):
        cls = Unreachable if connecting else ConnectionLost
        return cls(f"{type(exc).__name__}: {exc}", **kw)
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return TerminalError(str(exc), **kw)
    return None


@contextmanager
def translate_errors(where: str, operation: str, *, connecting: bool = False) -> Any:
    """Re-raise driver and socket errors as :mod:`connectors.errors` (cause kept)."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        mapped = map_error(exc, where, operation, connecting=connecting)
        if mapped is None:
            raise
        raise mapped from exc


@asynccontextmanager
async def _connection(ep: PostgresEndpoint, operation: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await ep.connect(operation)
    try:
        yield conn
    finally:
        with anyio.CancelScope(shield=True):
            await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    if conn.is_closed():
        return
    with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True) as scope:
        try:
            await conn.close()
        except Exception:
            conn.terminate()
    if scope.cancelled_caught:
        conn.terminate()


@asynccontextmanager
async def _transaction(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Commit when the body returns; roll back (shielded, bounded) when it fails or is cancelled.

    A connection whose rollback does not finish is terminated: the server then aborts the
    transaction itself, so nothing of it is ever committed.
    """
    tr = conn.transaction()
    await tr.start()
    try:
        yield
    except BaseException:
        with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True) as scope:
            try:
                await tr.rollback()
            except Exception:
                conn.terminate()
        if scope.cancelled_caught:
            conn.terminate()
        raise
    await tr.commit()


@asynccontextmanager
async def _transaction_translated(conn: asyncpg.Connection, ep: PostgresEndpoint,
                                  operation: str) -> AsyncIterator[None]:
    with translate_errors(ep.describe(), operation):
        async with _transaction(conn):
            yield


# --- formats ----------------------------------------------------------------------------------

def _copy_options(fmt: TextFormat, *, loading: bool) -> dict[str, Any] | None:
    """asyncpg COPY keyword options rendering ``fmt``, or None when COPY cannot."""
    enc = fmt.encoding.lower().replace("-", "").replace("_", "")
    if enc not in ("utf8", "utf8mb4"):
        return None
    if len(fmt.column_separator) != 1 or fmt.column_separator in "\r\n\\":
        return None
    allowed_records = ("\n", "\r\n") if loading else ("\n",)
    if fmt.record_separator not in allowed_records:
        return None
    if any(ch in fmt.null for ch in "\r\n") or fmt.column_separator in fmt.null:
        return None
    if fmt.kind == "csv":
        if fmt.quote is None or len(fmt.quote) != 1 or fmt.quote == fmt.column_separator:
            return None
        if fmt.escape_char is not None and len(fmt.escape_char) != 1:
            return None
        if fmt.quote in fmt.null:
            return None
        opts: dict[str, Any] = {"format": "csv", "delimiter": fmt.column_separator,
                                "null": fmt.null, "quote": fmt.quote, "header": fmt.header}
        if fmt.escape_char is not None:
            opts["escape"] = fmt.escape_char
        return opts
    if fmt.kind in ("tsv", "custom"):
        if fmt.quote is not None or fmt.escape_char != "\\" or fmt.header:
            return None
        return {"format": "text", "delimiter": fmt.column_separator, "null": fmt.null}
    return None


def _copy_count(status: str) -> int:
    parts = status.split()
    return int(parts[-1]) if parts and parts[-1].isdigit() else 0


def _attributes_schema(attrs: Sequence[Any]) -> Schema:
    return schema_of([(a.name, pg_logical(a.type.name)) for a in attrs])


# --- source -----------------------------------------------------------------------------------

class PostgresSource(SqlSource[PostgresEndpoint]):
    """Reads a table or a ``selectQuery``."""

    product = "PostgreSQL"

    def can_produce(self, fmt: TextFormat) -> bool:
        return _copy_options(fmt, loading=False) is not None

    async def schema(self) -> Schema | None:
        async with _connection(self.endpoint, "describe") as conn:
            with translate_errors(self.describe, "describe"):
                stmt = await conn.prepare(self._query())
                return _attributes_schema(stmt.get_attributes())

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        opts = _copy_options(fmt, loading=False)
        if opts is None:
            raise ConfigError(f"COPY cannot write this format: {fmt}", connector=self.describe)
        limit = max(1, self.endpoint.chunk_size)
        buf: list[bytes] = []  # COPY's pieces (one per socket read), joined once per chunk
        size = 0

        async def take(data: bytes) -> None:
            nonlocal size
            buf.append(data)
            size += len(data)
            if size >= limit:
                chunk = b"".join(buf)  # bytes even when asyncpg hands a bytearray
                buf.clear()
                size = 0
                await out.send(chunk)
                progress.add(nbytes=len(chunk))

        async with _connection(self.endpoint, "COPY TO") as conn:
            with translate_errors(self.describe, "COPY TO"):
                if self.endpoint.select_query:
                    status = await conn.copy_from_query(self.endpoint.select_query,
                                                        output=take, **opts)
                else:
                    schema, name = self.endpoint.table_parts()
                    status = await conn.copy_from_table(name, schema_name=schema,
                                                        output=take, **opts)
        if buf:
            chunk = b"".join(buf)
            await out.send(chunk)
            progress.add(nbytes=len(chunk))
        progress.add(rows=_copy_count(status))

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        async with _connection(self.endpoint, "SELECT") as conn:
            with translate_errors(self.describe, "SELECT"):
                async with conn.transaction(readonly=True):
                    stmt = await conn.prepare(self._query())
                    attrs = stmt.get_attributes()
                    schema = _attributes_schema(attrs)
                    stringify = [i for i, a in enumerate(attrs) if a.type.name in PG_STRINGIFY]
                    cursor = await stmt.cursor()
                    first = 1
                    while records := await cursor.fetch(ROWS_PER_BATCH):
                        rows = [tuple(r) for r in records]
                        if stringify:
                            rows = [_stringify(r, stringify) for r in rows]
                        await out.send(RowBatch(schema, rows, first_line=first))
                        first += len(rows)
                        progress.add(rows=len(rows))


def _stringify(row: tuple[Any, ...], columns: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for i in columns:
        if values[i] is not None:
            values[i] = str(values[i])
    return tuple(values)


# --- sink -------------------------------------------------------------------------------------

class PostgresSink(SqlSink[PostgresEndpoint]):
    """Loads into a table (COPY) or through an ``insertQuery``, in one transaction."""

    product = "PostgreSQL"

    def can_consume(self, fmt: TextFormat) -> bool:
        if self.endpoint.insert_query:  # needs rows
            return False
        return _copy_options(fmt, loading=True) is not None

    async def schema(self) -> Schema | None:
        if not self.endpoint.table:
            return None
        async with _connection(self.endpoint, "describe") as conn:
            with translate_errors(self.describe, "describe"):
                if not await _exists(conn, self.endpoint.quoted_table()):
                    return None
                stmt = await conn.prepare(f"SELECT * FROM {self.endpoint.quoted_table()}")
                return _attributes_schema(stmt.get_attributes())

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        opts = _copy_options(fmt, loading=True)
        if opts is None or self.endpoint.insert_query:
            raise ConfigError(f"COPY cannot read this format: {fmt}", connector=self.describe)
        hint = self.source_schema or (Schema(fmt.columns) if fmt.columns else None)
        key = self.endpoint.checkpoint_key
        async with _connection(self.endpoint, "COPY FROM") as conn:
            with translate_errors(self.describe, "COPY FROM"):
                if key and await _finished(conn, key):
                    async for _ in inp:  # loaded by an earlier run: take the input, load none
                        pass
                    return
                async with _transaction(conn):
                    await self._prepare_table(conn, hint)
                    schema, name = self.endpoint.table_parts()
                    status = await copy_stream_in(conn, name, schema, inp, opts, progress)
                    if key:  # in the same transaction as the rows
                        from connectors.pg_batched import mark_loaded

                        await mark_loaded(conn, key=key, target=self.endpoint.quoted_table(),
                                          rows=_copy_count(status))
        progress.add(rows=_copy_count(status))

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        first = await next_batch(inp)
        hint = self.source_schema or (first.schema if first else None)
        if self.endpoint.checkpoint_key and not self.endpoint.insert_query:
            await self._consume_resumable(first, inp, progress, hint)
            return
        async with _connection(self.endpoint, "load") as conn:
            with translate_errors(self.describe, "load"):
                async with _transaction(conn):
                    await self._prepare_table(conn, hint)
                    if first is None:
                        return
                    if self.endpoint.insert_query:
                        await _insert_batches(conn, self.endpoint.insert_query, first, inp,
                                              progress)
                    else:
                        schema, name = self.endpoint.table_parts()
                        await copy_rows_in(conn, name, schema, first, inp, progress)

    async def _consume_resumable(self, first: RowBatch | None, inp: RowsIn, progress: Progress,
                                 hint: Schema | None) -> None:
        from connectors.pg_batched import load_resumable

        ep = self.endpoint
        async with _connection(ep, "resumable load") as conn:
            with translate_errors(self.describe, "resumable load"):
                async with _transaction(conn):
                    await self._prepare_table(conn, hint)
                schema, name = ep.table_parts()
                empty = RowBatch(hint or Schema(()), [], first_line=1)
                await load_resumable(conn, key=ep.checkpoint_key or "", target=name,
                                     schema=schema, first=first or empty, inp=inp,
                                     progress=progress, batch_rows=max(1, ep.batch_rows),
                                     copy_rows=copy_rows_in)

    async def _prepare_table(self, conn: asyncpg.Connection, hint: Schema | None) -> None:
        """Run ``createTableSql`` or create from the source schema when the table is missing."""
        ep = self.endpoint
        if not ep.table or await _exists(conn, ep.quoted_table()):
            return
        await conn.execute(self.create_statement(hint, create_table_ddl))


async def _finished(conn: asyncpg.Connection, key: str) -> bool:
    from connectors.pg_batched import checkpoint

    state = await checkpoint(conn, key)
    return state is not None and state[1]


def create_table_ddl(quoted_table: str, schema: Schema) -> str:
    cols = ", ".join(f"{quote_ident(c.name, 'postgresql')} {pg_ddl_type(c.type)}"
                     for c in schema.columns)
    return f"CREATE TABLE IF NOT EXISTS {quoted_table} ({cols})"


async def _exists(conn: asyncpg.Connection, quoted_table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quoted_table))


async def copy_stream_in(conn: asyncpg.Connection, table: str, schema: str | None,
                         inp: BytesIn, opts: dict[str, Any], progress: Progress) -> str:
    """``COPY table FROM STDIN`` fed from ``inp`` until end-of-stream; returns the status."""

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in inp:
            progress.add(nbytes=len(chunk))
            yield chunk

    return str(await conn.copy_to_table(table, schema_name=schema, source=chunks(), **opts))


async def _target_columns(conn: asyncpg.Connection, table: str,
                          schema: str | None) -> list[tuple[str, str]]:
    target = f"{quote_ident(schema, 'postgresql')}." if schema else ""
    stmt = await conn.prepare(f"SELECT * FROM {target}{quote_ident(table, 'postgresql')}")
    return [(a.name, a.type.name) for a in stmt.get_attributes()]


def _coercers(types: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    return [pg_coercer(t) for t in types]


def _coerce_row(row: Sequence[Any], coercers: Sequence[Callable[[Any], Any] | None],
                names: Sequence[str], line: int) -> tuple[Any, ...]:
    if len(row) != len(coercers):
        raise BadDataError(f"expected {len(coercers)} values, got {len(row)}", line=line)
    out = []
    for i, (value, fix) in enumerate(zip(row, coercers, strict=True)):
        if fix is None or value is None:
            out.append(value)
            continue
        try:
            out.append(fix(value))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise BadDataError(f"column {names[i]}: {exc}", line=line, column=i + 1) from None
    return tuple(out)


def _coerce_batch(rows: list[tuple[Any, ...]], coercers: Sequence[Callable[[Any], Any] | None],
                  types: Sequence[str], names: Sequence[str],
                  base: int) -> list[tuple[Any, ...]]:
    """Coerce only the columns of ``rows`` holding a value of a type that does not fit.

    Checking the set of types per column is far cheaper than a Python call per value, and
    rows from a typed source (another database) usually need no conversion at all.
    """
    width = len(coercers)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise BadDataError(f"expected {width} values, got {len(row)}", line=base + i)
    needed = [fix if fix is not None and not pg_column_fits(types[c], [r[c] for r in rows])
              else None for c, fix in enumerate(coercers)]
    if not any(needed):
        return rows
    return [_coerce_row(r, needed, names, base + i) for i, r in enumerate(rows)]


async def copy_rows_in(conn: asyncpg.Connection, table: str, schema: str | None,
                       first: RowBatch, inp: RowsIn, progress: Progress) -> str:
    """Binary ``COPY`` of row batches (``first``, then the rest of ``inp``) into a table."""
    target = await _target_columns(conn, table, schema)
    by_name = dict(target)
    names = list(first.schema.names)
    if names and all(n in by_name for n in names):
        columns = names
    elif len(names) == len(target) or not names:
        columns = [n for n, _ in target]
    else:
        missing = [n for n in names if n not in by_name]
        raise BadDataError(f"source columns {missing} are not in the target table "
                           f"(its columns: {[n for n, _ in target]})")
    types = [by_name[c] for c in columns]
    coercers = _coercers(types)
    # One binary COPY per batch: asyncpg encodes a list in its compiled loop, while an async
    # generator would cost a Python round trip per row; all COPYs share the transaction.
    number = 0
    batch: RowBatch | None = first
    while batch is not None:
        base = first_line(batch, number)
        rows = _coerce_batch(batch.rows, coercers, types, columns, base)
        try:
            await conn.copy_records_to_table(table, schema_name=schema, columns=columns,
                                             records=rows)
        except asyncpg.PostgresError as exc:
            _locate_in_batch(exc, base)
            raise
        number += len(rows)
        progress.add(rows=len(rows))
        batch = await next_batch(inp)
    return f"COPY {number}"


def _locate_in_batch(exc: asyncpg.PostgresError, base: int) -> None:
    """Make COPY's ``line N`` (counted within one batch) a source line number."""
    context = getattr(exc, "context", None) or ""
    m = _COPY_CONTEXT.search(context)
    if m:
        line = base + int(m.group(1)) - 1
        exc.context = context[:m.start(1)] + str(line) + context[m.end(1):]


async def _insert_batches(conn: asyncpg.Connection, insert_query: str, first: RowBatch,
                          inp: RowsIn, progress: Progress) -> None:
    sql, count = convert_placeholders(insert_query, "postgresql")
    stmt = await conn.prepare(sql)
    params = stmt.get_parameters()
    coercers = _coercers([p.name for p in params])
    types = [p.name for p in params]
    names = [f"${i + 1}" for i in range(count)]
    batch: RowBatch | None = first
    number = 0
    while batch is not None:
        base = first_line(batch, number)
        rows = _coerce_batch(batch.rows, coercers, types, names, base)
        await stmt.executemany(rows)
        number += len(rows)
        progress.add(rows=len(rows))
        batch = await next_batch(inp)


# --- helpers for the rest of the engine --------------------------------------------------------

def _endpoint(dsn: str | PostgresEndpoint) -> PostgresEndpoint:
    return dsn if isinstance(dsn, PostgresEndpoint) else PostgresEndpoint.from_url(dsn)


async def execute_script(dsn: str | PostgresEndpoint, script: str,
                         args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the whole script; each value is
    coerced to the parameter's type (``scriptArgument`` values arrive as strings).
    """
    ep = _endpoint(dsn)
    statements = split_statements(script, "postgresql")
    converted = [convert_placeholders(s, "postgresql") for s in statements]
    wanted = sum(n for _, n in converted)
    if wanted != len(args):
        raise ConfigError(f"the script has {wanted} '?' placeholders but {len(args)} "
                          "scriptArgument values were given", connector=ep.describe(),
                          operation="script")
    async with _connection(ep, "script") as conn, _transaction_translated(conn, ep, "script"):
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with translate_errors(ep.describe(), f"script statement {number}"):
                if n == 0:
                    await conn.execute(sql)
                    continue
                stmt = await conn.prepare(sql)
                coercers = _coercers([p.name for p in stmt.get_parameters()])
                values = _coerce_row(args[position:position + n], coercers,
                                     [f"${i + 1}" for i in range(n)], number)
                await stmt.fetch(*values)
                position += n


async def query_is_true(dsn: str | PostgresEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = _endpoint(dsn)
    async with _connection(ep, "precondition") as conn:
        with translate_errors(ep.describe(), "precondition"):
            row = await conn.fetchrow(sql)
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | PostgresEndpoint, table: str) -> bool:
    """True when ``table`` (``schema.table`` allowed, quoted as identifiers) exists."""
    ep = _endpoint(dsn)
    quoted = ep.model_copy(update={"table": table}).quoted_table()
    async with _connection(ep, "table exists") as conn:
        with translate_errors(ep.describe(), "table exists"):
            return await _exists(conn, quoted)


InsertMode = Literal["KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND"]


async def redshift_copy_load(target: str | PostgresEndpoint, source: Any, *,
                             insert_mode: InsertMode, table: str | None = None,
                             fmt: TextFormat | None = None,
                             primary_keys: Sequence[str] | None = None,
                             transform_sql: str | None = None,
                             progress: Progress | None = None) -> int:
    """RedshiftCopyActivity on a PostgreSQL-compatible target; see :mod:`connectors.pg_merge`."""
    from connectors.pg_merge import redshift_copy_load as load

    return await load(_endpoint(target), source, insert_mode=insert_mode, table=table,
                      fmt=fmt, primary_keys=primary_keys, transform_sql=transform_sql,
                      progress=progress)
