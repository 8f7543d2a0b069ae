"""Building, installing and flushing the SDK's providers for one headrace process.

``configure()`` reads the standard variables (:mod:`engine.telemetry.config`), builds a tracer
provider and a meter provider with the chosen exporters, and installs them as OpenTelemetry's
globals, so the engine's spans and the connectors' client spans go through them. A process
that installed its own providers first (a host application, a test) keeps them: headrace then
neither replaces nor shuts them down. ``Telemetry.shutdown()`` flushes, bounded in time.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from connectors.urls import redact_url
from engine.telemetry.config import Signal, TelemetryConfig, read_config
from engine.telemetry.export import (
    GuardedMetricExporter,
    GuardedSpanExporter,
    capture_sdk_logs,
)
from engine.telemetry.redact import add_environment_secrets

log = logging.getLogger("headrace.telemetry")

#: The longest a command waits at exit for its telemetry to be exported.
FLUSH_SECONDS = 5.0
#: ... and once an export has already failed (the collector is not there).
FLUSH_SECONDS_AFTER_FAILURE = 1.0


def headrace_version() -> str:
    try:
        return version("headrace")
    except PackageNotFoundError:
        return "0"


def resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, SDK facts),
    with ``service.name`` ``headrace`` unless the environment names one."""
    res = Resource.create({"service.version": headrace_version()})
    name = str(res.attributes.get("service.name", ""))
    if not name or name.startswith("unknown_service"):
        res = res.merge(Resource({"service.name": "headrace"}))
    return res


def _otlp_target(signal: Signal) -> str:
    path = "/v1/traces" if signal.name == "traces" else "/v1/metrics"
    upper = signal.name.upper()
    if signal.protocol == "grpc":
        where = signal.endpoint or "http://localhost:4317"
    elif os.environ.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"):
        where = os.environ[f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT"]
    else:
        where = (signal.endpoint or "http://localhost:4318").rstrip("/") + path
    return f"{redact_url(where)} (OTLP {signal.protocol})"


def _span_exporter(kind: str, signal: Signal) -> GuardedSpanExporter:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return GuardedSpanExporter(ConsoleSpanExporter(out=sys.stderr), "the console")
    inner: SpanExporter
    if signal.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        inner = HttpSpanExporter()
    return GuardedSpanExporter(inner, _otlp_target(signal), otlp=True)


def _metric_exporter(kind: str, signal: Signal) -> GuardedMetricExporter:
    if kind == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return GuardedMetricExporter(ConsoleMetricExporter(out=sys.stderr), "the console")
    if signal.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return GuardedMetricExporter(OTLPMetricExporter(), _otlp_target(signal), otlp=True)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return GuardedMetricExporter(HttpMetricExporter(), _otlp_target(signal), otlp=True)


@dataclass
class Telemetry:
    """The providers of this process and their exporters."""

    config: TelemetryConfig
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    span_exporters: list[GuardedSpanExporter] = field(default_factory=list)
    metric_exporters: list[GuardedMetricExporter] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(e.failed for e in self.span_exporters) or any(
            e.failed for e in self.metric_exporters)

    def install(self) -> bool:
        """Make these providers OpenTelemetry's globals; False when some were already set
        (then the process keeps those and these are not used)."""
        if isinstance(trace.get_tracer_provider(), TracerProvider) or isinstance(
                metrics.get_meter_provider(), MeterProvider):
            log.info("telemetry: OpenTelemetry is already configured in this process; "
                     "headrace uses that configuration")
            return False
        if self.tracer_provider is not None:
            trace.set_tracer_provider(self.tracer_provider)
        if self.meter_provider is not None:
            metrics.set_meter_provider(self.meter_provider)
        return True

    def shutdown(self, timeout: float = FLUSH_SECONDS) -> None:
        """Export what is pending and stop, waiting at most ``timeout`` seconds (less when an
        export already failed): a missing collector never holds a command's exit."""
        if self.failed:
            timeout = min(timeout, FLUSH_SECONDS_AFTER_FAILURE)
        millis = int(timeout * 1000)

        def work() -> None:
            if self.tracer_provider is not None:
                self.tracer_provider.force_flush(millis)
                self.tracer_provider.shutdown()
            if self.meter_provider is not None:
                self.meter_provider.shutdown(timeout_millis=millis)

        worker = threading.Thread(target=work, name="headrace-telemetry-flush", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive() and not self.failed:
            log.warning("telemetry: gave up exporting after %g s; some spans or metrics "
                        "were not sent", timeout)


def build(env: Mapping[str, str] | None = None, *,
          span_exporters: Sequence[SpanExporter] = (),
          metric_readers: Sequence[MetricReader] = ()) -> Telemetry | None:
    """Providers for what ``env`` (default: ``os.environ``) asks, plus any exporters and
    readers given (tests); None when telemetry is off."""
    config = read_config(os.environ if env is None else env)
    for warning in config.warnings:
        log.warning("telemetry: %s", warning)
    if config.disabled or not (config.on or span_exporters or metric_readers):
        return None
    capture_sdk_logs()
    add_environment_secrets()
    res = resource()
    result = Telemetry(config)
    guarded = [_span_exporter(kind, config.traces) for kind in config.traces.exporters]
    guarded += [GuardedSpanExporter(e, type(e).__name__) for e in span_exporters]
    if guarded:
        provider = TracerProvider(resource=res, shutdown_on_exit=False)
        for exporter in guarded:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        result.tracer_provider = provider
        result.span_exporters = guarded
    metric_guarded = [_metric_exporter(kind, config.metrics)
                      for kind in config.metrics.exporters]
    readers: list[MetricReader] = [PeriodicExportingMetricReader(e) for e in metric_guarded]
    readers += list(metric_readers)
    if readers:
        result.meter_provider = MeterProvider(metric_readers=readers, resource=res,
                                              shutdown_on_exit=False)
        result.metric_exporters = metric_guarded
    return result


def configure(env: Mapping[str, str] | None = None) -> Telemetry | None:
    """Build and install this process's telemetry from the environment (None when off or
    when the process had configured OpenTelemetry itself)."""
    telemetry = build(env)
    if telemetry is None:
        return None
    return telemetry if telemetry.install() else None


@contextmanager
def command_telemetry() -> Iterator[Telemetry | None]:
    """Telemetry for one CLI command: configured on entry, flushed on exit (also when the
    command exits through ``sys.exit`` or an error)."""
    telemetry = configure()
    try:
        yield telemetry
    finally:
        if telemetry is not None:
            telemetry.shutdown()
