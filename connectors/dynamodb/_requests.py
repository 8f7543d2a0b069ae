"""One DynamoDB table's requests: throughput pacing, error mapping, retry of transient faults,
and the counts (:class:`DynamoDBStats`) a scan or load keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from connectors.base import Progress
from connectors.errors import Throttled, single_failure

from ._throughput import RetryPolicy, TokenBucket, throughput_rate
from ._wire import BOTO_ERRORS, call, map_error

#: At most this many Scan pages or write batches in flight per copy, whatever ``parallel`` says.
MAX_CONCURRENCY = 32


@dataclass
class DynamoDBStats:
    """What one scan or load did, for spans and metrics (also mirrored into ``Progress``)."""

    items: int = 0          # items scanned, or items the table accepted
    requests: int = 0       # Scan / BatchWriteItem calls sent
    resent: int = 0         # items sent again because a reply listed them as unprocessed
    throttles: int = 0      # requests refused whole for throughput
    transient: int = 0      # requests retried after another transient fault
    throughput_wait: float = 0.0  # seconds spent waiting for the throughput cap


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """A task group whose failure surfaces as its root-cause error, not an exception group."""
    with single_failure():
        async with anyio.create_task_group() as tg:
            yield tg


def consumed_units(reply: dict[str, Any]) -> float:
    consumed = reply.get("ConsumedCapacity")
    if isinstance(consumed, list):
        return sum(float(c.get("CapacityUnits", 0)) for c in consumed)
    if isinstance(consumed, dict):
        return float(consumed.get("CapacityUnits", 0))
    return 0.0


class Caller:
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
            except BOTO_ERRORS as exc:
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
                self.bucket.spend(consumed_units(reply))
            return reply


def pacing_bucket(percent: float | None, units: float | None) -> TokenBucket | None:
    rate = throughput_rate(percent, units)
    return TokenBucket(rate) if rate is not None else None
