"""The EMR steps that are really DynamoDB copies, run with headrace's own connectors (no JVM).

* ``DynamoDBExport PATH,TABLE[,RATIO]``: the table to a backup directory in the tools' layout
  (:class:`~engine.activities.emr.ddb_backup.BackupSink`), the null key spelled as the jar's
  version wrote it; ``RATIO`` is the share of the table's read capacity to use.
* ``DynamoDBImport PATH,TABLE[,RATIO]``: any published backup variant into the table,
  ``RATIO`` of its write capacity.
* The Hive scripts of the older templates, by their ``-d`` variables: a DynamoDB input
  (``DYNAMODB_INPUT_TABLE``) and an S3 output (``S3_OUTPUT_BUCKET``) export in the Hive layout;
  ``S3_INPUT_BUCKET`` and ``DYNAMODB_OUTPUT_TABLE`` import; S3 to S3 rewrites a backup (any
  variant) in the Hive layout; DynamoDB to DynamoDB copies table to table.
  ``DYNAMODB_READ_PERCENT`` / ``DYNAMODB_WRITE_PERCENT`` pace as the ratios do; a
  ``DYNAMODB_ENDPOINT`` is reported and not used (endpoints come from the AWS configuration).

A ratio outside the connectors' 0.1-1.0 is brought inside it (the tools took up to 1.5 and
capped at the table's capacity; a log line says so).
"""

from __future__ import annotations

from typing import Any

from connectors.base import EndpointOptions, Sink, Source
from connectors.copy import CopyOptions, copy
from connectors.dynamodb import DynamoDBSink, DynamoDBSource, DynamoDBTable
from connectors.formats import EmrNullKey
from engine.activities.base import AttemptContext
from engine.activities.emr.ddb_backup import BackupSink, BackupSource
from engine.activities.emr.steps import HiveScriptStep, ToolsStep
from engine.errors import RunError
from engine.telemetry.metrics import queue_depth_recorder

#: Scan segments / parallel writers of a native step.
PARALLEL = 4


def null_key_for(version: int | None) -> EmrNullKey:
    """How the tools of this major version spelled the null type key (see the format module):
    ``nULLValue`` for the 4.x releases (AWS SDK 1.11), ``nULL`` for the others."""
    return "nULLValue" if version == 4 else "nULL"


async def _ratio(ctx: AttemptContext, text: str | None, what: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise RunError(f"{what} {text!r} is not a number", transient=False) from None
    bounded = min(1.0, max(0.1, value))
    if bounded != value:
        await ctx.log.event(f"{what} {value} taken as {bounded} (headrace paces between 0.1 "
                            "and 1.0 of the table's capacity)")
    return bounded


def _region(ctx: AttemptContext, table: str) -> str | None:
    """The table's region: that of the DynamoDBDataNode (input or output) naming ``table``, else
    the ``runsOn`` EmrCluster's (the tools used the cluster's region), else the AWS default."""
    for node_id in ctx.refs("input") + ctx.refs("output"):
        node = ctx.resolve(node_id)
        if node.get("type") == "DynamoDBDataNode" and str(node.get("tableName")) == table \
                and node.get("region"):
            return str(node["region"])
    for cluster_id in ctx.refs("runsOn"):
        region = ctx.resolve(cluster_id).get("region")
        if region:
            return str(region)
    return None


def _table(ctx: AttemptContext, name: str, *, read: float | None = None,
           write: float | None = None) -> DynamoDBTable:
    if not name:
        raise RunError("the step names no DynamoDB table", transient=False)
    return DynamoDBTable.from_node({"tableName": name, "region": _region(ctx, name),
                                    "readThroughputPercent": read,
                                    "writeThroughputPercent": write})


async def _copy(ctx: AttemptContext, source: Source, sink: Sink, what: str) -> None:
    await ctx.log.event(f"{what}: {source.describe} -> {sink.describe}")
    result = await copy(source, sink, CopyOptions(
        on_queue_depth=queue_depth_recorder(ctx.pipeline_id)))
    ctx.metrics["rows"] = ctx.metrics.get("rows", 0) + result.rows
    ctx.metrics["bytes"] = ctx.metrics.get("bytes", 0) + result.bytes
    ctx.metrics.setdefault("source", source.describe)
    ctx.metrics["destination"] = sink.describe
    await ctx.log.event(f"{what}: {result.rows} items in {result.seconds:.2f} s")


async def run_tools_step(ctx: AttemptContext, step: ToolsStep) -> None:
    options = EndpointOptions(parallel=PARALLEL)
    if not step.path:
        raise RunError(f"DynamoDB{step.operation.title()} needs a path as its first argument",
                       transient=False)
    if step.segments:
        await ctx.log.event(f"segment count {step.segments} noted; headrace scans with "
                            f"{PARALLEL} segments")
    if step.operation == "export":
        ratio = await _ratio(ctx, step.ratio, "read ratio")
        source = DynamoDBSource(_table(ctx, step.table, read=ratio), options)
        sink = BackupSink(step.path, ctx.work_dir, layout="tools",
                          null_key=null_key_for(step.version))
        await _copy(ctx, source, sink, "DynamoDBExport")
        ctx.metrics["files"] = len(sink.files)
        return
    ratio = await _ratio(ctx, step.ratio, "write ratio")
    backup = BackupSource(step.path, ctx.work_dir)
    await _copy(ctx, backup, DynamoDBSink(_table(ctx, step.table, write=ratio), options),
                "DynamoDBImport")
    ctx.metrics["files"] = len(backup.files)


async def run_hive_script_step(ctx: AttemptContext, step: HiveScriptStep) -> None:
    v: dict[str, Any] = step.variables
    options = EndpointOptions(parallel=PARALLEL)
    for name in ("DYNAMODB_ENDPOINT", "DYNAMODB_INPUT_ENDPOINT", "DYNAMODB_OUTPUT_ENDPOINT"):
        if v.get(name):
            await ctx.log.event(f"{name}={v[name]} not used: headrace reaches DynamoDB at the "
                                "endpoint the AWS configuration gives (AWS_ENDPOINT_URL_DYNAMODB)")
    read = await _ratio(ctx, v.get("DYNAMODB_READ_PERCENT"), "DYNAMODB_READ_PERCENT")
    write = await _ratio(ctx, v.get("DYNAMODB_WRITE_PERCENT"), "DYNAMODB_WRITE_PERCENT")
    ddb_in, ddb_out = v.get("DYNAMODB_INPUT_TABLE"), v.get("DYNAMODB_OUTPUT_TABLE")
    s3_in, s3_out = v.get("S3_INPUT_BUCKET"), v.get("S3_OUTPUT_BUCKET")
    what = f"Hive script {step.script.rsplit('/', 1)[-1]}"
    source: Source | None = None
    sink: Sink | None = None
    if ddb_in:
        source = DynamoDBSource(_table(ctx, ddb_in, read=read), options)
    elif s3_in:
        source = BackupSource(s3_in, ctx.work_dir)
    if s3_out:
        sink = BackupSink(s3_out, ctx.work_dir, layout="hive")
    elif ddb_out:
        sink = DynamoDBSink(_table(ctx, ddb_out, write=write), options)
    if source is None or sink is None:
        raise RunError(
            f"{what}: headrace runs the DynamoDB template scripts by their variables and "
            "needs DYNAMODB_INPUT_TABLE or S3_INPUT_BUCKET, and S3_OUTPUT_BUCKET or "
            f"DYNAMODB_OUTPUT_TABLE; this step defines {', '.join(sorted(v)) or 'none'}",
            transient=False)
    await _copy(ctx, source, sink, what)
