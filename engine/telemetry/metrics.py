"""The engine's counters and histograms (OpenTelemetry API; no-op until configured).

Names and attributes are listed in README.md ("Telemetry"). Attribute values are ids, types,
statuses and URL schemes only: never a URL, a path or an error text, so no secret and no
unbounded cardinality reaches a metric.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics

from connectors.urls import scheme_of

_meter = metrics.get_meter("headrace")

INSTANCES = _meter.create_counter(
    "headrace.instances", unit="{instance}",
    description="Instances that reached a final status (attribute headrace.status)")
ATTEMPTS = _meter.create_counter(
    "headrace.attempts", unit="{attempt}", description="Attempts ended, by attempt status")
RETRIES = _meter.create_counter(
    "headrace.retries", unit="{retry}",
    description="Retries: of an attempt (headrace.retry.level=attempt, error.type the cause) "
                "or inside a copy (level=copy)")
ROWS = _meter.create_counter("headrace.copy.rows", unit="{row}",
                             description="Rows copied, per pipeline and path")
BYTES = _meter.create_counter("headrace.copy.bytes", unit="By",
                              description="Bytes copied, per pipeline and path")
THROUGHPUT = _meter.create_histogram(
    "headrace.copy.throughput", unit="By/s", description="Bytes per second of each copy")
QUEUE_DEPTH = _meter.create_histogram(
    "headrace.copy.queue_depth", unit="{item}",
    description="Items buffered on a copy link after each send (backpressure: a link that "
                "stays full means its consumer is the bottleneck)",
    explicit_bucket_boundaries_advisory=[0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64])
PRECONDITION_WAIT = _meter.create_histogram(
    "headrace.precondition.wait", unit="s",
    description="Time from a precondition's first check to its end (met or not)")
LATENESS = _meter.create_histogram(
    "headrace.lateness", unit="s",
    description="How long after its scheduled start an instance's first attempt started")
LATE = _meter.create_counter("headrace.late_instances", unit="{instance}",
                             description="Instances that passed lateAfterTimeout unstarted")
WORK_QUEUE_DEPTH = _meter.create_histogram(
    "headrace.worker.queue_depth", unit="{instance}",
    description="Queued, unclaimed instances of a worker group (headrace.worker.group), as "
                "the reaper of a scheduler last counted them")
CLAIM_LATENCY = _meter.create_histogram(
    "headrace.worker.claim_latency", unit="s",
    description="Time of one claim statement of a worker (headrace.worker.claimed: whether "
                "it took any instance)")
LEASE_RENEWALS = _meter.create_counter(
    "headrace.worker.lease_renewals", unit="{lease}",
    description="Leases on instances renewed by worker heartbeats")


def enabled() -> bool:
    """True once an SDK meter provider is installed. The SDK is not imported to find out:
    no SDK module loaded means no SDK provider (``headrace copy`` starts faster without it)."""
    sdk = sys.modules.get("opentelemetry.sdk.metrics")
    return sdk is not None and isinstance(metrics.get_meter_provider(), sdk.MeterProvider)


def copy_path(source: str, destination: str) -> str:
    """``s3->postgresql``: the two ends' URL schemes (a plain path is ``file``)."""
    return f"{scheme_of(source)}->{scheme_of(destination)}"


def record_copy(pipeline_id: str | None, source: str, destination: str, *, rows: int,
                nbytes: int, seconds: float, lane: str, retries: int) -> None:
    attrs: dict[str, Any] = {"headrace.copy.path": copy_path(source, destination),
                             "headrace.copy.lane": lane}
    if pipeline_id:
        attrs["headrace.pipeline.id"] = pipeline_id
    ROWS.add(rows, attrs)
    BYTES.add(nbytes, attrs)
    if seconds > 0:
        THROUGHPUT.record(nbytes / seconds, attrs)
    if retries:
        RETRIES.add(retries, {**attrs, "headrace.retry.level": "copy"})


def queue_depth_recorder(pipeline_id: str | None) -> Callable[[str, int], None] | None:
    """A ``CopyOptions.on_queue_depth`` callback, or None while metrics are off (no cost)."""
    if not enabled():
        return None
    cache: dict[str, dict[str, str]] = {}

    def record(link: str, depth: int) -> None:
        attrs = cache.get(link)
        if attrs is None:
            attrs = cache[link] = {"headrace.copy.link": link}
            if pipeline_id:
                attrs["headrace.pipeline.id"] = pipeline_id
        QUEUE_DEPTH.record(depth, attrs)

    return record


def record_claim(groups: Sequence[str], seconds: float, claimed: int) -> None:
    CLAIM_LATENCY.record(seconds, {"headrace.worker.groups": ",".join(sorted(groups)),
                                   "headrace.worker.claimed": claimed > 0})


def record_renewals(count: int) -> None:
    if count:
        LEASE_RENEWALS.add(count)


def record_queue_depths(depths: dict[str, int]) -> None:
    for group, depth in depths.items():
        WORK_QUEUE_DEPTH.record(depth, {"headrace.worker.group": group})
