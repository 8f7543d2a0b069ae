"""DynamoDB tables as copy sources and sinks (``dynamodb://table?region=...``).

Source: a parallel segmented ``Scan`` (``TotalSegments`` = ``options.parallel``), paging with
``LastEvaluatedKey``, eventually consistent. It emits natively DynamoDB export JSON lines (one
``{"Item": {...}}`` per line, the wire JSON untouched) or plain JSON lines (one object per item,
numbers exact), or rows: one per item, by the declared columns (else the target table's, which
a copy offers through :meth:`DynamoDBSource.adopt_columns`), else one
:data:`~connectors.dynamodb_items.ITEM_COLUMN` dict per item.

Sink: ``BatchWriteItem`` in batches of 25 with ``options.parallel`` writers. Only the items a
reply lists as ``UnprocessedItems`` are sent again, after a jittered exponential backoff; a batch
refused whole (``ProvisionedThroughputExceededException``) is retried the same way, within a
bounded budget (:class:`~connectors.dynamodb_throughput.RetryPolicy`). It takes DynamoDB export
JSON lines natively, or rows: columns become attributes (a ``None`` column is left out of the
item), key attributes are given the table's key types (text ``"42"`` -> N for a numeric key).

Memory: at most one page (<= 1 MB) per segment, or ``parallel`` batches, in flight, plus the
copy's stream slots. Progress: ``rows`` counts items scanned/accepted; resends and throttles are
``retried("dynamodb.unprocessed")`` (per item) and ``retried("dynamodb.throttled")`` (per
request); ``.stats`` (:class:`DynamoDBStats`) holds the same and more.

**A DynamoDB sink is not atomic.** A failed or cancelled copy leaves the items it already wrote.
Writes are idempotent by key: every item is a full ``PutRequest``, so re-running the copy rewrites
the same items and the table ends with each item once. Two input items with the same key end as
the later one when they share a batch; across concurrent batches the order is not defined.

Both ends honour ``readThroughputPercent`` / ``writeThroughputPercent``: a share of the table's
provisioned capacity (DescribeTable), paced by a token bucket charged with the capacity each reply
reports. On-demand tables (or unknown capacity) are not limited.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import botocore.exceptions as bexc
from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import (
    BytesIn,
    BytesOut,
    Column,
    EndpointOptions,
    Progress,
    RowBatch,
    RowsIn,
    RowsOut,
    Schema,
    TextFormat,
)
from connectors.copy import root_cause
from connectors.dynamodb_items import (
    ITEM_SCHEMA,
    ConversionError,
    Item,
    attribute_type,
    coerce_key,
    item_json,
    item_key,
    item_plain_json,
    item_to_dict,
    item_to_row,
    row_to_item,
)
from connectors.dynamodb_throughput import RetryPolicy, TokenBucket, throughput_rate
from connectors.dynamodb_wire import call, map_error, open_client
from connectors.errors import BadDataError, ConfigError, NotFoundError, Throttled

SCHEME = "dynamodb"
#: BatchWriteItem takes at most 25 put requests.
BATCH_SIZE = 25
#: Items per Scan page when not paced (a page is also capped at 1 MB by the service).
PAGE_LIMIT = 1000
#: Longest input line taken (an item is at most 400 KB; its JSON, with base64, a little more).
MAX_LINE = 4 * 2**20
#: At most this many Scan pages or write batches in flight per copy, whatever ``parallel`` says.
MAX_CONCURRENCY = 32

_BOTO_ERRORS = (bexc.BotoCoreError, bexc.ClientError)

Percent = Annotated[float, Field(ge=0.1, le=1.0)]


_NODE_FIELDS = {"tableName": "table_name", "region": "region",
                "readThroughputPercent": "read_throughput_percent",
                "writeThroughputPercent": "write_throughput_percent"}


class DynamoDBTable(BaseModel):
    """A DynamoDB table as a definition's ``DynamoDBDataNode`` describes it.

    ``read_throughput_percent`` / ``write_throughput_percent`` (0.1-1.0) cap a copy's use of the
    table's provisioned capacity; unset means no cap. ``columns`` (from the node's data format)
    name the attributes a rows consumer gets, in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    region: str | None = Field(default=None, min_length=1)
    read_throughput_percent: Percent | None = None
    write_throughput_percent: Percent | None = None
    columns: tuple[Column, ...] = ()

    @classmethod
    def from_node(cls, fields: Mapping[str, Any],
                  columns: Sequence[Column] = ()) -> DynamoDBTable:
        """From a ``DynamoDBDataNode``'s fields (``tableName``, ``region``,
        ``readThroughputPercent``, ``writeThroughputPercent``); a bad value raises
        :class:`ConfigError` naming the definition's field."""
        values = {attr: fields[name] for name, attr in _NODE_FIELDS.items()
                  if fields.get(name) not in (None, "")}
        try:
            return cls(**values, columns=tuple(columns))
        except ValidationError as exc:
            names = {attr: name for name, attr in _NODE_FIELDS.items()}
            problems = "; ".join(
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(problems, connector=SCHEME) from None

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.table_name}" + (f"?region={self.region}" if self.region else "")

    def source(self, options: EndpointOptions | None = None) -> DynamoDBSource:
        return DynamoDBSource(self, options or EndpointOptions())

    def sink(self, options: EndpointOptions | None = None) -> DynamoDBSink:
        return DynamoDBSink(self, options or EndpointOptions())


@dataclass
class DynamoDBStats:
    """What one scan or load did, for spans and metrics (also mirrored into ``Progress``)."""

    items: int = 0          # items scanned, or items the table accepted
    requests: int = 0       # Scan / BatchWriteItem calls sent
    resent: int = 0         # items sent again because a reply listed them as unprocessed
    throttles: int = 0      # requests refused whole for throughput
    transient: int = 0      # requests retried after another transient fault
    throughput_wait: float = 0.0  # seconds spent waiting for the throughput cap


# -- URLs and table facts ---------------------------------------------------------------------

_URL_PARAMS = {
    "region": "region",
    "read_throughput_percent": "read_throughput_percent",
    "readThroughputPercent": "read_throughput_percent",
    "write_throughput_percent": "write_throughput_percent",
    "writeThroughputPercent": "write_throughput_percent",
}


def parse_url(url: str) -> DynamoDBTable:
    """``dynamodb://table[?region=..&read_throughput_percent=..&write_throughput_percent=..]``."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigError(f"not a {SCHEME}:// URL: {url!r}", connector=SCHEME)
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"{url!r}: a DynamoDB URL is dynamodb://TABLE[?region=...]",
                          connector=SCHEME)
    fields: dict[str, Any] = {"table_name": parts.netloc}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _URL_PARAMS:
            raise ConfigError(f"{url!r}: unknown parameter {name!r} (known: "
                              f"{', '.join(sorted(set(_URL_PARAMS.values())))})",
                              connector=SCHEME)
        fields[_URL_PARAMS[name]] = value
    try:
        return DynamoDBTable(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"{url!r}: {problems}", connector=SCHEME) from None


def source_from_url(url: str, options: EndpointOptions) -> DynamoDBSource:
    return DynamoDBSource(parse_url(url), options)


def sink_from_url(url: str, options: EndpointOptions) -> DynamoDBSink:
    return DynamoDBSink(parse_url(url), options)


@dataclass(frozen=True)
class TableInfo:
    """What DescribeTable says that a copy needs."""

    name: str
    status: str
    key_names: tuple[str, ...]
    key_types: dict[str, str]  # key attribute -> S, N or B
    read_units: float | None   # None: on-demand
    write_units: float | None


def _table_info(reply: dict[str, Any]) -> TableInfo:
    table = reply.get("Table", {})
    on_demand = table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    provisioned = table.get("ProvisionedThroughput", {})
    keys = sorted(table.get("KeySchema", []), key=lambda k: k.get("KeyType") != "HASH")
    return TableInfo(
        name=table.get("TableName", ""),
        status=table.get("TableStatus", "ACTIVE"),
        key_names=tuple(k["AttributeName"] for k in keys),
        key_types={a["AttributeName"]: a["AttributeType"]
                   for a in table.get("AttributeDefinitions", [])
                   if a.get("AttributeName") in {k["AttributeName"] for k in keys}},
        read_units=None if on_demand else provisioned.get("ReadCapacityUnits") or None,
        write_units=None if on_demand else provisioned.get("WriteCapacityUnits") or None,
    )


async def describe_table(client: Any, table: str, describe: str) -> TableInfo:
    """DescribeTable, mapped: a missing table raises :class:`NotFoundError`."""
    try:
        reply = await call(client, "DescribeTable", {"TableName": table}, {"TableName": table})
    except _BOTO_ERRORS as exc:
        raise map_error(exc, connector=describe, operation="DescribeTable",
                        subject=f"table {table!r}") from exc
    return _table_info(reply)


async def table_exists(table: str, region: str | None = None) -> bool:
    """True when ``table`` exists and is usable (ACTIVE or UPDATING); for DynamoDBTableExists."""
    describe = f"{SCHEME}://{table}"
    async with open_client(region, max_connections=2, describe=describe) as client:
        try:
            info = await describe_table(client, table, describe)
        except NotFoundError:
            return False
    return info.status in ("ACTIVE", "UPDATING")


async def table_has_data(table: str, region: str | None = None) -> bool:
    """True when ``table`` holds at least one item (False if it is missing); DynamoDBDataExists.

    Scans for one item rather than trusting DescribeTable's ItemCount, which lags by hours.
    """
    describe = f"{SCHEME}://{table}"
    payload: dict[str, Any] = {"TableName": table, "Limit": 1, "Select": "COUNT"}
    async with open_client(region, max_connections=2, describe=describe) as client:
        for _ in range(100):  # with no filter the first page answers; bound it regardless
            try:
                reply = await call(client, "Scan", payload, {"TableName": table})
            except _BOTO_ERRORS as exc:
                error = map_error(exc, connector=describe, operation="Scan",
                                  subject=f"table {table!r}")
                if isinstance(error, NotFoundError):
                    return False
                raise error from exc
            if reply.get("Count", 0) > 0:
                return True
            if "LastEvaluatedKey" not in reply:
                return False
            payload["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
    return False


@asynccontextmanager
async def _task_group() -> AsyncIterator[TaskGroup]:
    """A task group whose failure surfaces as its root-cause error, not an exception group."""
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        cause = root_cause(group)
        raise cause from cause.__cause__


# -- shared retry loop ------------------------------------------------------------------------

def _consumed_units(reply: dict[str, Any]) -> float:
    consumed = reply.get("ConsumedCapacity")
    if isinstance(consumed, list):
        return sum(float(c.get("CapacityUnits", 0)) for c in consumed)
    if isinstance(consumed, dict):
        return float(consumed.get("CapacityUnits", 0))
    return 0.0


class _Caller:
    """One table's requests: throughput pacing, error mapping, retry of transient faults."""

    def __init__(self, client: Any, table: str, describe: str, bucket: TokenBucket | None,
                 retry: RetryPolicy, stats: DynamoDBStats, progress: Progress) -> None:
        self.client = client
        self.table = table
        self.describe = describe
        self.bucket = bucket
        self.retry = retry
        self.stats = stats
        self.progress = progress

    async def send(self, operation: str, payload: dict[str, Any],
                   route: dict[str, Any]) -> dict[str, Any]:
        """One request, retried on throttling and transient faults until the retry budget ends."""
        stalled = 0
        while True:
            if self.bucket is not None:
                before = self.bucket.waited
                await self.bucket.acquire()
                self.stats.throughput_wait += self.bucket.waited - before
            self.stats.requests += 1
            try:
                reply = await call(self.client, operation, payload, route)
            except _BOTO_ERRORS as exc:
                error = map_error(exc, connector=self.describe, operation=operation,
                                  subject=f"table {self.table!r}")
                if not error.transient:
                    raise error from exc
                if isinstance(error, Throttled):
                    self.stats.throttles += 1
                    self.progress.retried("dynamodb.throttled")
                else:
                    self.stats.transient += 1
                    self.progress.retried("dynamodb.transient")
                stalled += 1
                if stalled >= self.retry.max_attempts:
                    raise type(error)(
                        f"gave up after {stalled} attempts: {error.message}",
                        connector=self.describe, operation=operation) from exc
                await anyio.sleep(self.retry.delay(stalled))
                continue
            if self.bucket is not None:
                self.bucket.spend(_consumed_units(reply))
            return reply


def _bucket(percent: float | None, units: float | None) -> TokenBucket | None:
    rate = throughput_rate(percent, units)
    return TokenBucket(rate) if rate is not None else None


# -- source -----------------------------------------------------------------------------------

class DynamoDBSource:
    """Reads a whole table with a parallel Scan. See the module docstring."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True

    native_format: TextFormat | None = None

    def __init__(self, table: DynamoDBTable, options: EndpointOptions, *,
                 retry: RetryPolicy | None = None, page_limit: int = PAGE_LIMIT) -> None:
        self.table = table
        self.options = options
        self.retry = retry or RetryPolicy()
        self.page_limit = max(1, min(page_limit, PAGE_LIMIT))
        self.describe = table.url
        self.stats = DynamoDBStats()
        fmt_columns = options.format.columns if options.format is not None else ()
        self.columns: tuple[Column, ...] = table.columns or tuple(fmt_columns)
        self._key_names: tuple[str, ...] = ()

    @property
    def wants_columns(self) -> bool:
        """True when no column list was declared (see :meth:`adopt_columns`)."""
        return not self.columns

    def adopt_columns(self, schema: Schema) -> None:
        """Read rows by these columns (the target table's, offered by the copy) instead of
        one whole-item column: attributes map to columns by name, missing ones are NULL."""
        self.columns = tuple(schema.columns)

    def can_produce(self, fmt: TextFormat) -> bool:
        return fmt.kind in ("dynamodb-jsonl", "jsonl")

    async def schema(self) -> Schema | None:
        return Schema(self.columns) if self.columns else None

    async def produce_bytes(self, fmt: TextFormat, out: BytesOut, progress: Progress) -> None:
        """DynamoDB export lines (the wire JSON as is), or plain JSON lines: one object per item
        with every attribute, or the declared columns' attributes (absent ones null)."""
        if not self.can_produce(fmt):
            raise ConfigError(f"a DynamoDB scan cannot produce {fmt.kind} bytes",
                              connector=self.describe, operation="Scan")
        separator = fmt.record_separator or "\n"
        if fmt.kind == "jsonl":
            names = tuple(c.name for c in (fmt.columns or self.columns))

            def line(item: Item) -> str:
                return item_plain_json(item, names)
        else:
            line = item_json

        async def emit(items: list[Item]) -> None:
            try:
                chunk = "".join(line(item) + separator for item in items).encode(fmt.encoding)
            except ConversionError as exc:
                raise BadDataError(f"{exc}", connector=self.describe, operation="Scan",
                                   location=self.describe) from None
            await out.send(chunk)
            progress.add(rows=len(items), nbytes=len(chunk))

        await self._scan(emit, progress)

    async def produce_rows(self, out: RowsOut, progress: Progress) -> None:
        columns = self.columns
        schema = Schema(columns) if columns else ITEM_SCHEMA

        async def emit(items: list[Item]) -> None:
            rows = []
            for item in items:
                try:
                    rows.append(item_to_row(item, columns) if columns
                                else (item_to_dict(item),))
                except ConversionError as exc:
                    raise BadDataError(f"item {_show_key(item, self._key_names)}: {exc}",
                                       connector=self.describe, operation="Scan",
                                       location=self.describe) from None
            await out.send(RowBatch(schema, rows))
            progress.add(rows=len(rows))

        await self._scan(emit, progress)

    async def _scan(self, emit: Callable[[list[Item]], Any], progress: Progress) -> None:
        segments = max(1, self.options.parallel)
        concurrency = min(segments, MAX_CONCURRENCY)
        limiter = anyio.CapacityLimiter(concurrency)
        async with open_client(self.table.region, max_connections=concurrency,
                               describe=self.describe) as client:
            info = await describe_table(client, self.table.table_name, self.describe)
            self._key_names = info.key_names
            bucket = _bucket(self.table.read_throughput_percent, info.read_units)
            caller = _Caller(client, self.table.table_name, self.describe, bucket, self.retry,
                             self.stats, progress)
            async with _task_group() as tg:
                for segment in range(segments):
                    tg.start_soon(self._scan_segment, caller, segment, segments, limiter, emit)

    async def _scan_segment(self, caller: _Caller, segment: int, segments: int,
                            limiter: anyio.CapacityLimiter,
                            emit: Callable[[list[Item]], Any]) -> None:
        table = self.table.table_name
        payload: dict[str, Any] = {"TableName": table, "Limit": self.page_limit,
                                   "ConsistentRead": False}
        if segments > 1:
            payload.update(Segment=segment, TotalSegments=segments)
        if caller.bucket is not None:
            payload["ReturnConsumedCapacity"] = "TOTAL"
            # Until a reply says what items cost, guess 1 KB (1/8 of an eventually consistent
            # read unit) so the first page cannot overdraw the bucket by much.
            share = caller.bucket.rate / segments
            payload["Limit"] = max(1, min(self.page_limit, math.floor(share * 8)))
        while True:
            async with limiter:
                reply = await caller.send("Scan", payload, {"TableName": table})
            items: list[Item] = reply.get("Items", [])
            self.stats.items += len(items)
            if items:
                await emit(items)
            if "LastEvaluatedKey" not in reply:
                return
            payload["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
            if caller.bucket is not None:
                payload["Limit"] = self._paced_limit(caller.bucket, segments, reply, len(items),
                                                     payload["Limit"])

    def _paced_limit(self, bucket: TokenBucket, segments: int, reply: dict[str, Any],
                     count: int, current: int) -> int:
        """Items per page so one page costs about one second of this segment's share."""
        units = _consumed_units(reply)
        if not count or units <= 0:
            return current
        per_item = units / count
        return max(1, min(self.page_limit, math.floor(bucket.rate / segments / per_item)))


def _show_key(item: Item, names: Sequence[str] = ()) -> str:
    shown = {n: item[n] for n in names if n in item} or dict(list(item.items())[:2])
    return json.dumps(shown, separators=(",", ":"))[:200]


# -- sink -------------------------------------------------------------------------------------

@dataclass
class _Batch:
    items: list[Item]
    first: int  # input line (bytes) or row number (rows) of the first item
    last: int


class _Batcher:
    """Groups items into batches of 25, replacing an earlier item with the same key.

    With ``key_types`` (rows, whose text values carry no DynamoDB type), key attributes are
    first converted to the table's key types (:func:`coerce_key`).
    """

    def __init__(self, key_names: tuple[str, ...], describe: str,
                 key_types: dict[str, str] | None = None) -> None:
        self.key_names = key_names
        self.describe = describe
        self.key_types = key_types
        self._items: dict[tuple[Any, ...], Item] = {}
        self._first = 0
        self._last = 0

    def add(self, item: Item, origin: int) -> _Batch | None:
        if self.key_types:
            item = coerce_key(item, self.key_types)
        try:
            key = item_key(item, self.key_names)
        except ConversionError as exc:
            raise BadDataError(f"{exc} (key: {', '.join(self.key_names)})",
                               connector=self.describe, operation="BatchWriteItem",
                               location=self.describe, line=origin) from None
        if not self._items:
            self._first = origin
        self._last = origin
        self._items[key] = item
        return self.flush() if len(self._items) >= BATCH_SIZE else None

    def flush(self) -> _Batch | None:
        if not self._items:
            return None
        batch = _Batch(list(self._items.values()), self._first, self._last)
        self._items = {}
        return batch


def _check_item(item: Any) -> Item:
    if not isinstance(item, dict) or not item:
        raise ConversionError("an item is a non-empty object of attribute values")
    for name, av in item.items():
        try:
            attribute_type(av)
        except ConversionError as exc:
            raise exc.at(name) from None
    return item


class DynamoDBSink:
    """Loads items with BatchWriteItem; idempotent by key, not atomic (module docstring)."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True

    native_format: TextFormat | None = None

    def __init__(self, table: DynamoDBTable, options: EndpointOptions, *,
                 retry: RetryPolicy | None = None) -> None:
        self.table = table
        self.options = options
        self.retry = retry or RetryPolicy()
        self.describe = table.url
        self.stats = DynamoDBStats()

    def can_consume(self, fmt: TextFormat) -> bool:
        return fmt.kind == "dynamodb-jsonl"

    async def schema(self) -> Schema | None:
        return Schema(self.table.columns) if self.table.columns else None

    async def consume_bytes(self, fmt: TextFormat, inp: BytesIn, progress: Progress) -> None:
        if not self.can_consume(fmt):
            raise ConfigError(f"a DynamoDB table cannot load {fmt.kind} bytes natively",
                              connector=self.describe, operation="BatchWriteItem")
        separator = (fmt.record_separator or "\n").encode(fmt.encoding)

        async def feed(add: Callable[[Item, int], Any]) -> None:
            pending = b""
            line_no = 0
            async for chunk in inp:
                pending += chunk
                *lines, pending = pending.split(separator)
                for line in lines:
                    line_no += 1
                    await self._add_line(line, line_no, fmt, add)
                if len(pending) > MAX_LINE:
                    raise BadDataError(
                        f"a line longer than {MAX_LINE // 2**20} MiB (a DynamoDB item is at most "
                        "400 KB): is this DynamoDB JSON lines?", connector=self.describe,
                        operation="BatchWriteItem", location=self.describe, line=line_no + 1)
            if pending:
                await self._add_line(pending, line_no + 1, fmt, add)

        await self._load(feed, progress, unit="line")

    async def _add_line(self, line: bytes, line_no: int, fmt: TextFormat,
                        add: Callable[[Item, int], Any]) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line.decode(fmt.encoding))
            if not isinstance(record, dict) or "Item" not in record:
                raise ConversionError('expected {"Item": {...}} (DynamoDB export JSON)')
            item = _check_item(record["Item"])
        except (ValueError, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, ConversionError) else str(exc)
            where = f"attribute {exc.path}: " if isinstance(exc, ConversionError) and exc.path \
                else ""
            raise BadDataError(f"{where}{reason}", connector=self.describe,
                               operation="BatchWriteItem", location=self.describe,
                               line=line_no) from None
        await add(item, line_no)

    async def consume_rows(self, inp: RowsIn, progress: Progress) -> None:
        async def feed(add: Callable[[Item, int], Any]) -> None:
            row_no = 0
            async for batch in inp:
                names = batch.schema.names
                start = batch.first_line if batch.first_line is not None else row_no + 1
                for offset, row in enumerate(batch.rows):
                    try:
                        item = row_to_item(names, row)
                    except ConversionError as exc:
                        raise BadDataError(f"column {exc}", connector=self.describe,
                                           operation="BatchWriteItem", location=self.describe,
                                           line=start + offset) from None
                    await add(item, start + offset)
                row_no += len(batch.rows)

        await self._load(feed, progress, unit="row")

    async def _load(self, feed: Callable[[Callable[[Item, int], Any]], Any],
                    progress: Progress, *, unit: str) -> None:
        writers = max(1, min(self.options.parallel, MAX_CONCURRENCY))
        async with open_client(self.table.region, max_connections=writers,
                               describe=self.describe) as client:
            info = await describe_table(client, self.table.table_name, self.describe)
            bucket = _bucket(self.table.write_throughput_percent, info.write_units)
            caller = _Caller(client, self.table.table_name, self.describe, bucket, self.retry,
                             self.stats, progress)
            batcher = _Batcher(info.key_names, self.describe,
                               info.key_types if unit == "row" else None)
            send, receive = anyio.create_memory_object_stream[_Batch](writers)
            async with _task_group() as tg:
                for _ in range(writers):
                    tg.start_soon(self._writer, caller, receive.clone(), unit)
                receive.close()
                async with send:
                    async def add(item: Item, origin: int) -> None:
                        batch = batcher.add(item, origin)
                        if batch is not None:
                            await send.send(batch)

                    await feed(add)
                    last = batcher.flush()
                    if last is not None:
                        await send.send(last)

    async def _writer(self, caller: _Caller, batches: Any, unit: str) -> None:
        async with batches:
            async for batch in batches:
                await self._write_batch(caller, batch, unit)

    async def _write_batch(self, caller: _Caller, batch: _Batch, unit: str) -> None:
        """Write one batch, resending only what comes back unprocessed."""
        table = self.table.table_name
        route: dict[str, Any] = {"RequestItems": {table: [{"PutRequest": {"Item": {}}}]}}
        with_capacity = caller.bucket is not None
        pending = batch.items
        rounds = 0
        stalled = 0
        while pending:
            payload: dict[str, Any] = {
                "RequestItems": {table: [{"PutRequest": {"Item": i}} for i in pending]}}
            if with_capacity:
                payload["ReturnConsumedCapacity"] = "TOTAL"
            try:
                reply = await caller.send("BatchWriteItem", payload, route)
            except BadDataError as exc:
                span = f"{unit}s {batch.first}-{batch.last}" if batch.last != batch.first \
                    else f"{unit} {batch.first}"
                raise BadDataError(f"the batch of {span} was refused: {exc.message}",
                                   connector=self.describe, operation="BatchWriteItem",
                                   location=self.describe, line=batch.first) from exc
            left = reply.get("UnprocessedItems", {}).get(table, [])
            done = len(pending) - len(left)
            self.stats.items += done
            caller.progress.add(rows=done)
            if not left:
                return
            self.stats.resent += len(left)
            for _ in left:
                caller.progress.retried("dynamodb.unprocessed")
            stalled = 0 if done else stalled + 1
            if stalled >= self.retry.max_attempts:
                raise Throttled(f"{len(left)} items stayed unprocessed after {stalled} tries",
                                connector=self.describe, operation="BatchWriteItem")
            rounds += 1
            pending = [request["PutRequest"]["Item"] for request in left]
            await anyio.sleep(self.retry.delay(rounds))


__all__ = [
    "BATCH_SIZE",
    "DynamoDBSink",
    "DynamoDBSource",
    "DynamoDBStats",
    "DynamoDBTable",
    "TableInfo",
    "describe_table",
    "parse_url",
    "sink_from_url",
    "source_from_url",
    "table_exists",
    "table_has_data",
]
