"""HiveActivity and HiveCopyActivity on Spark SQL with Hive support.

The script (``hiveScript``, or ``scriptUri`` fetched as ShellCommandActivity fetches one) gets
its variables replaced (:mod:`.hive_script`: ``scriptVariable``, ``${input1}``...), is split
into statements and run by :mod:`.hive_driver` through ``spark-submit`` on the master the
``runsOn`` EmrCluster maps to, with a Derby metastore, a warehouse and the staged tables in a
temporary directory of its own, removed after the attempt. With ``stage`` (true by default)
the data nodes are the tables ``input1``..., ``output1``... (:mod:`.hive_tables`): inputs
staged in before, outputs staged out after the script succeeded. ``stage: false`` runs the
script as written, without them.

HiveCopyActivity is the same with the one statement it stood for:
``INSERT OVERWRITE TABLE output1 SELECT * FROM input1 [WHERE filterSql]``; an output format
without columns takes the input's. Between a DynamoDBDataNode and an S3DataNode in a DynamoDB
format, without ``filterSql``, it is the Hive export (or import) of the templates and runs
natively in their layout (:mod:`.ddb_tools`), no Spark.

Staging to local directories is local mode's; with a cluster master (``--spark-master``) the
activity is refused with that reason: a cluster reads its data itself, and headrace would have
to hand it the tables' S3 locations.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import anyio

from engine.activities.base import ActivityFailed, AttemptContext, NotRunnable, activity, truthy
from engine.activities.emr.hive_script import script_variables, split_statements, substitute
from engine.activities.emr.hive_tables import HiveTable, stage_in, stage_out, tables_of
from engine.activities.emr.spark_config import SparkTarget, spark_target
from engine.activities.emr.spark_steps import cluster_of
from engine.activities.emr.spark_submit import submit
from engine.activities.sql_nodes import file_location
from engine.activities.staging import fetch_script
from engine.telemetry.spans import propagation_env, tracer

DRIVER = Path(__file__).with_name("hive_driver.py")


def _hive_conf(target: SparkTarget, metastore: Path) -> SparkTarget:
    """``target`` with a private Derby metastore and warehouse below ``metastore``."""
    conf = dict(target.conf)
    conf.update({
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": (metastore / "warehouse").as_uri(),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore}",
        "spark.sql.legacy.createHiveTableByDefault": "false",
    })
    return SparkTarget(target.master, conf)


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


async def _script_text(ctx: AttemptContext) -> str:
    text = ctx.field_text("hiveScript")
    if text is not None:
        return text
    uri = ctx.field_text("scriptUri")
    if uri is None:
        raise ActivityFailed("neither hiveScript nor scriptUri is set", transient=False)
    path = await fetch_script(uri, ctx.work_dir / "script")
    return await anyio.to_thread.run_sync(path.read_text)


async def run_hive(ctx: AttemptContext, statements: list[str], tables: list[HiveTable],
                   root: Path, what: str) -> None:
    target = spark_target(cluster_of(ctx))
    if not target.local:
        raise NotRunnable(f"{what} runs on local Spark only (its tables are staged to local "
                          f"directories); the cluster {target.master} is not used for it")
    spec = root / "hive.json"
    ddls = [t.ddl() for t in tables]
    for table in tables:
        if table.is_output:  # an existing, empty directory: INSERT OVERWRITE lists it first
            await anyio.to_thread.run_sync(_make_dir, table.local)
        else:
            await stage_in(table)
            await ctx.log.event(f"{what}: staged {table.node_id} as {table.name}")
    await anyio.to_thread.run_sync(spec.write_text, json.dumps(
        {"name": f"headrace {ctx.instance.object_id}", "tables": ddls,
         "statements": statements}))
    with tracer.start_as_current_span(f"{what} on Spark", record_exception=False) as span:
        result = await submit(ctx, [str(DRIVER), str(spec)], _hive_conf(target, root),
                              env=propagation_env(), what=what)
        if result.app_id:
            span.set_attribute("headrace.spark.app_id", result.app_id)
            await ctx.log.event(f"{what}: Spark application {result.app_id}")
    if result.exit_code != 0:
        tail = ((await ctx.log.tail(ctx.log.stderr, 60_000)) + "\n"
                + (await ctx.log.tail(ctx.log.stdout, 4000))).strip().splitlines()
        reason = next((line for line in reversed(tail) if line.startswith("headrace:")),
                      tail[-1] if tail else "")
        raise ActivityFailed(f"{what}: the script failed (exit {result.exit_code}): "
                             f"{reason[:400]}")
    for table in tables:
        if table.is_output:
            written = await stage_out(ctx, table)
            await ctx.log.event(f"{what}: {table.name} -> {written}")


async def _cleanup(root: Path) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(root, ignore_errors=True))


async def _new_root() -> Path:
    """A private temporary directory for one attempt's tables and metastore: its path has no
    ``:`` or ``=`` (attempt directories do: a Hadoop path and a Derby URL cannot hold them)."""
    return Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="headrace-hive-")))


@activity("HiveActivity")
async def hive_activity(ctx: AttemptContext) -> None:
    root = await _new_root()
    try:
        stage = ctx.fields.get("stage") is None or truthy(ctx.fields.get("stage"))
        tables = tables_of(ctx, root / "tables") if stage else []
        try:
            variables = script_variables(ctx.field_list("scriptVariable"))
        except ValueError as exc:
            raise ActivityFailed(str(exc), transient=False) from None
        variables.update({t.name: t.name for t in tables})
        statements = split_statements(substitute(await _script_text(ctx), variables))
        if not statements:
            raise ActivityFailed("the Hive script has no statement", transient=False)
        await run_hive(ctx, statements, tables, root, "HiveActivity")
    finally:
        await _cleanup(root)


_DYNAMODB_FORMATS = ("DynamoDBDataFormat", "DynamoDBExportDataFormat")


def _is_backup_copy(source: HiveTable, target: HiveTable) -> bool:
    """DynamoDB table -> S3 in a DynamoDB format (or back): what the Hive export/import
    scripts did, copied natively in their layout."""
    s3_side = target if source.kind == "DynamoDBDataNode" else source
    return {source.kind, target.kind} == {"DynamoDBDataNode", "S3DataNode"} and \
        s3_side.format_type in _DYNAMODB_FORMATS


async def _backup_copy(ctx: AttemptContext, source: HiveTable, target: HiveTable) -> None:
    from engine.activities.emr.ddb_tools import run_hive_script_step
    from engine.activities.emr.steps import HiveScriptStep

    def where(table: HiveTable) -> str:
        location = file_location(table.node)
        if location is None:
            raise ActivityFailed(f"{table.node_id} has neither directoryPath nor filePath",
                                 transient=False)
        return location[0]

    if source.kind == "DynamoDBDataNode":
        variables = {"DYNAMODB_INPUT_TABLE": str(source.node.get("tableName")),
                     "S3_OUTPUT_BUCKET": where(target)}
        percent = source.node.get("readThroughputPercent")
        if percent:
            variables["DYNAMODB_READ_PERCENT"] = str(percent)
    else:
        variables = {"S3_INPUT_BUCKET": where(source),
                     "DYNAMODB_OUTPUT_TABLE": str(target.node.get("tableName"))}
        percent = target.node.get("writeThroughputPercent")
        if percent:
            variables["DYNAMODB_WRITE_PERCENT"] = str(percent)
    await ctx.log.event("HiveCopyActivity between DynamoDB and a DynamoDB format on S3: "
                        "copied natively, in the Hive export scripts' layout")
    await run_hive_script_step(ctx, HiveScriptStep("HiveCopyActivity", variables))


@activity("HiveCopyActivity")
async def hive_copy_activity(ctx: AttemptContext) -> None:
    root = await _new_root()
    try:
        tables = tables_of(ctx, root / "tables")
        inputs = [t for t in tables if not t.is_output]
        outputs = [t for t in tables if t.is_output]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ActivityFailed("HiveCopyActivity needs exactly one input and one output",
                                 transient=False)
        if not outputs[0].columns():
            outputs[0].format_fields = {**outputs[0].format_fields,
                                        "column": inputs[0].format_fields.get("column") or []}
        where = ctx.field_text("filterSql")
        if _is_backup_copy(inputs[0], outputs[0]) and not (where and where.strip()):
            await _backup_copy(ctx, inputs[0], outputs[0])
            return
        statement = "INSERT OVERWRITE TABLE output1 SELECT * FROM input1"
        if where and where.strip():
            statement += f" WHERE {where.strip()}"
        await run_hive(ctx, [statement], tables, root, "HiveCopyActivity")
    finally:
        await _cleanup(root)
