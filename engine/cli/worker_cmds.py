"""``headrace worker`` (claim and run the queued work of worker groups from a shared store) and
``headrace list-workers``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import anyio
import click

import engine.activities
import engine.preconditions  # noqa: F401  (registers the precondition checks)
from engine.cli.help import examples
from engine.cli.output import EXIT_USAGE, CommandFailed, emit, output_option
from engine.cli.spark_options import spark_options
from engine.cli.status_lines import configure_engine_log, verbosity_options
from engine.cli.store_option import store_option
from engine.errors import HeadraceError
from engine.schedule import format_timestamp
from engine.store import open_store
from engine.store.queue import DEFAULT_GROUP, WorkerRow, list_workers
from engine.telemetry import command_telemetry
from engine.worker import DEFAULT_LEASE_SECONDS, DEFAULT_SLOTS, Worker, WorkerOptions
from engine.worker.process import refuse_sqlite

#: environment variable: seconds added to a worker's or an engine's wall clock (tests of a
#: host whose clock is wrong; leases never read it)
CLOCK_OFFSET_ENV = "HEADRACE_CLOCK_OFFSET_SECONDS"


def clock_offset() -> float:
    """The seconds ``$HEADRACE_CLOCK_OFFSET_SECONDS`` adds to this process's clock (0)."""
    import os

    try:
        return float(os.environ.get(CLOCK_OFFSET_ENV, "0") or 0)
    except ValueError:
        raise CommandFailed(f"${CLOCK_OFFSET_ENV} must be a number of seconds",
                            EXIT_USAGE) from None


@click.command("worker", epilog=examples(
    "headrace worker --store postgresql://headrace@db/headrace",
    "headrace worker --store postgresql://headrace@db/headrace --worker-group etl "
    "--worker-group onprem --slots 8",
    "headrace worker --store postgresql://headrace@db/headrace --worker-id etl-host-1 "
    "--lease-seconds 120",
))
@store_option
@click.option("--worker-group", "groups", multiple=True, metavar="NAME",
              help="Claim the work of this worker group (an object's workerGroup, or the id "
                   "of its runsOn resource). Repeatable. Default: the group 'default' (work "
                   "with neither).")
@click.option("--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 1024),
              help="Attempts run at once.")
@click.option("--worker-id", metavar="ID",
              help="This worker's name in the store (default HOST:PID). Shell commands see "
                   "it as $HEADRACE_WORKER_ID.")
@click.option("--lease-seconds", default=DEFAULT_LEASE_SECONDS, show_default=True,
              type=click.FloatRange(1, 86400),
              help="A claim lapses this long after the last renewal (renewed every third "
                   "of it); the work then goes to another worker.")
@click.option("--drain-seconds", default=30.0, show_default=True, type=click.FloatRange(0),
              help="On SIGTERM: how long running attempts may go on before they are handed "
                   "back to the queue.")
@click.option("--poll-interval", default=0.5, show_default=True, type=click.FloatRange(0.01),
              help="Seconds between claims while the queue is empty.")
@verbosity_options
@output_option
@spark_options
def worker_cmd(store_url: str | None, groups: tuple[str, ...], slots: int,
               worker_id: str | None, lease_seconds: float, drain_seconds: float,
               poll_interval: float, verbosity: int, output: str, **_: Any) -> None:
    """Claim and run the queued work of worker groups from a shared PostgreSQL store, until
    stopped, as a Task Runner did on AWS.

    A `headrace engine --scheduler-only` (or `headrace serve`) on the same store plans the
    pipelines and queues their work. SIGTERM or SIGINT drains (exit 130): no new claims,
    running attempts get --drain-seconds, the rest go back to the queue."""
    configure_engine_log(verbosity)
    offset = clock_offset()
    options = WorkerOptions(groups=sorted(set(groups)) or [DEFAULT_GROUP], slots=slots,
                            worker_id=worker_id, lease_seconds=lease_seconds,
                            drain_seconds=drain_seconds, poll_interval=poll_interval,
                            clock_offset=offset)

    async def main() -> int:
        store = open_store(store_url, create=False)
        refuse_sqlite(store)  # before opening it: nothing is made or changed
        async with store:
            worker = Worker(store, options)
            if output == "json":
                click.echo(json.dumps({"event": "started", "store": store.url,
                                       "workerId": worker.id,
                                       "workerGroups": list(options.groups)}))
            else:
                click.echo(f"headrace worker {worker.id} claiming {', '.join(options.groups)} "
                           f"on {store.url}", err=True)
            return await worker.run()

    try:
        with command_telemetry():
            code = anyio.run(main)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    sys.exit(code)


def worker_json(row: WorkerRow) -> dict[str, Any]:
    """One worker as ``list-workers --output json`` shows it."""
    return {"workerId": row.worker_id, "host": row.host, "workerGroups": row.worker_groups,
            "slots": row.slots, "running": row.running,
            "lastHeartbeat": format_timestamp(datetime.fromtimestamp(row.last_heartbeat, UTC)),
            "version": row.version}


@click.command("list-workers", epilog=examples(
    "headrace list-workers --store postgresql://headrace@db/headrace",
    "headrace list-workers --store postgresql://headrace@db/headrace --output json",
))
@store_option
@output_option
def list_workers_cmd(store_url: str | None, output: str) -> None:
    """The worker processes (and task runners) that have worked on the store: their groups,
    slots, attempts running now and last heartbeat (by the store's clock)."""

    async def main() -> tuple[float, list[WorkerRow]]:
        async with open_store(store_url, create=False) as store:
            return await list_workers(store)

    try:
        now, rows = anyio.run(main)
    except HeadraceError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    if output == "json":
        emit(output, [worker_json(r) for r in rows], "")
        return
    if not rows:
        click.echo("no workers have used this store")
        return
    click.echo(f"{'WORKER':<28} {'HOST':<20} {'GROUPS':<20} {'SLOTS':>5} {'RUNNING':>7} "
               f"{'STATE':<9} LAST HEARTBEAT")
    for r in rows:
        ago = max(0.0, now - r.last_heartbeat)
        click.echo(f"{r.worker_id:<28} {r.host:<20} {','.join(r.worker_groups):<20} "
                   f"{r.slots:>5} {r.running:>7} {r.state:<9} "
                   f"{worker_json(r)['lastHeartbeat']} ({ago:.0f} s ago)")


COMMANDS = [worker_cmd, list_workers_cmd]
