"""Pipeline lifecycle against a store, named as the AWS CLI names them, plus ``engine`` and
``logs``. Every command takes ``--store`` (default ``$HEADRACE_STORE`` or the embedded SQLite
file) and ``--output text|json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from anyio.abc import TaskStatus

import engine.activities  # registers the activities
import engine.preconditions  # noqa: F401  (registers the precondition checks)
from engine.cli.definition_cmds import (
    load_options,
    parameter_options,
    print_problems,
    timestamp,
    window,
)
from engine.cli.help import examples
from engine.cli.output import EXIT_FAILED, EXIT_USAGE, CommandFailed, emit, output_option
from engine.cli.run_cmds import instance_json, worker_group_option
from engine.cli.spark_options import spark_options
from engine.cli.status_lines import configure_engine_log, engine_printer, verbosity_options
from engine.cli.store_option import announce_new_store, store_option
from engine.errors import HeadraceError, NotFound
from engine.schedule import format_timestamp
from engine.service import Objects, PipelineService
from engine.store import Action, Status, Store, open_store
from engine.store.records import AttemptRecord, utcnow
from engine.telemetry import command_telemetry

T = TypeVar("T")


def with_store(store_url: str | None, body: Callable[[Store], Awaitable[T]], *,
               create: bool = False) -> T:
    """Run ``body`` with an open store; a HeadraceError becomes a one-line error, exit 2.
    A SQLite store that does not exist is an error, unless ``create`` (then it is made, and
    announced)."""
    async def main() -> T:
        async with open_store(store_url, create=create) as store:
            announce_new_store(store)
            return await body(store)

    try:
        return anyio.run(main)
    except NotFound as exc:
        raise CommandFailed(str(exc), EXIT_FAILED) from None
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None


def _ts(value: Any) -> str | None:
    return format_timestamp(value) if value is not None else None


@click.command("create-pipeline", epilog=examples(
    'id=$(headrace create-pipeline --name nightly --unique-id nightly-v1)',
))
@click.option("--name", required=True)
@click.option("--unique-id", required=True, help="Idempotency token: the same id returns the "
                                                 "same pipeline.")
@click.option("--description", default="")
@store_option
@output_option
def create_pipeline(name: str, unique_id: str, description: str, store_url: str | None,
                    output: str) -> None:
    """Create an empty pipeline (state PENDING); print its id."""
    record = with_store(store_url,
                        lambda s: PipelineService(s).create(name, unique_id, description),
                        create=True)
    emit(output, {"pipelineId": record.id}, record.id)


@click.command("put-pipeline-definition", epilog=examples(
    'headrace put-pipeline-definition --pipeline-id $id --pipeline-definition file://p.json',
    'headrace put-pipeline-definition --pipeline-id $id --pipeline-definition p.json \\',
    '    --parameter-values-uri values.json',
))
@click.option("--pipeline-id", required=True)
@click.option("--pipeline-definition", "definition", required=True, metavar="FILE")
@parameter_options
@store_option
@output_option
def put_pipeline_definition(pipeline_id: str, definition: str, store_url: str | None,
                            output: str, **kwargs: Any) -> None:
    """Validate a definition and store it as the pipeline's latest version."""
    try:
        check = PipelineService.check_definition(definition, load_options(kwargs))
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_FAILED) from None
    report = check.report
    errors = [p.as_json() for p in report.errors]
    warnings = [p.as_json() for p in report.warnings]
    if report.errors:
        if output == "json":
            emit(output, {"errored": True, "validationErrors": errors,
                          "validationWarnings": warnings,
                          "error": {"message": "definition refused (nothing stored)",
                                    "exitCode": EXIT_FAILED, "kind": "failed"}}, "")
        else:
            print_problems(report.errors + report.warnings)
            click.echo("definition refused (nothing stored)", err=True)
        sys.exit(EXIT_FAILED)
    version = with_store(store_url, lambda s: PipelineService(s).put_definition(pipeline_id,
                                                                                check))
    if output == "text":
        print_problems(report.warnings)
    emit(output, {"errored": False, "version": version, "validationErrors": [],
                  "validationWarnings": warnings},
         f"stored version {version} of {pipeline_id} ({len(warnings)} warning(s))")


@click.command("get-pipeline-definition", epilog=examples(
    'headrace get-pipeline-definition --pipeline-id $id > stored.json',
    'headrace get-pipeline-definition --pipeline-id $id --version active',
))
@click.option("--pipeline-id", required=True)
@click.option("--version", "which", type=click.Choice(["latest", "active"]), default="latest",
              show_default=True)
@store_option
@output_option
def get_pipeline_definition(pipeline_id: str, which: str, store_url: str | None,
                            output: str) -> None:
    """Print a stored definition in the definition-file format (secrets as ****).

    The definition file is JSON either way: --output json differs only in its errors."""
    body = with_store(store_url, lambda s: PipelineService(s).get_definition(pipeline_id, which))
    click.echo(json.dumps(body, indent=2))  # either --output


@click.command("activate-pipeline", epilog=examples(
    'headrace activate-pipeline --pipeline-id $id',
    'headrace activate-pipeline --pipeline-id $id --start-timestamp 2024-06-01T00:00:00',
    'headrace activate-pipeline --pipeline-id $id --allow-backfill   # start over a day ago',
))
@click.option("--pipeline-id", required=True)
@click.option("--start-timestamp", metavar="TS",
              help="Resume from this time instead of the schedule's start.")
@click.option("--parameter-values", "parameter_values", multiple=True, metavar="ID=VALUE")
@click.option("--allow-backfill", is_flag=True,
              help="Allow a start more than one day in the past (a backfill).")
@click.option("--max-instances", default=10_000, show_default=True,
              help="Refuse an activation that plans more instances at once.")
@store_option
@output_option
def activate_pipeline(pipeline_id: str, start_timestamp: str | None,
                      parameter_values: tuple[str, ...], allow_backfill: bool,
                      max_instances: int, store_url: str | None, output: str) -> None:
    """Activate the latest definition: plan its instances; a running `headrace engine` runs
    them."""
    start = timestamp(start_timestamp, "--start-timestamp")

    async def body(store: Store) -> dict[str, Any]:
        done = await PipelineService(store).activate(
            pipeline_id, start=start, parameter_values=list(parameter_values),
            allow_backfill=allow_backfill, max_instances=max_instances)
        for warning in done.warnings:
            click.echo(f"warning: {warning}", err=True)
        return {"pipelineId": pipeline_id, "version": done.version,
                "activationTime": _ts(done.activation_time),
                "windowStart": _ts(done.window_start), "instances": done.instances,
                "newInstances": done.new_instances}

    result = with_store(store_url, body)
    emit(output, result, f"activated {pipeline_id} version {result['version']}: "
                         f"{result['instances']} instance(s), {result['newInstances']} new")


@click.command("deactivate-pipeline", epilog=examples(
    'headrace deactivate-pipeline --pipeline-id $id',
    'headrace deactivate-pipeline --pipeline-id $id --no-cancel-active   # let running work end',
))
@click.option("--pipeline-id", required=True)
@click.option("--cancel-active/--no-cancel-active", default=True, show_default=True,
              help="Cancel running instances, or let them finish.")
@store_option
@output_option
def deactivate_pipeline(pipeline_id: str, cancel_active: bool, store_url: str | None,
                        output: str) -> None:
    """Pause a pipeline (DEACTIVATING, then INACTIVE); activate it again to resume."""
    async def body(store: Store) -> str:
        return await PipelineService(store).deactivate(pipeline_id, cancel_active)

    state = with_store(store_url, body)
    emit(output, {"pipelineId": pipeline_id, "state": state.split()[0], "detail": state},
         f"{pipeline_id}: {state}")


@click.command("delete-pipeline", epilog=examples(
    'headrace delete-pipeline --pipeline-id $id',
))
@click.option("--pipeline-id", required=True)
@store_option
@output_option
def delete_pipeline(pipeline_id: str, store_url: str | None, output: str) -> None:
    """Delete a pipeline, its definitions and its run history."""
    with_store(store_url, lambda s: PipelineService(s).delete(pipeline_id))
    emit(output, {"pipelineId": pipeline_id, "deleted": True}, f"deleted {pipeline_id}")


@click.command("list-pipelines", epilog=examples(
    'headrace list-pipelines',
    'headrace list-pipelines --store postgresql://headrace@db/headrace --output json',
))
@store_option
@output_option
def list_pipelines(store_url: str | None, output: str) -> None:
    """List the pipelines of the store."""
    records = with_store(store_url, lambda s: PipelineService(s).list_pipelines())
    data = {"pipelineIdList": [{"id": r.id, "name": r.name} for r in records]}
    emit(output, data, "\n".join(f"{r.id}  {r.state.value:<12} {r.name}" for r in records)
         or "no pipelines")


@click.command("describe-pipelines", epilog=examples(
    'headrace describe-pipelines --pipeline-ids $id',
    'headrace describe-pipelines --pipeline-ids df-0123456789abcdef df-fedcba9876543210',
))
@click.option("--pipeline-ids", "pipeline_ids", multiple=True, required=True)
@store_option
@output_option
def describe_pipelines(pipeline_ids: tuple[str, ...], store_url: str | None,
                       output: str) -> None:
    """State, versions, activation and instance counts of pipelines."""
    async def body(store: Store) -> list[dict[str, Any]]:
        out = []
        for summary in await PipelineService(store).describe(list(pipeline_ids)):
            r, counts = summary.record, summary.counts
            out.append({"pipelineId": r.id, "name": r.name, "description": r.description,
                        "fields": {"@pipelineState": r.state.value,
                                   "@creationTime": _ts(r.created_at),
                                   "@latestVersion": r.latest_version,
                                   "@activeVersion": r.active_version,
                                   "@lastActivationTime": _ts(r.activated_at),
                                   "@firstActivationTime": _ts(r.first_activated_at)},
                        "instances": counts, "tags": r.tags})
        return out

    data = with_store(store_url, body)
    text = "\n".join(f"{d['pipelineId']}  {d['fields']['@pipelineState']}  {d['name']}  "
                     f"{d['instances']}" for d in data)
    emit(output, {"pipelineDescriptionList": data}, text)


def _interval(value: str | None, flag: str) -> tuple[Any, Any] | None:
    if not value:
        return None
    parts = value.split(",")
    if len(parts) != 2:
        raise click.BadParameter("expects START,END", param_hint=flag)
    return window(parts[0], parts[1], f"{flag} start", f"{flag} end")


@click.command("list-runs", epilog=examples(
    'headrace list-runs --pipeline-id $id',
    'headrace list-runs --pipeline-id $id --status failed,cascade_failed --output json',
    'headrace list-runs --pipeline-id $id \\',
    '    --schedule-interval 2024-01-01T00:00:00,2024-01-08T00:00:00',
))
@click.option("--pipeline-id", required=True)
@click.option("--status", help="Comma-separated statuses (finished, failed, running, waiting...)")
@click.option("--start-interval", help="START,END on @actualStartTime.")
@click.option("--schedule-interval", help="START,END on @scheduledStartTime.")
@store_option
@output_option
def list_runs(pipeline_id: str, status: str | None, start_interval: str | None,
              schedule_interval: str | None, store_url: str | None, output: str) -> None:
    """The pipeline's instances with status, times, attempts and trace ids."""
    wanted = _statuses(status)
    started = _interval(start_interval, "--start-interval")
    scheduled = _interval(schedule_interval, "--schedule-interval")

    async def body(store: Store) -> tuple[list[Any], dict[str, AttemptRecord],
                                          dict[str, tuple[int, str | None]]]:
        rows, latest = await PipelineService(store).list_runs(
            pipeline_id, statuses=wanted, scheduled=scheduled, started=started)
        return rows, latest, await store.instance_copy_runs(pipeline_id)

    rows, latest, increments = with_store(store_url, body)
    traces = {iid: a.trace_id for iid, a in latest.items()}
    data = [{**instance_json(r), "traceId": traces.get(r.id),
             "workerId": latest[r.id].worker_id if r.id in latest else None,
             **_increment_json(increments.get(r.id))} for r in rows]
    # an incremental CopyActivity's runs also show their watermark and rows moved
    shown = any(r.id in increments for r in rows)
    lines = [f"{'Name':<30} {'Scheduled Start':<20} {'Status':<24} {'Started':<20} "
             f"{'Ended':<20} {'Attempts':<8} "
             + (f"{'Trace':<32} {'Rows Moved':>10} Watermark" if shown else "Trace")]
    for r in rows:
        line = (f"{r.object_id:<30} {_ts(r.scheduled_start):<20} {r.status.value:<24} "
                f"{_ts(r.actual_start) or '':<20} {_ts(r.actual_end) or '':<20} "
                f"{r.attempts:<8} {traces.get(r.id) or '':<32}")
        if r.id in increments:
            moved, mark = increments[r.id]
            line += f" {moved:>10,} {mark or '(none)'}"
        lines.append(line.rstrip())
    emit(output, {"runs": data}, "\n".join(lines))


def _increment_json(run: tuple[int, str | None] | None) -> dict[str, Any]:
    """``watermark`` and ``rowsMoved`` of an incremental CopyActivity's run (nothing for
    other instances)."""
    return {} if run is None else {"watermark": run[1], "rowsMoved": run[0]}


_STATUS_WORDS = {
    "waiting": [Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER],
    "pending": [Status.WAITING_ON_DEPENDENCIES, Status.WAITING_FOR_RUNNER],
    "cancelled": [Status.CANCELED], "canceled": [Status.CANCELED],
}


def _statuses(text: str | None) -> list[Status] | None:
    if not text:
        return None
    out: list[Status] = []
    for word in text.split(","):
        key = word.strip().lower()
        if key in _STATUS_WORDS:
            out.extend(_STATUS_WORDS[key])
            continue
        try:
            out.append(Status(key.upper()))
        except ValueError:
            raise click.BadParameter(
                f"unknown status {word!r} (known: {', '.join(s.value.lower() for s in Status)}"
                ", waiting, pending)", param_hint="--status") from None
    return out


@click.command("describe-objects", epilog=examples(
    'headrace describe-objects --pipeline-id $id --object-ids @Copy_2024-01-01T00:00:00',
    'headrace describe-objects --pipeline-id $id --object-ids Copy          # the component',
    'headrace describe-objects --pipeline-id $id --object-ids @Copy_2024-01-01T00:00:00 \\',
    '    --evaluate-expressions',
))
@click.option("--pipeline-id", required=True)
@click.option("--object-ids", "object_ids", multiple=True, required=True)
@click.option("--evaluate-expressions", is_flag=True,
              help="Show fields with their #{...} evaluated for each instance.")
@store_option
@output_option
def describe_objects(pipeline_id: str, object_ids: tuple[str, ...], evaluate_expressions: bool,
                     store_url: str | None, output: str) -> None:
    """Instances (status, attempts with errors, trace ids and logs) or components."""
    async def body(store: Store) -> list[dict[str, Any]]:
        views = await Objects(store).describe(pipeline_id, list(object_ids),
                                              evaluate=evaluate_expressions)
        out = []
        for view in views:
            if view.sphere == "COMPONENT":
                out.append({"id": view.id, "sphere": "COMPONENT",
                            "fields": {"id": view.id, "name": view.name, **view.fields}})
                continue
            if view.instance is None or view.sphere != "INSTANCE":
                raise NotFound(f"pipeline {pipeline_id!r} has no instance {view.id!r}")
            item: dict[str, Any] = {"id": view.id, "sphere": "INSTANCE",
                                    **instance_json(view.instance),
                                    "workerId": (view.attempts[-1].worker_id
                                                 if view.attempts else None),
                                    "attemptList": [{
                                        "id": a.id, "status": a.status.value,
                                        "startTime": _ts(a.started_at),
                                        "endTime": _ts(a.ended_at), "exitCode": a.exit_code,
                                        "error": a.error, "traceId": a.trace_id,
                                        "workerId": a.worker_id,
                                        "log": a.log_path} for a in view.attempts]}
            if view.evaluated:
                item["fields"] = view.fields
            out.append(item)
        return out

    data = with_store(store_url, body)
    if output == "json":
        emit(output, {"pipelineObjects": data}, "")
        return
    for item in data:
        click.echo(json.dumps(item, indent=2, default=str))


@click.command("set-status", epilog=examples(
    'headrace set-status --pipeline-id $id --object-ids @Copy_2024-01-01T00:00:00 --status RERUN',
    'headrace set-status --pipeline-id $id --object-ids Copy --status PAUSE',
))
@click.option("--pipeline-id", required=True)
@click.option("--object-ids", "object_ids", multiple=True, required=True,
              help="Instance ids (RERUN, MARK_FINISHED, TRY_CANCEL) or component ids "
                   "(PAUSE, RESUME).")
@click.option("--status", "action", required=True,
              type=click.Choice([a.value for a in Action], case_sensitive=False))
@store_option
@output_option
def set_status(pipeline_id: str, object_ids: tuple[str, ...], action: str,
               store_url: str | None, output: str) -> None:
    """RERUN, MARK_FINISHED, TRY_CANCEL instances; PAUSE, RESUME components."""
    act = Action(action.upper())

    async def body(store: Store) -> list[str]:
        return await PipelineService(store).set_status(pipeline_id, list(object_ids), act)

    lines = with_store(store_url, body)
    emit(output, {"pipelineId": pipeline_id, "status": act.value, "results": lines},
         "\n".join(lines))


@click.command("logs", epilog=examples(
    'headrace logs @Copy_2024-01-01T00:00:00 --pipeline-id $id',
    'headrace logs @Copy_2024-01-01T00:00:00 --pipeline-id $id --attempt 1 --stream stderr',
))
@click.argument("instance_id")
@click.option("--pipeline-id", required=True)
@click.option("--attempt", type=int, help="Attempt number (default: the last).")
@click.option("--stream", type=click.Choice(["all", "events", "stdout", "stderr"]),
              default="all", show_default=True)
@store_option
@output_option
def logs(instance_id: str, pipeline_id: str, attempt: int | None, stream: str,
         store_url: str | None, output: str) -> None:
    """Show an attempt's log: the engine's events and the command's stdout and stderr.

    --output json gives {"instanceId", "attempt", "status", "log", "streams": {name: text}}
    (a stream the attempt never wrote is null)."""
    attempts = with_store(store_url, lambda s: s.list_attempts(pipeline_id, instance_id))
    if not attempts:
        raise CommandFailed(f"no attempts of {instance_id} in {pipeline_id}", EXIT_FAILED)
    chosen = attempts[-1] if attempt is None else next(
        (a for a in attempts if a.number == attempt), None)
    if chosen is None or chosen.log_path is None:
        raise CommandFailed(f"no attempt {attempt} of {instance_id}", EXIT_FAILED)
    names = ["events", "stdout", "stderr"] if stream == "all" else [stream]
    texts: dict[str, str | None] = {}
    for name in names:
        path = Path(chosen.log_path) / name
        texts[name] = (path.read_text(encoding="utf-8", errors="replace")
                       if path.exists() else None)
    if output == "json":
        emit(output, {"pipelineId": pipeline_id, "instanceId": instance_id,
                      "attempt": chosen.number, "status": chosen.status.value,
                      "log": chosen.log_path, "streams": texts}, "")
        return
    for name, text in texts.items():
        if stream == "all":
            click.echo(f"==> {Path(chosen.log_path) / name} <==")
        if text is not None:
            click.echo(text, nl=False)


@click.command("engine", epilog=examples(
    'HEADRACE_STORE=sqlite:////srv/headrace/store.db headrace engine',
    'headrace engine --store postgresql://headrace@db/headrace --worker-group-slots etl=4',
))
@store_option
@click.option("--max-concurrency", default=32, show_default=True)
@click.option("--poll-interval", default=2.0, show_default=True,
              help="Seconds between looks at the store for activated pipelines.")
@click.option("--scheduler-only", is_flag=True,
              help="Plan, evaluate dependencies, fire actions and lateness; queue every "
                   "attempt for `headrace worker` processes on the same (PostgreSQL) store.")
@worker_group_option
@spark_options
@verbosity_options
@output_option
def engine_cmd(store_url: str | None, max_concurrency: int, poll_interval: float,
               scheduler_only: bool, worker_groups: dict[str, int], verbosity: int,
               output: str, **_: Any) -> None:
    """Run the store's activated pipelines on their schedules until stopped.

    SIGTERM or SIGINT stops gracefully (exit 130): running attempts end INTERRUPTED and are
    retried when an engine runs the pipeline again. With --scheduler-only the attempts run in
    worker processes, which carry on when this engine stops."""
    import signal
    from datetime import timedelta

    from engine.cli.worker_cmds import clock_offset
    from engine.clock import Clock
    from engine.runtime.dispatch import EXECUTE_ALL, EXECUTE_NONE
    from engine.runtime.engine import Engine
    from engine.worker.process import refuse_sqlite

    configure_engine_log(verbosity)
    offset = clock_offset()
    async def main() -> None:
        store = open_store(store_url)
        if scheduler_only:
            refuse_sqlite(store, "headrace engine --scheduler-only")
        async with store:
            announce_new_store(store)
            clock = Clock(utcnow() + timedelta(seconds=offset)) if offset else None
            eng = Engine(store, clock=clock, max_concurrency=max_concurrency,
                         poll_interval=poll_interval, worker_groups=worker_groups,
                         on_status=engine_printer(verbosity, output, utcnow),
                         execute=EXECUTE_NONE if scheduler_only else EXECUTE_ALL)
            async with anyio.create_task_group() as tg:
                async def watch(*, task_status: TaskStatus[None]) -> None:
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        task_status.started()  # "running" is printed once a signal stops it
                        async for _ in signals:
                            await eng.stop()
                            tg.cancel_scope.cancel()
                            return

                await tg.start(watch)
                if output == "json":
                    click.echo(json.dumps({"event": "started", "store": store.url}))
                else:
                    click.echo(f"headrace engine running on {store.url}", err=True)
                await eng.run()

    try:
        with command_telemetry():
            anyio.run(main)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    sys.exit(130)


COMMANDS = [create_pipeline, put_pipeline_definition, get_pipeline_definition,
            activate_pipeline, deactivate_pipeline, delete_pipeline, list_pipelines,
            describe_pipelines, list_runs, describe_objects, set_status, logs, engine_cmd]
