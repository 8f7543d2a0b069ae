"""Parquet (a headrace extension format), built on pyarrow.

Writing is an :class:`~connectors.formats.Encoder` like the text formats': row batches go in,
the bytes of one Parquet file come out as they are made, a row group at a time (at most
``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES`` of Arrow data buffered), so a sink uploads or
writes them while the copy goes on and memory stays bounded whatever the size. The footer
comes last, from ``finish``: an output cut short is never a readable Parquet file, and the
sinks only complete an output at end-of-stream anyway.

Reading cannot be a byte stream (a Parquet file is read from its footer): the file-like ends
hand :func:`produce_parquet_rows` each file as something pyarrow opens (a local path, or a
:class:`RangeFile` whose reads are ranged GETs), and the rows come out a row group at a time.

Types (see docs/compatibility.md): integers by width, ``numeric(p, s)`` as a decimal of that
precision and scale, an unconstrained numeric as its exact text, ``timestamptz`` as a UTC
timestamp, ``timestamp`` as a naive one, ``json`` as text; the field metadata key
``headrace.type`` says which logical type a text column had, so ``--create`` from the file
makes the column the source had.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import anyio

from connectors.base import Column, ColumnType, Progress, RowBatch, RowsOut, Schema, TextFormat
from connectors.errors import BadDataError, ConfigError

#: A row group is written once this many rows are buffered (64 Ki rows / 16 MiB: a 500,000-row
#: copy peaked at 259 MB RSS with 128 Ki / 32 MiB, at 212 MB with these; benchmarks/README.md)...
ROW_GROUP_ROWS = 64 * 1024
#: ... or this many bytes of Arrow data, whichever comes first.
ROW_GROUP_BYTES = 16 * 1024 * 1024
#: The compressions ``parquet_compression`` may name.
COMPRESSIONS = ("zstd", "snappy", "none")
#: Field metadata naming the logical type of a column stored as text (json, numeric).
TYPE_KEY = b"headrace.type"


def pyarrow_modules() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a clear error when the extra is not installed.

    Unless ``ARROW_DEFAULT_MEMORY_POOL`` names one, Arrow's buffers come from jemalloc told to
    give freed pages back at once (decay 0), where the wheel has it, else from the system
    allocator. pyarrow's default, mimalloc, kept the freed row groups' pages: a 500,000-row
    PostgreSQL -> Parquet copy peaked at 212 MB RSS on the rows lane against 175 MB with the
    system allocator, and on the bytes lane the system allocator's 191-197 MB became 165 MB
    with jemalloc (benchmarks/README.md). The variable is set before the first import
    (pyarrow reads it when it loads: ``set_memory_pool`` afterwards did not give mimalloc's
    pages back); jemalloc is then made the default before any buffer is made."""
    chosen = "pyarrow" in sys.modules or bool(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))
    if not chosen:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise ConfigError("the Parquet format needs pyarrow: pip install 'headrace[parquet]'"
                          ) from None
    if not chosen:
        try:
            pa.jemalloc_set_decay_ms(0)
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # a build without jemalloc: the system allocator
            pass
    return pa, pq


def check_compression(name: str) -> str:
    if name not in COMPRESSIONS:
        raise ConfigError(f"Parquet compression {name!r} is not supported; use "
                          f"{', '.join(COMPRESSIONS)}")
    return name


# --- types ------------------------------------------------------------------------------------

def arrow_field(col: Column) -> Any:
    """The Arrow field a column is written as (nullable: every SQL column may hold NULL)."""
    pa, _ = pyarrow_modules()
    meta = None
    kind = col.type
    if kind == "integer":
        typ = {8: pa.int8(), 16: pa.int16()}.get(col.bits or 32, pa.int32())
    elif kind == "bigint":
        typ = pa.int64()
    elif kind == "numeric":
        if col.precision is None or col.precision < 1 or (col.scale or 0) < 0:
            typ, meta = pa.string(), {TYPE_KEY: b"numeric"}
        elif col.precision <= 38:
            typ = pa.decimal128(col.precision, col.scale or 0)
        else:
            typ = pa.decimal256(min(col.precision, 76), col.scale or 0)
    elif kind == "double":
        typ = pa.float32() if col.bits == 32 else pa.float64()
    elif kind == "boolean":
        typ = pa.bool_()
    elif kind == "timestamptz":
        typ = pa.timestamp("us", tz="UTC")
    elif kind == "timestamp":
        typ = pa.timestamp("us")
    elif kind == "date":
        typ = pa.date32()
    elif kind == "binary":
        typ = pa.binary()
    elif kind == "json":
        typ, meta = pa.string(), {TYPE_KEY: b"json"}
    else:
        typ = pa.string()
    return pa.field(col.name, typ, nullable=True, metadata=meta)


def arrow_schema(schema: Schema) -> Any:
    pa, _ = pyarrow_modules()
    return pa.schema([arrow_field(c) for c in schema.columns])


def column_from_arrow(field: Any) -> Column:
    """The logical column of an Arrow field (the reverse of :func:`arrow_field`)."""
    pa, _ = pyarrow_modules()
    t = field.type
    meta = field.metadata or {}
    name = field.name
    if pa.types.is_dictionary(t):
        t = t.value_type
    kind: ColumnType
    if pa.types.is_boolean(t):
        return Column(name, "boolean")
    if pa.types.is_int8(t):
        return Column(name, "integer", bits=8)
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return Column(name, "integer", bits=16)
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return Column(name, "integer")
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return Column(name, "bigint")
    if pa.types.is_uint64(t):
        return Column(name, "numeric", precision=20, scale=0)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return Column(name, "double", bits=32)
    if pa.types.is_float64(t):
        return Column(name, "double")
    if pa.types.is_decimal(t):
        return Column(name, "numeric", precision=t.precision, scale=t.scale)
    if pa.types.is_timestamp(t):
        return Column(name, "timestamptz" if t.tz else "timestamp")
    if pa.types.is_date(t):
        return Column(name, "date")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or \
            pa.types.is_fixed_size_binary(t):
        return Column(name, "binary")
    if pa.types.is_nested(t):
        return Column(name, "json")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        named = meta.get(TYPE_KEY, b"").decode()
        kind = "json" if named == "json" else "numeric" if named == "numeric" else "text"
        return Column(name, kind)
    return Column(name, "text")


def schema_from_arrow(arrow: Any) -> Schema:
    return Schema(tuple(column_from_arrow(arrow.field(i)) for i in range(len(arrow))))


# --- values -----------------------------------------------------------------------------------

def _as_text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8")
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return format(v, "f")  # 10000000000, not 1E+10
    return str(v)


#: Why a NaN cannot be a decimal, and what to do instead.
NAN_HINT = ("; a NaN has no decimal form: read the column as double precision or text "
            "(a selectQuery with a cast) to keep it")


def shown_value(value: Any) -> str:
    """A value as an error shows it (cut to 60 characters; a NaN said to be one)."""
    text = str(value)
    shown = repr(text[:60])
    return f"{shown} (a NaN)" if text.lower() == "nan" else shown


def with_nan_hint(what: str, value: Any, target: Any) -> str:
    """``what``, and for a NaN into a decimal the way to keep it."""
    pa, _ = pyarrow_modules()
    if str(value).lower() == "nan" and pa.types.is_decimal(target):
        return what + NAN_HINT
    return what


def _array(values: list[Any], field: Any, where: str, first_line: int | None) -> Any:
    """Values of one column as an Arrow array of ``field``'s type; text from a text format
    ("12.50", "2024-01-02 03:04:05+00") is parsed by Arrow's casts. A value the type cannot
    hold is named with its line (``first_line`` counts from the batch's first row)."""
    pa, _ = pyarrow_modules()
    typ = field.type
    try:
        return _converted(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
            ValueError) as exc:
        bad = _first_unconvertible(values, typ)
        line = first_line + bad if first_line is not None and bad is not None else first_line
        what = f"{exc}" if bad is None else with_nan_hint(
            f"{shown_value(values[bad])}: {exc}", values[bad], typ)
        raise BadDataError(f"{where}: column {field.name!r} cannot be written as Parquet "
                           f"{typ}: {what}", line=line) from None


def _converted(values: list[Any], typ: Any) -> Any:
    pa, _ = pyarrow_modules()
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    texts = [_as_text(v) for v in values]
    if pa.types.is_string(typ):
        return pa.array(texts, type=typ)
    if pa.types.is_binary(typ):
        return pa.array([t.encode("utf-8") if isinstance(t, str) else t for t in texts],
                        type=typ)
    if pa.types.is_boolean(typ):
        texts = [None if t is None else
                 {"t": "true", "f": "false", "y": "true", "n": "false", "yes": "true",
                  "no": "false"}.get(t.strip().lower(), t.strip()) for t in texts]
    return pa.array(texts, type=pa.string()).cast(typ)


def _first_unconvertible(values: list[Any], typ: Any) -> int | None:
    """The index of the first value :func:`_converted` refuses alone (the error path only)."""
    pa, _ = pyarrow_modules()
    for i, value in enumerate(values):
        try:
            _converted([value], typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
            return i
    return None


# --- writing ----------------------------------------------------------------------------------

class _Drain:
    """A write-only file for pyarrow's ParquetWriter whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._pieces.append(piece)
        self._pos += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


class RowGroupWriter:
    """One Parquet file of ``schema`` (Arrow), written a row group at a time into memory
    that :meth:`add` and :meth:`finish` hand back as bytes: a group is cut once
    ``group_rows`` rows or ``ROW_GROUP_BYTES`` of Arrow data are buffered. Both the rows
    lane's :class:`ParquetEncoder` and the bytes lane's CSV transcoder write through it."""

    def __init__(self, schema: Any, compression: str, *, group_rows: int | None = None) -> None:
        _, pq = pyarrow_modules()
        self.schema = schema
        self._group_rows = max(1, group_rows or ROW_GROUP_ROWS)
        self._out = _Drain()
        self._writer = pq.ParquetWriter(
            self._out, schema, compression=None if compression == "none" else compression)
        self._pending: list[Any] = []
        self._rows = 0
        self._bytes = 0

    def add(self, data: Any) -> bytes:
        """Buffer a RecordBatch or Table of the file's schema; the bytes of any row group
        this completed."""
        if data.num_rows:
            self._pending.append(data)
            self._rows += data.num_rows
            self._bytes += data.nbytes
            if self._rows >= self._group_rows or self._bytes >= ROW_GROUP_BYTES:
                self._flush()
        return self._out.take()

    def _flush(self) -> None:
        if not self._pending:
            return
        pa, _ = pyarrow_modules()
        tables = [p if isinstance(p, pa.Table) else pa.Table.from_batches([p])
                  for p in self._pending]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self._pending, self._rows, self._bytes = [], 0, 0

    def finish(self) -> bytes:
        """The last row group and the footer."""
        self._flush()
        self._writer.close()
        return self._out.take()


def open_row_groups(schema: Schema, compression: str, location: str, *,
                    group_rows: int | None = None) -> RowGroupWriter:
    """A :class:`RowGroupWriter` for the logical ``schema`` (types as :func:`arrow_field`)."""
    if not len(schema):
        raise ConfigError(f"{location}: a Parquet file needs at least one column")
    return RowGroupWriter(arrow_schema(schema), compression, group_rows=group_rows)


class ParquetEncoder:
    """Row batches -> the bytes of one Parquet file, a row group at a time.

    The file's schema is the first batch's (a database source's batches carry its columns
    with their precision and widths); later batches are written to it by position."""

    def __init__(self, fmt: TextFormat, *, location: str = "parquet",
                 row_group_rows: int | None = None) -> None:
        self._compression = check_compression(fmt.parquet_compression)
        self._location = location
        self._group_rows = row_group_rows
        self._hint: Schema | None = None
        self._groups: RowGroupWriter | None = None

    def expect_schema(self, schema: Schema | None) -> None:
        """The source's columns: the schema of the file when no row arrives (a Parquet file
        of no rows still has its columns)."""
        self._hint = schema

    def _open(self, schema: Schema) -> RowGroupWriter:
        self._groups = open_row_groups(schema, self._compression, self._location,
                                       group_rows=self._group_rows)
        return self._groups

    def encode(self, batch: RowBatch) -> bytes:
        if not batch.rows:
            return b""
        pa, _ = pyarrow_modules()
        groups = self._groups
        if groups is None:
            # the source's own schema when it names the same columns: it may know more
            # (a table's numeric precision, which a partitioned read's batches do not carry)
            hint = self._hint
            same = hint is not None and hint.names == batch.schema.names
            groups = self._open(hint if same and hint is not None else batch.schema)
        schema = groups.schema
        width = len(schema)
        if len(batch.rows[0]) != width:
            raise BadDataError(f"{self._location}: a row has {len(batch.rows[0])} fields, the "
                               f"Parquet schema {width} columns", line=batch.first_line)
        columns = list(zip(*batch.rows, strict=True))
        arrays = [_array(list(columns[i]), schema.field(i), self._location,
                         batch.first_line) for i in range(width)]
        return groups.add(pa.RecordBatch.from_arrays(arrays, schema=schema))

    def finish(self) -> bytes:
        groups = self._groups
        if groups is None:
            if self._hint is None or not len(self._hint):
                return b""  # no rows and no columns known: nothing to write
            groups = self._open(self._hint)
        return groups.finish()


# --- reading ----------------------------------------------------------------------------------

class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``read_at(offset, length) -> bytes`` (for pyarrow,
    which calls it from a worker thread; the S3 source's reads are ranged GETs)."""

    def __init__(self, size: int, read_at: Callable[[int, int], bytes]) -> None:
        super().__init__()
        self.size = size
        self._read_at = read_at
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._read_at(self._pos, end - self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _plain(values: list[Any], col: Column) -> list[Any]:
    if col.type == "json":
        return [v if v is None or isinstance(v, str) else
                json.dumps(v, ensure_ascii=False, default=str) for v in values]
    return values


class ParquetRows:
    """One Parquet file read a batch at a time (each call in a worker thread)."""

    def __init__(self, source: Any, location: str, batch_rows: int) -> None:
        _, pq = pyarrow_modules()
        self.location = location
        try:
            self._file = pq.ParquetFile(source)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
            raise BadDataError(f"{location}: not a readable Parquet file: {exc}") from None
        self.schema = schema_from_arrow(self._file.schema_arrow)
        self._batches = self._file.iter_batches(batch_size=batch_rows)

    def next_batch(self, first_line: int) -> RowBatch | None:
        pa, _ = pyarrow_modules()
        try:
            record = next(self._batches)
        except StopIteration:
            return None
        columns = []
        for i, col in enumerate(self.schema.columns):
            array = record.column(i)
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            if pa.types.is_timestamp(array.type) and array.type.unit == "ns":
                array = self._microseconds(array, col, first_line)
            columns.append(_plain(array.to_pylist(), col))
        rows = list(zip(*columns, strict=True)) if columns else []
        return RowBatch(self.schema, rows, first_line=first_line)

    def _microseconds(self, array: Any, col: Column, first_line: int) -> Any:
        """Nanosecond timestamps (other tools write them) at microseconds, what PostgreSQL,
        MySQL and Python keep: exact when every value is whole microseconds; a value with
        nanoseconds is refused naming its row rather than rounded."""
        pa, _ = pyarrow_modules()
        import pyarrow.compute as pc

        try:
            return array.cast(pa.timestamp("us", tz=array.type.tz))
        except pa.ArrowInvalid:
            pass
        ticks = array.cast(pa.int64())
        lost = pc.not_equal(pc.subtract(ticks, pc.multiply(pc.divide(ticks, 1000), 1000)), 0)
        bad = pc.index(lost, True).as_py()
        row = first_line + max(0, bad)
        value = array[bad].value if bad >= 0 else None
        raise BadDataError(f"the timestamp {value} ns since the epoch has nanoseconds, "
                           "which nothing headrace writes to keeps (PostgreSQL, MySQL and "
                           "Python stop at microseconds); round it where the file is made "
                           "(pyarrow: coerce_timestamps='us', allow_truncated_timestamps)",
                           location=self.location, line=row, column=col.name)

    def close(self) -> None:
        self._file.close()


#: What the file-like ends give :func:`produce_parquet_rows`: (location, a path or a file
#: object pyarrow opens, made in the worker thread).
ParquetInput = tuple[str, Callable[[], Any]]


async def read_parquet_schema(location: str, opener: Callable[[], Any]) -> Schema:
    def read() -> Schema:
        _, pq = pyarrow_modules()
        try:
            return schema_from_arrow(pq.read_schema(opener()))
        except (OSError, ValueError) as exc:
            raise BadDataError(f"{location}: not a readable Parquet file: {exc}") from None

    return await anyio.to_thread.run_sync(read)


async def produce_parquet_rows(files: AsyncIterator[ParquetInput], out: RowsOut,
                               progress: Progress, *, batch_rows: int = 10_000) -> None:
    """Every file's rows, file after file, a batch at a time, into ``out``."""
    limiter = anyio.CapacityLimiter(1)
    first = 1
    def open_rows(location: str, opener: Callable[[], Any]) -> ParquetRows:
        return ParquetRows(opener(), location, batch_rows)

    async for location, opener in files:
        reader = await anyio.to_thread.run_sync(open_rows, location, opener, limiter=limiter)
        try:
            while True:
                batch = await anyio.to_thread.run_sync(reader.next_batch, first,
                                                       limiter=limiter)
                if batch is None:
                    break
                await out.send(batch)
                first += len(batch)
                progress.add(rows=len(batch))
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close, limiter=limiter)


def parquet_row_count(path: str) -> int:
    """The rows a Parquet file's footer says it holds (blocking: call it in a thread)."""
    _, pq = pyarrow_modules()
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError) as exc:
        raise BadDataError(f"{path}: not a readable Parquet file: {exc}") from None


class FooterRows:
    """The rows of a Parquet file streaming past, from its footer (``--verify`` of a
    Parquet object: the bytes sent are the bytes S3 stored, by their MD5s and ETags, and
    these are the rows those bytes declare). Keeps only the last ``keep`` bytes or more (the
    footer comes in the stream's last chunk)."""

    def __init__(self, location: str, *, keep: int = 4 * 1024 * 1024) -> None:
        self._location = location
        self._keep = keep
        self._tail: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> int:
        if chunk:
            self._tail.append(chunk)
            self._size += len(chunk)
            while len(self._tail) > 1 and self._size - len(self._tail[0]) >= self._keep:
                self._size -= len(self._tail.pop(0))
        return 0

    @property
    def records(self) -> int:
        pa, pq = pyarrow_modules()
        data = b"".join(self._tail)
        self._tail = [data] if data else []
        if len(data) < 12 or data[-4:] != b"PAR1":
            raise BadDataError(f"{self._location}: the bytes written do not end as a Parquet "
                               "file does")
        length = int.from_bytes(data[-8:-4], "little")
        if length + 8 > len(data):
            raise BadDataError(f"{self._location}: the Parquet footer ({length} bytes) is "
                               f"larger than the {len(data)} bytes kept to read it")
        try:
            meta = pq.read_metadata(pa.BufferReader(b"PAR1" + data[-8 - length:]))
        except (OSError, ValueError) as exc:
            raise BadDataError(f"{self._location}: the Parquet footer written cannot be "
                               f"read: {exc}") from None
        return int(meta.num_rows)
