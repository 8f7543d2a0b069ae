"""Loading into a MySQL table with ``LOAD DATA LOCAL INFILE`` (both lanes) or through an
``insertQuery``, in one transaction that fails on the server's first warning.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aiomysql
import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from connectors.base import (
    BytesIn,
    Column,
    ColumnType,
    Progress,
    RowBatch,
    RowsIn,
    Schema,
    TextFormat,
    output_fence_token,
)
from connectors.errors import BadDataError, ConfigError, NotFoundError, single_failure
from connectors.formats import RowChecksum
from connectors.sql import (
    SqlSink,
    aligned_schema,
    convert_placeholders,
    deal_records,
    first_line,
    is_utf8,
    next_batch,
    parse_bool,
    parse_datetime,
    quote_ident,
    record_framer,
    target_columns,
)
from connectors.tracing import traced_db

from . import _checkpoint, _csv
from ._columns import columns_schema, has_table, table_columns
from ._endpoint import MySqlEndpoint, reader, writer
from ._errors import AT_ROW, DRIVER_ERRORS, driver_error
from ._escapes import EscapeTranslator
from ._infile import STREAM_NAME, load_data_local
from ._lines import Kind
from ._rows import FORMAT_CLAUSE, encode_rows
from ._types import mysql_column_ddl_type

#: Rows per multi-row INSERT of an ``insertQuery``.
INSERT_ROWS = 1000


def _infile_literal(text: str) -> str:
    """A quoted literal for LOAD DATA's FIELDS/LINES clauses (which take no hex literals)."""
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t").replace("\x00", "\\0"))
    return f"'{escaped}'"


def load_data_options(fmt: TextFormat) -> str | None:
    """The FIELDS/LINES clause of LOAD DATA reading ``fmt`` exactly, or None if it cannot.

    LOAD DATA reads NULL as ``\\N`` (escaped formats) or as the bare word NULL (CSV with
    ``null="NULL"``): headrace's default CSV (NULL = empty field) cannot be told apart from
    '' by LOAD DATA, so that format goes through the rows lane.
    """
    if not is_utf8(fmt) or not fmt.column_separator or not fmt.record_separator:
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
            expr = _infile_timestamp(var)
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


def _infile_timestamp(var: str) -> str:
    """SQL turning a timestamp's text into UTC for LOAD DATA: a ``+00``/``Z`` suffix is
    dropped; another offset after the time (``+05:30``, ``-0800``, ``-08``) is applied, as
    PostgreSQL does for timestamptz (MariaDB would otherwise truncate the text with a warning).
    Interval arithmetic, not CONVERT_TZ, which leaves times outside TIMESTAMP's range as they are.
    """
    off = f"REGEXP_SUBSTR({var}, '[+-][0-9]{{2}}(:?[0-9]{{2}})?$')"
    digits = f"REPLACE(SUBSTRING({off}, 2), ':', '')"
    minutes = (f"(LEFT({digits}, 2) * 60 + IF(CHAR_LENGTH({digits}) = 4, RIGHT({digits}, 2), 0))"
               f" * IF(LEFT({off}, 1) = '-', -1, 1)")
    local = f"CAST(LEFT({var}, CHAR_LENGTH({var}) - CHAR_LENGTH({off})) AS DATETIME(6))"
    utc = "'([+-]00(:?00)?|Z)$'"
    return (f"CASE WHEN {var} NOT REGEXP {utc} AND "
            f"{var} REGEXP ':[0-9]{{2}}([.][0-9]*)?[+-][0-9]{{2}}(:?[0-9]{{2}})?$' "
            f"THEN DATE_SUB({local}, INTERVAL {minutes} MINUTE) "
            f"ELSE REGEXP_REPLACE({var}, {utc}, '') END")


class MySqlSink(SqlSink[MySqlEndpoint]):
    """Loads into a table (LOAD DATA / multi-row INSERT) or via ``insertQuery``, atomically."""

    def can_consume(self, fmt: TextFormat) -> bool:
        if self.endpoint.insert_query:
            return False
        return load_data_options(fmt) is not None or _csv.convertible(fmt)

    def converts(self, fmt: TextFormat) -> bool:
        """True when ``fmt`` loads only after a byte pass here (headrace's CSV, whose NULL
        LOAD DATA cannot tell from ''): a copy prefers a format LOAD DATA reads as it is."""
        return load_data_options(fmt) is None and _csv.convertible(fmt)

    async def schema(self) -> Schema | None:
        """The table's columns; an insertQuery's, in its placeholders' order."""
        ep, inserted = self.written_table()
        if ep is None:
            return None
        async with reader(self.endpoint, "describe") as conn:
            try:
                table = columns_schema(await table_columns(conn, ep))
            except NotFoundError:
                return None
        return aligned_schema(inserted, table) if inserted else table

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        converting = self.converts(fmt)
        marker: _csv.NullMarker | EscapeTranslator | None = None
        if converting:
            marker = _csv.NullMarker(fmt, location=self.describe)
        elif fmt.kind in ("tsv", "custom"):
            marker = EscapeTranslator(fmt.column_separator + fmt.record_separator)
        options = load_data_options(_csv.marked_format(fmt) if converting else fmt)
        if options is None or self.endpoint.insert_query:
            raise ConfigError(f"LOAD DATA cannot read this format: {fmt}",
                              connector=self.describe)
        hint = self.source_schema or (Schema(fmt.columns) if fmt.columns else None)
        ep = self.endpoint
        if ep.partitions > 1 and not ep.checkpoint_key:
            await self._load_in_parallel(fmt, converting, marker, inp, progress, hint)
            return
        async with writer(ep, "LOAD DATA", local_infile=True) as conn:
            await self._prepare_table(conn, hint)
            target = await table_columns(conn, ep)
            if not await self._claim(conn, inp):
                return
            before = await self._verify_sum(conn, None)
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
            await self._verify_load(conn, None, before)
            await self._record(conn, result.affected_rows)
            progress.add(rows=result.affected_rows)

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        first = await next_batch(inp)
        hint = self.source_schema or (first.schema if first else None)
        ep = self.endpoint
        operation = "INSERT" if ep.insert_query else "LOAD DATA"
        async with writer(ep, operation, local_infile=not ep.insert_query) as conn:
            await self._prepare_table(conn, hint)
            db, _ = ep.table_parts()
            if self.watermark is not None:
                await _checkpoint.prepare_watermark(conn, db)
            if self.merge_keys:
                await self._check_merge_key(conn)
            if first is None or not await self._claim(conn, inp):
                if first is None:
                    await self._verify_load(conn, None, await self._verify_sum(conn, None))
                    await self._save_watermark(conn)
                return
            names = first.schema.names
            sums = await self._verify_sum(conn, names)
            before = progress.rows
            if ep.insert_query:
                await self._insert_rows(conn, first, inp, progress)
            else:
                await self._load_rows(conn, first, inp, progress)
            await self._verify_load(conn, names, sums)
            await self._record(conn, progress.rows - before)
            await self._save_watermark(conn)

    async def stored_watermark(self, key: str) -> str | None:
        db, _ = self.endpoint.table_parts()
        async with reader(self.endpoint, "read watermark") as conn:
            return await _checkpoint.read_watermark(conn, db, key)

    async def _save_watermark(self, conn: aiomysql.Connection) -> None:
        if self.watermark is not None:
            key, state = self.watermark
            db, _ = self.endpoint.table_parts()
            await _checkpoint.save_watermark(conn, db, key, self.endpoint.quoted_table(),
                                             state())

    async def _check_merge_key(self, conn: aiomysql.Connection) -> None:
        """A merge is LOAD DATA ... REPLACE, which matches rows by a unique key: the target
        must have one on exactly the merge key's columns."""
        ep = self.endpoint
        if ep.insert_query:
            raise ConfigError("a merge loads a table, not an insertQuery",
                              connector=self.describe)
        db, name = ep.table_parts()
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM "
                "information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
                "AND TABLE_NAME = %s AND NON_UNIQUE = 0 GROUP BY INDEX_NAME", (db, name))
            unique = [set(str(r[1]).split(",")) for r in await cur.fetchall()]
        if set(self.merge_keys) not in unique:
            raise ConfigError(f"a merge into {ep.table} matches rows by a unique key on "
                              f"({', '.join(self.merge_keys)}), which the table does not "
                              "have; add a PRIMARY KEY or UNIQUE index on those columns",
                              connector=self.describe)

    async def _verify_sum(self, conn: aiomysql.Connection,
                          names: Sequence[str] | None) -> RowChecksum | None:
        """``--verify``: the checksum of the target's rows in this transaction's snapshot.

        Taken before the load and again after it, in one REPEATABLE READ transaction (the
        InnoDB default): what the load wrote is the difference, since the sum is order-free
        and subtractable, and other sessions' commits meanwhile are not in the snapshot. It
        reads the whole table twice, the price of verifying into a table with rows."""
        if self.verify_check is None:
            return None
        ep, inserted = self.written_table()
        if ep is None:
            raise ConfigError("--verify needs a target table or a plain insertQuery",
                              connector=self.describe)
        target = Schema(tuple(Column(n, t) for n, _, t in await table_columns(conn, ep)))
        columns = aligned_schema(inserted or names or target.names, target)
        select = ", ".join(quote_ident(c.name, "mysql") for c in columns.columns)
        summer = RowChecksum(columns)
        async with conn.cursor(aiomysql.SSCursor) as cur:
            await cur.execute(f"SELECT {select} FROM {ep.quoted_table()}")
            while rows := await cur.fetchmany(5000):
                summer.add_rows(rows)
        return summer

    async def _verify_load(self, conn: aiomysql.Connection, names: Sequence[str] | None,
                           before: RowChecksum | None) -> None:
        check = self.verify_check
        if check is None or before is None:
            return
        after = await self._verify_sum(conn, names)
        assert after is not None
        await check(*after.minus(before))

    async def _claim(self, conn: aiomysql.Connection, inp: BytesIn | RowsIn) -> bool:
        """Claim the load's checkpoint key; when an earlier load committed under it, take
        the input, load none and return False."""
        key = self.endpoint.checkpoint_key
        if not key:
            return True
        db, _ = self.endpoint.table_parts()
        await _checkpoint.prepare(conn, db)
        token = output_fence_token()
        target = self.endpoint.quoted_table()
        if token is not None:  # a worker's claim: fenced (see _checkpoint)
            if await _checkpoint.claim_fenced(conn, db, key, target, token):
                return True
        elif await _checkpoint.claim(conn, db, key, target):
            return True
        async for _ in inp:
            pass
        return False

    async def _record(self, conn: aiomysql.Connection, rows: int) -> None:
        if self.endpoint.checkpoint_key:
            db, _ = self.endpoint.table_parts()
            await _checkpoint.record(conn, db, self.endpoint.checkpoint_key, rows,
                                     output_fence_token())

    async def _load_rows(self, conn: aiomysql.Connection, first: RowBatch, inp: RowsIn,
                         progress: Progress) -> None:
        """Rows encoded to LOAD DATA text in Python, streamed in one LOAD DATA statement."""
        ep = self.endpoint
        names = list(first.schema.names)
        if not names:
            raise ConfigError("rows without column names cannot be loaded",
                              connector=self.describe)
        target = await table_columns(conn, ep)
        names = target_columns(names, [n for n, _, _ in target])
        kinds = [{n: t for n, _, t in target}.get(n) for n in names]
        fmt = TextFormat(kind="tsv", column_separator="\t", quote=None, escape_char="\\",
                         null="\\N", columns=tuple(Column(n) for n in names))
        replace = "REPLACE " if self.merge_keys else ""  # a merge: the new row wins
        sql = (f"LOAD DATA LOCAL INFILE '{STREAM_NAME}' {replace}INTO TABLE "
               f"{ep.quoted_table()} CHARACTER SET utf8mb4 "
               f"{FORMAT_CLAUSE}{_infile_assignments(target, fmt)}")
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
                    except DRIVER_ERRORS as exc:
                        mapped = driver_error(exc, self.describe, "INSERT", row_base=base + start)
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
        by_name = {n: t for n, _, t in await table_columns(conn, self.endpoint)}
        return [by_name.get(n) for n in first.schema.names]

    async def _load_in_parallel(self, fmt: TextFormat, converting: bool,
                                marker: _csv.NullMarker | EscapeTranslator | None,
                                inp: BytesIn, progress: Progress,
                                hint: Schema | None) -> None:
        """``partitions`` LOAD DATA streams into a staging table, then one transaction.

        A staging table ``headrace_load_<random>`` (``CREATE TABLE ... LIKE`` the target) takes
        the input, cut at record boundaries and dealt round robin to N loaders, each its own
        connection and transaction (the header only to the first). When all committed, one
        transaction moves the rows into the target (``INSERT ... SELECT``); the staging table
        is then dropped (MySQL's DDL commits, so that is a statement of its own). On failure
        it is dropped and the target is untouched."""
        ep = self.endpoint
        db, _ = ep.table_parts()
        stage_name = f"headrace_load_{secrets.token_hex(6)}"
        stage = (f"{quote_ident(db, 'mysql')}." if db else "") + quote_ident(stage_name, "mysql")
        async with writer(ep, "parallel load") as conn:
            await self._prepare_table(conn, hint)
            target = await table_columns(conn, ep)
            async with conn.cursor() as cur:
                await cur.execute(f"CREATE TABLE {stage} LIKE {ep.quoted_table()}")
        marked = _csv.marked_format(fmt) if converting else fmt
        assignments = _infile_assignments(target, fmt)
        n = ep.partitions
        counts = [0] * n

        async def load(i: int, recv: MemoryObjectReceiveStream[bytes]) -> None:
            options = load_data_options(marked.replace(header=marked.header and i == 0))
            sql = (f"LOAD DATA LOCAL INFILE '{STREAM_NAME}' INTO TABLE {stage} "
                   f"CHARACTER SET utf8mb4 {options}{assignments}")

            async def pieces() -> AsyncIterator[bytes]:
                async for piece in recv:
                    yield piece

            with recv:
                async with writer(ep, "LOAD DATA", local_infile=True) as c:
                    result = await load_data_local(c, sql, pieces())
                    if result.warning_count:
                        await _raise_first_warning(c, self.describe, "LOAD DATA", row_base=1)
            counts[i] = result.affected_rows

        limiter = anyio.CapacityLimiter(1)

        async def mark(chunk: bytes) -> bytes:
            assert marker is not None
            return await anyio.to_thread.run_sync(marker.feed, chunk, limiter=limiter)

        try:
            streams = [anyio.create_memory_object_stream[bytes](2) for _ in range(n)]
            with single_failure():
                async with anyio.create_task_group() as tg:
                    for i, (_, recv) in enumerate(streams):
                        tg.start_soon(load, i, recv)
                    tg.start_soon(deal_records, inp, [send for send, _ in streams],
                                  record_framer(marked, self.describe), progress,
                                  mark if marker is not None else None,
                                  marker.finish if marker is not None else None)
            async with writer(ep, "swap in") as conn, conn.cursor() as cur:
                await cur.execute(f"INSERT INTO {ep.quoted_table()} SELECT * FROM {stage}")
        finally:
            with anyio.move_on_after(5, shield=True), contextlib.suppress(Exception):
                async with writer(ep, "drop staging") as conn, conn.cursor() as cur:
                    await cur.execute(f"DROP TABLE IF EXISTS {stage}")
        progress.add(rows=sum(counts))

    async def _prepare_table(self, conn: aiomysql.Connection, hint: Schema | None) -> None:
        ep = self.endpoint
        if not ep.table:
            return
        db, name = ep.table_parts()
        if await has_table(conn, db, name):
            return
        statement = self.create_statement(hint, create_table_ddl)
        async with conn.cursor() as cur:
            await cur.execute(statement)


def create_table_ddl(quoted_table: str, schema: Schema) -> str:
    cols = ", ".join(f"{quote_ident(c.name, 'mysql')} {mysql_column_ddl_type(c)}"
                     for c in schema.columns)
    return f"CREATE TABLE IF NOT EXISTS {quoted_table} ({cols}) DEFAULT CHARSET=utf8mb4"


async def _raise_first_warning(conn: aiomysql.Connection, where: str, operation: str, *,
                               row_base: int) -> None:
    """Fail with the server's first warning (LOAD DATA LOCAL and IGNORE downgrade errors)."""
    async with conn.cursor() as cur:
        await cur.execute("SHOW WARNINGS LIMIT 1")
        row = await cur.fetchone()
    if row is None:
        return
    level, code, message = row[0], int(row[1]), str(row[2])
    m = AT_ROW.search(message)
    line = row_base + int(m.group(1)) - 1 if m else None
    named = _FOR_COLUMN.search(message)
    err = BadDataError(f"{message} ({level} {code}); nothing was committed", line=line,
                       column=named.group(1) if named else None, connector=where,
                       operation=operation)
    raise err


#: The column a warning names: "... for column `db`.`table`.`name` at row 2" (MariaDB) or
#: "... for column 'name' at row 2" (MySQL).
_FOR_COLUMN = re.compile(r"for column (?:`[^`]*`\.)*[`']([^`']*)[`']")


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
