"""One copy from a Source to a Sink: pick the lane, run the stages, count what passed.

Stages are tasks in one task group joined by bounded memory object streams::

    bytes lane:   source.produce_bytes(F) -> sink.consume_bytes(F)
                  (into Parquet: a database's CSV -> transcode -> Parquet, no rows made)
    rows lane:    source.produce_bytes(S) -> decode -> [rows] -> encode -> sink.consume_bytes(T)
                  (either end may be rows-native: produce_rows / consume_rows, no codec stage)
    server-side:  the sink copies from the source itself (S3 CopyObject), no stream at all
    direct:       one object or file copied byte for byte by positioned parallel I/O (ranged
                  GETs written at their offsets, a file read at offsets into parallel parts),
                  no ordered stream; byte-identical, so no records are counted
                  (the sink is asked once, ``TakesOver.take_over``, whether it does either)

Lane choice, first match wins: the sink's native format if the source can produce it; Parquet
from a source whose CSV is its columns' own text (:class:`~connectors.base.WritesTypedCsv`,
the schema's types given to pyarrow's CSV reader; the rows lane when
:func:`~connectors.formats.transcodable` says no); the source's native format if the sink can
consume it; the first of ``CopyOptions.common_formats`` both ends speak; else the rows lane.
A stage's output stream is closed only after the stage returned normally, so end-of-stream
always means "all data arrived" and the sink commits; on any failure the task group cancels
every stage and sinks abort. Codec work runs in a worker thread
(one per stage, through a CapacityLimiter) so the event loop keeps serving the I/O stages.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from connectors.base import (
    CSV,
    DYNAMODB_JSONL,
    TSV,
    AdoptsColumns,
    Converts,
    CountsRows,
    CreatesTable,
    KnowsTotal,
    Progress,
    RowBatch,
    Schema,
    Sink,
    Source,
    TakeoverLane,
    TakesOver,
    TextFormat,
    Total,
    VerifiesLoad,
    WritesTypedCsv,
    first_common_format,
)
from connectors.errors import BadDataError, ConfigError, TerminalError, single_failure
from connectors.formats import (
    CsvToParquet,
    Decoder,
    RecordCounter,
    RowChecksum,
    WantsSchema,
    decoder_for,
    encoder_for,
    transcodable,
)
from connectors.timeouts import waiting_on_peer
from connectors.tracing import copy_span, stage_span

log = logging.getLogger("headrace.copy")

Lane = Literal["bytes", "rows", "server-side", "direct"]
T = TypeVar("T")

#: Chunks smaller than this are (de)coded inline; bigger ones in a worker thread.
_THREAD_THRESHOLD = 64 * 1024


@dataclass(frozen=True)
class CopyOptions:
    """Tuning and policy for one copy.

    Memory held by the copy's own links is at most ``stream_depth`` items per link (a chunk of
    the source's chunk size, or a batch of ``batch_rows`` rows); connectors add their own
    bounded buffers (S3 parts in flight = ``EndpointOptions.parallel``).
    """

    stream_depth: int = 4
    #: Target size of the byte chunks the encode stage hands to the sink.
    chunk_size: int = 1024 * 1024
    batch_rows: int = 10_000
    #: Reject up to this many malformed records (to ``bad_rows_path``); one more fails the copy.
    max_bad_rows: int = 0
    bad_rows_path: str | None = None
    common_formats: tuple[TextFormat, ...] = (CSV, TSV, DYNAMODB_JSONL)
    allow_server_side: bool = True
    #: Let a sink copy one file or object byte for byte by parallel positioned I/O
    #: (:class:`~connectors.base.TakesOver`): no rows are counted on that lane.
    allow_direct: bool = True
    #: Called as ``on_queue_depth(link_name, items_buffered)`` after every send on a link.
    on_queue_depth: Callable[[str, int], None] | None = None
    #: ``--verify``: compare rows and a content checksum of both ends before the sink commits
    #: (:mod:`connectors.verify`); the sink must be :class:`~connectors.base.VerifiesLoad`.
    verify: bool = False
    #: Write Parquet from a database's CSV bytes (the bytes lane into Parquet) where it can;
    #: False keeps the rows lane (for comparisons: benchmarks, the lanes' equality test).
    parquet_from_csv: bool = True


@dataclass(frozen=True)
class Figures:
    rows: int
    checksum: str


@dataclass(frozen=True)
class Verification:
    """Both ends' figures; ``--output json``'s ``"verify"`` object."""

    source: Figures
    dest: Figures

    @property
    def ok(self) -> bool:
        return self.source == self.dest

    def as_json(self) -> dict[str, Any]:
        return {"sourceRows": self.source.rows, "destRows": self.dest.rows,
                "sourceChecksum": self.source.checksum, "destChecksum": self.dest.checksum,
                "ok": self.ok}


class VerifyFailed(TerminalError):
    """The destination does not hold what the source sent; nothing was committed."""

    def __init__(self, where: str, verification: Verification) -> None:
        s, d = verification.source, verification.dest
        super().__init__(f"{where}: verify failed: the source sent {s.rows} rows (checksum "
                         f"{s.checksum}), the destination holds {d.rows} (checksum "
                         f"{d.checksum}); nothing was committed")
        self.verification = verification


@dataclass
class CopyResult:
    rows: int
    bytes: int
    seconds: float
    lane: Lane
    format: TextFormat | None
    bad_rows: int = 0
    retries: int = 0
    stages: tuple[str, ...] = ()
    #: Highest number of items seen buffered on each link (``"source->decode"``, ...).
    peak_queue_depth: dict[str, int] = field(default_factory=dict)
    #: Both ends' figures when the copy was verified.
    verify: Verification | None = None


@dataclass(frozen=True)
class Plan:
    """What :func:`plan` decided: the lane and, per end, bytes (with format) or rows."""

    lane: Lane
    produce: TextFormat | None  # None: source.produce_rows
    consume: TextFormat | None  # None: sink.consume_rows

    @property
    def format(self) -> TextFormat | None:
        return self.consume or self.produce

    @property
    def decode(self) -> bool:
        return self.lane == "rows" and self.produce is not None

    @property
    def encode(self) -> bool:
        return self.lane == "rows" and self.consume is not None

    @property
    def transcode(self) -> bool:
        """The bytes lane into Parquet: the source's CSV parsed by pyarrow, no rows made."""
        return self.lane == "bytes" and self.consume is not None and \
            self.consume.kind == "parquet" and self.produce != self.consume


def _writes_typed_csv(source: Source) -> bool:
    return isinstance(source, WritesTypedCsv) and source.typed_csv and source.can_produce(CSV)


def plan(source: Source, sink: Sink, options: CopyOptions | None = None, *,
         transcode: bool = True) -> Plan:
    """Choose the lane for ``source`` -> ``sink`` (see the module docstring);
    ``transcode=False`` leaves out the bytes lane into Parquet."""
    options = options or CopyOptions()
    target = sink.native_format
    if target is not None and source.can_produce(target):
        return Plan("bytes", target, target)
    transcode = transcode and options.parquet_from_csv
    if transcode and target is not None and target.kind == "parquet" and \
            _writes_typed_csv(source):
        return Plan("bytes", CSV, target)
    native = source.native_format
    if native is not None and not source.can_produce(native):
        native = None  # read only as rows (Parquet files: from their footers)
    if native is not None and sink.can_consume(native):
        return Plan("bytes", native, native)
    # A format the sink loads as it is beats one it must convert first (``sink.converts``).
    converting = sink.converts if isinstance(sink, Converts) else None
    as_is = [f for f in options.common_formats if not (converting and converting(f))]
    common = first_common_format(source, sink, as_is) or first_common_format(
        source, sink, options.common_formats)
    if common is not None:
        return Plan("bytes", common, common)
    if target is not None and target.kind == "regex":
        raise ConfigError(f"{sink.describe}: the RegEx format can be read but not written")
    return Plan("rows", native, target)


class _ConnectorProgress(Progress):
    """A connector's own counters; retries also reach the copy's caller, and so do rows
    (``forward_rows``) and bytes (``forward``) where the copy does not count them itself.
    The bytes a source reports are the caller's ``read``, a sink's its ``written`` (with
    ``forward``, one end does the whole copy: both). Partitions open on the caller's."""

    def __init__(self, parent: Progress, *, forward: bool = False,
                 forward_rows: bool = False, end: Literal["source", "sink"] = "source") -> None:
        super().__init__()
        self._parent = parent
        self._forward_rows = forward or forward_rows
        self._forward_bytes = forward
        self._end = end

    def add(self, *, rows: int = 0, nbytes: int = 0) -> None:
        super().add(rows=rows, nbytes=nbytes)
        parent = self._parent
        if self._forward_rows or self._forward_bytes:
            parent.add(rows=rows if self._forward_rows else 0,
                       nbytes=nbytes if self._forward_bytes else 0)
        if self._forward_bytes:
            parent.read += nbytes
            parent.written += nbytes
        elif self._end == "source":
            parent.read += nbytes
        else:
            parent.written += nbytes

    def retried(self, cause: str) -> None:
        super().retried(cause)
        self._parent.retried(cause)

    def open_part(self, total: Total | None = None) -> Progress:
        return self._parent.open_part(total)


def _counts_rows(end: Source | Sink) -> bool:
    """True for a connector that reports the rows it moves on the bytes lane itself."""
    return isinstance(end, CountsRows) and end.counts_rows


class _Link(Generic[T]):
    """One bounded stream between two stages, with counters on the sending side."""

    def __init__(self, name: str, depth: int, progress: Progress, *,
                 count_rows: bool, counter: RecordCounter | None,
                 on_depth: Callable[[str, int], None] | None) -> None:
        self.name = name
        send, recv = anyio.create_memory_object_stream[T](depth)
        self.send: MemoryObjectSendStream[T] = send
        self.recv: MemoryObjectReceiveStream[T] = recv
        self.items = 0
        self.rows = 0
        self.bytes = 0
        self.peak = 0
        self._progress = progress
        self._count_rows = count_rows
        self._counter = counter
        self._on_depth = on_depth
        #: Sees every item sent (``--verify``'s source side).
        self.tap: Callable[[Any], None] | None = None

    def sender(self) -> _CountingSend[T]:
        return _CountingSend(self)

    def receiver(self) -> _PeerReceive[T]:
        return _PeerReceive(self.recv)

    def observe(self, item: Any) -> None:
        self.items += 1
        if self.tap is not None:
            self.tap(item)
        if isinstance(item, RowBatch):
            n = len(item.rows)
            self.rows += n
            if self._count_rows:
                self._progress.add(rows=n)
        else:
            size = len(item)
            self.bytes += size
            rows = self._counter.feed(item) if self._counter is not None else 0
            self.rows += rows
            self._progress.add(rows=rows, nbytes=size)
        depth = self.send.statistics().current_buffer_used
        if depth > self.peak:
            self.peak = depth
        if self._on_depth is not None:
            self._on_depth(self.name, depth)

    def close(self) -> None:
        self.send.close()
        self.recv.close()


class _CountingSend(ObjectSendStream[T]):
    """What a producing stage writes to: the link's send side, counted."""

    def __init__(self, link: _Link[T]) -> None:
        self._link = link

    async def send(self, item: T) -> None:
        with waiting_on_peer():  # a full link is the consumer's time, not the server's
            await self._link.send.send(item)
        self._link.observe(item)

    async def aclose(self) -> None:
        """Closing is the copy's job (only after the producer returned); ignored here."""


class _PeerReceive(ObjectReceiveStream[T]):
    """What the sink stage reads from: the link's receive side, where waiting for the producer
    does not count as the sink's server being silent (:mod:`connectors.timeouts`)."""

    def __init__(self, recv: MemoryObjectReceiveStream[T]) -> None:
        self._recv = recv

    async def receive(self) -> T:
        with waiting_on_peer():
            return await self._recv.receive()

    async def aclose(self) -> None:
        await self._recv.aclose()


class _BadRows:
    """Collects rejected records up to the limit; one more fails the copy."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.records: list[bytes] = []

    def __call__(self, err: BadDataError, raw: bytes) -> None:
        if len(self.records) >= self.limit:
            raise BadDataError(f"more than {self.limit} bad rows; this one: {err.message}",
                               location=err.location, line=err.line, column=err.column)
        self.records.append(raw if raw.endswith(b"\n") else raw + b"\n")


async def _codec(limiter: anyio.CapacityLimiter, fn: Callable[[Any], T], arg: Any,
                 size: int) -> T:
    if size < _THREAD_THRESHOLD:
        return fn(arg)
    return await anyio.to_thread.run_sync(fn, arg, limiter=limiter)


async def copy(source: Source, sink: Sink, options: CopyOptions | None = None,
               progress: Progress | None = None) -> CopyResult:
    """Copy everything ``source`` holds into ``sink``; the sink commits only on success.

    Traced as one ``copy`` span with a child span per stage (see :mod:`connectors.tracing`)."""
    with copy_span(source.describe, sink.describe) as span:
        result = await _copy(source, sink, options, progress)
        span.done(result)
        return result


async def _copy(source: Source, sink: Sink, options: CopyOptions | None,
                progress: Progress | None) -> CopyResult:
    options = options or CopyOptions()
    progress = progress if progress is not None else Progress()
    started = time.perf_counter()
    retries_before = progress.retries

    async with _learning_total(source, progress):
        return await _run_lanes(source, sink, options, progress, started, retries_before)


@asynccontextmanager
async def _learning_total(source: Source, progress: Progress) -> AsyncIterator[None]:
    """While the body runs, ask a source that knows its size (:class:`KnowsTotal`) for it,
    into ``progress.total``: in a task of its own, so the first byte does not wait for it, and
    cancelled when the copy ends. Best effort: a failure leaves the total unknown."""
    if not isinstance(source, KnowsTotal) or progress.total is not None:
        yield
        return

    async def learn() -> None:
        try:
            progress.total = await source.total()
        except Exception as exc:  # only for the progress line: never fails the copy
            log.debug("%s: total unknown: %s", source.describe, exc)

    with single_failure():
        async with anyio.create_task_group() as tg:
            tg.start_soon(learn)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()


async def _run_lanes(source: Source, sink: Sink, options: CopyOptions, progress: Progress,
                     started: float, retries_before: int) -> CopyResult:
    lanes = _takeover_lanes(options) if not options.verify else frozenset()
    if lanes and isinstance(sink, TakesOver):
        # Progress counts the bytes as they land, so the live line moves.
        taken = await sink.take_over(source, _ConnectorProgress(progress, forward=True), lanes)
        if taken is not None:
            return CopyResult(rows=0, bytes=taken.nbytes, seconds=time.perf_counter() - started,
                              lane=taken.lane, format=sink.native_format,
                              retries=progress.retries - retries_before, stages=(taken.lane,))

    await _offer_target_columns(source, sink)
    chosen = plan(source, sink, options)
    typed: Schema | None = None
    if chosen.transcode:
        assert chosen.produce is not None
        typed = await source.schema()
        if not transcodable(chosen.produce, typed):
            chosen = plan(source, sink, options, transcode=False)
    await _tell_schema(source, sink)
    runner = _Runner(source, sink, chosen, options, progress)
    runner.typed_schema = typed
    verifier = await _Verifier.start(source, sink, chosen, progress) \
        if options.verify else None
    runner.verifier = verifier
    await runner.run()
    rows, nbytes = runner.totals()
    return CopyResult(rows=rows, bytes=nbytes, seconds=time.perf_counter() - started,
                      lane=chosen.lane, format=chosen.format, bad_rows=runner.bad_rows,
                      retries=progress.retries - retries_before, stages=runner.stage_names,
                      peak_queue_depth={link.name: link.peak for link in runner.links},
                      verify=verifier.result() if verifier is not None else None)


class _Verifier:
    """The source's side of ``--verify`` and the comparison the sink calls before commit.

    Rows are summed as they leave the source (a bytes lane's records decoded here for it),
    read as the destination's columns (its table's, or the source's when it will be created
    from them), so that ``"12.50"`` from a CSV and ``12.5`` from a numeric agree."""

    def __init__(self, sink: Sink, kind: str, summer: RowChecksum,
                 decoder: Decoder | None, progress: Progress) -> None:
        self.where = sink.describe
        self.progress = progress
        self.kind = kind
        self.summer = summer
        self.decoder = decoder
        self.verification: Verification | None = None
        self.rows_out = 0

    @classmethod
    async def start(cls, source: Source, sink: Sink, chosen: Plan,
                    progress: Progress) -> _Verifier:
        if not isinstance(sink, VerifiesLoad):
            raise ConfigError(f"{sink.describe}: --verify is not supported for this "
                              "destination")
        dest = await sink.schema() if sink.verify_kind == "rows" else None
        if dest is None:
            dest = await source.schema()
        decoder = None
        if chosen.lane == "bytes" and chosen.produce is not None and \
                sink.verify_kind == "rows":
            decoder = decoder_for(chosen.produce, location=source.describe,
                                  schema=await source.schema())
        verifier = cls(sink, sink.verify_kind, RowChecksum(dest), decoder, progress)
        sink.verify_with(verifier.check)
        return verifier

    def observe(self, item: Any) -> None:
        """Each item leaving the source: a batch of rows, or bytes to decode."""
        if isinstance(item, RowBatch):
            self.summer.add(item)
            self.rows_out += len(item.rows)
        elif self.decoder is not None:
            for batch in self.decoder.feed(item):
                self.summer.add(batch)

    def source_done(self) -> None:
        if self.decoder is not None:
            for batch in self.decoder.finish():
                self.summer.add(batch)

    async def check(self, rows: int, checksum: str, sent: str | None = None) -> None:
        # a bytes sink: the records the copy moved, and the bytes as the sink wrote them
        if self.kind == "rows":
            source = Figures(self.summer.rows, self.summer.checksum())
        else:
            source = Figures(self.progress.rows, sent or "")
        self.verification = Verification(source, Figures(rows, checksum))
        if not self.verification.ok:
            raise VerifyFailed(self.where, self.verification)

    def result(self) -> Verification | None:
        """None when the sink loaded nothing to verify: a load an earlier attempt committed
        (and verified before it did) under the same checkpoint key."""
        return self.verification


def _takeover_lanes(options: CopyOptions) -> frozenset[TakeoverLane]:
    lanes: set[TakeoverLane] = set()
    if options.allow_server_side:
        lanes.add("server-side")
    if options.allow_direct:
        lanes.add("direct")
    return frozenset(lanes)


async def _tell_schema(source: Source, sink: Sink) -> None:
    """Give a sink that can create its table the source's columns (``expect_schema``).

    The rows lane would show them in its batches, but the bytes lane carries none, so without
    this ``--create`` failed there (PostgreSQL -> PostgreSQL). A sink that will not create
    anything says so with ``needs_source_schema`` and spares the source a lookup.
    """
    if isinstance(sink, CreatesTable) and sink.needs_source_schema:
        sink.expect_schema(await source.schema())


async def _offer_target_columns(source: Source, sink: Sink) -> None:
    """Give a source that names no columns of its own (a DynamoDB scan without a declared
    column list) the target table's, so attributes map to columns by name. Without this,
    ``headrace copy dynamodb://t postgresql://...?table=t`` sent one JSON ``item`` column."""
    if isinstance(source, AdoptsColumns) and source.wants_columns:
        schema = await sink.schema()
        if schema is not None and len(schema):
            source.adopt_columns(schema)


class _Runner:
    """Builds the links and stages for one :class:`Plan` and runs them in a task group."""

    def __init__(self, source: Source, sink: Sink, chosen: Plan, options: CopyOptions,
                 progress: Progress) -> None:
        self.source, self.sink, self.plan = source, sink, chosen
        self.options, self.progress = options, progress
        # In the bytes lane a database or DynamoDB end counts the rows itself (COPY's status,
        # the fetches, the items written): then the copy does not scan the bytes for record
        # separators (~2 ms per MB of CSV on the event loop), and that end's count reaches
        # the caller (the source's, when both count, as it moves first).
        self.connector_counts = chosen.lane == "bytes" and (
            _counts_rows(source) or _counts_rows(sink))
        from_source = self.connector_counts and _counts_rows(source)
        self.src_progress = _ConnectorProgress(progress, forward_rows=from_source)
        self.sink_progress = _ConnectorProgress(
            progress, forward_rows=self.connector_counts and not from_source, end="sink")
        self.links: list[_Link[Any]] = []
        self.verifier: _Verifier | None = None
        #: The source's schema, for the bytes lane into Parquet.
        self.typed_schema: Schema | None = None
        self.bad_rows = 0
        self._bad: _BadRows | None = None
        names = ["source"]
        if chosen.decode:
            names.append("decode")
        if chosen.encode:
            names.append("encode")
        if chosen.transcode:
            names.append("transcode")
        names.append("sink")
        self.stage_names = tuple(names)

    def _link(self, a: str, b: str, *, count_rows: bool,
              counter: RecordCounter | None = None) -> _Link[Any]:
        link: _Link[Any] = _Link(f"{a}->{b}", self.options.stream_depth, self.progress,
                                 count_rows=count_rows, counter=counter,
                                 on_depth=self.options.on_queue_depth)
        self.links.append(link)
        return link

    def totals(self) -> tuple[int, int]:
        rows = max(link.rows for link in self.links)
        if self.connector_counts:
            rows = max(rows, self.src_progress.rows, self.sink_progress.rows)
        byte_links = [lk for lk in self.links if lk.bytes]
        nbytes = byte_links[-1].bytes if byte_links else max(
            self.sink_progress.bytes, self.src_progress.bytes)
        return rows, nbytes

    async def run(self) -> None:
        p = self.plan
        names = self.stage_names
        links = []
        for a, b in itertools.pairwise(names):
            carries_bytes = (a == "source" and p.produce is not None) or \
                a in ("encode", "transcode")
            if carries_bytes:
                fmt = p.produce if a == "source" else p.consume
                assert fmt is not None
                # Rows are counted where rows flow; bytes links count records only in the
                # bytes lane, where no rows link exists, and no connector counts them
                # (the source's records, when they are transcoded).
                counter = RecordCounter(fmt) if p.lane == "bytes" and a == "source" and \
                    not self.connector_counts else None
                links.append(self._link(a, b, count_rows=False, counter=counter))
            else:
                links.append(self._link(a, b, count_rows=True))
        try:
            with single_failure():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._traced, "copy read", links[0], self._source_stage,
                                  links[0])
                    idx = 0
                    if p.decode:
                        tg.start_soon(self._traced, "copy decode", links[idx + 1],
                                      self._decode_stage, links[idx], links[idx + 1])
                        idx += 1
                    if p.encode:
                        tg.start_soon(self._traced, "copy encode", links[idx + 1],
                                      self._encode_stage, links[idx], links[idx + 1])
                        idx += 1
                    if p.transcode:
                        tg.start_soon(self._traced, "copy transcode", links[idx + 1],
                                      self._transcode_stage, links[idx], links[idx + 1])
                        idx += 1
                    tg.start_soon(self._traced, "copy write", links[idx], self._sink_stage,
                                  links[idx])
        finally:
            for link in links:
                link.close()

    async def _traced(self, name: str, counted: _Link[Any],
                      stage: Callable[..., Awaitable[None]], *links: _Link[Any]) -> None:
        """Run one stage inside its span; the span gets the rows and bytes of ``counted``
        (the stage's output link, or its input for the sink)."""
        with stage_span(name, **{"headrace.copy.lane": self.plan.lane,
                                 "headrace.copy.link": counted.name}) as span:
            await stage(*links)
            if span.is_recording():
                span.set_attributes({"headrace.rows": counted.rows,
                                     "headrace.bytes": counted.bytes,
                                     "headrace.copy.peak_queue_depth": counted.peak})

    async def _source_stage(self, out: _Link[Any]) -> None:
        fmt = self.plan.produce
        verifier = self.verifier
        if verifier is not None and verifier.kind == "rows" and not self.plan.decode:
            out.tap = verifier.observe  # rows, or the bytes lane's records
        if fmt is not None:
            await self.source.produce_bytes(fmt, out.sender(), self.src_progress)
        else:
            await self.source.produce_rows(out.sender(), self.src_progress)
        if verifier is not None and out.tap is not None:
            verifier.source_done()
        await out.send.aclose()

    async def _sink_stage(self, inp: _Link[Any]) -> None:
        with inp.recv:
            fmt = self.plan.consume
            if fmt is not None:
                await self.sink.consume_bytes(fmt, inp.receiver(), self.sink_progress)
            else:
                await self.sink.consume_rows(inp.receiver(), self.sink_progress)

    async def _decode_stage(self, inp: _Link[bytes], out: _Link[RowBatch]) -> None:
        assert self.plan.produce is not None
        opts = self.options
        bad = _BadRows(opts.max_bad_rows) if opts.max_bad_rows > 0 else None
        self._bad = bad
        schema = await self.source.schema()
        decoder = decoder_for(self.plan.produce, location=self.source.describe, schema=schema,
                              batch_rows=opts.batch_rows, on_bad=bad)
        limiter = anyio.CapacityLimiter(1)
        if self.verifier is not None and self.verifier.kind == "rows":
            out.tap = self.verifier.observe  # the source's records, as rows
        sender = out.sender()
        with inp.recv:
            async for chunk in inp.recv:
                for batch in await _codec(limiter, decoder.feed, chunk, len(chunk)):
                    await sender.send(batch)
        for batch in decoder.finish():
            await sender.send(batch)
        if bad is not None and bad.records:
            self.bad_rows = len(bad.records)
            await self._write_bad_rows(bad.records)
        await out.send.aclose()

    async def _write_bad_rows(self, records: list[bytes]) -> None:
        path = self.options.bad_rows_path
        if not path:
            return
        from connectors.local import write_file_atomic

        await write_file_atomic(path, b"".join(records))

    async def _encode_stage(self, inp: _Link[RowBatch], out: _Link[bytes]) -> None:
        assert self.plan.consume is not None
        encoder = encoder_for(self.plan.consume)
        if isinstance(encoder, WantsSchema):
            encoder.expect_schema(await self.source.schema())
        await self._gathered(inp, out, encoder.encode, encoder.finish,
                             lambda batch: len(batch.rows) * 64)

    async def _transcode_stage(self, inp: _Link[bytes], out: _Link[bytes]) -> None:
        """The source's CSV chunks -> Parquet bytes (:class:`CsvToParquet`)."""
        assert self.plan.consume is not None and self.typed_schema is not None
        transcoder = CsvToParquet(self.plan.consume, self.typed_schema,
                                  where=self.source.describe)
        await self._gathered(inp, out, transcoder.feed, transcoder.finish, len)

    async def _gathered(self, inp: _Link[Any], out: _Link[bytes], encode: Callable[[Any], bytes],
                        finish: Callable[[], bytes], size: Callable[[Any], int]) -> None:
        """Each item of ``inp`` through ``encode`` (in a worker thread when ``size`` says
        it is big), the bytes sent on in chunks of about ``chunk_size``; ``finish``'s last."""
        limiter = anyio.CapacityLimiter(1)
        target = max(1, self.options.chunk_size)
        sender = out.sender()
        pending: list[bytes] = []
        total = 0
        with inp.recv:
            async for item in inp.recv:
                data = await _codec(limiter, encode, item, size(item))
                if not data:
                    continue
                pending.append(data)
                total += len(data)
                if total >= target:
                    await _send_sliced(sender, b"".join(pending), target)
                    pending, total = [], 0
        tail = await anyio.to_thread.run_sync(finish, limiter=limiter)
        if tail:
            pending.append(tail)
        if pending:
            await _send_sliced(sender, b"".join(pending), target)
        await out.send.aclose()


async def _send_sliced(sender: ObjectSendStream[bytes], data: bytes, size: int) -> None:
    """``data`` in pieces of at most ``size``: a whole Parquet row group (several MB) sent
    as one item would let the bounded link hold ``stream_depth`` of them."""
    if len(data) <= size:
        await sender.send(data)
        return
    view = memoryview(data)
    for start in range(0, len(data), size):
        await sender.send(bytes(view[start:start + size]))
