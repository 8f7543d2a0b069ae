"""SQL that makes MySQL/MariaDB build each output line itself.

Decoding rows in Python is the bottleneck of a MySQL read (BASELINES.md); when the data only
passes through as text, the server renders each record as one string (``CONCAT_WS`` of
per-column expressions: ``IF(c IS NULL, <null>, ...)`` for NULL vs '', ``REPLACE`` for quotes
and escapes) and the client handles one binary value per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from connectors.base import TextFormat
from connectors.sql import is_utf8, quote_ident

#: How a column is rendered: numbers and temporal values need no quoting unless the separator
#: could occur in them; text is always quoted (CSV) or escaped (TSV); binary goes out as hex.
Kind = Literal["number", "temporal", "text", "binary", "bit"]

_NUMBER_CHARS = set("0123456789.-+eE")
_TEMPORAL_CHARS = set("0123456789-: .")


def sql_string(text: str) -> str:
    """A MySQL string literal for ``text``, read the same whatever the session's sql_mode.

    Text with a backslash or a control character is written as a hex literal with a charset
    introducer, since ``NO_BACKSLASH_ESCAPES`` changes how backslashes in quotes are read.
    """
    if "\\" in text or any(ord(c) < 32 for c in text):
        return f"_utf8mb4 X'{text.encode('utf-8').hex()}'"
    return "'" + text.replace("'", "''") + "'"


def supports(fmt: TextFormat) -> bool:
    """True when the server can render ``fmt``."""
    if not is_utf8(fmt):
        return False
    if not fmt.column_separator or not fmt.record_separator:
        return False
    if fmt.kind == "csv":
        return fmt.quote is not None and len(fmt.quote) == 1 and (
            fmt.escape_char is None or len(fmt.escape_char) == 1)
    if fmt.kind in ("tsv", "custom"):
        return fmt.quote is None and fmt.escape_char is not None and len(fmt.escape_char) == 1
    return False


def _text(col: str, fmt: TextFormat) -> str:
    if fmt.kind == "csv":
        q = fmt.quote or '"'
        esc = fmt.escape_char
        inner = col
        if esc and esc != q:
            inner = f"REPLACE({inner}, {sql_string(esc)}, {sql_string(esc + esc)})"
            inner = f"REPLACE({inner}, {sql_string(q)}, {sql_string(esc + q)})"
        else:
            inner = f"REPLACE({inner}, {sql_string(q)}, {sql_string(q + q)})"
        return f"CONCAT({sql_string(q)}, {inner}, {sql_string(q)})"
    esc = fmt.escape_char or "\\"
    inner = f"REPLACE({col}, {sql_string(esc)}, {sql_string(esc + esc)})"
    specials = {fmt.column_separator: fmt.column_separator, "\n": "n", "\r": "r"}
    if fmt.column_separator == "\t":
        specials["\t"] = "t"
    for raw, escaped in specials.items():
        if raw and raw != esc:
            inner = f"REPLACE({inner}, {sql_string(raw)}, {sql_string(esc + escaped)})"
    return inner


def _value(col: str, kind: Kind, fmt: TextFormat) -> str:
    sep = set(fmt.column_separator) | set(fmt.record_separator)
    if kind == "binary":
        hexed = f"CONCAT({sql_string(chr(92) + 'x')}, LOWER(HEX({col})))"
        return hexed if fmt.kind == "csv" else _text(hexed, fmt)  # escape the backslash
    if kind == "bit":
        return f"CAST({col} + 0 AS CHAR)"
    if kind == "number" and not (sep & _NUMBER_CHARS):
        return f"CAST({col} AS CHAR)"
    if kind == "temporal" and not (sep & _TEMPORAL_CHARS):
        return f"CAST({col} AS CHAR)"
    return _text(f"CAST({col} AS CHAR)" if kind != "text" else col, fmt)


def line_select(columns: Sequence[tuple[str, Kind]], fmt: TextFormat, source_sql: str) -> str:
    """``SELECT <one binary line per row> FROM (<source_sql>) AS q``."""
    exprs = []
    for name, kind in columns:
        col = f"q.{quote_ident(name, 'mysql')}"
        exprs.append(f"IF({col} IS NULL, {sql_string(fmt.null)}, {_value(col, kind, fmt)})")
    body = f"CONCAT_WS({sql_string(fmt.column_separator)}, {', '.join(exprs)})"
    return (f"SELECT CAST(CONCAT({body}, {sql_string(fmt.record_separator)}) AS BINARY) "
            f"FROM ({source_sql}) AS q")


def header_line(names: Sequence[str], fmt: TextFormat) -> bytes:
    """The header record for ``fmt`` (names quoted when they hold a special character)."""
    out = []
    for name in names:
        special = fmt.column_separator in name or any(c in name for c in "\r\n")
        if fmt.kind == "csv" and (special or (fmt.quote and fmt.quote in name)):
            q = fmt.quote or '"'
            name = q + name.replace(q, q + q) + q
        out.append(name)
    return (fmt.column_separator.join(out) + fmt.record_separator).encode(fmt.encoding)
