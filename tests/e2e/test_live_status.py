"""Retries do not wait in silence (issue 11, defect 5): under the default 10-minute
``retryDelay`` a failed attempt's reason is printed as it happens, with the time of the next
attempt, by ``run`` and by ``engine``; the engine prints a line per state change (``-q``
failures only, ``-v`` data nodes too; JSON lines under ``--output json``)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, Lines, ref, shell, write_definition

FAILED_LINE = re.compile(
    r"@Bad_2024-01-01T00:00:00: attempt 1 failed: command exited with code 3: bad input; "
    r"attempt 2 at (\S+) \(in 10 min\)$")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def failing(tmp_path: Path) -> Path:
    """Bad exits 3 under the default retryDelay (10 minutes); Next waits on it."""
    return write_definition(
        tmp_path / "p.json", shell("Bad", "echo bad input >&2; exit 3"),
        shell("Next", "true", dependsOn=ref("Bad")),
        {"id": "Out", "name": "Out", "type": "S3DataNode", "directoryPath": str(tmp_path)},
        shell("Writes", "true", output=ref("Out")))


def stop(proc: subprocess.Popen[str], lines: Lines, sig: int = signal.SIGINT) -> int:
    """Signal the child, wait for it, close its pipes; its exit code."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    lines.close()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None and not stream.closed:
            stream.close()
    return proc.returncode


def next_attempt(line: str) -> datetime:
    match = FAILED_LINE.search(line)
    assert match, line
    return datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def test_run_prints_each_failed_attempt_and_the_next_ones_time(cli: Cli,
                                                               tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    proc = cli.spawn("run", str(failing(tmp_path)))
    stderr = Lines(proc.stderr)
    line = stderr.wait(FAILED_LINE.search, what="the failed attempt")
    assert before + timedelta(minutes=10) <= next_attempt(line) <= datetime.now(UTC) + \
        timedelta(minutes=10)
    assert stop(proc, stderr) == 130  # nothing else to wait for but the retry
    assert not any("Out_" in seen for seen in stderr.seen)  # data nodes only with -v


def test_run_quiet_prints_failures_only(cli: Cli, tmp_path: Path) -> None:
    proc = cli.spawn("run", str(failing(tmp_path)), "-q")
    stderr = Lines(proc.stderr)
    stderr.wait(FAILED_LINE.search, what="the failed attempt")
    assert stop(proc, stderr) == 130
    assert not [s for s in stderr.seen if "RUNNING" in s or "FINISHED" in s], stderr.seen


def test_engine_prints_state_changes_and_failures(cli: Cli, tmp_path: Path) -> None:
    pid = cli.json("create-pipeline", "--name", "n", "--unique-id", "n")["pipelineId"]
    cli("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition",
        str(failing(tmp_path)))
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    proc = cli.spawn("engine", "--poll-interval", "0.2", "-v")
    stderr = Lines(proc.stderr)
    try:
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
        stderr.wait_all(
            lambda s: re.fullmatch(f"{stamp} {pid} @Writes_2024-01-01T00:00:00: FINISHED",
                                   s) is not None,
            lambda s: re.match(f"{stamp} {pid} ", s) is not None and bool(FAILED_LINE.search(s)),
            lambda s: "@Out_2024-01-01T00:00:00: FINISHED" in s,  # a data node: -v
            what="Writes FINISHED, Bad's failure, Out with -v")
    finally:
        assert stop(proc, stderr, signal.SIGTERM) == 130
    assert any(f"{pid} @Bad_2024-01-01T00:00:00: RUNNING (attempt 1)" in s
               for s in stderr.seen)


def test_engine_json_lines_and_quiet(cli: Cli, tmp_path: Path) -> None:
    pid = cli.json("create-pipeline", "--name", "n", "--unique-id", "n")["pipelineId"]
    cli("put-pipeline-definition", "--pipeline-id", pid, "--pipeline-definition",
        str(failing(tmp_path)))
    cli("activate-pipeline", "--pipeline-id", pid, "--allow-backfill")
    proc = cli.spawn("engine", "--poll-interval", "0.2", "-q", "--output", "json")
    stdout = Lines(proc.stdout)
    try:
        started = json.loads(stdout.wait(lambda s: '"started"' in s, what="started"))
        assert started["event"] == "started"
        line = stdout.wait(lambda s: '"@Bad_2024-01-01T00:00:00"' in s, what="Bad's failure")
    finally:
        assert stop(proc, stdout, signal.SIGTERM) == 130
    record = json.loads(line)
    assert record["status"] == "WAITING_FOR_RUNNER" and record["attempts"] == 1
    assert record["error"] == "command exited with code 3: bad input"
    at = datetime.strptime(record["nextAttemptAt"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert at > datetime.now(UTC) + timedelta(minutes=9)
    assert len(stdout.seen) == 2, stdout.seen  # -q: nothing but the failure after "started"
