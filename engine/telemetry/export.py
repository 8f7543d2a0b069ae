"""Exporters that never disturb a run: secrets scrubbed, failures reported once.

The SDK's exporters log every failed batch and every retry; a run against an unreachable
collector would print a warning every few seconds. Here the SDK's own log records are kept
from the console (the latest export complaint is remembered), and each exporter reports its
first failure once, as one ``headrace.telemetry`` warning naming where it exports and why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from engine.telemetry.redact import scrub, scrub_span

log = logging.getLogger("headrace.telemetry")


class SdkLogCapture(logging.Handler):
    """Takes the ``opentelemetry`` loggers' records off the console; remembers the latest
    export complaint so the single warning can say why. Other SDK warnings pass on to
    ``headrace.telemetry`` (once per text)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last_problem: str | None = None
        self._passed: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = scrub(record.getMessage())
        except Exception:
            return
        if record.levelno < logging.WARNING:
            return
        if "export" in record.name or "export" in text.lower():
            self.last_problem = text[:400]
            # the SDK complains at its first failed try, long before its retries give up:
            # report then, so the warning comes while the run goes on
            signal = "metrics" if "metric" in record.name or "metrics" in text else "spans"
            for reporter in _reporters.get(signal, []):
                reporter.failure(text[:400])
            return
        if text not in self._passed:
            self._passed.add(text)
            log.log(record.levelno, "telemetry: %s", text[:400])


_capture: SdkLogCapture | None = None
#: signal -> the reporters of this process's OTLP exporters
_reporters: dict[str, list[_Reporter]] = {}


def capture_sdk_logs() -> SdkLogCapture:
    """Install (once) the handler on the ``opentelemetry`` logger, without propagation."""
    global _capture
    if _capture is None:
        _capture = SdkLogCapture()
        sdk = logging.getLogger("opentelemetry")
        sdk.addHandler(_capture)
        sdk.propagate = False
    return _capture


class _Reporter:
    """The one warning an exporter gives when exporting fails."""

    def __init__(self, signal: str, target: str, *, listen: bool = True) -> None:
        self.signal = signal
        self.target = target
        self.failed = False
        self._lock = threading.Lock()
        if listen:  # hears the SDK's own complaints about this signal's exports
            _reporters.setdefault(signal, []).append(self)

    def failure(self, reason: str | None) -> None:
        with self._lock:
            if self.failed:
                return
            self.failed = True
        why = reason or (_capture.last_problem if _capture is not None else None) or \
            "the exporter reported a failure"
        log.warning("telemetry: cannot export %s to %s (%s); the run goes on, and further "
                    "export errors are not shown", self.signal, self.target, scrub(why))


class GuardedSpanExporter(SpanExporter):
    """Wraps an SDK span exporter: scrubs secrets, never raises, reports failure once."""

    def __init__(self, inner: SpanExporter, target: str, *, otlp: bool = False) -> None:
        self.inner = inner
        self.reporter = _Reporter("spans", target, listen=otlp)

    @property
    def failed(self) -> bool:
        return self.reporter.failed

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export([scrub_span(s) for s in spans])
        except Exception as exc:  # an exporter bug or a transport error it did not catch
            self.reporter.failure(f"{type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.reporter.failure(None)
        return result

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis))
        except Exception:
            return False

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception as exc:
            log.debug("telemetry: span exporter shutdown: %s", exc)


class GuardedMetricExporter(MetricExporter):
    """Wraps an SDK metric exporter: never raises, reports failure once."""

    def __init__(self, inner: MetricExporter, target: str, *, otlp: bool = False) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality,
                         preferred_aggregation=inner._preferred_aggregation)
        self.inner = inner
        self.reporter = _Reporter("metrics", target, listen=otlp)

    @property
    def failed(self) -> bool:
        return self.reporter.failed

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: Any) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            self.reporter.failure(f"{type(exc).__name__}: {exc}")
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self.reporter.failure(None)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        try:
            return bool(self.inner.force_flush(timeout_millis=timeout_millis))
        except Exception:
            return False

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        try:
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            log.debug("telemetry: metric exporter shutdown: %s", exc)
