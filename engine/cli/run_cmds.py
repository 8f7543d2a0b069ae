"""``headrace run`` (one window in this process) and ``headrace engine`` (long-running)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import anyio
import click

import engine.activities
import engine.preconditions  # noqa: F401  (registers the checks)
from engine.cli.definition_cmds import (
    load_or_exit,
    parameter_options,
    print_problems,
    timestamp,
    window,
)
from engine.cli.help import examples
from engine.cli.output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandFailed, output_option
from engine.cli.spark_options import spark_options
from engine.cli.status_lines import (
    QUIET,
    configure_command_log,
    run_printer,
    verbosity_options,
)
from engine.cli.store_option import STORE_HELP, announce_new_store
from engine.definition import Definition
from engine.definition.validate import suggest_or_list
from engine.errors import HeadraceError
from engine.runtime.runner import (
    EXIT_INTERRUPTED,
    RunResult,
    derived_pipeline_id,
    ensure_pipeline,
    run_object,
    run_window,
    store_dir,
)
from engine.schedule import format_timestamp
from engine.store import InstanceRecord, Store, open_store
from engine.store.records import utcnow
from engine.telemetry import command_telemetry


def _ts(value: Any) -> str | None:
    return format_timestamp(value) if value is not None else None


def instance_json(rec: InstanceRecord) -> dict[str, Any]:
    return {
        "objectId": rec.object_id,
        "instanceId": rec.id,
        "type": rec.type,
        "status": rec.status.value,
        "scheduledStartTime": _ts(rec.scheduled_start),
        "scheduledEndTime": _ts(rec.scheduled_end),
        "attempts": rec.attempts,
        "actualStartTime": _ts(rec.actual_start),
        "actualEndTime": _ts(rec.actual_end),
        "error": rec.error,
    }


async def _log_roots(store: Store, result: RunResult) -> list[Path]:
    """Where this run's attempts logged: each object's ``pipelineLogUri`` (as a local
    folder), else the folder beside the store; the root of ``<root>/<pipeline>/<object>/
    <instance>/<attempt>``."""
    ids = {i.id for i in result.instances}
    roots: list[Path] = []
    for attempt in await store.list_attempts(result.pipeline_id):
        if attempt.instance_id in ids and attempt.log_path:
            root = Path(attempt.log_path).parents[3]
            if root not in roots:
                roots.append(root)
    return roots


def _print_result(result: RunResult, output: str, hint: str | None = None,
                  roots: list[Path] | None = None) -> None:
    shown = [i for i in result.instances if i.category != "datanode"]
    if output == "json":
        click.echo(json.dumps({"pipelineId": result.pipeline_id,
                               "interrupted": result.interrupted,
                               "instances": [instance_json(i) for i in shown]}, indent=2))
        return
    counts: dict[str, int] = {}
    for inst in shown:
        counts[inst.status.value] = counts.get(inst.status.value, 0) + 1
        line = (f"{_ts(inst.scheduled_start)}  {inst.object_id:<30} {inst.status.value:<24} "
                f"attempts {inst.attempts}")
        if inst.error and inst.status.value != "FINISHED":
            line += f"  {inst.error[:200]}"
        click.echo(line)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    click.echo(f"pipeline {result.pipeline_id}: {summary or 'no instances'}"
               + (" (interrupted)" if result.interrupted else ""))
    ran = [i for i in shown if i.attempts]
    if hint is not None:
        click.echo(hint)
    elif ran:
        where = ", ".join(str(r) for r in roots or ())
        click.echo(f"logs: headrace logs {ran[-1].id} --pipeline-id {result.pipeline_id}"
                   + (f" (all under {where})" if where else ""))


def _group_slots(ctx: click.Context, param: click.Parameter,
                 values: tuple[str, ...]) -> dict[str, int]:
    slots: dict[str, int] = {}
    for value in values:
        name, sep, count = value.rpartition("=")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise click.BadParameter(f"{value!r}: expected GROUP=N with N at least 1",
                                     ctx=ctx, param=param)
        slots[name] = int(count)
    return slots


def worker_group_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--worker-group-slots GROUP=N``: at most N attempts at once for a ``workerGroup``
    (or ``runsOn`` resource id); repeatable."""
    return click.option("--worker-group-slots", "worker_groups", multiple=True,
                        metavar="GROUP=N", callback=_group_slots,
                        help="At most N attempts at once for objects whose workerGroup (or "
                             "runsOn resource id) is GROUP. Repeatable.")(func)


@click.command(epilog=examples(
    "headrace run pipeline.json                         # the schedule's whole window",
    'headrace run pipeline.json --start 2024-01-01T00:00:00 --end 2024-01-02T00:00:00',
    'headrace run pipeline.json --parameter-values-uri values.json --output json',
    'headrace run pipeline.json --store postgresql://headrace@db/headrace',
    'headrace run pipeline.json --object Copy --at 2024-01-01T00:00:00   # one instance, now',
    'headrace run pipeline.json --object Copy --at 2024-01-01T00:00:00 --with-upstream',
))
@click.argument("definition")
@parameter_options
@click.option("--start", metavar="TS", help="Window start (default: the schedule's start).")
@click.option("--end", metavar="TS", help="Window end (default: the schedule's end, or now).")
@click.option("--store", "store_url", metavar="URL", help=STORE_HELP)
@click.option("--pipeline-id", help="Default: df- + a hash of the definition's path.")
@click.option("--max-instances", default=10_000, show_default=True,
              help="Refuse a window that plans more instances (a backfill guard).")
@click.option("--max-concurrency", default=32, show_default=True,
              help="Attempts running at once in this process.")
@worker_group_option
@spark_options
@click.option("--object", "object_id", metavar="ID",
              help="Run only the instance of this object at --at, now, ignoring its "
                   "dependencies, for debugging; nothing is recorded in the store (its logs "
                   "go beside it, under logs/objects/).")
@click.option("--at", metavar="TS", help="With --object: the instance's @scheduledStartTime.")
@click.option("--with-upstream", is_flag=True,
              help="With --object: run first every instance it waits for, from the "
                   "schedule's start.")
@verbosity_options
@output_option
def run(definition: str, start: str | None, end: str | None, store_url: str | None,
        pipeline_id: str | None, max_concurrency: int, max_instances: int, output: str,
        worker_groups: dict[str, int], object_id: str | None, at: str | None,
        with_upstream: bool, verbosity: int, **kwargs: Any) -> None:
    """Activate a definition and run every instance of its window here, then exit.

    Exit 0 when every instance FINISHED, 1 when any ended otherwise, 2 on a usage or
    definition error, 130 when interrupted (SIGINT/SIGTERM; run it again to resume).

    With --object and --at, run one instance (and, with --with-upstream, what it waits for)
    as `airflow tasks test` does: now, in a private store, its output printed at the end.
    """
    configure_command_log("headrace", verbosity)
    at_ts = _object_flags(object_id, at, with_upstream, start, end)
    start_ts, end_ts = window(start, end)
    loaded, report = load_or_exit(definition, kwargs, strict=True, output=output)
    if output == "text" and verbosity > QUIET:  # e.g. a value for an id nothing declares
        print_problems(report.warnings)
    pid = pipeline_id or derived_pipeline_id(definition)
    on_status = run_printer(verbosity, utcnow) if output == "text" else None
    if object_id is not None and at_ts is not None:
        if object_id not in loaded:
            raise click.BadParameter(f"no object {object_id!r}" + suggest_or_list(
                object_id, loaded.objects, "objects"), param_hint="--object")
        _run_object(loaded, pid, object_id, at_ts, with_upstream, store_url, output,
                    on_status, max_concurrency=max_concurrency, max_instances=max_instances,
                    worker_groups=worker_groups)

    async def main() -> tuple[RunResult, list[Path]]:
        async with open_store(store_url) as store:
            if output == "text":
                announce_new_store(store)
            name = definition.rsplit("/", 1)[-1]
            _, version = await ensure_pipeline(store, pid, name, loaded)
            result = await run_window(store, pid, loaded, version, start=start_ts,
                                      end=end_ts, max_concurrency=max_concurrency,
                                      on_status=on_status, max_instances=max_instances,
                                      worker_groups=worker_groups)
            return result, await _log_roots(store, result)

    try:
        with command_telemetry():
            result, roots = anyio.run(main)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    _print_result(result, output, roots=roots)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if result.succeeded else EXIT_FAILED)


def _object_flags(object_id: str | None, at: str | None, with_upstream: bool,
                  start: str | None, end: str | None) -> datetime | None:
    if object_id is None:
        if at is not None or with_upstream:
            raise click.UsageError("--at and --with-upstream go with --object")
        return None
    if at is None:
        raise click.UsageError("--object needs --at (the instance's @scheduledStartTime)")
    if start is not None or end is not None:
        raise click.UsageError("--object runs the one instance at --at: --start and --end "
                               "do not apply")
    return timestamp(at, "--at")


def _run_object(loaded: Definition, pid: str, object_id: str, at: datetime,
                with_upstream: bool, store_url: str | None, output: str,
                on_status: Callable[[InstanceRecord], None] | None,
                **limits: Any) -> NoReturn:
    """``run --object``: the run, its summary, then the output of the object's attempts."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")

    async def main() -> RunResult:
        return await run_object(loaded, pid, object_id, at, with_upstream=with_upstream,
                                log_root=log_root, on_status=on_status, **limits)

    try:
        log_root = store_dir(open_store(store_url)) / "logs" / "objects" / f"{stamp}-{pid}"
        with command_telemetry():
            result = anyio.run(main)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    if output == "json":
        click.echo(json.dumps({
            "pipelineId": result.pipeline_id, "interrupted": result.interrupted,
            "logRoot": str(log_root),
            "instances": [{**instance_json(i), "logs": result.attempt_logs.get(i.id, [])}
                          for i in result.instances if i.category != "datanode"]}, indent=2))
    else:
        which = "with its upstream" if with_upstream else "alone"
        _print_result(result, output, hint=f"logs: {log_root} (a run of {object_id} {which}: "
                                           "nothing was recorded in the store)")
        for inst in result.instances:
            if inst.object_id == object_id and result.attempt_logs.get(inst.id):
                last = Path(result.attempt_logs[inst.id][-1])
                for name in ("stdout", "stderr"):
                    text = (last / name).read_text(errors="replace") if (
                        last / name).exists() else ""
                    click.echo(f"==> {last / name} <==")
                    click.echo(text, nl=False)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if result.succeeded else EXIT_FAILED)


COMMANDS = [run]
