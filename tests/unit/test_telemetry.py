"""Telemetry configuration from the OTEL_* variables, secret scrubbing of exported spans, the
one-warning export guard, the bounded flush, propagation and the store's span columns."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from engine.store import open_store
from engine.telemetry import build, read_config
from engine.telemetry.export import GuardedSpanExporter
from engine.telemetry.redact import add_secrets, scrub, scrub_span
from engine.telemetry.spans import propagation_env, stored_context

# --- configuration -----------------------------------------------------------------------------


def test_nothing_set_means_off() -> None:
    config = read_config({})
    assert not config.on and config.traces.exporters == () and config.metrics.exporters == ()
    assert build({}) is None


def test_an_endpoint_turns_on_otlp_for_both_signals_over_http_by_default() -> None:
    config = read_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert config.traces.exporters == ("otlp",) and config.metrics.exporters == ("otlp",)
    assert config.traces.protocol == "http/protobuf"


def test_per_signal_endpoint_and_protocol_and_explicit_none() -> None:
    config = read_config({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h:4317",
                          "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                          "OTEL_METRICS_EXPORTER": "none"})
    assert config.traces.exporters == ("otlp",) and config.traces.protocol == "grpc"
    assert config.traces.endpoint == "http://h:4317"
    assert config.metrics.exporters == ()


def test_console_needs_no_endpoint_and_lists_are_read() -> None:
    config = read_config({"OTEL_TRACES_EXPORTER": "console, otlp"})
    assert config.traces.exporters == ("console", "otlp") and config.metrics.exporters == ()


def test_sdk_disabled_wins_over_everything() -> None:
    config = read_config({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console",
                          "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert config.disabled and not config.on


def test_unknown_exporter_and_protocol_are_named_in_warnings() -> None:
    config = read_config({"OTEL_TRACES_EXPORTER": "zipkin,console",
                          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})
    assert config.traces.exporters == ("console",)
    assert config.traces.protocol == "http/protobuf"
    assert any("OTEL_TRACES_EXPORTER" in w and "zipkin" in w for w in config.warnings)
    assert any("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" in w and "http/json" in w
               for w in config.warnings)


def test_build_makes_guarded_exporters_with_the_service_name_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "nightly-etl")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    memory = InMemorySpanExporter()
    telemetry = build({"OTEL_TRACES_EXPORTER": "none"}, span_exporters=[memory])
    assert telemetry is not None and telemetry.tracer_provider is not None
    attrs = telemetry.tracer_provider.resource.attributes
    assert attrs["service.name"] == "nightly-etl"
    assert attrs["deployment.environment"] == "test"
    with telemetry.tracer_provider.get_tracer("t").start_as_current_span("probe"):
        pass
    telemetry.shutdown()
    assert [s.name for s in memory.get_finished_spans()] == ["probe"]


def test_service_name_defaults_to_headrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    telemetry = build({}, span_exporters=[InMemorySpanExporter()])
    assert telemetry is not None and telemetry.tracer_provider is not None
    assert telemetry.tracer_provider.resource.attributes["service.name"] == "headrace"
    telemetry.shutdown()


# --- secrets -----------------------------------------------------------------------------------


def _span_with(text: str) -> ReadableSpan:
    provider = TracerProvider(shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span(f"run {text}") as span:
        span.set_attribute("db.query.text", f"SELECT '{text}'")
        span.set_attribute("list", ["a", text])
        span.add_event("exception", {"exception.message": f"denied for {text}"})
        span.set_status(Status(StatusCode.ERROR, f"bad {text}"))
    provider.shutdown()
    [done] = memory.get_finished_spans()
    return done


def test_registered_secrets_are_scrubbed_from_every_part_of_a_span() -> None:
    secret = "sp4n-s3cret-value"
    add_secrets([secret])
    clean = scrub_span(_span_with(secret))
    text = repr((clean.name, dict(clean.attributes or {}), [(e.name, dict(e.attributes or {}))
                                                            for e in clean.events],
                 clean.status.description))
    assert secret not in text
    assert clean.name == "run ****"
    assert clean.attributes["list"] == ("a", "****")
    assert clean.status.description == "bad ****"
    assert scrub(f"x{secret}y") == "x****y"


def test_a_span_without_secrets_is_passed_as_it_is() -> None:
    add_secrets(["another-secret-value"])
    span = _span_with("harmless")
    assert scrub_span(span) is span


def test_short_values_are_not_treated_as_secrets() -> None:
    add_secrets(["ab"])
    assert scrub("a table called abacus") == "a table called abacus"


# --- the export guard and the bounded flush ----------------------------------------------------


class _Failing(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("connection refused")
        return SpanExportResult.FAILURE


def test_failed_exports_are_reported_once_and_never_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    guard = GuardedSpanExporter(_Failing(), "http://127.0.0.1:9/v1/traces (OTLP http/protobuf)")
    span = _span_with("x")
    with caplog.at_level(logging.WARNING, logger="headrace.telemetry"):
        results = [guard.export([span]) for _ in range(4)]
    assert results == [SpanExportResult.FAILURE] * 4
    warnings = [r.getMessage() for r in caplog.records if r.name == "headrace.telemetry"]
    assert len(warnings) == 1
    assert "cannot export spans to http://127.0.0.1:9/v1/traces" in warnings[0]
    assert "the run goes on" in warnings[0]


class _Stuck(SpanExporter):
    """An exporter that hangs (a collector that accepts connections and never answers)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        self.returned.set()
        return SpanExportResult.SUCCESS


def test_shutdown_returns_while_an_exporter_still_hangs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")  # export the span at once
    stuck = _Stuck()
    telemetry = build({}, span_exporters=[stuck])
    assert telemetry is not None and telemetry.tracer_provider is not None
    with telemetry.tracer_provider.get_tracer("t").start_as_current_span("probe"):
        pass
    try:
        assert stuck.entered.wait(30)  # the exporter now hangs
        telemetry.shutdown(timeout=0.5)
        assert not stuck.returned.is_set()  # shutdown came back while it still hangs
    finally:
        stuck.release.set()


# --- propagation and the store -----------------------------------------------------------------


def test_propagation_env_is_the_current_span_as_traceparent() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    assert propagation_env() == {}  # no current span: nothing to pass on
    with provider.get_tracer("t").start_as_current_span("attempt") as span:
        env = propagation_env()
    ctx = span.get_span_context()
    assert env["TRACEPARENT"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-" \
                                 f"{int(ctx.trace_flags):02x}"
    assert set(env) <= {"TRACEPARENT", "TRACESTATE", "BAGGAGE"}


def test_stored_ids_make_a_context_and_bad_ids_none() -> None:
    ctx = stored_context("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert ctx is not None and ctx.span_id == 0xB7AD6B7169203331
    assert stored_context("zz", "b7ad6b7169203331") is None
    assert stored_context(None, None) is None
    assert stored_context("0" * 32, "0" * 16) is None


@pytest.mark.anyio
async def test_a_store_made_before_the_span_columns_gets_them_added(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    # make it look like a store from before: hr_instances without trace_id and span_id (a
    # schema version 1 store, as those were)
    con = sqlite3.connect(path)
    con.execute("UPDATE hr_meta SET value = '1' WHERE key = 'schema'")
    con.execute("ALTER TABLE hr_instances DROP COLUMN trace_id")
    con.execute("ALTER TABLE hr_instances DROP COLUMN span_id")
    con.commit()
    con.close()
    async with open_store(f"sqlite:///{path}"):
        pass
    con = sqlite3.connect(path)
    columns = {row[1] for row in con.execute("PRAGMA table_info(hr_instances)")}
    con.close()
    assert {"trace_id", "span_id"} <= columns
