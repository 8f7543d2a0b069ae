"""Tools for testing connectors against real servers; nothing here is used in production.

* The conformance kit (``_kit``): :class:`MemorySource` / :class:`MemorySink` (real ends over
  Python lists, for testing the copy engine itself) and the checks every connector passes:
  :func:`check_round_trip`, :func:`check_abort_leaves_nothing`, :func:`check_clogged_sink`.
* :class:`FaultProxy` (``_tcp``): a TCP proxy on 127.0.0.1 that resets, delays, throttles,
  blackholes or refuses connections to a real server, changeable while traffic flows
  (``python -m connectors.testing HOST:PORT`` runs one by hand).
* HTTP fault proxies in front of a loopback S3 (:func:`s3_fault_proxy`: 503 SlowDown / 500)
  and DynamoDB (:func:`dynamo_fault_proxy`: unprocessed items, throughput refusals). They need
  h11, the ``testing`` extra; everything else here imports without it.
"""

from ._dynamofaults import DynamoFaultCounts, DynamoFaultPlan, DynamoFaultProxy, dynamo_fault_proxy
from ._kit import (
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
    check_round_trip,
)
from ._s3faults import RequestRecord, S3FaultCounts, S3FaultPlan, S3FaultProxy, s3_fault_proxy
from ._tcp import FaultProxy

__all__ = [
    "DynamoFaultCounts",
    "DynamoFaultPlan",
    "DynamoFaultProxy",
    "FaultProxy",
    "MemorySink",
    "MemorySource",
    "RequestRecord",
    "S3FaultCounts",
    "S3FaultPlan",
    "S3FaultProxy",
    "check_abort_leaves_nothing",
    "check_clogged_sink",
    "check_round_trip",
    "dynamo_fault_proxy",
    "s3_fault_proxy",
]
