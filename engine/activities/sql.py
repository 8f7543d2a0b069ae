"""SqlActivity and RedshiftCopyActivity.

SqlActivity runs ``script`` (evaluated as an expression) or the file at ``scriptUri`` (not
evaluated, as on AWS) on its ``database``, with ``scriptArgument`` values bound to the ``?``
placeholders in order, in one transaction. RedshiftCopyActivity loads its input into a
PostgreSQL-compatible table with ``insertMode`` KEEP_EXISTING, OVERWRITE_EXISTING, TRUNCATE or
APPEND, through a staging table, in one transaction (``commandOptions`` are Redshift COPY options
and do not apply to PostgreSQL: they are logged and ignored).
"""

from __future__ import annotations

import anyio

from engine.activities.base import ActivityFailed, AttemptContext, activity
from engine.activities.sql_nodes import (
    connection,
    data_format,
    endpoint_for,
    node_source,
    sql_connector,
    sql_endpoint,
)
from engine.activities.staging import fetch_script


@activity("SqlActivity")
async def sql_activity(ctx: AttemptContext) -> None:
    database = ctx.refs("database")
    if not database:
        raise ActivityFailed("SqlActivity needs a database", transient=False)
    script = ctx.field_text("script")
    if script is None:
        uri = ctx.field_text("scriptUri")
        if uri is None:
            raise ActivityFailed("SqlActivity needs script or scriptUri", transient=False)
        path = await fetch_script(uri, ctx.work_dir / "script")
        script = await anyio.to_thread.run_sync(path.read_text)
    args = ctx.field_list("scriptArgument")
    conn, user, password, dbname = connection(ctx, database[0], {}, database[0])
    ep = endpoint_for(conn, user, password, dbname)
    await ctx.log.event(f"running a script of {len(script)} characters on {ep.describe()}"
                        f" with {len(args)} argument(s)")
    await sql_connector(ep).execute_script(ep, script, args)


@activity("RedshiftCopyActivity")
async def redshift_copy_activity(ctx: AttemptContext) -> None:
    from connectors.postgres import PostgresEndpoint, redshift_copy_load

    inputs, outputs = ctx.refs("input"), ctx.refs("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActivityFailed("RedshiftCopyActivity needs one input and one output",
                             transient=False)
    target = sql_endpoint(ctx, outputs[0])
    if not isinstance(target, PostgresEndpoint):
        raise ActivityFailed("RedshiftCopyActivity loads a PostgreSQL-compatible database "
                             "(Redshift or PostgreSQL)", transient=False)
    options = ctx.field_list("commandOptions")
    if options:
        await ctx.log.event(f"commandOptions ignored on PostgreSQL: {' '.join(options)}")
    source = node_source(ctx, inputs[0])
    output = ctx.resolve(outputs[0])
    keys = output.get("primaryKeys")
    primary = [str(k) for k in (keys if isinstance(keys, list) else [keys])] if keys else None
    mode = (ctx.field_text("insertMode") or "").upper()
    rows = await redshift_copy_load(
        target, source, insert_mode=mode,
        fmt=data_format(ctx, ctx.resolve(inputs[0])) or source.native_format,
        primary_keys=primary, transform_sql=ctx.field_text("transformSql"))
    ctx.metrics.update(rows=rows, source=source.describe, destination=target.describe())
    await ctx.log.event(f"loaded {rows} rows into {target.describe()} ({mode})")
