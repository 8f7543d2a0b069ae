"""HadoopActivity on PySpark's Hadoop client libraries, and PigActivity's refusal.

HadoopActivity runs ``jarUri`` (``s3://`` staged in, ``file://`` or a path) with ``mainClass``
(else the jar's own ``Main-Class``) and the ``argument`` values through ``spark-submit``:
PySpark ships Hadoop's client libraries, whose MapReduce ``LocalJobRunner`` runs a job inside
the driver JVM when no cluster is configured (``mapreduce.framework.name=local``), so a
MapReduce jar runs here as on a one-node cluster. ``s3://`` arguments are staged as for a Spark
step (existing ones downloaded, missing ones outputs uploaded after success).
``preActivityTaskConfig`` / ``postActivityTaskConfig`` (a ShellScriptConfig: ``scriptUri`` with
``scriptArgument``) run before and after, as shell scripts. A jar given by a local path that is
not on this machine (``/home/hadoop/contrib/streaming/hadoop-streaming.jar`` lived on the
cluster's nodes) fails terminally, naming it; Hadoop streaming is not part of PySpark.

The EMR DynamoDB tools' jar as ``jarUri`` (``DynamoDBExport``/``DynamoDBImport`` as
``mainClass`` or first ``argument``) runs natively, as the same EmrActivity step does.

PigActivity: Apache Pig is packaged nowhere headrace installs from (no PyPI or Debian package),
so it is refused: ``validate`` warns and running it fails, both saying what to do instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio

from engine.activities.base import ActivityFailed, AttemptContext, NotRunnable, activity
from engine.activities.emr.ddb_tools import run_tools_step
from engine.activities.emr.spark_steps import run_spark_step
from engine.activities.emr.steps import ToolsStep, parse_words
from engine.activities.process import run_process
from engine.activities.staging import fetch_script, local_path
from engine.definition.types import PIG_REFUSAL
from engine.telemetry.spans import propagation_env, tracer


async def _task_config(ctx: AttemptContext, field: str) -> None:
    for config_id in ctx.refs(field):
        config = ctx.resolve(config_id)
        uri = config.get("scriptUri")
        if isinstance(uri, list):
            uri = uri[0] if uri else None
        if not uri:
            raise ActivityFailed(f"{field} {config_id}: the ShellScriptConfig has no scriptUri",
                                 transient=False)
        script = await fetch_script(str(uri), ctx.work_dir / f"{field}-script")
        raw = config.get("scriptArgument") or []
        args = [str(a) for a in (raw if isinstance(raw, list) else [raw])]

        async def started(pid: int, config_id: str = config_id) -> None:
            await ctx.log.process_started(pid, f"running {field} {config_id} "
                                               f"(process group {pid})")

        code = await run_process([shutil.which("bash") or "/bin/sh", str(script), *args],
                                 stdout=ctx.log.stdout, stderr=ctx.log.stderr,
                                 cwd=ctx.work_dir, env=ctx.env, started=started)
        if code != 0:
            raise ActivityFailed(f"{field} {config_id} exited with code {code}")


@activity("HadoopActivity")
async def hadoop_activity(ctx: AttemptContext) -> None:
    jar = ctx.field_text("jarUri")
    if not jar:
        raise ActivityFailed("HadoopActivity has no jarUri", transient=False)
    path = local_path(jar) if not jar.startswith(("s3://", "s3a://", "s3n://")) else None
    if path is not None and not await anyio.to_thread.run_sync(Path(path).is_file):
        raise NotRunnable(f"jarUri {jar} is not on this machine (it was on the EMR cluster's "
                          "nodes); give the jar by s3:// or a local path that exists here")
    main_class = ctx.field_text("mainClass")
    tools = parse_words([jar, *([main_class] if main_class else []),
                         *ctx.field_list("argument")])
    if isinstance(tools, ToolsStep):  # the EMR DynamoDB tools as a HadoopActivity: native
        await _task_config(ctx, "preActivityTaskConfig")
        await run_tools_step(ctx, tools)
        await _task_config(ctx, "postActivityTaskConfig")
        return
    args = (["--class", main_class] if main_class else []) + [str(path or jar)]
    args += ctx.field_list("argument")
    await _task_config(ctx, "preActivityTaskConfig")
    with tracer.start_as_current_span("HadoopActivity on Spark", record_exception=False) as span:
        app_id = await run_spark_step(ctx, args, 1, propagation_env())
        if app_id:
            span.set_attribute("headrace.spark.app_id", app_id)
    await _task_config(ctx, "postActivityTaskConfig")


@activity("PigActivity")
async def pig_activity(ctx: AttemptContext) -> None:
    raise NotRunnable(PIG_REFUSAL)
