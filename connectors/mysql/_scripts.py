"""The MySQL helpers the engine calls besides copies: a SqlActivity script, a SqlQuery-style
precondition, whether a table exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.sql import script_statements, truthy
from connectors.tracing import traced_db

from ._columns import has_table
from ._endpoint import MySqlEndpoint, as_endpoint, reader, writer
from ._errors import map_errors


@traced_db("mysql", "script")
async def execute_script(dsn: str | MySqlEndpoint, script: str, args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the script. (MySQL commits DDL
    implicitly, so only the data statements of a script are atomic.)
    """
    ep = as_endpoint(dsn).for_statements()  # a statement may run (silently) for long
    converted = script_statements(script, "mysql", args, connector=ep.describe())
    async with writer(ep, "script") as conn, conn.cursor() as cur:
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with map_errors(ep.describe(), f"script statement {number}"):
                await cur.execute(sql, tuple(args[position:position + n]))
                while await cur.nextset():
                    pass
            position += n


@traced_db("mysql", "SELECT")
async def query_is_true(dsn: str | MySqlEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = as_endpoint(dsn).for_statements()
    async with reader(ep, "precondition") as conn, conn.cursor() as cur:
        await cur.execute(sql)
        row = await cur.fetchone()
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | MySqlEndpoint, table: str) -> bool:
    """True when ``table`` (``db.table`` allowed) exists."""
    ep = as_endpoint(dsn).model_copy(update={"table": table})
    db, name = ep.table_parts()
    async with reader(ep, "table exists") as conn:
        return await has_table(conn, db, name)
