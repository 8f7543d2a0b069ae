"""PostgreSQL client spans: an asyncpg connection whose queries and ``COPY`` calls are spans
(see :mod:`connectors.tracing` for the conventions). Here, not in the shared tracing module, so
that only PostgreSQL copies import asyncpg (~75 ms)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import asyncpg
from opentelemetry.trace import Span, SpanKind

from connectors.tracing import STATEMENT_LIMIT, enabled, fail_span, tracer


def _operation(sql: str) -> str:
    """The statement's first keyword (``SELECT``, ``INSERT``...), ``SQL`` when empty."""
    words = sql.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper()[:30] if words else "SQL"


def _pg_attributes(addr: Any, params: Any, operation: str, target: str | None,
                   statement: str | None) -> dict[str, Any]:
    """Span attributes of one PostgreSQL call; ``addr`` and ``params`` are asyncpg's
    connection address and parameters (a connection's ``_addr``/``_params``, or a query log
    record's ``conn_addr``/``conn_params``)."""
    attrs: dict[str, Any] = {"db.system": "postgresql", "db.operation": operation,
                             "db.operation.name": operation}
    database = getattr(params, "database", None)
    if database:
        attrs["db.name"] = attrs["db.namespace"] = str(database)
    if isinstance(addr, tuple) and len(addr) >= 2:
        attrs["server.address"], attrs["server.port"] = str(addr[0]), int(addr[1])
    if target:
        attrs["db.sql.table"] = attrs["db.collection.name"] = target
    if statement:
        attrs["db.query.text"] = attrs["db.statement"] = statement[:STATEMENT_LIMIT]
    return attrs


def _log_pg_query(record: Any) -> None:
    """asyncpg query logger: one span per query, timed by asyncpg (called just after the
    query, in the context of the task that ran it, so the span has the right parent)."""
    query = str(record.query or "")
    operation = _operation(query)
    end = time.time_ns()
    start = end - int((record.elapsed or 0) * 1e9)
    span = tracer().start_span(f"{operation} postgresql", kind=SpanKind.CLIENT,
                               start_time=start)
    if span.is_recording():
        span.set_attributes(_pg_attributes(record.conn_addr, record.conn_params, operation,
                                           None, query))
        if record.exception is not None:
            fail_span(span, record.exception, type(record.exception).__name__)
    span.end(end_time=end)


class TracedConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection whose queries and ``COPY`` calls are CLIENT spans.

    Queries are timed by asyncpg's query logger; ``COPY`` (which the logger does not see) is
    wrapped here. Pass as ``asyncpg.connect(..., connection_class=TracedConnection)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if enabled():
            self.add_query_logger(_log_pg_query)

    @contextmanager
    def _copy_span(self, direction: str, target: str | None) -> Iterator[Span]:
        name = f"COPY {target}" if target else "COPY"
        with tracer().start_as_current_span(
                name, kind=SpanKind.CLIENT, record_exception=False,
                set_status_on_exception=False) as span:
            if span.is_recording():
                span.set_attributes(_pg_attributes(self._addr, self._params, "COPY",
                                                   target, None))
                span.set_attribute("headrace.copy.direction", direction)
            try:
                yield span
            except Exception as exc:
                fail_span(span, exc, type(exc).__name__)
                raise

    @staticmethod
    def _rows(span: Span, status: Any) -> None:
        if span.is_recording() and isinstance(status, str) and status.startswith("COPY "):
            with suppress(ValueError):
                span.set_attribute("db.response.returned_rows", int(status.split()[-1]))

    async def copy_from_table(self, table_name: str, **kwargs: Any) -> str:
        with self._copy_span("out", table_name) as span:
            status = await super().copy_from_table(table_name, **kwargs)
            self._rows(span, status)
            return status  # type: ignore[no-any-return]

    async def copy_from_query(self, query: str, *args: Any, **kwargs: Any) -> str:
        with self._copy_span("out", None) as span:
            if span.is_recording():
                span.set_attribute("db.query.text", query[:STATEMENT_LIMIT])
            status = await super().copy_from_query(query, *args, **kwargs)
            self._rows(span, status)
            return status  # type: ignore[no-any-return]

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> str:
        with self._copy_span("in", table_name) as span:
            status = await super().copy_to_table(table_name, **kwargs)
            self._rows(span, status)
            return status  # type: ignore[no-any-return]

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> str:
        with self._copy_span("in", table_name) as span:
            records = kwargs.get("records")
            if span.is_recording() and isinstance(records, list):
                span.set_attribute("db.operation.batch.size", len(records))
            status = await super().copy_records_to_table(table_name, **kwargs)
            self._rows(span, status)
            return status  # type: ignore[no-any-return]
