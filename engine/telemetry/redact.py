"""Secrets never leave in telemetry: a process-wide list of secret strings, scrubbed from every
span (name, attributes, events, links, status) just before export.

The engine's own attributes are built without secrets (redacted URLs, masked errors); this is
the last line, for text that quotes a secret unexpectedly (a SQL statement, a server's error).
The list holds the definition's secret values (``*`` fields and parameters), the configured AWS
secret key and session token, and passwords of URLs given to ``headrace copy``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK is imported only where spans are exported (setup, export)
    from opentelemetry.sdk.trace import ReadableSpan

MASK = "****"
#: Shorter values are not scrubbed: replacing them everywhere would garble every text.
MIN_SECRET_LENGTH = 3

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def add_secrets(values: Iterable[str]) -> None:
    """Register secret strings to scrub from all telemetry of this process."""
    global _pattern
    new = {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH}
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def add_environment_secrets(env: Mapping[str, str] | None = None) -> None:
    # the connectors' one list of AWS secrets; imported here, not at the top, because the AWS
    # package loads aiobotocore (~0.2 s) and only a run with telemetry on needs it
    from connectors.aws import aws_secrets

    add_secrets(aws_secrets(env))


def scrub(text: str) -> str:
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return tuple(_value(v) for v in value)
    return value


def _attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {scrub(k): _value(v) for k, v in (attrs or {}).items()}


def _has_secret(span: ReadableSpan) -> bool:
    pattern = _pattern
    if pattern is None:
        return False

    def texts() -> Iterable[str]:
        yield span.name
        if span.status.description:
            yield span.status.description
        for attrs in (span.attributes, *(e.attributes for e in span.events),
                      *(lk.attributes for lk in span.links)):
            for key, value in (attrs or {}).items():
                yield key
                if isinstance(value, str):
                    yield value
                elif isinstance(value, Sequence) and not isinstance(value, bytes):
                    yield from (v for v in value if isinstance(v, str))
        yield from (e.name for e in span.events)

    return any(pattern.search(t) for t in texts())


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself when it holds no secret, else a copy with each secret replaced."""
    if not _has_secret(span):
        return span
    from opentelemetry.sdk.trace import Event
    from opentelemetry.sdk.trace import ReadableSpan as SdkSpan
    from opentelemetry.trace import Link, Status

    status = span.status
    return SdkSpan(
        name=scrub(span.name), context=span.context, parent=span.parent,
        resource=span.resource, attributes=_attributes(span.attributes),
        events=[Event(scrub(e.name), _attributes(e.attributes), e.timestamp)
                for e in span.events],
        links=[Link(lk.context, _attributes(lk.attributes)) for lk in span.links],
        kind=span.kind,
        status=Status(status.status_code, scrub(status.description)
                      if status.description else None),
        start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope)
