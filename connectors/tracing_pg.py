"""The traced asyncpg connection (see :mod:`connectors.tracing`); a module of its own so that
importing the tracing helpers does not import asyncpg."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import asyncpg
from opentelemetry.trace import Span, SpanKind

from connectors.tracing import (
    STATEMENT_LIMIT,
    _log_pg_query,
    _pg_attributes,
    enabled,
    fail_span,
    tracer,
)


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
