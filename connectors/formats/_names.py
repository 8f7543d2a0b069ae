"""Formats by name: the ones a file name implies, the ones ``--format`` names, the ones a
definition's data format objects describe, and when two formats lay bytes out the same."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from typing import Any

from connectors.base import (
    CSV,
    DYNAMODB_JSONL,
    JSONL,
    PARQUET,
    TSV,
    Column,
    ColumnType,
    TextFormat,
)
from connectors.errors import ConfigError


def same_layout(a: TextFormat | None, b: TextFormat | None) -> bool:
    """True when bytes written as ``a`` read correctly as ``b`` (declared columns aside)."""
    if a is None or b is None:
        return False
    return dataclasses.replace(a, columns=()) == dataclasses.replace(b, columns=())


_NAMED = {"csv": CSV, "tsv": TSV, "jsonl": JSONL, "json": JSONL, "ndjson": JSONL,
          "dynamodb-jsonl": DYNAMODB_JSONL, "dynamodb": DYNAMODB_JSONL, "parquet": PARQUET}


def format_named(name: str) -> TextFormat:
    """``csv``, ``tsv``, ``jsonl`` (or ``json``/``ndjson``), ``dynamodb-jsonl``, ``parquet``."""
    try:
        return _NAMED[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown format {name!r}; known: csv, tsv, jsonl, dynamodb-jsonl, parquet"
        ) from None


def format_for_path(path: str) -> TextFormat | None:
    """The format a file name's extension implies (``.csv``, ``.tsv``, ``.jsonl``...), or None."""
    name = posixpath.basename(path.rstrip("/")).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    ext = posixpath.splitext(name)[1].lstrip(".")
    if ext in ("csv", "tsv", "jsonl", "ndjson", "parquet"):
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
    # ``header`` (a headrace extension; validated as a boolean): a header line, read as the
    # column names and written from them
    header = str(_single(fields, "header") or "").strip().lower() == "true"
    if type_name == "CSV":
        return CSV.replace(columns=columns, escape_char=escape or None, header=header)
    if type_name == "TSV":
        return TSV.replace(columns=columns, header=header,
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
    if type_name == "ParquetDataFormat":  # a headrace extension
        from .parquet import check_compression

        codec = str(_single(fields, "compression") or "zstd").strip().lower()
        return PARQUET.replace(columns=columns, parquet_compression=check_compression(codec))
    raise ConfigError(f"unknown data format type {type_name!r}; known: CSV, TSV, Custom, "
                      "RegEx, DynamoDBDataFormat, DynamoDBExportDataFormat, "
                      "ParquetDataFormat")
