"""The EmrActivity steps that run as programs: ``command-runner.jar,spark-submit,...``, a Spark
application given by path, and ``command-runner.jar`` running another program.

A Spark step goes to the master the ``runsOn`` EmrCluster maps to (:mod:`.spark_config`); in
local mode its ``s3://`` arguments are staged (:mod:`.s3_staging`). A non-zero exit fails the
attempt (retryable, as an EMR step failure was), with the last line of the driver's stderr.
Another program run by ``command-runner.jar`` runs here as it is, with its arguments (no shell),
as EMR ran it on the master node; a ``script-runner.jar`` script is fetched and run likewise.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import anyio

from engine.activities.base import ActivityFailed, AttemptContext, NotRunnable
from engine.activities.emr.s3_staging import stage_arguments
from engine.activities.emr.spark_config import spark_target
from engine.activities.emr.spark_submit import submit
from engine.activities.emr.steps import ApplicationStep, CommandStep, ScriptStep
from engine.activities.process import run_process
from engine.activities.staging import fetch_script

_JAVA_CLASS = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$")


def cluster_of(ctx: AttemptContext) -> str | None:
    refs = ctx.refs("runsOn")
    return refs[0] if refs else None


def spark_args(step: CommandStep | ApplicationStep) -> list[str] | None:
    """The spark-submit arguments of a Spark step; None for another program."""
    if isinstance(step, ApplicationStep):
        if step.app.lower().endswith(".jar") and step.args and _JAVA_CLASS.match(step.args[0]):
            return ["--class", step.args[0], step.app, *step.args[1:]]
        return [step.app, *step.args]
    if step.argv[0].rsplit("/", 1)[-1] == "spark-submit":
        return list(step.argv[1:])
    return None


async def _tail(ctx: AttemptContext) -> str:
    tail = (await ctx.log.tail(ctx.log.stderr, 2000)).strip()
    lines = [line for line in tail.splitlines() if line.strip()]
    return f": {lines[-1][:300]}" if lines else ""


async def run_spark_step(ctx: AttemptContext, args: list[str], number: int,
                         env: dict[str, str]) -> str | None:
    """Run one Spark application; its application id (None if Spark did not log one)."""
    what = f"step {number}"
    target = spark_target(cluster_of(ctx))
    staged = None
    if target.local:
        # a private temporary directory: attempt directories' names hold ':' and '=', which
        # Hadoop paths cannot
        root = Path(await anyio.to_thread.run_sync(
            lambda: tempfile.mkdtemp(prefix=f"headrace-step{number}-")))
        staged = await stage_arguments(args, root)
        args = staged.args
        for url in staged.inputs:
            await ctx.log.event(f"{what}: staged input {url}")
    try:
        result = await submit(ctx, args, target, env=env, what=what)
        if result.app_id:
            await ctx.log.event(f"{what}: Spark application {result.app_id}")
        if result.exit_code != 0:
            raise ActivityFailed(f"{what}: spark-submit exited with code {result.exit_code}"
                                 f"{await _tail(ctx)}")
        if staged is not None:
            for url in await staged.upload_outputs():
                await ctx.log.event(f"{what}: uploaded output {url}")
        return result.app_id
    finally:
        if staged is not None:
            await staged.cleanup()


async def run_script_step(ctx: AttemptContext, step: ScriptStep, number: int,
                          env: dict[str, str]) -> None:
    """``script-runner.jar``: the script fetched (``s3://`` or local) and run with its
    arguments (by its ``#!``, else bash)."""
    script = await fetch_script(step.script, ctx.work_dir / f"step{number}-script")
    head = await anyio.to_thread.run_sync(lambda: script.read_bytes()[:2])
    argv = [str(script)] if head == b"#!" else [shutil.which("bash") or "/bin/sh", str(script)]

    async def started(pid: int) -> None:
        await ctx.log.process_started(pid, f"step {number}: running {step.script} "
                                           f"(process group {pid})")

    code = await run_process([*argv, *step.args], stdout=ctx.log.stdout, stderr=ctx.log.stderr,
                             cwd=ctx.work_dir, env={**ctx.env, **env}, started=started)
    if code != 0:
        raise ActivityFailed(f"step {number}: {step.script} exited with code {code}"
                             f"{await _tail(ctx)}")


async def run_program_step(ctx: AttemptContext, step: CommandStep, number: int,
                           env: dict[str, str]) -> None:
    program = step.argv[0]
    found = shutil.which(program)
    if found is None:
        raise NotRunnable(f"step {number}: command-runner.jar runs {program!r}, which is not "
                          "installed here (EMR ran it on the cluster's master node)")

    async def started(pid: int) -> None:
        await ctx.log.process_started(pid, f"step {number}: running {program} "
                                           f"(process group {pid})")

    code = await run_process([found, *step.argv[1:]], stdout=ctx.log.stdout,
                             stderr=ctx.log.stderr, cwd=ctx.work_dir, env={**ctx.env, **env},
                             started=started)
    if code != 0:
        raise ActivityFailed(f"step {number}: {program} exited with code {code}"
                             f"{await _tail(ctx)}")
