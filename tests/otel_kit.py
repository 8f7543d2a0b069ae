"""Reading what OpenTelemetry's console exporters print (span and metric JSON documents, one
after another, between other lines of a command's stderr)."""

from __future__ import annotations

import json
from typing import Any


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
