"""Loading a DynamoDB table: BatchWriteItem in batches of 25 by parallel writers, resending
only unprocessed items; idempotent by key, not atomic (see :mod:`connectors.dynamodb`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from connectors.base import BytesIn, EndpointOptions, Progress, RowsIn, Schema, TextFormat
from connectors.errors import BadDataError, ConfigError, Throttled
from connectors.formats import (
    ConversionError,
    Item,
    attribute_type,
    coerce_key,
    item_key,
    oversized_attribute,
    row_to_item,
)

from ._requests import (
    MAX_CONCURRENCY,
    Caller,
    DynamoDBStats,
    pacing_bucket,
    task_group,
)
from ._table import DynamoDBTable, describe_table, parse_url
from ._throughput import RetryPolicy
from ._wire import open_client

#: BatchWriteItem takes at most 25 put requests.
BATCH_SIZE = 25
#: Longest input line taken (an item is at most 400 KB; its JSON, with base64, a little more).
MAX_LINE = 4 * 2**20


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
            raise BadDataError(f"{exc.reason} (key: {', '.join(self.key_names)})",
                               connector=self.describe, operation="BatchWriteItem",
                               location=self.describe, line=origin,
                               column=exc.path or None) from None
        too_big = oversized_attribute(item)
        if too_big is not None:
            size, name = too_big
            raise BadDataError(f"the item is over DynamoDB's 400 KB limit (at least {size:,} "
                               f"bytes; {name!r} is its largest attribute)",
                               connector=self.describe, operation="BatchWriteItem",
                               location=self.describe, line=origin, column=name)
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

    def __init__(self, table: DynamoDBTable, options: EndpointOptions | None = None, *,
                 retry: RetryPolicy | None = None) -> None:
        self.table = table
        self.options = options = options or EndpointOptions()
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
            bucket = pacing_bucket(self.table.write_throughput_percent, info.write_units)
            caller = Caller(client, self.table.table_name, self.describe, bucket, self.retry,
                             self.stats, progress)
            batcher = _Batcher(info.key_names, self.describe,
                               info.key_types if unit == "row" else None)
            send, receive = anyio.create_memory_object_stream[_Batch](writers)
            async with task_group() as tg:
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

    async def _writer(self, caller: Caller, batches: Any, unit: str) -> None:
        async with batches:
            async for batch in batches:
                await self._write_batch(caller, batch, unit)

    async def _write_batch(self, caller: Caller, batch: _Batch, unit: str) -> None:
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


def sink_from_url(url: str, options: EndpointOptions) -> DynamoDBSink:
    """``dynamodb://table?region=...`` as a Sink."""
    return DynamoDBSink(parse_url(url), options)
