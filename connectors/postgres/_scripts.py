"""The PostgreSQL helpers the engine calls besides copies: a SqlActivity script, a
SqlQuery-style precondition, whether a table exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.sql import script_statements, truthy

from ._copy import coerce_row, coercers_for
from ._endpoint import PostgresEndpoint, as_endpoint, connection, translated_transaction
from ._errors import map_errors
from ._sink import has_table


async def execute_script(dsn: str | PostgresEndpoint, script: str,
                         args: Sequence[Any] = ()) -> None:
    """Run a SqlActivity script (several statements) in one transaction.

    ``?`` placeholders are bound to ``args`` in order across the whole script; each value is
    coerced to the parameter's type (``scriptArgument`` values arrive as strings).
    """
    ep = as_endpoint(dsn).for_statements()  # a statement may run (silently) for long
    converted = script_statements(script, "postgresql", args, connector=ep.describe())
    async with connection(ep, "script") as conn, translated_transaction(conn, ep, "script"):
        position = 0
        for number, (sql, n) in enumerate(converted, start=1):
            with map_errors(ep.describe(), f"script statement {number}"):
                if n == 0:
                    await conn.execute(sql)
                    continue
                stmt = await conn.prepare(sql)
                coercers = coercers_for([p.name for p in stmt.get_parameters()])
                values = coerce_row(args[position:position + n], coercers,
                                     [f"${i + 1}" for i in range(n)], number)
                await stmt.fetch(*values)
                position += n


async def query_is_true(dsn: str | PostgresEndpoint, sql: str) -> bool:
    """SqlQuery-style precondition: a first row exists and its first column is truthy."""
    ep = as_endpoint(dsn).for_statements()
    async with connection(ep, "precondition") as conn:
        with map_errors(ep.describe(), "precondition"):
            row = await conn.fetchrow(sql)
    return row is not None and len(row) > 0 and truthy(row[0])


async def table_exists(dsn: str | PostgresEndpoint, table: str) -> bool:
    """True when ``table`` (``schema.table`` allowed, quoted as identifiers) exists."""
    ep = as_endpoint(dsn)
    quoted = ep.model_copy(update={"table": table}).quoted_table()
    async with connection(ep, "table exists") as conn:
        with map_errors(ep.describe(), "table exists"):
            return await has_table(conn, quoted)
