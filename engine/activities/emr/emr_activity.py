"""EmrActivity: its steps, in order, with ``preStepCommand`` / ``postStepCommand`` around them.

Each ``step`` is recognised (:mod:`.steps`) before anything runs, so a definition with a step
headrace cannot run fails at once, naming the step, instead of after the steps before it. The
EMR DynamoDB tools and the DynamoDB template Hive scripts run natively (:mod:`.ddb_tools`);
``spark-submit`` steps and applications given by path on Apache Spark (:mod:`.spark_steps`).
``preStepCommand`` runs as shell before the first step and ``postStepCommand`` after the last
one succeeded; either failing fails the attempt.
"""

from __future__ import annotations

from engine.activities.base import ActivityFailed, AttemptContext, NotRunnable, activity
from engine.activities.emr.ddb_tools import run_hive_script_step, run_tools_step
from engine.activities.emr.spark_steps import (
    run_program_step,
    run_script_step,
    run_spark_step,
    spark_args,
)
from engine.activities.emr.steps import (
    ApplicationStep,
    CommandStep,
    HiveScriptStep,
    ScriptStep,
    Step,
    ToolsStep,
    UnknownStep,
    parse_step,
)
from engine.activities.process import run_process, shell_argv
from engine.telemetry.spans import propagation_env, tracer


def _shown(step: str) -> str:
    return step if len(step) <= 300 else step[:300] + "..."


def _refusal(step: Step, text: str) -> str | None:
    """Why headrace cannot run this step, or None when it can."""
    if isinstance(step, UnknownStep):
        return (f"step {_shown(text)!r}: headrace runs the EMR DynamoDB tools "
                "(DynamoDbExport/DynamoDbImport), the DynamoDB template Hive scripts, "
                "script-runner.jar scripts, command-runner.jar steps (spark-submit or a "
                "program) and Spark applications given by a .py or .jar path; this step is "
                "none of them")
    return None


async def _shell(ctx: AttemptContext, field: str) -> None:
    for command in ctx.field_list(field):
        shown = "****" if field in ctx.secret_fields else _shown(command)

        async def started(pid: int, shown: str = shown) -> None:
            await ctx.log.process_started(pid, f"running {field} (process group {pid}): "
                                               f"{shown}")

        code = await run_process(shell_argv(command, []), stdout=ctx.log.stdout,
                                 stderr=ctx.log.stderr, cwd=ctx.work_dir, env=ctx.env,
                                 started=started)
        if code != 0:
            raise ActivityFailed(f"{field} exited with code {code}")


@activity("EmrActivity")
async def emr_activity(ctx: AttemptContext) -> None:
    texts = ctx.field_list("step")
    if not texts:
        raise ActivityFailed("EmrActivity has no 'step' to run", transient=False)
    steps = [parse_step(text) for text in texts]
    for step, text in zip(steps, texts, strict=True):
        why = _refusal(step, text)
        if why is not None:
            raise NotRunnable(why)
    await _shell(ctx, "preStepCommand")
    for number, step in enumerate(steps, start=1):
        await ctx.log.event(f"step {number} of {len(steps)}: {type(step).__name__}")
        await _run_step(ctx, step, number)
    await _shell(ctx, "postStepCommand")


async def _run_step(ctx: AttemptContext, step: Step, number: int) -> None:
    """One step in its own span (``EMR step N``; a Spark step's carries its application id and
    is the driver's TRACEPARENT)."""
    with tracer.start_as_current_span(f"EMR step {number}", record_exception=False) as span:
        span.set_attribute("headrace.emr.step_kind", type(step).__name__)
        if isinstance(step, ToolsStep):
            await run_tools_step(ctx, step)
        elif isinstance(step, HiveScriptStep):
            await run_hive_script_step(ctx, step)
        elif isinstance(step, ScriptStep):
            await run_script_step(ctx, step, number, propagation_env())
        elif isinstance(step, CommandStep | ApplicationStep):
            args = spark_args(step)
            env = propagation_env()
            if args is None:
                assert isinstance(step, CommandStep)
                await run_program_step(ctx, step, number, env)
                return
            app_id = await run_spark_step(ctx, args, number, env)
            if app_id:
                span.set_attribute("headrace.spark.app_id", app_id)
