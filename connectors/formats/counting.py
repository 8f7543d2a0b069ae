"""Counting records in encoded bytes without decoding them (for progress in the bytes lane).

CSV needs quote parity to tell a record separator from a newline inside a quoted field; the
work is ``bytes.split``/``bytes.count`` per quote-delimited segment, never per character.
"""

from __future__ import annotations

from typing import Protocol

from connectors.base import TextFormat


class RecordTally(Protocol):
    """What counts the records of a byte stream as it passes (``--verify``'s record figure
    of a file or object): :class:`RecordCounter`, or for Parquet the rows its footer
    declares (:class:`~connectors.formats.parquet.FooterRows`)."""

    def feed(self, chunk: bytes) -> int: ...

    @property
    def records(self) -> int: ...


class RecordCounter:
    """Feed chunks (any boundaries); ``records`` is the number of records seen so far."""

    def __init__(self, fmt: TextFormat) -> None:
        enc = fmt.encoding
        self._sep = fmt.record_separator.encode(enc)
        if fmt.kind in ("jsonl", "dynamodb-jsonl"):
            self._sep = b"\n"
        self._quote = fmt.quote.encode(enc) if (fmt.kind == "csv" and fmt.quote) else None
        self._header = fmt.header
        self._inside = False  # inside a quoted field at the end of the last chunk
        self._ended = 0  # records ended by a separator
        self._partial = False  # bytes after the last separator

    def feed(self, chunk: bytes) -> int:
        """Count ``chunk``; return the number of records it ended."""
        if not chunk:
            return 0
        sep, quote = self._sep, self._quote
        if quote is None or (not self._inside and quote not in chunk):
            n = chunk.count(sep)
        else:
            parts = chunk.split(quote)
            start = 1 if self._inside else 0
            n = b"".join(parts[start::2]).count(sep)
            if (len(parts) - 1) % 2:
                self._inside = not self._inside
        self._ended += n
        self._partial = not chunk.endswith(sep) or self._inside
        return n

    @property
    def records(self) -> int:
        total = self._ended + (1 if self._partial else 0)
        return max(0, total - 1) if self._header else total


def count_records(data: bytes, fmt: TextFormat) -> int:
    """The number of records in ``data`` (a whole file's bytes)."""
    counter = RecordCounter(fmt)
    counter.feed(data)
    return counter.records


def record_tally(fmt: TextFormat, *, location: str = "") -> RecordTally:
    """A :class:`RecordTally` for a stream of ``fmt``."""
    if fmt.kind == "parquet":
        from .parquet import FooterRows

        return FooterRows(location)
    return RecordCounter(fmt)
