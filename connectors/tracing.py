"""Client and stage spans of the data plane, through the OpenTelemetry API only.

The API is a no-op until the engine configures the SDK, so connectors never depend on the
engine: ``headrace copy`` and ``headrace run`` configure it, library use pays almost nothing.
Spans made here: one per AWS call (``S3.UploadPart``, ``DynamoDB.BatchWriteItem``, ...), one per
MySQL read, load or script, and the copy engine's stages (PostgreSQL's query and ``COPY`` spans
come from :mod:`connectors.postgres`, which owns the asyncpg connection class).
Attribute names follow the OpenTelemetry semantic conventions (``rpc.*``, ``aws.*``, ``db.*``,
``server.*``, ``error.type``); headrace's own are under ``headrace.*``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from connectors.urls import redact_url

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: How much of a SQL text a span keeps (``db.query.text``).
STATEMENT_LIMIT = 1000


def tracer() -> trace.Tracer:
    return trace.get_tracer("headrace.connectors")


def enabled() -> bool:
    """True once an SDK tracer provider is installed (the default proxy records nothing)."""
    return not isinstance(trace.get_tracer_provider(),
                          trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def fail_span(span: Span, exc: BaseException, message: str | None = None) -> None:
    """Mark ``span`` failed by ``exc``: its error code or class as ``error.type`` and the
    (already scrubbed) message. Only the message is kept, never a traceback or the
    exception's arguments."""
    if not span.is_recording():
        return
    kind = getattr(exc, "code", None) if isinstance(getattr(exc, "code", None), str) else None
    text = message if message is not None else (str(exc) or type(exc).__name__)
    mark_failed(span, text, kind or type(exc).__qualname__,
                exception_type=type(exc).__qualname__)


def mark_failed(span: Span, message: str, error_type: str, *,
                exception_type: str | None = None) -> None:
    """Error status, ``error.type`` and an ``exception`` event with the message only."""
    if not span.is_recording():
        return
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message[:500]))
    span.add_event("exception", {"exception.type": exception_type or error_type,
                                 "exception.message": message[:500]})


# --- AWS (aiobotocore) -------------------------------------------------------------------------

def _aws_attributes(service: str, operation: str, params: dict[str, Any],
                    region: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"rpc.system": "aws-api", "rpc.service": service,
                             "rpc.method": operation}
    if region:
        attrs["cloud.region"] = region
    if service == "S3":
        if isinstance(params.get("Bucket"), str):
            attrs["aws.s3.bucket"] = params["Bucket"]
        if isinstance(params.get("Key"), str):
            attrs["aws.s3.key"] = params["Key"]
        if "PartNumber" in params:
            attrs["aws.s3.part_number"] = int(params["PartNumber"])
        if isinstance(params.get("CopySource"), str):
            attrs["aws.s3.copy_source"] = params["CopySource"]
    elif service == "DynamoDB":
        tables = [params["TableName"]] if isinstance(params.get("TableName"), str) else sorted(
            params.get("RequestItems") or {})
        if tables:
            attrs["aws.dynamodb.table_names"] = tables
        if "Segment" in params:
            attrs["aws.dynamodb.segment"] = int(params["Segment"])
            attrs["aws.dynamodb.total_segments"] = int(params.get("TotalSegments") or 0)
    elif service == "SNS" and isinstance(params.get("TopicArn"), str):
        attrs["messaging.system"] = "aws_sns"
        attrs["messaging.destination.name"] = params["TopicArn"]
    return attrs


def _aws_response(span: Span, meta: dict[str, Any]) -> None:
    status = meta.get("HTTPStatusCode")
    if status:
        span.set_attribute("http.response.status_code", int(status))
    if meta.get("RequestId"):
        span.set_attribute("aws.request_id", str(meta["RequestId"]))
    retries = int(meta.get("RetryAttempts") or 0)
    if retries:
        span.set_attribute("headrace.retries", retries)


def trace_aws_client(client: Any) -> Any:
    """Make every API call of an aiobotocore ``client`` a CLIENT span named
    ``Service.Operation`` under the current span (the stage that made it).

    botocore's own instrumentation patches the synchronous client only, so the call is wrapped
    on this client instance; paginators and waiters go through it too."""
    original = client._make_api_call
    service = client.meta.service_model.service_id  # "S3", "DynamoDB", "SNS"
    region = client.meta.region_name

    async def traced(operation_name: str, api_params: dict[str, Any]) -> Any:
        with tracer().start_as_current_span(
                f"{service}.{operation_name}", kind=SpanKind.CLIENT,
                record_exception=False, set_status_on_exception=False) as span:
            if span.is_recording():
                span.set_attributes(_aws_attributes(service, operation_name, api_params,
                                                    region))
            try:
                response = await original(operation_name, api_params)
            except Exception as exc:
                if span.is_recording():
                    response_meta = getattr(exc, "response", None) or {}
                    _aws_response(span, response_meta.get("ResponseMetadata") or {})
                    code = (response_meta.get("Error") or {}).get("Code")
                    span.set_attribute("error.type", str(code or type(exc).__qualname__))
                    span.set_status(Status(StatusCode.ERROR, str(code or type(exc).__name__)))
                raise
            if span.is_recording() and isinstance(response, dict):
                _aws_response(span, response.get("ResponseMetadata") or {})
            return response

    client._make_api_call = traced
    return client


# --- hand-made database spans (MySQL; PostgreSQL's are in connectors.postgres) ---------

@contextmanager
def db_span(system: str, operation: str, *, endpoint: Any = None,
            statement: str | None = None) -> Iterator[Span]:
    """A CLIENT span for one database operation (``system`` as in ``db.system``)."""
    table = getattr(endpoint, "table", None) if endpoint is not None else None
    name = f"{operation} {table}" if table else f"{operation} {system}"
    with tracer().start_as_current_span(name, kind=SpanKind.CLIENT, record_exception=False,
                                        set_status_on_exception=False) as span:
        if span.is_recording():
            attrs: dict[str, Any] = {"db.system": system, "db.operation": operation,
                                     "db.operation.name": operation}
            if endpoint is not None:
                for key, field in (("server.address", "host"), ("server.port", "port"),
                                   ("db.name", "database"), ("db.sql.table", "table")):
                    value = getattr(endpoint, field, None)
                    if value:
                        attrs[key] = value if isinstance(value, int) else str(value)
            if statement:
                attrs["db.query.text"] = statement[:STATEMENT_LIMIT]
            span.set_attributes(attrs)
        try:
            yield span
        except Exception as exc:
            fail_span(span, exc, type(exc).__name__)
            raise


def traced_db(system: str, operation: str) -> Callable[[F], F]:
    """Decorate an async method or function as one database span; the endpoint is taken from
    ``self.endpoint`` or a first argument that looks like one (has ``host`` and ``port``)."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            endpoint = None
            if args:
                first = args[0]
                endpoint = getattr(first, "endpoint", None) or (
                    first if hasattr(first, "host") and hasattr(first, "port") else None)
            with db_span(system, operation, endpoint=endpoint):
                return await fn(*args, **kwargs)
        return traced  # type: ignore[return-value]
    return wrap


# --- the copy engine ---------------------------------------------------------------------------

@contextmanager
def stage_span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span for one copy stage (``copy read``, ``copy decode``, ``copy encode``,
    ``copy write``) around a stage task, made current so its client calls nest under it."""
    with tracer().start_as_current_span(name, record_exception=False,
                                        set_status_on_exception=False) as span:
        if span.is_recording() and attributes:
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        try:
            yield span
        except Exception as exc:
            fail_span(span, exc)
            raise


def endpoint_name(describe: str) -> str:
    """A connector's display name, with any password removed (again: belt and braces)."""
    return redact_url(describe)


class CopySpan:
    """The span of one copy; :meth:`done` records what the copy moved."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def done(self, result: Any) -> None:
        span = self.span
        if not span.is_recording():
            return
        seconds = max(float(result.seconds), 1e-9)
        span.set_attributes({
            "headrace.rows": int(result.rows), "headrace.bytes": int(result.bytes),
            "headrace.duration_s": round(float(result.seconds), 6),
            "headrace.throughput_bytes_per_s": round(result.bytes / seconds, 1),
            "headrace.throughput_rows_per_s": round(result.rows / seconds, 1),
            "headrace.copy.lane": str(result.lane), "headrace.retries": int(result.retries),
            "headrace.copy.stages": list(result.stages),
        })
        if result.bad_rows:
            span.set_attribute("headrace.copy.bad_rows", int(result.bad_rows))
        for link, depth in (result.peak_queue_depth or {}).items():
            span.set_attribute(f"headrace.copy.peak_queue_depth.{link}", int(depth))


@contextmanager
def copy_span(source: str, destination: str) -> Iterator[CopySpan]:
    """The ``copy`` span, current while the copy runs (its stages are its children)."""
    with tracer().start_as_current_span("copy", record_exception=False,
                                        set_status_on_exception=False) as span:
        if span.is_recording():
            span.set_attributes({"headrace.copy.source": endpoint_name(source),
                                 "headrace.copy.destination": endpoint_name(destination)})
        try:
            yield CopySpan(span)
        except Exception as exc:
            fail_span(span, exc)
            raise
