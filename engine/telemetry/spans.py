"""The spans of a pipeline run: one trace per instance run, and what happens inside it.

::

    instance <objectId>                 root of the trace (a precondition: child of its node's)
    ├── attempt                         one per attempt; TRACEPARENT of its commands
    │   └── <activity type>             CopyActivity, ShellCommandActivity, SqlActivity...
    │       └── copy                    connectors.copy
    │           ├── copy read           ├── S3.GetObject / COPY ... / SELECT ...
    │           ├── copy decode|encode
    │           └── copy write          └── S3.UploadPart / COPY ... / LOAD DATA ...
    └── (precondition instances)  attempt -> check <type>, one span per poll

An instance's span links to the spans of the upstream instances it waited for (their ids are
kept in the store, so the link survives a restart) and to its own previous run, if any.
Attribute values are ids, types, times, counts and redacted names; error texts are the
engine's masked messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
)

from connectors.tracing import enabled as tracing_enabled
from connectors.tracing import mark_failed
from connectors.urls import redact_url
from engine.store.records import InstanceRecord
from engine.telemetry import metrics as m
from engine.telemetry.redact import add_secrets

if TYPE_CHECKING:
    from engine.activities.base import AttemptContext
    from engine.definition import Definition
    from engine.store.records import AttemptRecord

tracer = trace.get_tracer("headrace")

#: environment variables of a child process <- W3C propagation keys
_ENV_NAMES = {"traceparent": "TRACEPARENT", "tracestate": "TRACESTATE", "baggage": "BAGGAGE"}


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def hex_ids(span: Span) -> tuple[str, str] | None:
    """(trace id, span id) of a span in hex, None when it is not a real one (telemetry off)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def stored_context(trace_id: str | None, span_id: str | None) -> SpanContext | None:
    """A span context from ids kept in the store."""
    if not trace_id or not span_id:
        return None
    try:
        ctx = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    except ValueError:
        return None
    return ctx if ctx.is_valid else None


def propagation_env() -> dict[str, str]:
    """``TRACEPARENT`` (and ``TRACESTATE``, ``BAGGAGE`` when present) of the current span,
    for a child process; empty while telemetry is off."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {_ENV_NAMES.get(k, k.upper()): v for k, v in carrier.items()}


#: Error status, ``error.type`` and an ``exception`` event with the message only.
fail = mark_failed


class TracedRun(Protocol):
    """What the spans read of a pipeline's run (the runtime's ``PipelineRuntime`` is one):
    its id, its definition (to mask secrets) and its instances as this process knows them."""

    @property
    def pipeline_id(self) -> str: ...

    @property
    def definition(self) -> Definition: ...

    @property
    def instances(self) -> Mapping[str, InstanceRecord]: ...


class PipelineTelemetry:
    """Span bookkeeping for one pipeline run in this process (one per run)."""

    def __init__(self, rt: TracedRun) -> None:
        self.rt = rt
        self.pipeline_name: str | None = None
        self._spans: dict[str, Span] = {}
        self.on = tracing_enabled()
        if self.on:
            add_secrets(rt.definition.secret_values())

    def _mask(self, text: str) -> str:
        return self.rt.definition.mask(text)

    def _base(self, rec: InstanceRecord) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "headrace.pipeline.id": self.rt.pipeline_id,
            "headrace.object.id": rec.object_id,
            "headrace.object.type": rec.type or "",
        }
        if self.pipeline_name:
            attrs["headrace.pipeline.name"] = self.pipeline_name
        return attrs

    # --- instance spans --------------------------------------------------------------------

    def instance_span(self, rec: InstanceRecord) -> Span:
        """The span of ``rec``'s run in this process, started on first use."""
        span = self._spans.get(rec.id)
        if span is not None:
            return span
        if not self.on:
            return trace.INVALID_SPAN
        parent = otel_context.Context()  # an empty context: a new trace
        if rec.category == "precondition" and rec.node is not None:
            node = self.rt.instances.get(rec.node)
            node_span = self._parent_of(node) if node is not None else None
            if node_span is not None:
                parent = trace.set_span_in_context(node_span, parent)
        links = []
        previous = stored_context(rec.trace_id, rec.span_id)
        if previous is not None:
            links.append(trace.Link(previous, {"headrace.link.type": "previous_run"}))
        attrs = {**self._base(rec), "headrace.instance.id": rec.id,
                 "headrace.instance.category": rec.category,
                 "headrace.scheduled.start": _iso(rec.scheduled_start),
                 "headrace.scheduled.end": _iso(rec.scheduled_end)}
        span = tracer.start_span(f"instance {rec.object_id}", context=parent,
                                 attributes={k: v for k, v in attrs.items() if v is not None},
                                 links=links)
        self._spans[rec.id] = span
        return span

    def _parent_of(self, node: InstanceRecord) -> Span | None:
        live = self._spans.get(node.id)
        if live is not None:
            return live
        if node.terminal:
            ctx = stored_context(node.trace_id, node.span_id)
            return NonRecordingSpan(ctx) if ctx is not None else None
        return self.instance_span(node)

    def ids_to_store(self, rec: InstanceRecord) -> tuple[str, str] | None:
        """(trace id, span id) to store for ``rec`` when its span is new."""
        span = self._spans.get(rec.id)
        ids = hex_ids(span) if span is not None else None
        if ids is None or (rec.trace_id, rec.span_id) == ids:
            return None
        return ids

    def trace_id(self, rec: InstanceRecord) -> str | None:
        span = self._spans.get(rec.id)
        ids = hex_ids(span) if span is not None else None
        return ids[0] if ids else None

    def status_changed(self, rec: InstanceRecord) -> None:
        span = self._spans.get(rec.id)
        if span is not None and span.is_recording():
            span.add_event(f"status {rec.status.value}")

    def dependencies_met(self, rec: InstanceRecord, upstream: list[str]) -> None:
        """Link the instance span to each upstream instance it waited for."""
        span = self._spans.get(rec.id)
        if span is None or not span.is_recording():
            return
        for dep in upstream:
            other = self.rt.instances.get(dep)
            if other is None:
                continue
            live = self._spans.get(dep)
            ctx = live.get_span_context() if live is not None else stored_context(
                other.trace_id, other.span_id)
            if ctx is not None and ctx.is_valid:
                span.add_link(ctx, {"headrace.link.type": "upstream",
                                    "headrace.instance.id": dep,
                                    "headrace.status": other.status.value})
        span.add_event("dependencies met", {"headrace.upstream.count": len(upstream)})

    def retry(self, rec: InstanceRecord, cause: str | None, retry_at: datetime) -> None:
        error_type = _cause_type(cause)
        m.RETRIES.add(1, {**self._metric_attrs(rec), "headrace.retry.level": "attempt",
                          "error.type": error_type})
        span = self._spans.get(rec.id)
        if span is not None and span.is_recording():
            span.add_event("retry scheduled", {
                "headrace.retry.cause": self._mask(cause or "")[:500],
                "error.type": error_type, "headrace.retry.at": _iso(retry_at) or ""})

    def late(self, rec: InstanceRecord, deadline: datetime) -> None:
        m.LATE.add(1, self._metric_attrs(rec))
        span = self._spans.get(rec.id)
        if span is not None and span.is_recording():
            span.add_event("late", {"headrace.late.deadline": _iso(deadline) or ""})

    def end_instance(self, rec: InstanceRecord) -> None:
        if rec.terminal:
            m.INSTANCES.add(1, {**self._metric_attrs(rec), "headrace.status": rec.status.value})
        span = self._spans.pop(rec.id, None)
        if span is None:
            return
        if span.is_recording():
            span.set_attributes({"headrace.status": rec.status.value,
                                 "headrace.attempts": rec.attempts})
            if rec.actual_start is not None:
                span.set_attribute("headrace.actual.start", _iso(rec.actual_start) or "")
            if rec.actual_end is not None:
                span.set_attribute("headrace.actual.end", _iso(rec.actual_end) or "")
            if rec.status.value in ("FAILED", "CASCADE_FAILED", "TIMEDOUT"):
                fail(span, self._mask(rec.error or rec.status.value), rec.status.value)
            elif rec.status.value == "FINISHED":
                span.set_status(Status(StatusCode.OK))
        span.end()

    def close(self) -> None:
        """End the spans still open (a run that stopped with instances left waiting)."""
        for iid in list(self._spans):
            rec = self.rt.instances.get(iid)
            span = self._spans.pop(iid)
            if rec is not None and span.is_recording():
                span.set_attribute("headrace.status", rec.status.value)
            span.end()

    def _metric_attrs(self, rec: InstanceRecord) -> dict[str, str]:
        return {"headrace.pipeline.id": self.rt.pipeline_id,
                "headrace.object.type": rec.type or ""}

    # --- attempts, activities, checks ------------------------------------------------------

    def start_attempt(self, rec: InstanceRecord, number: int) -> Span:
        if number == 1 and rec.actual_start is not None and rec.category != "precondition":
            lateness = (rec.actual_start - rec.scheduled_start).total_seconds()
            m.LATENESS.record(max(lateness, 0.0), self._metric_attrs(rec))
        if not self.on:
            return trace.INVALID_SPAN
        parent = trace.set_span_in_context(self.instance_span(rec), otel_context.Context())
        return tracer.start_span("attempt", context=parent, attributes={
            **self._base(rec), "headrace.instance.id": rec.id,
            "headrace.attempt.number": number})

    def end_attempt(self, span: Span, rec: InstanceRecord, attempt: AttemptRecord,
                    error: str | None) -> None:
        m.ATTEMPTS.add(1, {**self._metric_attrs(rec),
                           "headrace.attempt.status": attempt.status.value})
        if span.is_recording():
            span.set_attribute("headrace.attempt.status", attempt.status.value)
            if attempt.worker_id:  # run by a worker process (headrace worker)
                span.set_attribute("headrace.worker.id", attempt.worker_id)
            if attempt.exit_code is not None:
                span.set_attribute("process.exit.code", attempt.exit_code)
            if attempt.status.value == "FINISHED":
                span.set_status(Status(StatusCode.OK))
            elif attempt.status.value in ("FAILED", "TIMEDOUT"):
                fail(span, self._mask(error or attempt.status.value),
                     "timeout" if attempt.status.value == "TIMEDOUT" else _cause_type(error))
        span.end()

    @contextmanager
    def activity_span(self, ctx: AttemptContext) -> Iterator[Span]:
        """The span of an activity, current while it runs; rows, bytes, ends and exit code go
        on the span when it ends, and a copy's volumes to the metrics."""
        rec = ctx.instance
        with tracer.start_as_current_span(rec.type or "activity", record_exception=False,
                                          set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as exc:
                if isinstance(exc, Exception):  # not a cancellation
                    fail(span, self._mask(str(exc) or type(exc).__name__),
                         _error_type(exc))
                raise
            finally:
                self._activity_results(span, ctx)

    def _activity_results(self, span: Span, ctx: AttemptContext) -> None:
        data = ctx.metrics
        rows, nbytes = data.get("rows"), data.get("bytes")
        source, destination = data.get("source"), data.get("destination")
        if rows is not None and nbytes is not None and source and destination:
            m.record_copy(self.rt.pipeline_id, str(source), str(destination), rows=int(rows),
                          nbytes=int(nbytes), seconds=float(data.get("seconds") or 0),
                          lane=str(data.get("lane") or ""), retries=int(data.get("retries")
                                                                        or 0))
        if not span.is_recording():
            return
        attrs: dict[str, Any] = {}
        if rows is not None:
            attrs["headrace.rows"] = int(rows)
        if nbytes is not None:
            attrs["headrace.bytes"] = int(nbytes)
        seconds = data.get("seconds")
        if seconds is not None:
            attrs["headrace.duration_s"] = round(float(seconds), 6)
            if nbytes is not None and float(seconds) > 0:
                attrs["headrace.throughput_bytes_per_s"] = round(int(nbytes) / float(seconds),
                                                                 1)
        if source:
            attrs["headrace.copy.source"] = redact_url(str(source))
        if destination:
            attrs["headrace.copy.destination"] = redact_url(str(destination))
        if data.get("lane"):
            attrs["headrace.copy.lane"] = str(data["lane"])
        if data.get("retries") is not None:
            attrs["headrace.retries"] = int(data["retries"])
        if data.get("exit_code") is not None:
            attrs["process.exit.code"] = int(data["exit_code"])
        span.set_attributes(attrs)

    @contextmanager
    def action_span(self, rec: InstanceRecord, action_id: str, field: str) -> Iterator[Span]:
        """An action (SnsAlarm) fired by the instance, in the instance's trace: its SNS call
        is a child."""
        if not self.on:
            yield trace.INVALID_SPAN
            return
        live = self._spans.get(rec.id)
        ctx = live.get_span_context() if live is not None else stored_context(rec.trace_id,
                                                                              rec.span_id)
        parent = otel_context.Context()
        if ctx is not None and ctx.is_valid:
            parent = trace.set_span_in_context(NonRecordingSpan(ctx), parent)
        with tracer.start_as_current_span(
                f"action {action_id}", context=parent, record_exception=False,
                set_status_on_exception=False, attributes={
                    **self._base(rec), "headrace.instance.id": rec.id,
                    "headrace.action.id": action_id, "headrace.action.field": field}) as span:
            try:
                yield span
            except Exception as exc:
                fail(span, self._mask(str(exc) or type(exc).__name__), _error_type(exc))
                raise

    @contextmanager
    def check_span(self, ctx: AttemptContext, number: int) -> Iterator[Span]:
        """One precondition check (a poll), current while it runs; the child process of a
        ShellCommandPrecondition gets this span as its TRACEPARENT."""
        rec = ctx.instance
        with tracer.start_as_current_span(f"check {rec.type}", record_exception=False,
                                          set_status_on_exception=False, attributes={
                                              **self._base(rec),
                                              "headrace.check.number": number}) as span:
            ctx.env.update(propagation_env())
            yield span

    def precondition_waited(self, rec: InstanceRecord, seconds: float, met: bool) -> None:
        m.PRECONDITION_WAIT.record(max(seconds, 0.0), {**self._metric_attrs(rec),
                                                       "headrace.check.result": str(met).lower()})


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__qualname__


def _cause_type(error: str | None) -> str:
    """A short, low-cardinality cause for a failed attempt's message."""
    text = (error or "").lower()
    for needle, kind in (("timed out", "timeout"), ("exit", "exit_code"),
                         ("connect", "connection"), ("throttl", "throttled"),
                         ("slowdown", "throttled"), ("interrupted", "interrupted")):
        if needle in text:
            return kind
    return "error"
