"""PostgreSQL (and Redshift-protocol) source and sink on asyncpg.

Bytes lane: ``COPY ... TO STDOUT`` / ``COPY ... FROM STDIN`` in CSV or text format, so the
server formats and parses every value and Python only moves buffers (BASELINES.md: asyncpg's
COPY reads as fast as psql). Rows lane: a server-side cursor out, binary
``copy_records_to_table`` in (or ``insertQuery`` through ``executemany``), with values coerced to
the target column's type.

A load runs in one transaction: end-of-stream commits, any failure or cancellation rolls back
(in shielded cleanup), so a reader never sees part of a load. Table names are always quoted
identifiers and values always bound parameters.

Inside: ``_endpoint`` (the endpoint, connections, transactions), ``_errors`` (driver errors ->
connector errors), ``_copy`` (COPY formats and loads), ``_guard``
(NUL and invalid UTF-8 refused naming the column), ``_marker`` (data lines COPY
would take for its end marker), ``_source``, ``_sink``, ``_urls`` (the
URL constructors), ``_resumable`` (checkpointed batch loads), ``_redshift``
(RedshiftCopyActivity's merge), ``_scripts`` (SQL scripts and checks), ``_types`` (column
types, value coercion), ``_tracing`` (client spans), ``_watched`` (a connection's silences
bounded by ``read_timeout``).
"""

from connectors.timeouts import CONNECT_TIMEOUT

from ._endpoint import PostgresEndpoint
from ._errors import map_errors
from ._marker import EndMarkerQuoter
from ._redshift import InsertMode, redshift_copy_load
from ._resumable import staging_name
from ._scripts import execute_script, query_is_true, table_exists
from ._sink import PostgresSink
from ._source import PostgresSource
from ._types import pg_coercer, pg_column_fits
from ._urls import sink_from_url, source_from_url

__all__ = [
    "CONNECT_TIMEOUT",
    "EndMarkerQuoter",
    "InsertMode",
    "PostgresEndpoint",
    "PostgresSink",
    "PostgresSource",
    "execute_script",
    "map_errors",
    "pg_coercer",
    "pg_column_fits",
    "query_is_true",
    "redshift_copy_load",
    "sink_from_url",
    "source_from_url",
    "staging_name",
    "table_exists",
]
