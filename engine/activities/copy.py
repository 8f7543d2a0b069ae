"""CopyActivity: one input data node to one output data node, through the copy engine.

The lane (bytes straight through, or rows with a codec) is the copy engine's choice; see
:mod:`connectors.copy`. Rows, bytes and the lane go to the attempt's metrics and log.
"""

from __future__ import annotations

from connectors.base import EndpointOptions
from connectors.copy import CopyOptions, copy
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
    options = EndpointOptions(parallel=DEFAULT_PARALLEL)
    source = node_source(ctx, inputs[0], options)
    # A PostgreSQL or MySQL table load is keyed by the instance's run (ctx.run_key): one
    # whose load committed before the engine could record it loads nothing again, and a
    # PostgreSQL load of rows resumes from its last committed batch.
    sink = node_sink(ctx, outputs[0], options, checkpoint_key=ctx.run_key or None)
    await ctx.log.event(f"copy {source.describe} -> {sink.describe}")
    verify = str(ctx.fields.get("verify") or "").strip().lower() == "true"
    result = await copy(source, sink, CopyOptions(
        on_queue_depth=queue_depth_recorder(ctx.pipeline_id), verify=verify))
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
