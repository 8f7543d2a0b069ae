"""ShellCommandActivity and ShellCommandPrecondition."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio

from engine.activities.base import (
    ActivityFailed,
    AttemptContext,
    activity,
    precondition,
    truthy,
)
from engine.activities.process import run_process, shell_argv
from engine.activities.staging import copy_to_target, fetch_script, stage_in, stage_out


async def _argv(ctx: AttemptContext) -> list[str]:
    args = ctx.field_list("scriptArgument")
    command = ctx.field_text("command")
    if command is not None:
        return shell_argv(command, args)
    script_uri = ctx.field_text("scriptUri")
    if script_uri is None:
        raise ActivityFailed("neither command nor scriptUri is set")
    script = await fetch_script(script_uri, ctx.work_dir / "script")
    if await anyio.to_thread.run_sync(_has_shebang, script):
        return [str(script), *args]
    return [shutil.which("bash") or "/bin/sh", str(script), *args]  # no #!: the shell runs it


def _has_shebang(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"#!"


async def _run(ctx: AttemptContext, env: dict[str, str]) -> int:
    argv = await _argv(ctx)
    name = "command" if ctx.field_text("command") is not None else "scriptUri"
    shown = "****" if name in ctx.secret_fields else (ctx.field_text(name) or "")[:500]

    async def started(pid: int) -> None:
        await ctx.log.process_started(pid, f"running {name} (process group {pid}): {shown}")

    code = await run_process(argv, stdout=ctx.log.stdout, stderr=ctx.log.stderr,
                             cwd=ctx.work_dir, env={**ctx.env, **env}, started=started)
    for name, source in (("stdout", ctx.log.stdout), ("stderr", ctx.log.stderr)):
        target = ctx.field_text(name)
        if target:
            await copy_to_target(source, target)
    return code


@activity("ShellCommandActivity")
async def shell_command_activity(ctx: AttemptContext) -> None:
    env: dict[str, str] = {}
    staged_outputs: list[tuple[Path, dict[str, Any]]] = []
    if truthy(ctx.fields.get("stage")):
        for n, node_id in enumerate(ctx.refs("input"), start=1):
            directory = ctx.work_dir / f"input{n}"
            await stage_in(ctx.resolve(node_id), directory)
            env[f"INPUT{n}_STAGING_DIR"] = str(directory)
        for n, node_id in enumerate(ctx.refs("output"), start=1):
            directory = ctx.work_dir / f"output{n}"
            directory.mkdir(parents=True, exist_ok=True)
            env[f"OUTPUT{n}_STAGING_DIR"] = str(directory)
            staged_outputs.append((directory, ctx.resolve(node_id)))
    code = await _run(ctx, env)
    if code != 0:
        tail = (await ctx.log.tail(ctx.log.stderr, 500)).strip()
        detail = f": {tail.splitlines()[-1][:300]}" if tail else ""
        ctx.metrics["exit_code"] = code
        raise ActivityFailed(f"command exited with code {code}{detail}")
    ctx.metrics["exit_code"] = 0
    for directory, fields in staged_outputs:
        await stage_out(directory, fields)


@precondition("ShellCommandPrecondition")
async def shell_command_precondition(ctx: AttemptContext) -> bool:
    return await _run(ctx, {}) == 0
