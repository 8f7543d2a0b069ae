"""MySQL / MariaDB source and sink.

Reads use asyncmy, writes, DDL and helpers use aiomysql. Why, measured on 1,000,000 rows of
the benchmark table (bigint id, datetime, 20-char name, decimal, tinyint(1), 100-char payload;
168.8 MB of CSV) on the 2-core machine that also runs the server, in two sittings (idle / with
other test suites loading the machine, load average ~6); seconds, lower is better:

=======================================================================  =========  =========
read path                                                                 idle       loaded
=======================================================================  =========  =========
``mariadb --batch --quick -e 'SELECT * FROM t' > /dev/null`` (reference)  2.1-2.6    5.8-6.0
aiomysql SSCursor, each CSV line built by the server (one value per row)  5.9-6.3    13.7
MariaDB Connector/Python 1.1 (C), server-built lines, unbuffered cursor   -          3.8
asyncmy 0.2.18 SSCursor, server-built lines                               1.3-1.5    3.8
=======================================================================  =========  =========

aiomysql parses every packet in pure Python (0.35x of the client even with one value per row);
asyncmy does it in compiled code and ties with MariaDB's C connector without needing a thread,
a C library at build time or a second API, and with the server building each line
(:mod:`connectors.mysql_lines`) it beats the command-line client, which formats the output
itself. So both read lanes use asyncmy.

Writes: ``LOAD DATA LOCAL INFILE`` fed straight from the copy's stream
(:mod:`connectors.mysql_infile`) loaded 1M rows (empty InnoDB table with PK, loaded machine)
in 19.7-20.9 s against 14.8-15.4 s for the ``mariadb`` client loading the same file. For the
rows lane, 200,000 rows already in memory loaded in 4.4 s as LOAD DATA text encoded in Python
(:mod:`connectors.mysql_rows`) against 8.7 s as multi-row INSERTs of 1,000 rows through
aiomysql's ``executemany`` (same sitting). So both lanes load with LOAD DATA; ``executemany``
is used only for ``insertQuery`` (``?`` placeholders, e.g. ``INSERT ... ON DUPLICATE KEY
UPDATE``). ``LOAD DATA LOCAL`` turns data errors into warnings (the server cannot stop the
client mid-file), so every load checks the warning count and fails, rolling back, on the first
warning, naming its row.

Every load is one transaction: end-of-stream commits; failure or cancellation rolls back (or
closes the connection, which makes the server roll back).

The pieces: :mod:`connectors.mysql_endpoint` (endpoint, connections),
:mod:`connectors.mysql_errors`, :mod:`connectors.mysql_columns`, :mod:`connectors.mysql_source`,
:mod:`connectors.mysql_sink`. This module builds sources and sinks from URLs, holds the helpers
the rest of the engine calls (scripts, preconditions) and re-exports the pieces' public names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import EndpointOptions
from connectors.errors import ConfigError
from connectors.mysql_columns import _exists
from connectors.mysql_endpoint import CONNECT_TIMEOUT as CONNECT_TIMEOUT
from connectors.mysql_endpoint import MAX_CHUNK as MAX_CHUNK
from connectors.mysql_endpoint import MySqlEndpoint, _reader, _writer
from connectors.mysql_errors import map_error as map_error
from connectors.mysql_errors import translate_errors
from connectors.mysql_sink import INSERT_ROWS as INSERT_ROWS
from connectors.mysql_sink import MySqlSink
from connectors.mysql_sink import _infile_options as _infile_options
from connectors.mysql_sink import create_table_ddl as create_table_ddl
from connectors.mysql_sink import target_columns as target_columns
from connectors.mysql_source import ROWS_PER_BATCH as ROWS_PER_BATCH
from connectors.mysql_source import MySqlSource
from connectors.sqltext import convert_placeholders, split_statements
from connectors.sqltypes import truthy
from connectors.tracing import traced_db


def source_from_url(url: str, options: EndpointOptions) -> MySqlSource:
    """``mysql://user:pw@host:port/db?table=t`` (or ``options.query``) as a Source."""
    return MySqlEndpoint.from_url(url, options).source()


def sink_from_url(url: str, options: EndpointOptions) -> MySqlSink:
    """``mysql://user:pw@host:port/db?table=t`` as a Sink (``options.create``)."""
    return MySqlEndpoint.from_url(url, options).sink()


# --- helpers for the rest of the engine --------------------------------------------------------

def _endpoint(dsn: str | MySqlEndpoint) -> MySqlEndpoint:
    return dsn if isinstance(dsn, MySqlEndpoint) else MySqlEndpoint.from_url(dsn)


@traced_db("mysql", "script")
async def execute_script(dsn: str | MySqlEndpoint, script: str, args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the script. (MySQL commits DDL
    implicitly, so only the data statements of a script are atomic.)
    """
    ep = _endpoint(dsn)
    statements = split_statements(script, "mysql")
    converted = [convert_placeholders(s, "mysql") for s in statements]
    wanted = sum(n for _, n in converted)
    if wanted != len(args):
        raise ConfigError(f"the script has {wanted} '?' placeholders but {len(args)} "
                          "scriptArgument values were given", connector=ep.describe(),
                          operation="script")
    async with _writer(ep, "script") as conn, conn.cursor() as cur:
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with translate_errors(ep.describe(), f"script statement {number}"):
                await cur.execute(sql, tuple(args[position:position + n]))
                while await cur.nextset():
                    pass
            position += n


@traced_db("mysql", "SELECT")
async def query_is_true(dsn: str | MySqlEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = _endpoint(dsn)
    async with _reader(ep, "precondition") as conn, conn.cursor() as cur:
        await cur.execute(sql)
        row = await cur.fetchone()
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | MySqlEndpoint, table: str) -> bool:
    """True when ``table`` (``db.table`` allowed) exists."""
    ep = _endpoint(dsn).model_copy(update={"table": table})
    db, name = ep.table_parts()
    async with _reader(ep, "table exists") as conn:
        return await _exists(conn, db, name)
