"""Test data the SQL connector tests share: a two-column schema and CSV bytes that fit it."""

from __future__ import annotations

from connectors.base import Column, Schema

#: ``id bigint, name text``.
IDS = Schema((Column("id", "bigint"), Column("name", "text")))


def csv_bytes(n: int, bad_line: int | None = None) -> bytes:
    """``n`` CSV lines ``i,name i`` for IDS; line ``bad_line`` (1-based) has a non-numeric id."""
    lines = [f"{'abc' if i + 1 == bad_line else i},name {i}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()
