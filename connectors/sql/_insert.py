"""What an ``insertQuery`` writes, for ``--verify``: the table and columns of the plain form
``INSERT INTO table (col, ...) VALUES (?, ...)``, one ``?`` per column.

A verified load reads back the rows it wrote and compares them with what the source sent.
Through that plain form each input field is stored as it is, in the named column, so the
rows can be read back from that table by those columns. Any other insertQuery (values
computed, ``INSERT ... SELECT``, an upsert clause, no column list) stores something the copy
cannot predict, and ``--verify`` is refused before anything is loaded, saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.errors import ConfigError

from ._text import Dialect, split_qualified

_PLAIN = re.compile(r"\s*INSERT\s+INTO\s+(?P<table>[^(]+?)\s*\((?P<columns>[^()]*)\)\s*"
                    r"VALUES\s*\((?P<values>[^()]*)\)\s*;?\s*\Z", re.I | re.S)


@dataclass(frozen=True)
class InsertTarget:
    """The table (as written in the query) and its columns, in placeholder order."""

    table: str
    columns: tuple[str, ...]


def insert_target(query: str, dialect: Dialect) -> InsertTarget:
    """The table and columns a plain insertQuery writes; ConfigError for any other form."""
    found = _PLAIN.match(query)
    if found is not None:
        values = [v.strip() for v in found.group("values").split(",")]
        try:
            columns = tuple(split_qualified(c.strip(), dialect)[-1]
                            for c in found.group("columns").split(","))
            split_qualified(found.group("table").strip(), dialect)
        except ConfigError:
            columns = ()
        if columns and values == ["?"] * len(columns) and len(set(columns)) == len(columns):
            return InsertTarget(found.group("table").strip(), columns)
    raise ConfigError("--verify with an insertQuery needs its plain form, INSERT INTO table "
                      "(column, ...) VALUES (?, ...) with one ? per column, so that the rows "
                      "it wrote can be read back from that table and compared; this "
                      "insertQuery may compute or rearrange what it stores")
