"""The copy engine: lane choice, stages, counting, failure and cancellation, backpressure."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from connectors.base import CSV, JSONL, TSV, Column, Progress, RowBatch, Schema, TextFormat
from connectors.copy import CopyOptions, copy, plan
from connectors.errors import BadDataError, ConfigError, ConnectionLost
from connectors.local import LocalSink, LocalSource
from connectors.testing import (
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
    check_round_trip,
)

pytestmark = pytest.mark.anyio

SCHEMA = Schema((Column("id"), Column("name")))
ROWS = [(str(i), None if i % 7 == 0 else f"name {i}") for i in range(500)]
CSV_DATA = b"".join(b"%s,%s\n" % (r[0].encode(), (r[1] or "").encode()) for r in ROWS)


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class PgLike:
    """A sink that, like a database, renders no file format but loads CSV and TSV natively."""

    describe = "pg-like"
    native_format = None

    def __init__(self) -> None:
        self.loaded: tuple[TextFormat, bytes] | None = None

    def can_consume(self, fmt: TextFormat) -> bool:
        return fmt.kind in ("csv", "tsv")

    async def schema(self) -> Schema | None:
        return SCHEMA

    async def consume_bytes(self, fmt, inp, progress) -> None:
        self.loaded = (fmt, b"".join([chunk async for chunk in inp]))

    async def consume_rows(self, inp, progress) -> None:
        raise AssertionError("a CSV-capable sink must get bytes")


async def test_lane_choice() -> None:
    csv_src = MemorySource(SCHEMA, data=CSV_DATA, fmt=CSV)
    rows_src = MemorySource(SCHEMA, ROWS)
    assert plan(csv_src, MemorySink(CSV)).lane == "bytes"
    p = plan(csv_src, MemorySink(JSONL))
    assert (p.lane, p.decode, p.encode) == ("rows", True, True)
    p = plan(rows_src, MemorySink(CSV))
    assert (p.lane, p.decode, p.encode) == ("rows", False, True)
    p = plan(csv_src, MemorySink())
    assert (p.lane, p.decode, p.encode) == ("rows", True, False)
    p = plan(rows_src, MemorySink())
    assert (p.lane, p.produce, p.consume) == ("rows", None, None)
    # The source's own format wins when the sink can load it (S3 TSV -> COPY FROM).
    tsv_src = MemorySource(SCHEMA, data=b"1\tx\n", fmt=TSV)
    assert plan(tsv_src, PgLike()) == plan(tsv_src, PgLike())
    assert plan(tsv_src, PgLike()).produce == TSV
    regex = TextFormat(kind="regex", column_separator="", quote=None, regex="(.*)")
    with pytest.raises(ConfigError, match="RegEx"):
        plan(rows_src, MemorySink(regex))


async def test_bytes_lane_passes_bytes_untouched_and_counts_records() -> None:
    sink = PgLike()
    progress = Progress()
    result = await copy(MemorySource(SCHEMA, data=CSV_DATA, fmt=CSV, chunk_size=333), sink,
                        progress=progress)
    assert sink.loaded == (CSV, CSV_DATA)
    assert (result.lane, result.rows, result.bytes) == ("bytes", 500, len(CSV_DATA))
    assert (progress.rows, progress.bytes) == (500, len(CSV_DATA))
    assert result.stages == ("source", "sink")


async def test_rows_lane_decodes_and_encodes() -> None:
    sink = MemorySink(JSONL)
    result = await copy(MemorySource(SCHEMA, data=CSV_DATA, fmt=CSV.replace(
        columns=SCHEMA.columns), chunk_size=100), sink)
    assert result.lane == "rows" and result.stages == ("source", "decode", "encode", "sink")
    assert result.rows == 500
    assert sink.committed_bytes is not None
    lines = sink.committed_bytes.decode().splitlines()
    assert lines[0] == '{"id":"0","name":null}' and lines[1] == '{"id":"1","name":"name 1"}'
    rows_back = MemorySink()
    await copy(MemorySource(SCHEMA, data=sink.committed_bytes, fmt=JSONL), rows_back)
    assert rows_back.rows == ROWS


async def test_source_failure_aborts_sink_and_raises_the_cause() -> None:
    class Failing(MemorySource):
        async def produce_rows(self, out, progress) -> None:
            await out.send(RowBatch(SCHEMA, ROWS[:10]))
            raise ConnectionLost("server went away", connector="test", operation="read")

    sink = MemorySink()
    with pytest.raises(ConnectionLost, match="server went away"):
        await copy(Failing(SCHEMA, ROWS), sink)
    assert sink.committed_rows is None and sink.aborted


async def test_cancelled_copy_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "data.csv"

    async def visible() -> list[Path]:
        return files_in(tmp_path)

    await check_abort_leaves_nothing(lambda: LocalSink(str(dest)), visible, ROWS, SCHEMA)
    await check_abort_leaves_nothing(lambda: LocalSink(str(tmp_path / "parts") + "/"), visible,
                                     ROWS, SCHEMA, data=CSV_DATA, fmt=CSV)


async def test_abort_check_catches_a_sink_that_leaks() -> None:
    """The kit itself must fail for a sink that makes data visible before end-of-stream."""
    leaked: list[tuple] = []

    class Leaky(MemorySink):
        async def consume_rows(self, inp, progress) -> None:
            async for batch in inp:
                leaked.extend(batch.rows)

    async def visible() -> list[tuple]:
        return leaked

    with pytest.raises(AssertionError, match="visible after an aborted copy"):
        await check_abort_leaves_nothing(Leaky, visible, ROWS, SCHEMA)


async def test_slow_sink_bounds_what_the_source_has_sent() -> None:
    depth = 2
    sink = MemorySink(delay=0.002)
    source = MemorySource(SCHEMA, ROWS, batch_rows=5)
    worst = 0

    def observe(link: str, buffered: int) -> None:
        nonlocal worst
        # Items the source handed over that the sink has not yet taken.
        worst = max(worst, source.sent + 1 - sink.received)
        assert buffered <= depth

    result = await copy(source, sink, CopyOptions(stream_depth=depth, on_queue_depth=observe))
    assert sink.rows == ROWS
    assert worst <= depth + 2
    assert result.peak_queue_depth["source->sink"] <= depth


async def test_clogged_consumer_stops_a_file_source(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    data = CSV_DATA * 40  # ~200 KB in 4 KB reads
    path.write_bytes(data)
    await check_clogged_sink(lambda: LocalSource(str(path), chunk_size=4096), fmt=CSV, depth=2,
                             hold=0.3, max_read_ahead_bytes=4 * 4096, expected=data)


async def test_clogged_check_catches_a_source_that_reads_ahead() -> None:
    class Greedy(MemorySource):
        async def produce_bytes(self, fmt, out, progress) -> None:
            progress.add(nbytes=len(self.data or b""))  # "reads" everything up front
            for i in range(0, len(self.data or b""), 100):
                await out.send((self.data or b"")[i:i + 100])

    with pytest.raises(AssertionError, match="ahead of a stalled consumer"):
        await check_clogged_sink(lambda: Greedy(SCHEMA, data=CSV_DATA, fmt=CSV), fmt=CSV,
                                 max_read_ahead_bytes=1000, hold=0.05)


async def test_round_trip_kit_through_a_local_file(tmp_path: Path) -> None:
    dest = str(tmp_path / "rt.csv")
    await check_round_trip(lambda: LocalSink(dest), lambda: LocalSource(dest), ROWS, SCHEMA)


async def test_bad_rows_fail_by_default_and_commit_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"1,a\n2,b\n3\n4,d\n")
    dest = tmp_path / "out.jsonl"
    with pytest.raises(BadDataError) as err:
        await copy(LocalSource(str(src)), LocalSink(str(dest)))
    assert err.value.line == 3 and str(src) in str(err.value)
    assert files_in(tmp_path) == [src]


async def test_bad_rows_routed_to_dead_letter_file_up_to_the_limit(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"1,a\n2\n3,c\n4,d,extra\n5,e\n")
    dest, dead = tmp_path / "out.jsonl", tmp_path / "rejects.csv"
    opts = CopyOptions(max_bad_rows=2, bad_rows_path=str(dead))
    result = await copy(LocalSource(str(src)), LocalSink(str(dest)), opts)
    assert (result.rows, result.bad_rows) == (3, 2)
    assert dead.read_bytes() == b"2\n4,d,extra\n"
    assert dest.read_text().count("\n") == 3

    dest2 = tmp_path / "out2.jsonl"
    with pytest.raises(BadDataError, match="more than 1 bad rows"):
        await copy(LocalSource(str(src)), LocalSink(str(dest2)),
                   CopyOptions(max_bad_rows=1, bad_rows_path=str(tmp_path / "r2.csv")))
    assert not dest2.exists() and not (tmp_path / "r2.csv").exists()


async def test_producer_that_returns_early_is_not_mistaken_for_failure() -> None:
    sink = MemorySink()
    result = await copy(MemorySource(SCHEMA, []), sink)
    assert sink.committed_rows == [] and result.rows == 0


async def test_queue_depth_hook_sees_every_link() -> None:
    seen: set[str] = set()
    await copy(MemorySource(SCHEMA, data=CSV_DATA, fmt=CSV, chunk_size=500), MemorySink(JSONL),
               CopyOptions(on_queue_depth=lambda link, n: seen.add(link)))
    assert seen == {"source->decode", "decode->encode", "encode->sink"}


async def test_cancelling_the_caller_cancels_the_copy() -> None:
    gate = anyio.Event()
    source = MemorySource(SCHEMA, ROWS, batch_rows=10, gate=gate, gate_after=3)
    sink = MemorySink()
    with anyio.move_on_after(0.3):
        await copy(source, sink)
    assert sink.committed_rows is None and sink.aborted


class CountingSource(MemorySource):
    """A bytes source that, like a database's COPY, reports how many rows it sent."""

    counts_rows = True

    def __init__(self, reported: int) -> None:
        super().__init__(SCHEMA, data=CSV_DATA, fmt=CSV, chunk_size=1000)
        self.reported = reported

    async def produce_bytes(self, fmt, out, progress) -> None:
        await super().produce_bytes(fmt, out, progress)
        progress.add(rows=self.reported)


async def test_a_connector_that_counts_rows_is_believed_and_the_bytes_are_not_scanned() -> None:
    # The source claims a number the bytes do not show: the copy reports the source's number,
    # so it did not scan the CSV for record separators itself.
    progress = Progress()
    result = await copy(CountingSource(reported=123), MemorySink(CSV), progress=progress)
    assert (result.lane, result.rows, progress.rows) == ("bytes", 123, 123)
    assert result.bytes == progress.bytes == len(CSV_DATA)  # bytes still counted, once
    # with no counting connector, the copy counts the records itself
    counted = await copy(MemorySource(SCHEMA, data=CSV_DATA, fmt=CSV), MemorySink(CSV))
    assert counted.rows == len(ROWS)
