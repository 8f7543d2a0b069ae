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
(``_lines``) it beats the command-line client, which formats the output
itself. So both read lanes use asyncmy.

Writes: ``LOAD DATA LOCAL INFILE`` fed straight from the copy's stream
(``_infile``) loaded 1M rows (empty InnoDB table with PK, loaded machine)
in 19.7-20.9 s against 14.8-15.4 s for the ``mariadb`` client loading the same file. For the
rows lane, 200,000 rows already in memory loaded in 4.4 s as LOAD DATA text encoded in Python
(``_rows``) against 8.7 s as multi-row INSERTs of 1,000 rows through
aiomysql's ``executemany`` (same sitting). So both lanes load with LOAD DATA; ``executemany``
is used only for ``insertQuery`` (``?`` placeholders, e.g. ``INSERT ... ON DUPLICATE KEY
UPDATE``). ``LOAD DATA LOCAL`` turns data errors into warnings (the server cannot stop the
client mid-file), so every load checks the warning count and fails, rolling back, on the first
warning, naming its row.

Every load is one transaction: end-of-stream commits; failure or cancellation rolls back (or
closes the connection, which makes the server roll back).

Inside: ``_endpoint`` (the endpoint, read and write connections), ``_errors`` (driver errors ->
connector errors), ``_columns`` (column introspection), ``_source`` and ``_lines`` (lines built
by the server), ``_sink``, ``_urls`` (the URL constructors), ``_infile`` (LOAD DATA fed from a
stream), ``_rows`` (rows as LOAD DATA text), ``_csv`` (headrace's CSV made readable by LOAD
DATA), ``_escapes`` (headrace TSV's escapes rewritten as LOAD DATA's), ``_checkpoint`` (loads
done once under a key), ``_scripts`` (SQL scripts and checks), ``_types`` (column types),
``_watched`` (driver connections whose every wait for the server is bounded:
``connect_timeout``, ``read_timeout``).
"""

from connectors.timeouts import CONNECT_TIMEOUT

from ._csv import NullMarker, convertible, marked_format
from ._endpoint import MySqlEndpoint
from ._errors import map_errors
from ._escapes import EscapeTranslator
from ._infile import PINNED as _INFILE_PINNED
from ._lines import line_select, supports
from ._rows import encode_rows
from ._scripts import execute_script, query_is_true, table_exists
from ._sink import MySqlSink, load_data_options
from ._source import MySqlSource
from ._urls import sink_from_url, source_from_url
from ._watched import PINNED as _WATCHED_PINNED

#: aiomysql internals the package relies on (pinned by hash in the tests).
AIOMYSQL_INTERNALS = _INFILE_PINNED + _WATCHED_PINNED

__all__ = [
    "AIOMYSQL_INTERNALS",
    "CONNECT_TIMEOUT",
    "EscapeTranslator",
    "MySqlEndpoint",
    "MySqlSink",
    "MySqlSource",
    "NullMarker",
    "convertible",
    "encode_rows",
    "execute_script",
    "line_select",
    "load_data_options",
    "map_errors",
    "marked_format",
    "query_is_true",
    "sink_from_url",
    "source_from_url",
    "supports",
    "table_exists",
]
