"""The live lines ``run`` and ``engine`` print as instances change state.

One line per state change, as it happens: a failed attempt says why and when the next attempt
starts (a 10-minute ``retryDelay`` is otherwise a silent wait), a final failure says why, and
the engine's lines carry the time and the pipeline (it runs several). Verbosity: ``-q`` prints
failures only (failed attempts and instances that ended otherwise than FINISHED), the default
every state change of activities and preconditions, ``-v`` data nodes too (and the engine's
own log at INFO).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from engine.cli.log_lines import NORMAL, VERBOSE
from engine.cli.log_lines import QUIET as QUIET
from engine.cli.log_lines import configure_command_log as configure_command_log
from engine.cli.log_lines import configure_engine_log as configure_engine_log
from engine.schedule import format_timestamp
from engine.store import InstanceRecord, Status

#: how much of an error one line shows
ERROR_CHARS = 300

_FAILED = frozenset({Status.FAILED, Status.CASCADE_FAILED, Status.CANCELED, Status.TIMEDOUT})


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet`` and ``-v/--verbose`` (the last one given wins)."""
    func = click.option("-v", "--verbose", "verbosity", flag_value=VERBOSE,
                        help="Also data nodes' state changes (and, for the engine, its own "
                             "log at INFO).")(func)
    return click.option("-q", "--quiet", "verbosity", flag_value=QUIET, default=NORMAL,
                        show_default=False,
                        help="Only failures: failed attempts (with the next attempt's time) "
                             "and instances that did not finish.")(func)


def is_retry(rec: InstanceRecord) -> bool:
    """An attempt failed and the instance waits for its next one."""
    return rec.status == Status.WAITING_FOR_RUNNER and rec.error is not None


def shown(rec: InstanceRecord, verbosity: int) -> bool:
    if rec.category == "datanode" and verbosity < VERBOSE:
        return False
    if verbosity <= QUIET:
        return rec.status in _FAILED or is_retry(rec)
    return True


def describe(rec: InstanceRecord, now: datetime) -> str:
    """``FAILED after 3 attempt(s): ...``, ``attempt 1 failed: ...; attempt 2 at ...``."""
    error = (rec.error or "")[:ERROR_CHARS]
    if is_retry(rec):
        if rec.retry_at is None:
            return f"WAITING_FOR_RUNNER ({error})"
        wait = max(0, round((rec.retry_at - now).total_seconds()))
        return (f"attempt {rec.attempts} failed: {error}; attempt {rec.attempts + 1} at "
                f"{format_timestamp(rec.retry_at)} (in {_duration(wait)})")
    if rec.status == Status.RUNNING:
        return f"RUNNING (attempt {rec.attempts})"
    if rec.status in _FAILED:
        tries = f" after {rec.attempts} attempt(s)" if rec.attempts else ""
        return f"{rec.status.value}{tries}" + (f": {error}" if error else "")
    return rec.status.value


def record_json(rec: InstanceRecord, now: datetime) -> dict[str, Any]:
    return {"time": format_timestamp(now), "pipelineId": rec.pipeline_id,
            "instanceId": rec.id, "objectId": rec.object_id, "status": rec.status.value,
            "attempts": rec.attempts, "error": rec.error,
            "nextAttemptAt": (format_timestamp(rec.retry_at)
                              if is_retry(rec) and rec.retry_at is not None else None)}


def run_printer(verbosity: int, now: Callable[[], datetime]) -> Callable[[InstanceRecord], None]:
    """``headrace run``'s lines on stderr: ``  @Copy_2024-01-01T00:00:00: ...``."""
    def on_status(rec: InstanceRecord) -> None:
        if shown(rec, verbosity):
            click.echo(f"  {rec.id}: {describe(rec, now())}", err=True)
    return on_status


def engine_printer(verbosity: int, output: str,
                   now: Callable[[], datetime]) -> Callable[[InstanceRecord], None]:
    """``headrace engine``'s lines: ``<time> <pipeline> <instance>: ...`` on stderr, or one
    JSON object per line on stdout under ``--output json``."""
    def on_status(rec: InstanceRecord) -> None:
        if not shown(rec, verbosity):
            return
        at = now()
        if output == "json":
            click.echo(json.dumps(record_json(rec, at)))
        else:
            click.echo(f"{format_timestamp(at)} {rec.pipeline_id} {rec.id}: "
                       f"{describe(rec, at)}", err=True)
    return on_status


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
