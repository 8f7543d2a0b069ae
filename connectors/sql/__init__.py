"""What the SQL connectors (PostgreSQL, MySQL) share: where a database is (URLs and
data-node fields), SQL text (identifier quoting, ``?`` placeholders, scripts split into
statements), the base of their endpoints, sources and sinks, and values read from text.

Inside: ``_url``, ``_text``, ``_base``, ``_values``.
"""

from ._base import (
    MAX_CHUNK,
    ROWS_PER_BATCH,
    SqlEndpointFields,
    SqlSink,
    SqlSource,
    aligned_schema,
    first_line,
    is_utf8,
    next_batch,
    target_columns,
)
from ._incremental import (
    IncrementalSource,
    IncrementSpec,
    Watermark,
    check_column,
    condition,
)
from ._text import (
    Dialect,
    convert_placeholders,
    quote_ident,
    quote_qualified,
    script_statements,
    split_qualified,
    split_statements,
)
from ._url import SqlUrl, from_fields, parse_sql_url
from ._values import parse_bool, parse_datetime, schema_of, truthy

__all__ = [
    "MAX_CHUNK",
    "ROWS_PER_BATCH",
    "Dialect",
    "IncrementSpec",
    "IncrementalSource",
    "SqlEndpointFields",
    "SqlSink",
    "SqlSource",
    "SqlUrl",
    "Watermark",
    "aligned_schema",
    "check_column",
    "condition",
    "convert_placeholders",
    "first_line",
    "from_fields",
    "is_utf8",
    "next_batch",
    "parse_bool",
    "parse_datetime",
    "parse_sql_url",
    "quote_ident",
    "quote_qualified",
    "schema_of",
    "script_statements",
    "split_qualified",
    "split_statements",
    "target_columns",
    "truthy",
]
