"""MySQL / MariaDB source and sink.

Reads use asyncmy, writes, DDL and helpers use aiomysql. Why, measured on 1,000,000 rows of
the benchmark table (bigint id, datetime, 20-char name, decimal, tinyint(1), 100-char payload;
168.8 MB of CSV) on the 2-core machine that also runs the server, in two sittings (idle / with
other test suites loading the machine, load average ~6); seconds, lower is better:

=======================================================================  =========  =========
read path                                                                 idle       loaded
=======================================================================  =========  =========
``mariadb --batch --quick -e 'SELECT * FROM t' > /dev/null`` (reference)  2.1-2.6    5.8-6.0
aiomysql SSCursor, each CSV line built by the server (one value per row)  5.9-6.3    13.7
MariaDB Connector/Python 1.1 (C), server-built lines, unbuffered cursor   -          3.8
asyncmy 0.2.18 SSCursor, server-built lines                               1.3-1.5    3.8
=======================================================================  =========  =========

aiomysql parses every packet in pure Python (0.35x of the client even with one value per row);
asyncmy does it in compiled code and ties with MariaDB's C connector without needing a thread,
a C library at build time or a second API, and with the server building each line
(:mod:`connectors.mysql_lines`) it beats the command-line client, which formats the output
itself. So both read lanes use asyncmy.

Writes: ``LOAD DATA LOCAL INFILE`` fed straight from the copy's stream
(:mod:`connectors.mysql_infile`) loaded 1M rows (empty InnoDB table with PK, loaded machine)
in 19.7-20.9 s against 14.8-15.4 s for the ``mariadb`` client loading the same file. For the
rows lane, 200,000 rows already in memory loaded in 4.4 s as LOAD DATA text encoded in Python
(:mod:`connectors.mysql_rows`) against 8.7 s as multi-row INSERTs of 1,000 rows through
aiomysql's ``executemany`` (same sitting). So both lanes load with LOAD DATA; ``executemany``
is used only for ``insertQuery`` (``?`` placeholders, e.g. ``INSERT ... ON DUPLICATE KEY
UPDATE``). ``LOAD DATA LOCAL`` turns data errors into warnings (the server cannot stop the
client mid-file), so every load checks the warning count and fails, rolling back, on the first
warning, naming its row.

Every load is one transaction: end-of-stream commits; failure or cancellation rolls back (or
closes the connection, which makes the server roll back).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import aiomysql
import anyio
import asyncmy
import asyncmy.errors
import pymysql.err
from asyncmy.cursors import SSCursor
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from connectors import mysql_checkpoint, mysql_csv
from connectors.base import (
    BytesIn,
    BytesOut,
    Column,
    ColumnType,
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
from connectors.mysql_infile import STREAM_NAME, load_data_local
from connectors.mysql_lines import Kind, header_line, line_select, supports
from connectors.mysql_rows import FORMAT_CLAUSE, encode_rows
from connectors.sqlbase import SqlSink, SqlSource, first_line, next_batch
from connectors.sqltext import convert_placeholders, quote_ident, split_qualified, split_statements
from connectors.sqltypes import (
    mysql_ddl_type,
    mysql_logical,
    parse_bool,
    parse_datetime,
    truthy,
)
from connectors.sqlurl import SqlUrl, from_fields, parse_sql_url
from connectors.tracing import traced_db

CONNECT_TIMEOUT = 10
#: Rows per fetch (reads) and per multi-row INSERT (writes).
ROWS_PER_BATCH = 5000
INSERT_ROWS = 1000
MAX_CHUNK = 1024 * 1024
_CLEANUP_TIMEOUT = 5.0
_SESSION_SQL = ("SET SESSION time_zone = '+00:00', "
                "SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'))")


# --- configuration ----------------------------------------------------------------------------

class MySqlEndpoint(BaseModel):
    """Everything needed to reach one MySQL/MariaDB table or query (a data node or a URL)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 3306
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    table: str | None = None
    schema_name: str | None = None
    select_query: str | None = None
    insert_query: str | None = None
    create_table_sql: str | None = None
    create: bool = False
    chunk_size: int = MAX_CHUNK
    #: Set to make a table load happen at most once under this key (the engine's instance):
    #: see connectors.mysql_checkpoint.
    checkpoint_key: str | None = None

    @field_validator("select_query")
    @classmethod
    def _one_statement(cls, query: str | None) -> str | None:
        """A query is wrapped as a subquery (COPY (...), SELECT ... FROM (...)): no ';'."""
        if query is None:
            return None
        query = query.strip().rstrip(";").strip()
        return query or None

    @classmethod
    def from_sql_url(cls, url: SqlUrl, **fields: Any) -> MySqlEndpoint:
        if url.dialect != "mysql":
            raise ConfigError(f"not a MySQL URL: {url.describe()}", connector="mysql")
        return cls(host=url.host, port=url.port, database=url.database, user=url.user,
                   password=SecretStr(url.password) if url.password is not None else None,
                   **{"table": url.table, **fields})

    @classmethod
    def from_url(cls, url: str, options: EndpointOptions | None = None) -> MySqlEndpoint:
        opts = options or EndpointOptions()
        return cls.from_sql_url(parse_sql_url(url), select_query=opts.query, create=opts.create,
                                chunk_size=min(opts.chunk_size, MAX_CHUNK))

    @classmethod
    def from_fields(cls, connection_string: str, username: str | None = None,
                    password: str | None = None, database_name: str | None = None,
                    **fields: Any) -> MySqlEndpoint:
        """From a data node's or database object's fields (``connectionString``...)."""
        return cls.from_sql_url(from_fields(connection_string, username, password,
                                            database_name), **fields)

    def describe(self) -> str:
        """Display name without the password."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"mysql://{user}{host}:{self.port}/{self.database or ''}"
        if self.table:
            where += f"?table={self.table}"
        elif self.select_query:
            where += " (query)"
        return where

    def table_parts(self) -> tuple[str | None, str]:
        """(database, table) as the server names them."""
        if not self.table:
            raise ConfigError("no table given", connector=self.describe())
        parts = split_qualified(self.table, "mysql")
        if len(parts) > 2:
            raise ConfigError(f"not a valid MySQL table name: {self.table!r}",
                              connector=self.describe())
        if len(parts) == 2:
            return parts[0], parts[1]
        return (self.schema_name or None), parts[0]

    def quoted_table(self) -> str:
        db, name = self.table_parts()
        q = quote_ident(name, "mysql")
        return f"{quote_ident(db, 'mysql')}.{q}" if db else q

    def _password(self) -> str:
        return self.password.get_secret_value() if self.password else ""

    async def connect(self, operation: str = "connect", *,
                      local_infile: bool = False) -> aiomysql.Connection:
        """An aiomysql connection (writes, DDL), autocommit off, UTC, strict mode."""
        with translate_errors(self.describe(), _connect_stage(operation), connecting=True):
            conn = await aiomysql.connect(
                host=self.host, port=self.port, user=self.user or "root",
                password=self._password(), db=self.database, charset="utf8mb4",
                autocommit=False, connect_timeout=CONNECT_TIMEOUT, local_infile=local_infile)
        try:
            with translate_errors(self.describe(), operation):
                async with conn.cursor() as cur:
                    await cur.execute(_SESSION_SQL)
        except BaseException:
            conn.close()
            raise
        return conn

    async def connect_reader(self, operation: str = "read") -> Any:
        """An asyncmy connection (fast decoding) for reads."""
        with translate_errors(self.describe(), _connect_stage(operation), connecting=True):
            conn = await asyncmy.connect(
                host=self.host, port=self.port, user=self.user or "root",
                password=self._password(), database=self.database, charset="utf8mb4",
                autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        try:
            with translate_errors(self.describe(), operation):
                async with conn.cursor() as cur:
                    await cur.execute(_SESSION_SQL)
        except BaseException:
            conn.close()
            raise
        return conn

    def source(self) -> MySqlSource:
        return MySqlSource(self)

    def sink(self) -> MySqlSink:
        return MySqlSink(self)


def source_from_url(url: str, options: EndpointOptions) -> MySqlSource:
    """``mysql://user:pw@host:port/db?table=t`` (or ``options.query``) as a Source."""
    return MySqlEndpoint.from_url(url, options).source()


def sink_from_url(url: str, options: EndpointOptions) -> MySqlSink:
    """``mysql://user:pw@host:port/db?table=t`` as a Sink (``options.create``)."""
    return MySqlEndpoint.from_url(url, options).sink()


# --- errors -----------------------------------------------------------------------------------

_DRIVER_ERRORS = (pymysql.err.MySQLError, asyncmy.errors.MySQLError)
_UNREACHABLE = {2002, 2003, 2005}
_LOST = {2006, 2013, 2055, 1927, 1053}
_AUTH = {1045, 1044, 1698, 1251}
_NOT_FOUND = {1049, 1146, 1051}
_TRANSIENT = {1040, 1205, 1213, 1203}
_DATA = {1048, 1062, 1136, 1261, 1262, 1263, 1264, 1265, 1292, 1300, 1366, 1367, 1406, 1411,
         1416, 1451, 1452, 1690, 3140, 4025, 4078, 1918}
_AT_ROW = re.compile(r"(?:\bat row|^row) (\d+)", re.IGNORECASE)  # "... at row 3", "Row 3 was ..."


def _code_and_text(exc: BaseException) -> tuple[int | None, str]:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, str(exc)


def map_error(exc: BaseException, where: str, operation: str, *, connecting: bool = False,
              row_base: int = 1) -> ConnectorError | None:
    """The connector error for a driver or socket exception, or None when it is not one.

    ``row_base`` is the source row number of row 1 of the failing statement, so a server
    message "at row N" becomes the row's number in the whole input.
    """
    kw = {"connector": where, "operation": operation}
    if isinstance(exc, _DRIVER_ERRORS):
        code, text = _code_and_text(exc)
        label = f"{text} (error {code})" if code is not None else text
        if code in _UNREACHABLE or (connecting and code in _LOST):
            return Unreachable(label, **kw)
        if code in _LOST:
            return ConnectionLost(label, **kw)
        if code in _AUTH:
            return AuthenticationFailed(
                f"access denied (error {code}); the credentials come from the URL or the "
                "data node's username/*password", **kw)
        if code in _NOT_FOUND:
            return NotFoundError(label, **kw)
        if code in _TRANSIENT:
            return TransientError(label, **kw)
        if code in _DATA or isinstance(exc, pymysql.err.DataError | asyncmy.errors.DataError):
            m = _AT_ROW.search(text)
            line = row_base + int(m.group(1)) - 1 if m else None
            err = BadDataError(label, line=line, **kw)
            err.mysql_errno = code  # type: ignore[attr-defined]
            return err
        if isinstance(exc, pymysql.err.InterfaceError | asyncmy.errors.InterfaceError):
            return ConnectionLost(label, **kw)
        err2 = TerminalError(label, **kw)
        err2.mysql_errno = code  # type: ignore[attr-defined]
        return err2
    if isinstance(exc, OSError | TimeoutError):
        cls = Unreachable if connecting else ConnectionLost
        return cls(f"{type(exc).__name__}: {exc}", **kw)
    return None


def _connect_stage(operation: str) -> str:
    """What an error while connecting names: the connect, and what it was for."""
    return operation if operation == "connect" else f"connect for {operation}"


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
async def _writer(ep: MySqlEndpoint, operation: str, *,
                  local_infile: bool = False) -> AsyncIterator[aiomysql.Connection]:
    """A write connection in a transaction: commit on return, roll back on failure/cancel."""
    conn = await ep.connect(operation, local_infile=local_infile)
    try:
        with translate_errors(ep.describe(), operation):
            await conn.begin()
            yield conn
            await conn.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _rollback_and_close(conn)
        raise
    else:
        with anyio.CancelScope(shield=True):
            await _close(conn)


async def _rollback_and_close(conn: aiomysql.Connection) -> None:
    if conn.closed:
        return
    with anyio.move_on_after(_CLEANUP_TIMEOUT):
        try:
            await conn.rollback()
        except Exception:
            conn.close()
    conn.close()


async def _close(conn: aiomysql.Connection) -> None:
    with anyio.move_on_after(_CLEANUP_TIMEOUT), suppress(Exception):
        await conn.ensure_closed()
    conn.close()


@asynccontextmanager
async def _reader(ep: MySqlEndpoint, operation: str) -> AsyncIterator[Any]:
    conn = await ep.connect_reader(operation)
    try:
        with translate_errors(ep.describe(), operation):
            yield conn
    finally:
        conn.close()  # never drain a half-read unbuffered result: just drop the connection


# --- column introspection ---------------------------------------------------------------------

# asyncmy/pymysql FIELD_TYPE codes -> rendering kind and logical type
_FIELD_KIND: dict[int, tuple[Kind, ColumnType]] = {
    0: ("number", "numeric"), 246: ("number", "numeric"),
    1: ("number", "integer"), 2: ("number", "integer"), 3: ("number", "integer"),
    9: ("number", "integer"), 13: ("number", "integer"), 8: ("number", "bigint"),
    4: ("number", "double"), 5: ("number", "double"),
    7: ("temporal", "timestamptz"), 12: ("temporal", "timestamp"),
    10: ("temporal", "date"), 14: ("temporal", "date"), 11: ("temporal", "text"),
    16: ("bit", "bigint"), 245: ("text", "json"),
}
_BINARY_CHARSET = 63


def _kind_of(data_type: str, column_type: str) -> tuple[Kind, ColumnType]:
    logical = mysql_logical(data_type, column_type)
    dt = data_type.lower()
    if dt == "bit":
        return "bit", logical
    if logical in ("integer", "bigint", "numeric", "double", "boolean"):
        return "number", logical
    if logical in ("timestamptz", "timestamp", "date") or dt == "time":
        return "temporal", logical
    if logical == "binary":
        return "binary", logical
    return "text", logical


async def _table_columns(conn: Any, ep: MySqlEndpoint) -> list[tuple[str, Kind, ColumnType]]:
    db, name = ep.table_parts()
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION", (db, name))
        rows = await cur.fetchall()
    if not rows:
        raise NotFoundError(f"table {ep.table} does not exist", connector=ep.describe(),
                            operation="describe")
    return [(r[0], *_kind_of(r[1], r[2])) for r in rows]


async def _query_columns(conn: Any, query: str) -> list[tuple[str, Kind, ColumnType]]:
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
        description = cur.description or ()
    out: list[tuple[str, Kind, ColumnType]] = []
    for d in description:
        name, code, _display, internal = d[0], d[1], d[2], d[3]
        kind, logical = _FIELD_KIND.get(code, ("text", "text"))
        if (code == 1 and internal == 1) or (code == 16 and internal == 1):
            logical = "boolean"
        elif code in (249, 250, 251, 252, 253, 254) and _is_binary(d):
            kind, logical = "binary", "binary"
        out.append((name, kind, logical))
    return out


def _is_binary(description: Sequence[Any]) -> bool:
    """True for a BLOB/BINARY column (charset 63) in a cursor description."""
    charset = getattr(description, "charsetnr", None)
    return charset == _BINARY_CHARSET


def _schema(columns: Sequence[tuple[str, Kind, ColumnType]]) -> Schema:
    return Schema(tuple(Column(n, t) for n, _, t in columns))


# --- source -----------------------------------------------------------------------------------

class MySqlSource(SqlSource[MySqlEndpoint]):
    """Reads a table or a ``selectQuery`` with an unbuffered (streaming) cursor."""

    product = "MySQL"

    def can_produce(self, fmt: TextFormat) -> bool:
        return supports(fmt)

    async def _columns(self, conn: Any) -> list[tuple[str, Kind, ColumnType]]:
        if self.endpoint.select_query:
            return await _query_columns(conn, self.endpoint.select_query)
        return await _table_columns(conn, self.endpoint)

    async def schema(self) -> Schema | None:
        async with _reader(self.endpoint, "describe") as conn:
            return _schema(await self._columns(conn))

    @traced_db("mysql", "SELECT")
    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        if not supports(fmt):
            raise ConfigError(f"the server cannot render this format: {fmt}",
                              connector=self.describe)
        limit = max(1, self.endpoint.chunk_size)
        async with _reader(self.endpoint, "SELECT") as conn:
            columns = await self._columns(conn)
            sql = line_select([(n, k) for n, k, _ in columns], fmt, self._query())
            pending: list[bytes] = [header_line([n for n, _, _ in columns], fmt)] \
                if fmt.header else []
            size = sum(map(len, pending))
            # No ``async with`` on the cursor: closing an unbuffered cursor drains the rest of
            # the result, which on failure or cancellation is neither wanted nor safe.
            cur = conn.cursor(SSCursor)
            await cur.execute(sql)
            async for rows in _fetch_gated(conn, cur):
                piece = b"".join([r[0] for r in rows])
                progress.add(rows=len(rows))
                pending.append(piece)
                size += len(piece)
                if size >= limit:  # chunks of the copy's size, whatever the fetch size
                    data = pending[0] if len(pending) == 1 else b"".join(pending)
                    whole = size - size % limit
                    pending = [data[whole:]] if whole < size else []
                    size -= whole
                    for start in range(0, whole, limit):
                        await out.send(data if whole == limit == len(data)
                                       else data[start:start + limit])
                        progress.add(nbytes=limit)
        if pending:
            chunk = b"".join(pending)
            await out.send(chunk)
            progress.add(nbytes=len(chunk))

    @traced_db("mysql", "SELECT")
    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        async with _reader(self.endpoint, "SELECT") as conn:
            columns = await self._columns(conn)
            schema = _schema(columns)
            fixes = _row_fixes(columns)
            number = 1
            cur = conn.cursor(SSCursor)  # see produce_bytes: never drained on failure
            await cur.execute(self._query())
            async for rows in _fetch_gated(conn, cur):
                batch = [tuple(r) for r in rows] if not fixes else _fix_rows(rows, fixes)
                await out.send(RowBatch(schema, batch, first_line=number))
                number += len(batch)
                progress.add(rows=len(batch))


async def _fetch_gated(conn: Any, cur: Any) -> AsyncIterator[Sequence[Any]]:
    """``cur.fetchmany`` batches, with the socket read only while a fetch is running.

    asyncmy's protocol copies everything the server sends into one buffer that grows without
    limit and never pauses its transport, so while the copy waits on a slower sink the rest of
    the result set piled up in memory (peak RSS grew with the row count: 640 MB at 2M rows,
    benchmarks/README.md). Pausing the transport between fetches leaves the data in the
    kernel's socket buffer, and TCP flow control then holds the server back.
    """
    transport = getattr(conn, "_transport", None)
    try:
        while True:
            if transport is not None:
                transport.resume_reading()
            rows = await cur.fetchmany(ROWS_PER_BATCH)
            if transport is not None:
                transport.pause_reading()
            if not rows:
                return
            yield rows
    finally:
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


def _bit_to_int(v: Any) -> Any:
    return int.from_bytes(v, "big") if isinstance(v, bytes) else v


def _to_bool(v: Any) -> Any:
    if isinstance(v, bytes):
        return int.from_bytes(v, "big") != 0
    return bool(v)


def _utc(v: Any) -> Any:
    return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v


def _row_fixes(columns: Sequence[tuple[str, Kind, ColumnType]]) -> list[tuple[int, Any]]:
    """Per-column conversions of the rows lane: BIT/TINYINT(1) -> bool, TIMESTAMP -> UTC."""
    fixes: list[tuple[int, Any]] = []
    for i, (_, kind, logical) in enumerate(columns):
        if logical == "boolean":
            fixes.append((i, _to_bool))
        elif kind == "bit":
            fixes.append((i, _bit_to_int))
        elif logical == "timestamptz":
            fixes.append((i, _utc))
    return fixes


def _fix_rows(rows: Sequence[Sequence[Any]], fixes: list[tuple[int, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for r in rows:
        values = list(r)
        for i, fix in fixes:
            if values[i] is not None:
                values[i] = fix(values[i])
        out.append(tuple(values))
    return out


# --- sink -------------------------------------------------------------------------------------

def _infile_literal(text: str) -> str:
    """A quoted literal for LOAD DATA's FIELDS/LINES clauses (which take no hex literals)."""
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t").replace("\x00", "\\0"))
    return f"'{escaped}'"


def _infile_options(fmt: TextFormat) -> str | None:
    """The FIELDS/LINES clause of LOAD DATA reading ``fmt`` exactly, or None if it cannot.

    LOAD DATA reads NULL as ``\\N`` (escaped formats) or as the bare word NULL (CSV with
    ``null="NULL"``): headrace's default CSV (NULL = empty field) cannot be told apart from
    '' by LOAD DATA, so that format goes through the rows lane.
    """
    enc = fmt.encoding.lower().replace("-", "").replace("_", "")
    if enc not in ("utf8", "utf8mb4") or not fmt.column_separator or not fmt.record_separator:
        return None
    lines = f"LINES TERMINATED BY {_infile_literal(fmt.record_separator)}"
    ignore = " IGNORE 1 LINES" if fmt.header else ""
    if fmt.kind in ("tsv", "custom"):
        if fmt.quote is not None or fmt.escape_char != "\\" or fmt.null != "\\N":
            return None
        return (f"FIELDS TERMINATED BY {_infile_literal(fmt.column_separator)} "
                f"ESCAPED BY {_infile_literal(chr(92))} {lines}{ignore}")
    if fmt.kind == "csv":
        if fmt.quote is None or len(fmt.quote) != 1 or fmt.null != "NULL":
            return None
        if fmt.escape_char not in (None, fmt.quote):
            return None
        return (f"FIELDS TERMINATED BY {_infile_literal(fmt.column_separator)} OPTIONALLY ENCLOSED "
                f"BY {_infile_literal(fmt.quote)} ESCAPED BY '' {lines}{ignore}")
    return None


def target_columns(names: Sequence[str], target: Sequence[str]) -> list[str]:
    """The target column each input field goes to.

    By name when every input name is a target column; by position when the input has no
    names, or names the table does not have (``col1``... of a headerless CSV) but exactly as
    many fields as the table has columns (as the PostgreSQL sink does).
    """
    if names and all(n in target for n in names):
        return list(names)
    if not names or len(names) == len(target):
        return list(target)
    missing = [n for n in names if n not in target]
    raise BadDataError(f"input columns {missing} are not in the target table (its columns: "
                       f"{list(target)}), and the input has {len(names)} fields for "
                       f"{len(target)} columns, so they cannot be matched by position")


def _infile_assignments(target: Sequence[tuple[str, Kind, ColumnType]],
                        fmt: TextFormat) -> str:
    """The ``(columns) SET ...`` tail of LOAD DATA.

    Fields land in user variables and are converted where another database's text form differs
    from MySQL's: PostgreSQL's ``t``/``f`` booleans, a UTC offset after a timestamp (the
    PostgreSQL connector reads in UTC), ``\\x``-hex binary.
    """
    by_name = {n: (k, t) for n, k, t in target}
    names = target_columns([c.name for c in fmt.columns], [n for n, _, _ in target])
    fields, sets = [], []
    for i, name in enumerate(names):
        kind, logical = by_name[name]
        col = quote_ident(name, "mysql")
        var = f"@v{i}"
        if logical == "boolean":
            expr = (f"CASE LOWER({var}) WHEN 't' THEN 1 WHEN 'true' THEN 1 WHEN 'f' THEN 0 "
                    f"WHEN 'false' THEN 0 ELSE {var} END")
        elif logical in ("timestamp", "timestamptz"):
            expr = f"REGEXP_REPLACE({var}, '([+]00(:00)?|Z)$', '')"
        elif kind == "bit":
            expr = f"CAST({var} AS UNSIGNED)"
        elif kind == "binary":
            expr = (f"IF(LEFT({var}, 2) = CONCAT(CHAR(92), 'x'), UNHEX(SUBSTRING({var}, 3)), "
                    f"CAST({var} AS BINARY))")
        else:
            fields.append(col)
            continue
        fields.append(var)
        sets.append(f"{col} = {expr}")
    tail = f" ({', '.join(fields)})"
    return tail + (f" SET {', '.join(sets)}" if sets else "")


class MySqlSink(SqlSink[MySqlEndpoint]):
    """Loads into a table (LOAD DATA / multi-row INSERT) or via ``insertQuery``, atomically."""

    product = "MySQL"

    def can_consume(self, fmt: TextFormat) -> bool:
        if self.endpoint.insert_query:
            return False
        return _infile_options(fmt) is not None or mysql_csv.convertible(fmt)

    def converts(self, fmt: TextFormat) -> bool:
        """True when ``fmt`` loads only after a byte pass here (headrace's CSV, whose NULL
        LOAD DATA cannot tell from ''): a copy prefers a format LOAD DATA reads as it is."""
        return _infile_options(fmt) is None and mysql_csv.convertible(fmt)

    async def schema(self) -> Schema | None:
        if not self.endpoint.table:
            return None
        async with _reader(self.endpoint, "describe") as conn:
            try:
                return _schema(await _table_columns(conn, self.endpoint))
            except NotFoundError:
                return None

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        marker = mysql_csv.NullMarker(fmt, location=self.describe) \
            if self.converts(fmt) else None
        options = _infile_options(mysql_csv.marked_format(fmt) if marker else fmt)
        if options is None or self.endpoint.insert_query:
            raise ConfigError(f"LOAD DATA cannot read this format: {fmt}",
                              connector=self.describe)
        hint = self.source_schema or (Schema(fmt.columns) if fmt.columns else None)
        ep = self.endpoint
        async with _writer(ep, "LOAD DATA", local_infile=True) as conn:
            await self._prepare_table(conn, hint)
            target = await _table_columns(conn, ep)
            if not await self._claim(conn, inp):
                return
            assignments = _infile_assignments(target, fmt)
            sql = (f"LOAD DATA LOCAL INFILE '{STREAM_NAME}' INTO TABLE {ep.quoted_table()} "
                   f"CHARACTER SET utf8mb4 {options}{assignments}")

            limiter = anyio.CapacityLimiter(1)

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in inp:
                    progress.add(nbytes=len(chunk))
                    if marker is not None:  # in a thread: the event loop keeps reading
                        chunk = await anyio.to_thread.run_sync(marker.feed, chunk,
                                                               limiter=limiter)
                    if chunk:
                        yield chunk
                if marker is not None:
                    tail = marker.finish()
                    if tail:
                        yield tail

            result = await load_data_local(conn, sql, chunks())
            if result.warning_count:
                await _raise_first_warning(conn, self.describe, "LOAD DATA", row_base=1)
            await self._record(conn, result.affected_rows)
            progress.add(rows=result.affected_rows)

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        first = await next_batch(inp)
        hint = self.source_schema or (first.schema if first else None)
        ep = self.endpoint
        operation = "INSERT" if ep.insert_query else "LOAD DATA"
        async with _writer(ep, operation, local_infile=not ep.insert_query) as conn:
            await self._prepare_table(conn, hint)
            if first is None or not await self._claim(conn, inp):
                return
            before = progress.rows
            if ep.insert_query:
                await self._insert_rows(conn, first, inp, progress)
            else:
                await self._load_rows(conn, first, inp, progress)
            await self._record(conn, progress.rows - before)

    async def _claim(self, conn: aiomysql.Connection, inp: BytesIn | RowsIn) -> bool:
        """Claim the load's checkpoint key; when an earlier load committed under it, take
        the input, load none and return False."""
        key = self.endpoint.checkpoint_key
        if not key:
            return True
        db, _ = self.endpoint.table_parts()
        await mysql_checkpoint.prepare(conn, db)
        if await mysql_checkpoint.claim(conn, db, key, self.endpoint.quoted_table()):
            return True
        async for _ in inp:
            pass
        return False

    async def _record(self, conn: aiomysql.Connection, rows: int) -> None:
        if self.endpoint.checkpoint_key:
            db, _ = self.endpoint.table_parts()
            await mysql_checkpoint.record(conn, db, self.endpoint.checkpoint_key, rows)

    async def _load_rows(self, conn: aiomysql.Connection, first: RowBatch, inp: RowsIn,
                         progress: Progress) -> None:
        """Rows encoded to LOAD DATA text in Python, streamed in one LOAD DATA statement."""
        ep = self.endpoint
        names = list(first.schema.names)
        if not names:
            raise ConfigError("rows without column names cannot be loaded",
                              connector=self.describe)
        target = await _table_columns(conn, ep)
        names = target_columns(names, [n for n, _, _ in target])
        kinds = [{n: t for n, _, t in target}.get(n) for n in names]
        fmt = TextFormat(kind="tsv", column_separator="\t", quote=None, escape_char="\\",
                         null="\\N", columns=tuple(Column(n) for n in names))
        sql = (f"LOAD DATA LOCAL INFILE '{STREAM_NAME}' INTO TABLE {ep.quoted_table()} "
               f"CHARACTER SET utf8mb4 {FORMAT_CLAUSE}{_infile_assignments(target, fmt)}")
        offset = (first.first_line or 1) - 1

        async def chunks() -> AsyncIterator[bytes]:
            number = 0
            batch: RowBatch | None = first
            while batch is not None:
                base = first_line(batch, number)
                rows = _writable(batch.rows, kinds, base)
                width = len(names)
                for i, row in enumerate(rows):
                    if len(row) != width:
                        raise BadDataError(f"expected {width} values, got {len(row)}",
                                           line=base + i)
                data = encode_rows(rows)
                number += len(rows)
                progress.add(rows=len(rows))
                yield data
                batch = await next_batch(inp)

        result = await load_data_local(conn, sql, chunks())
        if result.warning_count:
            await _raise_first_warning(conn, self.describe, "LOAD DATA", row_base=offset + 1)

    @traced_db("mysql", "INSERT")
    async def _insert_rows(self, conn: aiomysql.Connection, first: RowBatch, inp: RowsIn,
                           progress: Progress) -> None:
        """``insertQuery`` through executemany, in statements of INSERT_ROWS rows."""
        sql, _ = convert_placeholders(self.endpoint.insert_query or "", "mysql")
        kinds = await self._target_kinds(conn, first)
        number = 0
        batch: RowBatch | None = first
        async with conn.cursor() as cur:
            while batch is not None:
                base = first_line(batch, number)
                rows = _writable(batch.rows, kinds, base)
                for start in range(0, len(rows), INSERT_ROWS):
                    part = rows[start:start + INSERT_ROWS]
                    try:
                        await cur.executemany(sql, part)
                    except _DRIVER_ERRORS as exc:
                        mapped = map_error(exc, self.describe, "INSERT", row_base=base + start)
                        if mapped is None:
                            raise
                        raise mapped from exc
                    if cur._result is not None and cur._result.warning_count:
                        await _raise_first_warning(conn, self.describe, "INSERT",
                                                   row_base=base + start)
                number += len(rows)
                progress.add(rows=len(rows))
                batch = await next_batch(inp)

    async def _target_kinds(self, conn: aiomysql.Connection,
                            first: RowBatch) -> list[ColumnType | None]:
        """Logical type of the target column of each value position (None when unknown)."""
        if not self.endpoint.table:
            return []
        by_name = {n: t for n, _, t in await _table_columns(conn, self.endpoint)}
        return [by_name.get(n) for n in first.schema.names]

    async def _prepare_table(self, conn: aiomysql.Connection, hint: Schema | None) -> None:
        ep = self.endpoint
        if not ep.table:
            return
        db, name = ep.table_parts()
        if await _exists(conn, db, name):
            return
        statement = self.create_statement(hint, create_table_ddl)
        async with conn.cursor() as cur:
            await cur.execute(statement)


def create_table_ddl(quoted_table: str, schema: Schema) -> str:
    cols = ", ".join(f"{quote_ident(c.name, 'mysql')} {mysql_ddl_type(c.type)}"
                     for c in schema.columns)
    return f"CREATE TABLE IF NOT EXISTS {quoted_table} ({cols}) DEFAULT CHARSET=utf8mb4"


async def _exists(conn: Any, db: str | None, name: str) -> bool:
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                          "COALESCE(%s, DATABASE()) AND TABLE_NAME = %s", (db, name))
        return await cur.fetchone() is not None


async def _raise_first_warning(conn: aiomysql.Connection, where: str, operation: str, *,
                               row_base: int) -> None:
    """Fail with the server's first warning (LOAD DATA LOCAL and IGNORE downgrade errors)."""
    async with conn.cursor() as cur:
        await cur.execute("SHOW WARNINGS LIMIT 1")
        row = await cur.fetchone()
    if row is None:
        return
    level, code, message = row[0], int(row[1]), str(row[2])
    m = _AT_ROW.search(message)
    line = row_base + int(m.group(1)) - 1 if m else None
    err = BadDataError(f"{message} ({level} {code}); nothing was committed", line=line,
                       connector=where, operation=operation)
    err.mysql_errno = code  # type: ignore[attr-defined]
    raise err


def _fit_value(v: Any, logical: ColumnType | None) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, str) and logical in ("timestamp", "timestamptz"):
        v = parse_datetime(v)
    elif isinstance(v, str) and logical == "boolean":
        return parse_bool(v)
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def _writable(rows: list[tuple[Any, ...]], kinds: Sequence[ColumnType | None],
              base: int) -> list[tuple[Any, ...]]:
    """Make values the server reads right: aware datetimes (and ISO text with an offset) in
    UTC, JSON as text, 't'/'f' booleans as 1/0. Columns that need nothing are left alone."""
    if not rows:
        return rows
    bad = []
    for c in range(len(rows[0])):
        logical = kinds[c] if c < len(kinds) else None
        types = {type(r[c]) for r in rows}
        if types & {dict, list} or (datetime in types and any(
                isinstance(r[c], datetime) and r[c].tzinfo is not None for r in rows)) or (
                str in types and logical in ("timestamp", "timestamptz", "boolean")):
            bad.append((c, logical))
    if not bad:
        return rows
    out = []
    for i, r in enumerate(rows):
        values = list(r)
        for c, logical in bad:
            if values[c] is not None:
                try:
                    values[c] = _fit_value(values[c], logical)
                except ValueError as exc:
                    raise BadDataError(f"column {c + 1}: {exc}", line=base + i,
                                       column=c + 1) from None
        out.append(tuple(values))
    return out


# --- helpers for the rest of the engine --------------------------------------------------------

def _endpoint(dsn: str | MySqlEndpoint) -> MySqlEndpoint:
    return dsn if isinstance(dsn, MySqlEndpoint) else MySqlEndpoint.from_url(dsn)


@traced_db("mysql", "script")
async def execute_script(dsn: str | MySqlEndpoint, script: str, args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the script. (MySQL commits DDL
    implicitly, so only the data statements of a script are atomic.)
    """
    ep = _endpoint(dsn)
    statements = split_statements(script, "mysql")
    converted = [convert_placeholders(s, "mysql") for s in statements]
    wanted = sum(n for _, n in converted)
    if wanted != len(args):
        raise ConfigError(f"the script has {wanted} '?' placeholders but {len(args)} "
                          "scriptArgument values were given", connector=ep.describe(),
                          operation="script")
    async with _writer(ep, "script") as conn, conn.cursor() as cur:
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with translate_errors(ep.describe(), f"script statement {number}"):
                await cur.execute(sql, tuple(args[position:position + n]))
                while await cur.nextset():
                    pass
            position += n


@traced_db("mysql", "SELECT")
async def query_is_true(dsn: str | MySqlEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = _endpoint(dsn)
    async with _reader(ep, "precondition") as conn, conn.cursor() as cur:
        await cur.execute(sql)
        row = await cur.fetchone()
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | MySqlEndpoint, table: str) -> bool:
    """True when ``table`` (``db.table`` allowed) exists."""
    ep = _endpoint(dsn).model_copy(update={"table": table})
    db, name = ep.table_parts()
    async with _reader(ep, "table exists") as conn:
        return await _exists(conn, db, name)
