"""The data format of a file-like end (a local file or directory, an S3 object or prefix):
the one given, else the one its name implies (``.csv``, ``.jsonl.gz``...), else CSV."""

from __future__ import annotations

from connectors.base import CSV, Schema, TextFormat
from connectors.formats import format_for_path, same_layout


class NamedFormat:
    """Base of file-like sources and sinks: holds the format and answers from it."""

    _fmt: TextFormat
    #: No format was given and the name implies none: the bytes are not known to be records
    #: (a direct copy may move them without counting any).
    opaque: bool

    def _set_format(self, name: str, fmt: TextFormat | None) -> None:
        implied = format_for_path(name)
        self._fmt = fmt or implied or CSV
        self.opaque = fmt is None and implied is None

    @property
    def native_format(self) -> TextFormat:
        return self._fmt

    async def schema(self) -> Schema | None:
        return Schema(self._fmt.columns) if self._fmt.columns else None


class NamedFormatSource(NamedFormat):
    def can_produce(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)


class NamedFormatSink(NamedFormat):
    def can_consume(self, fmt: TextFormat) -> bool:
        return same_layout(fmt, self._fmt)
