"""CopyActivity: one input data node to one output data node, through the copy engine.

The lane (bytes straight through, or rows with a codec) is the copy engine's choice; see
:mod:`connectors.copy`. Rows, bytes and the lane go to the attempt's metrics and log.
"""

from __future__ import annotations

from connectors.base import MAX_PARTITIONS, EndpointOptions, Sink, Source
from connectors.copy import CopyOptions, CopyResult, copy
from engine.activities.base import ActivityFailed, AttemptContext, activity
from engine.activities.sql_nodes import node_sink, node_source
from engine.runtime.crashpoints import crash_point
from engine.telemetry.metrics import queue_depth_recorder

#: Parallel parts / ranges / scan segments for copies run by activities.
DEFAULT_PARALLEL = 4


@activity("CopyActivity")
async def copy_activity(ctx: AttemptContext) -> None:
    inputs, outputs = ctx.refs("input"), ctx.refs("output")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActivityFailed("CopyActivity needs exactly one input and one output",
                             transient=False)
    options = EndpointOptions(parallel=DEFAULT_PARALLEL, partitions=_partitions(ctx))
    source = node_source(ctx, inputs[0], options)
    # A PostgreSQL or MySQL table load is keyed by the instance's run (ctx.run_key): one
    # whose load committed before the engine could record it loads nothing again, and a
    # PostgreSQL load of rows resumes from its last committed batch.
    sink = node_sink(ctx, outputs[0], options, checkpoint_key=ctx.run_key or None)
    await ctx.log.event(f"copy {source.describe} -> {sink.describe}")
    verify = str(ctx.fields.get("verify") or "").strip().lower() == "true"
    copy_options = CopyOptions(on_queue_depth=queue_depth_recorder(ctx.pipeline_id),
                               verify=verify)
    column = ctx.field_text("incrementalColumn")
    if column:
        result = await _incremental(ctx, source, sink, column, copy_options)
    else:
        result = await copy(source, sink, copy_options)
    if result.verify is not None:
        v = result.verify.as_json()
        await ctx.log.event(f"verified: {v['sourceRows']} rows, checksum "
                            f"{v['sourceChecksum']} at both ends")
    crash_point("copy-committed")
    ctx.metrics.update(rows=result.rows, bytes=result.bytes, lane=result.lane,
                       seconds=result.seconds, retries=result.retries,
                       source=source.describe, destination=sink.describe)
    await ctx.log.event(f"copied {result.rows} rows, {result.bytes} bytes in "
                        f"{result.seconds:.2f} s ({result.lane} lane)")


def _partitions(ctx: AttemptContext) -> int:
    """``partitions`` (a headrace extension, validated as an int of 1..MAX_PARTITIONS; checked
    again here on the evaluated value)."""
    text = ctx.field_text("partitions")
    if text is None or not text.strip():
        return 1
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PARTITIONS:
        raise ActivityFailed(f"partitions: {text!r} is not a whole number from 1 to "
                             f"{MAX_PARTITIONS}", transient=False)
    return value


async def _incremental(ctx: AttemptContext, source: Source, sink: Sink, column: str,
                       options: CopyOptions) -> CopyResult:
    """``incrementalColumn``: the activity's watermark (keyed by the pipeline and the
    activity) lives in the target's ``headrace_checkpoints`` row, committed with the rows,
    so only PostgreSQL and MySQL outputs keep one here."""
    from connectors.base import CommitsWatermark
    from connectors.sql import IncrementSpec
    from engine.activities.incremental import activity_key, parse_lookback, run_incremental

    if not isinstance(sink, CommitsWatermark):
        raise ActivityFailed(f"incrementalColumn: {sink.describe} keeps no watermark; an "
                             "incremental CopyActivity writes a PostgreSQL or MySQL table",
                             transient=False)
    spec = IncrementSpec(column, tuple(ctx.field_list("incrementalKey")),
                         parse_lookback(ctx.field_text("lookback")))
    key = activity_key(ctx.pipeline_id, ctx.instance.object_id)
    done = await run_incremental(source, sink, spec, key, stored=None, options=options)
    await ctx.log.event(f"incremental by {column}: watermark "
                        f"{done.previous.display if done.previous else '(none)'} -> "
                        f"{done.state.display}, {done.result.rows} rows "
                        f"({done.skipped} re-read and skipped by key)")
    ctx.metrics.update(watermark=done.state.display)
    return done.result
