"""What the SQL connectors (PostgreSQL, MySQL) share: where a database is (URLs and
data-node fields), SQL text (identifier quoting, ``?`` placeholders, scripts split into
statements), the base of their endpoints, sources and sinks, and values read from text.

Inside: ``_url``, ``_connections`` (named connections), ``_deal`` (one stream dealt to
parallel loaders), ``_secrets`` (``env:``/``file:``
references), ``_text``, ``_base``, ``_values``.
"""

from connectors.formats import parse_datetime

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
from ._connections import (
    FILE_VARIABLE as CONNECTIONS_FILE_VARIABLE,
)
from ._connections import (
    Connection,
    connections_file,
    find_connection,
    named_host,
    variable_for,
)
from ._deal import deal_records, record_framer
from ._incremental import (
    IncrementalSource,
    IncrementSpec,
    Watermark,
    check_column,
    condition,
)
from ._ranges import quantiles
from ._secrets import SecretReference, resolve_secret, secret_problem, secret_reference
from ._text import (
    Dialect,
    convert_placeholders,
    quote_ident,
    quote_qualified,
    script_statements,
    split_qualified,
    split_statements,
)
from ._url import (
    SqlUrl,
    connection_dsn,
    connection_passwords,
    from_fields,
    parse_sql_url,
    with_properties,
)
from ._values import parse_bool, schema_of, truthy

__all__ = [
    "CONNECTIONS_FILE_VARIABLE",
    "MAX_CHUNK",
    "ROWS_PER_BATCH",
    "Connection",
    "Dialect",
    "IncrementSpec",
    "IncrementalSource",
    "SecretReference",
    "SqlEndpointFields",
    "SqlSink",
    "SqlSource",
    "SqlUrl",
    "Watermark",
    "aligned_schema",
    "check_column",
    "condition",
    "connection_dsn",
    "connection_passwords",
    "connections_file",
    "convert_placeholders",
    "deal_records",
    "find_connection",
    "first_line",
    "from_fields",
    "is_utf8",
    "named_host",
    "next_batch",
    "parse_bool",
    "parse_datetime",
    "parse_sql_url",
    "quantiles",
    "quote_ident",
    "quote_qualified",
    "record_framer",
    "resolve_secret",
    "schema_of",
    "script_statements",
    "secret_problem",
    "secret_reference",
    "split_qualified",
    "split_statements",
    "target_columns",
    "truthy",
    "variable_for",
    "with_properties",
]
