"""DynamoDB tables as copy sources and sinks (``dynamodb://table?region=...``).

Source: a parallel segmented ``Scan`` (``TotalSegments`` = ``options.parallel``), paging with
``LastEvaluatedKey``, eventually consistent. It emits natively DynamoDB export JSON lines (one
``{"Item": {...}}`` per line, the wire JSON untouched) or plain JSON lines (one object per item,
numbers exact), or rows: one per item, by the declared columns (else the target table's, which
a copy offers through :meth:`DynamoDBSource.adopt_columns`), else one
``ITEM_COLUMN`` (:mod:`connectors.formats`) dict per item.

Sink: ``BatchWriteItem`` in batches of 25 with ``options.parallel`` writers. Only the items a
reply lists as ``UnprocessedItems`` are sent again, after a jittered exponential backoff; a batch
refused whole (``ProvisionedThroughputExceededException``) is retried the same way, within a
bounded budget (:class:`RetryPolicy`). It takes DynamoDB export
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

Inside: ``_table`` (the table, its URL, DescribeTable), ``_wire`` (calls with the JSON built
here), ``_requests`` (pacing, retry, counts), ``_throughput`` (token bucket, retry policy),
``_source``, ``_sink``.
"""

from ._sink import DynamoDBSink, sink_from_url
from ._source import DynamoDBSource, source_from_url
from ._table import DynamoDBTable, parse_url, table_exists, table_has_data, table_info
from ._throughput import RetryPolicy, TokenBucket, throughput_rate
from ._wire import map_error

__all__ = [
    "DynamoDBSink",
    "DynamoDBSource",
    "DynamoDBTable",
    "RetryPolicy",
    "TokenBucket",
    "map_error",
    "parse_url",
    "sink_from_url",
    "source_from_url",
    "table_exists",
    "table_has_data",
    "table_info",
    "throughput_rate",
]
