"""Telemetry in tests: what the console exporters print (span and metric JSON documents between
other lines of a command's stderr), and in-memory capture of this process's spans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult


def console_records(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts at the beginning of a line of ``text``."""
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    position = 0
    while True:
        start = text.find("{", position)
        if start < 0:
            return records
        if start > 0 and text[start - 1] != "\n":
            position = start + 1
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict):
            records.append(value)
        position = end


def spans_in(text: str) -> list[dict[str, Any]]:
    """The spans among :func:`console_records` (they have a ``context``)."""
    return [r for r in console_records(text) if "context" in r and "name" in r]


# --- in-process capture ---------------------------------------------------------------------------

class _Switch(Sampler):
    """Samples only while a test records, so the provider installed for the whole test
    process costs the other tests nothing."""

    on = False

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP,
                              attributes)

    def get_description(self) -> str:
        return "switch"


SWITCH = _Switch()
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()


def install_providers() -> None:
    """OpenTelemetry's globals can be set once per process: set them the first time."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(sampler=SWITCH, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS],
                                                 shutdown_on_exit=False))


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Record spans (cleared first) while the block runs."""
    install_providers()
    SPANS.clear()
    SWITCH.on = True
    try:
        yield SPANS
    finally:
        SWITCH.on = False
