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

The pieces: :mod:`connectors.dynamodb_table` (table, URL, DescribeTable),
:mod:`connectors.dynamodb_requests` (pacing and retry), :mod:`connectors.dynamodb_source`,
:mod:`connectors.dynamodb_sink`. This module builds sources and sinks from URLs and re-exports
the pieces' public names.
"""

from __future__ import annotations

from connectors.base import EndpointOptions
from connectors.dynamodb_requests import MAX_CONCURRENCY as MAX_CONCURRENCY
from connectors.dynamodb_requests import DynamoDBStats
from connectors.dynamodb_sink import BATCH_SIZE, DynamoDBSink
from connectors.dynamodb_sink import MAX_LINE as MAX_LINE
from connectors.dynamodb_source import PAGE_LIMIT as PAGE_LIMIT
from connectors.dynamodb_source import DynamoDBSource
from connectors.dynamodb_table import SCHEME as SCHEME
from connectors.dynamodb_table import (
    DynamoDBTable,
    TableInfo,
    describe_table,
    parse_url,
    table_exists,
    table_has_data,
)
from connectors.dynamodb_table import _table_info as _table_info


def source_from_url(url: str, options: EndpointOptions) -> DynamoDBSource:
    return DynamoDBSource(parse_url(url), options)


def sink_from_url(url: str, options: EndpointOptions) -> DynamoDBSink:
    return DynamoDBSink(parse_url(url), options)


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
