"""Streaming codecs between bytes and :class:`~connectors.base.RowBatch`.

``decoder_for(fmt, location=...)`` gives an object with ``feed(chunk) -> list[RowBatch]`` and
``finish() -> list[RowBatch]``: chunks may be cut anywhere (inside a record, a quoted newline or
a multi-byte character). Malformed input raises :class:`~connectors.errors.BadDataError` with
location, line, column and a snippet, or goes to ``on_bad`` when the caller routes bad rows.
``encoder_for(fmt)`` gives ``encode(batch) -> bytes`` and ``finish() -> bytes``.

The bytes lane of a copy never touches these: they run only where a conversion is needed.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from typing import Any, Protocol

from connectors.base import (
    CSV,
    DYNAMODB_JSONL,
    JSONL,
    TSV,
    Column,
    ColumnType,
    RowBatch,
    Schema,
    TextFormat,
)
from connectors.errors import ConfigError

from ._decoder import DEFAULT_BATCH_ROWS, BadRowHandler, generic_schema
from ._framing import Framer
from .compression import Gunzip, Gzip
from .counting import RecordCounter, count_records
from .dynamodb_items import (
    ITEM_COLUMN,
    ITEM_SCHEMA,
    ConversionError,
    Item,
    attribute_type,
    coerce_key,
    dict_to_item,
    from_attribute,
    item_json,
    item_key,
    item_plain_json,
    item_to_dict,
    item_to_row,
    parse_number,
    row_to_item,
    to_attribute,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "ITEM_COLUMN",
    "ITEM_SCHEMA",
    "BadRowHandler",
    "ConversionError",
    "Decoder",
    "Encoder",
    "Framer",
    "Gunzip",
    "Gzip",
    "Item",
    "RecordCounter",
    "attribute_type",
    "coerce_key",
    "count_records",
    "decoder_for",
    "dict_to_item",
    "encoder_for",
    "format_for_path",
    "format_from_definition",
    "format_named",
    "from_attribute",
    "generic_schema",
    "item_json",
    "item_key",
    "item_plain_json",
    "item_to_dict",
    "item_to_row",
    "parse_columns",
    "parse_number",
    "row_to_item",
    "same_layout",
    "to_attribute",
]


class Decoder(Protocol):
    schema: Schema | None
    bad_rows: int

    def feed(self, chunk: bytes) -> list[RowBatch]: ...

    def finish(self) -> list[RowBatch]: ...


class Encoder(Protocol):
    def encode(self, batch: RowBatch) -> bytes: ...

    def finish(self) -> bytes: ...


def decoder_for(fmt: TextFormat, *, location: str, schema: Schema | None = None,
                batch_rows: int = DEFAULT_BATCH_ROWS,
                on_bad: BadRowHandler | None = None) -> Decoder:
    """A streaming decoder for ``fmt``; ``location`` (file or object name) goes in errors."""
    from .csv import CsvDecoder
    from .delimited import DelimitedDecoder
    from .dynamodb_json import DynamoDbJsonDecoder
    from .jsonl import JsonLinesDecoder
    from .regex import RegexDecoder

    cls: Any = {"csv": CsvDecoder, "tsv": DelimitedDecoder, "custom": DelimitedDecoder,
                "regex": RegexDecoder, "jsonl": JsonLinesDecoder,
                "dynamodb-jsonl": DynamoDbJsonDecoder}[fmt.kind]
    return cls(fmt, location=location, schema=schema, batch_rows=batch_rows, on_bad=on_bad)


def encoder_for(fmt: TextFormat) -> Encoder:
    """A streaming encoder for ``fmt`` (RegEx has none: it is a read-only format)."""
    from .csv import CsvEncoder
    from .delimited import DelimitedEncoder
    from .dynamodb_json import DynamoDbJsonEncoder
    from .jsonl import JsonLinesEncoder

    if fmt.kind == "regex":
        raise ConfigError("the RegEx format can be read but not written")
    cls: Any = {"csv": CsvEncoder, "tsv": DelimitedEncoder, "custom": DelimitedEncoder,
                "jsonl": JsonLinesEncoder, "dynamodb-jsonl": DynamoDbJsonEncoder}[fmt.kind]
    return cls(fmt)


def same_layout(a: TextFormat | None, b: TextFormat | None) -> bool:
    """True when bytes written as ``a`` read correctly as ``b`` (declared columns aside)."""
    if a is None or b is None:
        return False
    return dataclasses.replace(a, columns=()) == dataclasses.replace(b, columns=())


_NAMED = {"csv": CSV, "tsv": TSV, "jsonl": JSONL, "json": JSONL, "ndjson": JSONL,
          "dynamodb-jsonl": DYNAMODB_JSONL, "dynamodb": DYNAMODB_JSONL}


def format_named(name: str) -> TextFormat:
    """``csv``, ``tsv``, ``jsonl`` (or ``json``/``ndjson``), ``dynamodb-jsonl``."""
    try:
        return _NAMED[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown format {name!r}; known: csv, tsv, jsonl, dynamodb-jsonl") from None


def format_for_path(path: str) -> TextFormat | None:
    """The format a file name's extension implies (``.csv``, ``.tsv``, ``.jsonl``...), or None."""
    name = posixpath.basename(path.rstrip("/")).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    ext = posixpath.splitext(name)[1].lstrip(".")
    if ext in ("csv", "tsv", "jsonl", "ndjson"):
        return _NAMED[ext]
    return None


_HIVE_TYPES: dict[str, ColumnType] = {
    "STRING": "text", "VARCHAR": "text", "CHAR": "text", "TEXT": "text",
    "INT": "integer", "INTEGER": "integer", "SMALLINT": "integer", "TINYINT": "integer",
    "BIGINT": "bigint", "DOUBLE": "double", "FLOAT": "double", "DECIMAL": "numeric",
    "NUMERIC": "numeric", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "DATE": "date",
    "BINARY": "binary", "MAP": "json", "ARRAY": "json", "STRUCT": "json",
}


def parse_columns(specs: list[str] | tuple[str, ...]) -> tuple[Column, ...]:
    """Data Pipeline ``column`` values (``"name TYPE"``; the type may be left out) -> columns."""
    out = []
    for spec in specs:
        parts = str(spec).split(None, 1)
        if not parts:
            raise ConfigError("a column entry is empty")
        name = parts[0]
        hive = parts[1].strip().upper() if len(parts) > 1 else "STRING"
        base = hive.split("(", 1)[0].split("<", 1)[0].strip()
        if base not in _HIVE_TYPES:
            raise ConfigError(f"column {name!r}: unknown type {hive!r}; "
                              f"known: {', '.join(sorted(_HIVE_TYPES))}")
        out.append(Column(name, _HIVE_TYPES[base]))
    return tuple(out)


def _single(fields: Mapping[str, Any], key: str) -> Any:
    value = fields.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def format_from_definition(type_name: str, fields: Mapping[str, Any]) -> TextFormat:
    """A Data Pipeline data format object (``CSV``, ``TSV``, ``Custom``, ``RegEx``,
    ``DynamoDBDataFormat``, ``DynamoDBExportDataFormat``) -> a :class:`TextFormat`.
    """
    raw_cols = fields.get("column") or ()
    columns = parse_columns([raw_cols] if isinstance(raw_cols, str) else list(raw_cols))
    escape = _single(fields, "escapeChar")
    if type_name == "CSV":
        return CSV.replace(columns=columns, escape_char=escape or None)
    if type_name == "TSV":
        return TSV.replace(columns=columns,
                           column_separator=_single(fields, "columnSeparator") or "\t",
                           record_separator=_single(fields, "recordSeparator") or "\n",
                           escape_char=escape or "\\")
    if type_name == "Custom":
        sep = _single(fields, "columnSeparator")
        if not sep:
            raise ConfigError("a Custom data format needs columnSeparator")
        return TextFormat(kind="custom", column_separator=sep,
                          record_separator=_single(fields, "recordSeparator") or "\n",
                          quote=None, columns=columns)
    if type_name == "RegEx":
        regex = _single(fields, "inputRegEx")
        if not regex:
            raise ConfigError("a RegEx data format needs inputRegEx")
        return TextFormat(kind="regex", column_separator="", quote=None, regex=regex,
                          columns=columns)
    if type_name in ("DynamoDBDataFormat", "DynamoDBExportDataFormat"):
        return DYNAMODB_JSONL.replace(columns=columns)
    raise ConfigError(f"unknown data format type {type_name!r}; known: CSV, TSV, Custom, "
                      "RegEx, DynamoDBDataFormat, DynamoDBExportDataFormat")
