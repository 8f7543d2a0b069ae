"""Parquet from a database's CSV bytes (the bytes lane into Parquet), built on pyarrow.

A PostgreSQL ``COPY ... TO STDOUT (FORMAT csv)`` or the MySQL unload's server-built CSV
lines are parsed by pyarrow's CSV reader with each column's type given from the source's
schema (the types :func:`~connectors.formats.parquet.arrow_field` maps, so the file is the one
the rows lane writes), and written a row group at a time. No Python object is made per value,
which is what made the rows lane slow (benchmarks/README.md).

:class:`CsvToParquet` is fed the stream's chunks as they come (``feed``, in a worker thread,
as the other codecs are): it cuts each at its last complete record (a newline outside quotes:
in this CSV a quote inside a value is doubled, so a record ends where the count of quotes so
far is even) and parses the complete records, carrying the rest to the next chunk. Memory is a
chunk, the carried record and the row group being built, whatever the size of the table.

What the CSV text says, as each column's Arrow type reads it:

* NULL is an unquoted empty field, the empty string ``""`` (quoted): both survive;
* booleans ``t``/``f`` (PostgreSQL) or ``1``/``0`` (MySQL);
* ``timestamptz`` with an offset (PostgreSQL's ``+00``) is that instant; without one (MySQL's
  TIMESTAMP, read in a UTC session) it is read as UTC;
* binary as ``\\x`` and hex (both sources write it so);
* decimals wider than 38 digits are read as text and cast, which Arrow's CSV reader cannot.

:func:`transcodable` says when this lane applies (the CSV layout these sources write, a schema
with unique column names); otherwise the copy keeps the rows lane. A value the column's type
cannot hold (a NaN numeric into a decimal, a timestamp Arrow cannot read such as ``infinity``
or a BC date, an integer out of range) fails the copy naming the row and the column.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.base import CSV, Column, Schema, TextFormat
from connectors.errors import BadDataError

from .parquet import (
    arrow_field,
    check_compression,
    open_row_groups,
    pyarrow_modules,
    shown_value,
    with_nan_hint,
)

#: pyarrow parses this much CSV at a time (it numbers rows across blocks, so errors still
#: name the row of the text given)
_BLOCK = 1 << 20
_TRUE = ["t", "true", "1"]
_FALSE = ["f", "false", "0"]
#: pyarrow's conversion errors: ``In CSV column #2: Row #5: <what>`` (rows from 1, in the text
#: given to the reader).
_WHERE = re.compile(r"In CSV column #(\d+): Row #(\d+): (.*)", re.S)
#: ... and the value, in its two ways of naming it
_VALUE = re.compile(r"(?:invalid value|The string) '(.*)'", re.S)

def transcodable(fmt: TextFormat, schema: Schema | None) -> bool:
    """True when CSV of ``fmt`` with ``schema``'s columns can go to Parquet on the bytes lane:
    headrace's CSV layout (what PostgreSQL's COPY and the MySQL unload write by default) and
    columns with distinct, known names."""
    if schema is None or not len(schema):
        return False
    names = schema.names
    if len(set(names)) != len(names) or any(not n for n in names):
        return False
    plain = CSV.replace(columns=fmt.columns)
    return fmt == plain


def _read_type(col: Column, target: Any) -> Any:
    """The type pyarrow's CSV reader reads ``col`` as: the target's own, or text for the
    columns converted after parsing (see the module docstring)."""
    pa, _ = pyarrow_modules()
    if col.type in ("binary", "timestamptz") or pa.types.is_decimal256(target):
        return pa.string()
    return target


class CsvToParquet:
    """CSV chunks -> the bytes of one Parquet file (see the module docstring).

    ``where`` names the source in errors (a row is its record number in the read, from 1)."""

    def __init__(self, parquet: TextFormat, schema: Schema, *, where: str,
                 row_group_rows: int | None = None) -> None:
        pa, _ = pyarrow_modules()
        import pyarrow.csv as pacsv

        self._pa = pa
        self._csv = pacsv
        self._where = where
        self._columns = schema.columns
        self._groups = open_row_groups(schema, check_compression(parquet.parquet_compression),
                                       where, group_rows=row_group_rows)
        self._targets = [arrow_field(c).type for c in schema.columns]
        self._read = {c.name: _read_type(c, t) for c, t in zip(schema.columns, self._targets,
                                                             strict=True)}
        self._parse = pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True,
                                         escape_char=False, newlines_in_values=True,
                                         ignore_empty_lines=False)
        self._convert = pacsv.ConvertOptions(
            column_types=self._read, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=_TRUE, false_values=_FALSE)
        #: timestamptz columns by index: True when their text carries an offset, False when
        #: it does not (read as UTC)
        self._instant_kind: dict[int, bool] = {}
        self._carry = b""
        self._rows = 0  # records parsed so far

    def feed(self, chunk: bytes) -> bytes:
        """Parse the complete records so far; the Parquet bytes of any row group finished."""
        data = self._carry + chunk if self._carry else chunk
        end = _last_record_end(data)
        if end <= 0:
            self._carry = data
            return b""
        self._carry = data[end:]
        return self._records(data[:end])

    def finish(self) -> bytes:
        tail = self._carry
        self._carry = b""
        out = b""
        if tail:
            out = self._records(tail if tail.endswith(b"\n") else tail + b"\n")
        return out + self._groups.finish()

    def _records(self, text: bytes) -> bytes:
        pa = self._pa
        try:
            try:
                table = self._read_csv(text, _BLOCK)
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc):
                    raise
                # a record longer than a block: the whole text as one block
                table = self._read_csv(text, len(text) + 1)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise self._parse_error(str(exc)) from None
        arrays = [self._converted(i, table.column(i)) for i in range(len(self._columns))]
        first = self._rows
        self._rows += table.num_rows
        try:
            batch = pa.Table.from_arrays(arrays, schema=self._groups.schema)
        except pa.ArrowInvalid as exc:  # a record with too few or too many fields
            raise BadDataError(f"{self._where}: rows {first + 1}-{self._rows}: {exc}",
                               line=first + 1) from None
        return self._groups.add(batch)

    def _read_csv(self, text: bytes, block: int) -> Any:
        pa, pacsv = self._pa, self._csv
        return pacsv.read_csv(
            pa.py_buffer(text),
            read_options=pacsv.ReadOptions(column_names=list(self._read), block_size=block,
                                           use_threads=False),
            parse_options=self._parse, convert_options=self._convert)

    def _converted(self, i: int, column: Any) -> Any:
        """A column as its Parquet type (binary from hex, instants, wide decimals)."""
        pa = self._pa
        col, target = self._columns[i], self._targets[i]
        if column.type == target:
            return column
        array = column.combine_chunks()
        if col.type == "binary":
            return self._unhex(i, array)
        if col.type == "timestamptz":
            return self._instants(i, array, target)
        try:
            return array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise self._value_error(i, array, lambda v: pa.array([v]).cast(target),
                                    f"cannot be written as Parquet {target}") from None

    def _instants(self, i: int, array: Any, target: Any) -> Any:
        """Instants as UTC: with their offset, or (MySQL's TIMESTAMP text, no offset) read
        as UTC wall time. Which, the column's first value says, once."""
        pa = self._pa
        if i not in self._instant_kind:
            first = next((v for v in array.to_pylist() if v is not None), None)
            if first is None:
                return array.cast(target)
            self._instant_kind[i] = _has_offset(pa, first, target)
        read = target if self._instant_kind[i] else pa.timestamp(target.unit)
        try:
            return array.cast(read).cast(target)
        except pa.ArrowInvalid:
            raise self._value_error(i, array, lambda v: pa.array([v]).cast(read),
                                    f"cannot be written as Parquet {target}") from None

    def _unhex(self, i: int, array: Any) -> Any:
        pa = self._pa
        out: list[bytes | None] = []
        for n, text in enumerate(array.to_pylist()):
            if text is None:
                out.append(None)
            elif text.startswith("\\x"):
                try:
                    out.append(bytes.fromhex(text[2:]))
                except ValueError:
                    raise self._bad(n, i, f"{text[:40]!r} is not \\x and hex") from None
            else:
                raise self._bad(n, i, f"{text[:40]!r} is not \\x and hex")
        return pa.array(out, type=pa.binary())

    def _value_error(self, i: int, array: Any, convert: Any, what: str) -> BadDataError:
        """The first value of ``array`` that ``convert`` refuses, named by row and column."""
        pa = self._pa
        for n, value in enumerate(array.to_pylist()):
            if value is None:
                continue
            try:
                convert(value)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return self._bad(n, i, with_nan_hint(f"{shown_value(value)} {what}", value,
                                                  self._targets[i]))
        return BadDataError(f"{self._where}: column {self._columns[i].name!r} {what}")

    def _parse_error(self, message: str) -> BadDataError:
        found = _WHERE.match(message)
        if found is None:
            return BadDataError(f"{self._where}: after row {self._rows}: the CSV could not be "
                                f"read as Parquet: {message}", line=self._rows + 1)
        i, row, what = int(found.group(1)), int(found.group(2)), found.group(3).strip()
        if i < len(self._columns):
            value = _VALUE.search(what)
            target = self._targets[i]
            what = with_nan_hint(f"{shown_value(value.group(1))} cannot be written as Parquet "
                              f"{target}", value.group(1), target) \
                if value is not None else f"{what} (as Parquet {target})"
        return self._bad(row - 1, i, what)

    def _bad(self, offset: int, i: int, what: str) -> BadDataError:
        """An error naming the row (``offset`` from the first row not yet counted)."""
        row = self._rows + offset + 1
        name = self._columns[i].name if i < len(self._columns) else f"#{i + 1}"
        err = BadDataError(f"{self._where}: row {row}, column {name!r}: {what}")
        err.line, err.column = row, name
        return err


def _has_offset(pa: Any, text: str, target: Any) -> bool:
    """True unless ``text`` is a timestamp without a zone offset."""
    try:
        pa.array([text]).cast(target)
    except pa.ArrowInvalid:
        try:
            pa.array([text]).cast(pa.timestamp(target.unit))
        except pa.ArrowInvalid:
            return True  # not a timestamp either way: the cast names it
        return False
    return True


def _last_record_end(data: bytes) -> int:
    """The offset just past the last newline of ``data`` that ends a record (outside quotes),
    or 0 when there is none. Quotes are counted once; each candidate newline from the end
    subtracts the (short) tail after it."""
    quotes = data.count(b'"')
    end = data.rfind(b"\n")
    while end >= 0:
        if (quotes - data.count(b'"', end)) % 2 == 0:
            return end + 1
        end = data.rfind(b"\n", 0, end)
    return 0
