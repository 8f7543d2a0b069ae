"""CopyActivity: one input data node to one output data node, through the copy engine.

The lane (bytes straight through, or rows with a codec) is the copy engine's choice; see
:mod:`connectors.copy`. Rows, bytes and the lane go to the attempt's metrics and log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.base import MAX_PARTITIONS, EndpointOptions, Sink, Source
from connectors.copy import CopyOptions, CopyResult, copy
from engine.activities.base import ActivityFailed, AttemptContext, activity
from engine.activities.sql_nodes import node_kind, node_sink, node_source
from engine.runtime.crashpoints import crash_point
from engine.telemetry.metrics import queue_depth_recorder

if TYPE_CHECKING:
    from connectors.sql import IncrementSpec

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
    verify = str(ctx.fields.get("verify") or "").strip().lower() == "true"
    copy_options = CopyOptions(on_queue_depth=queue_depth_recorder(ctx.pipeline_id),
                               verify=verify)
    wanted = increment_fields(ctx, inputs[0])
    if wanted is not None:
        sink, result = await _incremental(ctx, source, outputs[0], options, wanted,
                                          copy_options)
    else:
        # A PostgreSQL or MySQL table load is keyed by the instance's run (ctx.run_key): one
        # whose load committed before the engine could record it loads nothing again, and a
        # PostgreSQL load of rows resumes from its last committed batch.
        sink = node_sink(ctx, outputs[0], options, checkpoint_key=ctx.run_key or None)
        await ctx.log.event(f"copy {source.describe} -> {sink.describe}")
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


@dataclass(frozen=True)
class IncrementFields:
    """``incrementalColumn``, ``incrementalKey`` and ``lookback`` as set on the activity or,
    when the activity sets no ``incrementalColumn``, on its input data node (``where``)."""

    column: str
    key: tuple[str, ...]
    lookback: str | None
    where: str


def increment_fields(ctx: AttemptContext, input_id: str) -> IncrementFields | None:
    """The incremental fields of this copy, or None for a whole copy. The activity's set wins
    whole over the input node's (they are never mixed field by field)."""
    for where, fields in ((ctx.instance.object_id, ctx.fields), (input_id,
                                                                  ctx.resolve(input_id))):
        column = _text(fields.get("incrementalColumn"))
        if column:
            key = fields.get("incrementalKey")
            keys = key if isinstance(key, list) else [] if key is None else [key]
            return IncrementFields(column, tuple(str(k) for k in keys if str(k).strip()),
                                   _text(fields.get("lookback")), where)
    return None


def _text(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None or isinstance(value, dict) else str(value).strip() or None


async def _incremental(ctx: AttemptContext, source: Source, output_id: str,
                       options: EndpointOptions, wanted: IncrementFields,
                       copy_options: CopyOptions) -> tuple[Sink, CopyResult]:
    """An incremental copy under the activity's key (``activity:<pipeline>/<id>``). A
    PostgreSQL or MySQL output commits the watermark in its ``headrace_checkpoints`` row with
    the rows; any other output has it kept by the store (``ctx.copies``), written only after
    the output completed, each run of a file or S3 output in its own folder below the node's
    ``directoryPath`` (``increment-000001/``), which a rerun after a crash before the store
    noted the run writes again. Either way the store notes the run (``describe-copy``,
    ``list-runs``). The copy's runs (this activity's instances) take turns under a lease."""
    from connectors.sql import IncrementSpec
    from engine.activities.incremental import (
        activity_key,
        lease_owner,
        one_at_a_time,
        parse_lookback,
    )

    lookback = parse_lookback(wanted.lookback, f"{wanted.where}: lookback")
    spec = IncrementSpec(wanted.column, wanted.key, lookback)
    key = activity_key(ctx.pipeline_id, ctx.instance.object_id)
    ledger = ctx.copies
    if ledger is None:
        return await _increment(ctx, source, output_id, options, wanted, spec, key,
                                copy_options)

    async def waiting(holder: str) -> None:
        await ctx.log.event(f"waiting for another run of this incremental copy ({holder})")

    owner = lease_owner(f"{ctx.instance.id}#{ctx.attempt}")
    async with one_at_a_time(ledger, key, owner, ctx.clock.now, waiting):
        return await _increment(ctx, source, output_id, options, wanted, spec, key,
                                copy_options)


async def _increment(ctx: AttemptContext, source: Source, output_id: str,
                     options: EndpointOptions, wanted: IncrementFields, spec: IncrementSpec,
                     key: str, copy_options: CopyOptions) -> tuple[Sink, CopyResult]:
    """One run of the activity's incremental copy (its lease held, when it has a store)."""
    from connectors.base import CommitsWatermark
    from engine.activities.incremental import increment_folder, run_incremental

    ledger = ctx.copies
    record = await ledger.copy_state(key) if ledger is not None else None
    run = (record.runs if record else 0) + 1
    folder = increment_folder(run) if node_kind(ctx.resolve(output_id)) == "files" else None
    sink = node_sink(ctx, output_id, options, checkpoint_key=ctx.run_key or None,
                     folder=folder)
    if ledger is None and not isinstance(sink, CommitsWatermark):
        raise ActivityFailed(f"incrementalColumn: {sink.describe} keeps no watermark and "
                             "this engine has no store to keep it in", transient=False)
    await ctx.log.event(f"copy {source.describe} -> {sink.describe} (incremental by "
                        f"{wanted.column}, set on {wanted.where}, run {run})")
    done = await run_incremental(source, sink, spec, key,
                                 stored=record.state if record else None,
                                 options=copy_options)
    crash_point("incremental-output-complete")
    if ledger is not None:  # for files, S3 and DynamoDB this is the watermark's commit
        dest = sink.describe.removesuffix(folder) if folder else sink.describe  # the node's
        await ledger.record_copy_run(key, source=source.describe, dest=dest,
                                     column=wanted.column, state=done.state.to_json(),
                                     rows=done.result.rows, watermark=done.state.display,
                                     instance_id=ctx.instance.id)
    await ctx.log.event(f"incremental by {wanted.column}: watermark "
                        f"{done.previous.display if done.previous else '(none)'} -> "
                        f"{done.state.display}, {done.result.rows} rows "
                        f"({done.skipped} re-read and skipped by key)")
    ctx.metrics.update(watermark=done.state.display, rowsMoved=done.result.rows)
    return sink, done.result
