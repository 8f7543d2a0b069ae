"""Reading a DynamoDB table: a parallel segmented Scan, paced to a share of its capacity,
as DynamoDB export lines, plain JSON lines or rows (see :mod:`connectors.dynamodb`)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from connectors.base import (
    BytesOut,
    Column,
    EndpointOptions,
    Progress,
    RowBatch,
    RowsOut,
    Schema,
    TextFormat,
    Total,
)
from connectors.errors import BadDataError, ConfigError
from connectors.formats import (
    ITEM_SCHEMA,
    ConversionError,
    Item,
    item_json,
    item_plain_json,
    item_to_dict,
    item_to_row,
)

from ._requests import (
    MAX_CONCURRENCY,
    Caller,
    DynamoDBStats,
    consumed_units,
    pacing_bucket,
    task_group,
)
from ._table import DynamoDBTable, describe_table, parse_url
from ._throughput import RetryPolicy, TokenBucket
from ._wire import open_client

#: Items per Scan page when not paced (a page is also capped at 1 MB by the service).
PAGE_LIMIT = 1000


class DynamoDBSource:
    """Reads a whole table with a parallel Scan. See the module docstring."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True

    native_format: TextFormat | None = None

    def __init__(self, table: DynamoDBTable, options: EndpointOptions | None = None, *,
                 retry: RetryPolicy | None = None, page_limit: int = PAGE_LIMIT) -> None:
        self.table = table
        self.options = options = options or EndpointOptions()
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

    async def total(self) -> Total | None:
        """The table's item count from DescribeTable: an estimate (DynamoDB refreshes
        ``ItemCount`` about every six hours), None when it says nothing useful (0 or absent:
        see :attr:`TableInfo.item_count`)."""
        async with open_client(self.table.region, max_connections=2,
                               describe=self.describe) as client:
            info = await describe_table(client, self.table.table_name, self.describe)
        if info.item_count is None:
            return None
        return Total(rows=info.item_count, estimated=True)

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
                    raise BadDataError(f"item {show_key(item, self._key_names)}: {exc}",
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
            bucket = pacing_bucket(self.table.read_throughput_percent, info.read_units)
            caller = Caller(client, self.table.table_name, self.describe, bucket, self.retry,
                             self.stats, progress)
            async with task_group() as tg:
                for segment in range(segments):
                    tg.start_soon(self._scan_segment, caller, segment, segments, limiter, emit)

    async def _scan_segment(self, caller: Caller, segment: int, segments: int,
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
        units = consumed_units(reply)
        if not count or units <= 0:
            return current
        per_item = units / count
        return max(1, min(self.page_limit, math.floor(bucket.rate / segments / per_item)))


def show_key(item: Item, names: Sequence[str] = ()) -> str:
    shown = {n: item[n] for n in names if n in item} or dict(list(item.items())[:2])
    return json.dumps(shown, separators=(",", ":"))[:200]


def source_from_url(url: str, options: EndpointOptions) -> DynamoDBSource:
    """``dynamodb://table?region=...`` as a Source."""
    return DynamoDBSource(parse_url(url), options)
