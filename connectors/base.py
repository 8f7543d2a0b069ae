"""What flows through a copy, and the two protocols every connector implements.

A copy is tasks joined by bounded anyio memory streams: a source *produces* into a send stream,
an optional codec converts, and a sink *consumes* from a receive stream. Two lanes:

* bytes lane: the source emits encoded records (``bytes`` chunks, any boundaries) in a
  :class:`TextFormat` the sink can read natively (PostgreSQL ``COPY ... TO STDOUT`` straight into
  S3 multipart parts);
* rows lane: :class:`RowBatch` objects, when a conversion is needed.

Contract that makes outputs atomic: a producer never closes the stream it writes to. The copy
closes it only after the producer returned normally, so a sink that sees end-of-stream knows the
whole input arrived and commits; if anything fails, the copy's task group is cancelled and the
sink aborts its output in shielded cleanup (abort the multipart upload, roll back, remove the
temp file). Memory held by a copy is bounded by chunk size x stream depth x parallel parts.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from anyio.abc import ObjectReceiveStream, ObjectSendStream

from connectors.errors import TerminalFault

#: Logical column types shared by all connectors (Hive names in definitions map onto these).
ColumnType = Literal[
    "text", "integer", "bigint", "numeric", "double", "boolean",
    "timestamptz", "timestamp", "date", "json", "binary",
]


@dataclass(frozen=True)
class Column:
    """One column. ``precision``/``scale`` are a ``numeric``'s when the source declares them
    (None: unconstrained); ``bits`` narrows an ``integer`` (8, 16) or a ``double`` (32) when
    the source's type is narrower than the logical one. Columnar formats (Parquet) and
    ``--create`` keep them; the text formats ignore them."""

    name: str
    type: ColumnType = "text"
    precision: int | None = None
    scale: int | None = None
    bits: int | None = None


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def __len__(self) -> int:
        return len(self.columns)


FormatKind = Literal["csv", "tsv", "custom", "regex", "jsonl", "dynamodb-jsonl", "parquet"]


@dataclass(frozen=True)
class TextFormat:
    """How records are laid out as bytes.

    Defaults are headrace's CSV: RFC 4180, no header, UTF-8, NULL as an unquoted empty field and
    the empty string as ``""`` (what PostgreSQL's CSV COPY writes), so both survive a round trip.
    TSV is PostgreSQL's text format: tab separated, backslash escapes, NULL as ``\\N``.
    ``dynamodb-jsonl`` is one ``{"Item": {...typed attribute values...}}`` per line, as
    DynamoDB's own export to S3 writes.

    ``parquet`` is not text at all but rides the same type (a headrace extension): row groups
    compressed with ``parquet_compression`` (zstd, snappy or none). It is written from rows by
    an encoder like any format, but read only by the file-like ends themselves (a Parquet file
    is read from its footer, not as a stream), so no source can produce it as bytes.
    """

    kind: FormatKind = "csv"
    column_separator: str = ","
    record_separator: str = "\n"
    quote: str | None = '"'
    escape_char: str | None = None
    null: str = ""
    header: bool = False
    regex: str | None = None
    columns: tuple[Column, ...] = ()
    encoding: str = "utf-8"
    parquet_compression: str = "zstd"

    def replace(self, **changes: Any) -> TextFormat:
        return dataclasses.replace(self, **changes)

    @property
    def extension(self) -> str:
        return {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "dynamodb-jsonl": "json",
                "parquet": "parquet"}.get(self.kind, "txt")


CSV = TextFormat()
TSV = TextFormat(kind="tsv", column_separator="\t", quote=None, escape_char="\\", null="\\N")
JSONL = TextFormat(kind="jsonl", column_separator="", quote=None)
DYNAMODB_JSONL = TextFormat(kind="dynamodb-jsonl", column_separator="", quote=None)
PARQUET = TextFormat(kind="parquet", column_separator="", quote=None)


@dataclass
class RowBatch:
    """Rows as Python values: None, str, int, Decimal, float, bool, datetime, date, bytes, dict.

    ``first_line`` is the 1-based source line (or record number) of ``rows[0]`` when the rows
    came from a text format, so a later failure can name where the bad row was.
    """

    schema: Schema
    rows: list[tuple[Any, ...]]
    first_line: int | None = None

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Total:
    """What a source knows of its size before reading it: ``bytes`` (a file's or an object's
    size: exact) or ``rows`` (a table's row count as the planner estimates it: ``estimated``).
    """

    rows: int | None = None
    bytes: int | None = None
    estimated: bool = False


@dataclass
class Progress:
    """Counters a copy's stages update as data passes; read by the progress line and spans.

    :func:`connectors.copy.copy` counts rows and bytes itself where its stages meet, and hands
    each connector its own Progress: a connector may call :meth:`add` freely (nothing is counted
    twice), and its :meth:`retried` calls reach the caller's Progress live.

    On the caller's Progress the copy also keeps ``read`` (bytes the source delivered, the
    measure of a size ``total``), ``written`` (bytes the sink wrote: handed to its file,
    server or finished upload part, not what waits in buffers), ``total`` (when the source
    knows it, see :class:`KnowsTotal`) and ``parts`` (one Progress per partition of a
    partitioned read, opened by the source with :meth:`open_part`).
    """

    rows: int = 0
    bytes: int = 0
    retries: int = 0
    retry_causes: dict[str, int] = field(default_factory=dict)
    read: int = 0
    written: int = 0
    total: Total | None = None
    parts: list[Progress] = field(default_factory=list)

    def add(self, *, rows: int = 0, nbytes: int = 0) -> None:
        self.rows += rows
        self.bytes += nbytes

    def retried(self, cause: str) -> None:
        self.retries += 1
        self.retry_causes[cause] = self.retry_causes.get(cause, 0) + 1

    def open_part(self, total: Total | None = None) -> Progress:
        """A tally for one partition of the input (its own rows, bytes and total), listed in
        ``parts``; the source still counts everything on this Progress as well."""
        part = Progress(total=total)
        self.parts.append(part)
        return part

    def fraction(self) -> float | None:
        """How much of ``total`` is done (0..1), or None without a usable total: rows done of
        the rows expected, else bytes read of the size (an estimate may be passed: capped)."""
        total = self.total
        if total is None:
            return None
        if total.rows:
            return min(1.0, self.rows / total.rows)
        if total.bytes:
            return min(1.0, self.read / total.bytes)
        return None


BytesOut = ObjectSendStream[bytes]
BytesIn = ObjectReceiveStream[bytes]
RowsOut = ObjectSendStream[RowBatch]
RowsIn = ObjectReceiveStream[RowBatch]


@runtime_checkable
class Source(Protocol):
    """Where a copy reads from.

    ``describe`` is a display name without secrets (used in errors, logs and spans).
    ``native_format`` is the format the data already has at rest (a file's or object's declared
    format), or None for systems that can render several (databases) or only rows (DynamoDB).
    What else a source may do is declared by the capability protocols below; the copy checks
    each with ``isinstance`` and relies on nothing else.
    """

    describe: str

    @property
    def native_format(self) -> TextFormat | None: ...

    def can_produce(self, fmt: TextFormat) -> bool:
        """True when this source can emit ``fmt`` as bytes without a Python row codec."""
        ...

    async def schema(self) -> Schema | None:
        """Column names and types when known (tables, declared columns), else None."""
        ...

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        """Send the whole input as ``fmt`` bytes into ``out``. Never closes ``out``."""
        ...

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        """Send the whole input as row batches into ``out``. Never closes ``out``."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where a copy writes to. Consuming to end-of-stream commits; cancellation aborts."""

    describe: str

    @property
    def native_format(self) -> TextFormat | None: ...

    def can_consume(self, fmt: TextFormat) -> bool:
        """True when this sink can load ``fmt`` bytes natively (COPY FROM, LOAD DATA, upload)."""
        ...

    async def schema(self) -> Schema | None:
        """The target's columns when known (an existing table), else None."""
        ...

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        """Load all of ``inp``, then commit atomically. On cancellation, leave nothing behind."""
        ...

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        """Load all row batches of ``inp``, then commit atomically (or idempotently by key)."""
        ...


class RangeWriter(Protocol):
    """Where a direct copy writes: bytes at any offset, in any order, from several tasks."""

    async def write_at(self, offset: int, *pieces: bytes) -> None:
        """Write ``pieces`` one after the other from ``offset`` (several pieces: one
        gathering write, no joining copy)."""
        ...


class RangeReader(Protocol):
    """What a direct copy reads from: a file of known size, read at any offset."""

    size: int

    async def read_at(self, offset: int, length: int) -> io.BytesIO:
        """Exactly ``length`` bytes from ``offset``, in a BytesIO positioned at 0 (an upload
        body that HTTP clients send as it is, without copying it again)."""
        ...


# --- capabilities ---------------------------------------------------------------------------
# What an end may do besides the six members of Source and Sink. The copy (connectors.copy)
# checks each with isinstance, once, and relies on nothing that is not declared here.


@runtime_checkable
class CountsRows(Protocol):
    """A source or sink that reports, through its Progress, the rows it moves on the bytes lane
    (COPY's status, the rows fetched, the items written) when ``counts_rows`` is true: the copy
    then does not scan the bytes for record separators itself."""

    counts_rows: bool


@runtime_checkable
class WritesTypedCsv(Protocol):
    """A source whose CSV (headrace's layout) renders each column of its ``schema()`` as the
    database's own text (PostgreSQL's COPY, the MySQL unload's server-built lines), when
    ``typed_csv`` is true: the copy may parse those bytes into Parquet with the schema's
    types (:mod:`connectors.formats.parquet_csv`) rather than read the rows one by one."""

    typed_csv: bool


@runtime_checkable
class Converts(Protocol):
    """A sink that can load a format only after a byte pass of its own (MySQL's LOAD DATA and
    headrace's CSV NULLs): the copy prefers a format the sink loads as it is."""

    def converts(self, fmt: TextFormat) -> bool: ...


@runtime_checkable
class CreatesTable(Protocol):
    """A sink that may create its table from the source's columns: the copy gives it the
    source's schema (``expect_schema``) when ``needs_source_schema`` is true (the bytes lane
    carries no columns)."""

    @property
    def needs_source_schema(self) -> bool: ...

    def expect_schema(self, schema: Schema | None) -> None: ...


@runtime_checkable
class AdoptsColumns(Protocol):
    """A source that names no columns of its own (a DynamoDB scan with no declared columns):
    when ``wants_columns`` is true the copy offers it the target table's, so attributes map to
    columns by name."""

    @property
    def wants_columns(self) -> bool: ...

    def adopt_columns(self, schema: Schema) -> None: ...


class VerifyCheck(Protocol):
    """What a verifying sink calls before it commits, with the figures of what it stored;
    it raises when they differ from the source's (see :mod:`connectors.verify`). ``sent`` is
    a bytes sink's checksum of the bytes as it wrote them (the copy's side of the pair)."""

    def __call__(self, rows: int, checksum: str, sent: str | None = None) -> Awaitable[None]:
        ...


@runtime_checkable
class VerifiesLoad(Protocol):
    """A sink that can compute what it stored before it commits (``--verify``).

    ``verify_kind`` says which figures: ``"rows"`` (a count and the order-free checksum of
    the rows, by a query over what the load wrote) or ``"bytes"`` (the records and SHA-256 of
    the bytes stored). The copy computes the source's side and hands the comparison to
    :meth:`verify_with`; the sink calls it after the load and before it commits, so a
    mismatch rolls back (or leaves the upload or temp file uncompleted)."""

    @property
    def verify_kind(self) -> Literal["rows", "bytes"]: ...

    def verify_with(self, check: VerifyCheck) -> None: ...


@runtime_checkable
class CommitsWatermark(Protocol):
    """A sink that commits an incremental copy's state with the rows, in the load's own
    transaction (PostgreSQL, MySQL: the ``headrace_checkpoints`` row), and can merge rows by
    key (upsert) instead of appending them."""

    merge_keys: tuple[str, ...]

    def commit_watermark(self, key: str, state: Callable[[], str]) -> None: ...

    async def stored_watermark(self, key: str) -> str | None:
        """The state last committed under ``key``, or None."""
        ...


@runtime_checkable
class KnowsTotal(Protocol):
    """A source that can say how much it holds before it is read (a file's size, an object's,
    a table's estimated rows), for the progress line's percent and ETA. Best effort: the copy
    asks while it runs and ignores a failure or a None."""

    async def total(self) -> Total | None: ...


TakeoverLane = Literal["server-side", "direct"]


@dataclass(frozen=True)
class Takeover:
    """What a sink that took a copy over did: the lane and the bytes copied."""

    lane: TakeoverLane
    nbytes: int


@runtime_checkable
class TakesOver(Protocol):
    """A sink that can do the whole copy itself, without the copy's stages: server-side (S3
    CopyObject/UploadPartCopy, no data through us) or direct (one object or file byte for byte
    by positioned parallel I/O, as ``s5cmd cp`` does). ``lanes`` says which the caller allows;
    None means "stream it as usual". Progress counts the bytes as they land."""

    async def take_over(self, source: Source, progress: Progress,
                        lanes: frozenset[TakeoverLane]) -> Takeover | None: ...


@runtime_checkable
class RangeSource(Protocol):
    """A source that is one file readable at any offset (a direct upload reads its parts at
    their offsets). ``opaque``: its bytes are not known to be records."""

    opaque: bool

    def open_ranges(self, *, compressed: bool
                    ) -> AbstractAsyncContextManager[RangeReader | None]:
        """The file, open for reads at any offset, or None when this is not a byte-for-byte
        copy of one file (a directory, or a file whose compression is not ``compressed``)."""
        ...


@runtime_checkable
class RangeDownloader(Protocol):
    """A source that is one object fetched by ranges in parallel (a direct download writes each
    range at its offset). ``opaque``: its bytes are not known to be records."""

    opaque: bool

    async def download_into(self, start: Callable[[int], Awaitable[RangeWriter]], *,
                            compressed: bool, progress: Progress) -> int | None:
        """Fetch the object into ``start(size)``'s writer; None (before calling ``start``)
        when this is not a byte-for-byte copy of one object."""
        ...


def first_common_format(source: Source, sink: Sink,
                        candidates: Sequence[TextFormat]) -> TextFormat | None:
    """The first of ``candidates`` both ends handle natively, or None (the rows lane)."""
    for fmt in candidates:
        if source.can_produce(fmt) and sink.can_consume(fmt):
            return fmt
    return None


#: The most partitions a table may be read in at once (``EndpointOptions.partitions``).
MAX_PARTITIONS = 64
@dataclass(frozen=True)
class OutputFence:
    """Set (in :data:`OUTPUT_FENCE`) by a worker process around an attempt it holds under a
    lease, so that a holder with an older token (its lease lapsed, another worker took over)
    cannot make its output visible: the SQL loads record ``token`` in their checkpoint row
    inside the load's own transaction; S3 and file sinks make an output visible (an object
    completed, a file renamed into place) only inside :func:`output_fence_held`."""

    Hold = Callable[[], AbstractAsyncContextManager[None]]

    #: the lease version (fencing token) of the claim
    token: int
    #: the claim held for the block's duration: raises when it no longer holds, else keeps
    #: anyone from taking the instance over until the block ends (the worker locks the
    #: instance's row in the store)
    hold: Hold


#: the fence of the attempt this task runs for (None: not a worker's attempt)
OUTPUT_FENCE: ContextVar[OutputFence | None] = ContextVar("headrace_output_fence",
                                                          default=None)


class FencedOut(TerminalFault):
    """A newer claim on the instance loads this output: this holder must not commit."""


def output_fence_token() -> int | None:
    """The fencing token of the worker's claim this task runs under (None: no worker)."""
    fence = OUTPUT_FENCE.get()
    return fence.token if fence is not None else None


@asynccontextmanager
async def output_fence_held() -> AsyncIterator[None]:
    """Around the step that makes an output visible: raises (the worker's error) when the
    worker running this output lost its claim, and keeps the claim from being taken over
    until the step is done. Outside a worker's attempt, nothing."""
    fence = OUTPUT_FENCE.get()
    if fence is None:
        yield
        return
    async with fence.hold():
        yield


#: The default S3 part and range size (see EndpointOptions.chunk_size).
DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class EndpointOptions:
    """Options a URL alone cannot carry, from ``headrace copy`` flags or a data node.

    Every connector module exposes ``source_from_url(url: str, options: EndpointOptions) ->
    Source`` and ``sink_from_url(url: str, options: EndpointOptions) -> Sink``;
    :mod:`connectors.urls` picks the module by the URL's scheme.
    """

    format: TextFormat | None = None
    query: str | None = None
    parallel: int = 4
    create: bool = False
    #: S3 part and range size. 5 MiB (S3's smallest part; the S3 sink never cuts smaller parts)
    #: was as fast as 8 MiB in benchmarks/README.md's sweeps and holds ~20 MB less per copy.
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: ``"gzip"`` or ``"none"`` for files and objects; None = from the name (``.gz``).
    compression: str | None = None
    #: PostgreSQL and MySQL table sources: read this many key ranges at once, all in one
    #: snapshot (1: one stream). Other sources ignore it.
    partitions: int = 1
