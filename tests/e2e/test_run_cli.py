"""``headrace run`` end to end: shell commands in real subprocesses, the SQLite store on disk,
second-scale delays and timeouts. Past 15-minute schedules make instances backfill at once."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.runtime.runner import derived_pipeline_id
from tests.e2e.cli_kit import Cli, alive, by_object, ref, shell, wait_for, write_definition


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.parametrize("schedule_type", ["cron", "timeseries"])
def test_window_runs_every_interval_with_its_scheduled_times(cli: Cli, tmp_path: Path,
                                                             schedule_type: str) -> None:
    seen = tmp_path / "seen.txt"
    definition = write_definition(
        tmp_path / "p.json",
        shell("A", f"echo #{{@scheduledStartTime}} #{{@scheduledEndTime}} >> {seen}"),
        schedule_type=schedule_type, end="2024-01-01T01:00:00")
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED"] * 4
    assert all(i["attempts"] == 1 for i in out["instances"])
    expected = [f"2024-01-01T00:{m:02d}:00 2024-01-01T{'01' if m == 45 else '00'}:"
                f"{(m + 15) % 60:02d}:00" for m in (0, 15, 30, 45)]
    assert sorted(seen.read_text().splitlines()) == expected
    assert [i["scheduledStartTime"] for i in out["instances"]] == [
        line.split()[0] for line in expected]
    assert out["pipelineId"].startswith("df-")
    assert set(out["instances"][0]) >= {"objectId", "type", "status", "scheduledStartTime",
                                        "scheduledEndTime", "attempts", "actualStartTime",
                                        "actualEndTime", "error"}


def test_explicit_window_and_resume_add_only_new_intervals(cli: Cli, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", f"echo #{{@scheduledStartTime}} >> {seen}"),
                                  end="2024-01-01T01:00:00")
    out = cli.run(definition, "--start", "2024-01-01T00:15:00", "--end", "2024-01-01T00:45:00")
    assert [i["scheduledStartTime"] for i in out["instances"]] == [
        "2024-01-01T00:15:00", "2024-01-01T00:30:00"]
    cli.run(definition)  # the whole window: the two done already are not run again
    assert sorted(seen.read_text().split()) == [
        "2024-01-01T00:00:00", "2024-01-01T00:15:00", "2024-01-01T00:30:00",
        "2024-01-01T00:45:00"]


def test_retries_succeed_on_a_later_attempt(cli: Cli, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = (f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
               "echo attempt $n; echo oops >&2; [ $n -ge 3 ]")
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", command, maximumRetries="3", retryDelay="1 seconds"))
    out = cli.run(definition)
    a = by_object(out)["A"]
    assert a["status"] == "FINISHED" and a["attempts"] == 3 and a["error"] is None
    described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                         "--object-ids", out["instances"][0]["instanceId"])
    attempts = described["pipelineObjects"][0]["attemptList"]
    assert [x["status"] for x in attempts] == ["FAILED", "FAILED", "FINISHED"]
    assert [x["exitCode"] for x in attempts] == [1, 1, 0]
    assert "exited with code 1: oops" in attempts[0]["error"]
    assert Path(attempts[2]["log"], "stdout").read_text() == "attempt 3\n"
    logs = cli("logs", out["instances"][0]["instanceId"], "--pipeline-id", out["pipelineId"],
               "--attempt", "1", "--stream", "stderr").stdout
    assert logs == "oops\n"


def test_cascade_failure_spares_the_independent_branch(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(
        tmp_path / "p.json",
        shell("Extract", "echo bad input >&2; exit 3", maximumRetries="0"),
        shell("Load", f"touch {tmp_path}/loaded", dependsOn=ref("Extract")),
        shell("Report", f"touch {tmp_path}/reported", dependsOn=ref("Load")),
        shell("Independent", f"touch {tmp_path}/independent"),
        failureAndRerunMode="cascade")
    out = cli.run(definition, check=1)
    objs = by_object(out)
    assert objs["Extract"]["status"] == "FAILED"
    assert "exited with code 3: bad input" in objs["Extract"]["error"]
    assert objs["Load"]["status"] == objs["Report"]["status"] == "CASCADE_FAILED"
    assert objs["Independent"]["status"] == "FINISHED"
    assert (tmp_path / "independent").exists() and not (tmp_path / "loaded").exists()


def test_failure_without_cascade_leaves_dependents_waiting(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", "exit 1", maximumRetries="0"),
                                  shell("B", "true", dependsOn=ref("A")))
    out = cli.run(definition, check=1)  # returns: nothing can progress
    assert by_object(out)["B"]["status"] == "WAITING_ON_DEPENDENCIES"


def test_fan_in_joins_after_three_parallel_branches(cli: Cli, tmp_path: Path) -> None:
    def branch(name: str) -> dict[str, object]:
        return shell(name, f"date +%s.%N > {tmp_path}/{name}.start; sleep 1; "
                           f"date +%s.%N > {tmp_path}/{name}.end")

    definition = write_definition(
        tmp_path / "p.json", branch("P1"), branch("P2"), branch("P3"),
        shell("Join", f"date +%s.%N > {tmp_path}/Join.start",
              dependsOn=[ref("P1"), ref("P2"), ref("P3")]))
    out = cli.run(definition)
    assert all(i["status"] == "FINISHED" for i in out["instances"])

    def read(name: str) -> float:
        return float((tmp_path / name).read_text())

    starts = [read(f"P{n}.start") for n in (1, 2, 3)]
    ends = [read(f"P{n}.end") for n in (1, 2, 3)]
    assert max(starts) < min(ends)  # all three ran at the same time
    assert read("Join.start") >= max(ends)


def test_attempt_timeout_kills_retries_then_fails_alarm_once(cli: Cli, tmp_path: Path) -> None:
    """RELIABILITY case 16."""
    alarm = {"id": "Alarm", "name": "Alarm", "type": "SnsAlarm",
             "topicArn": "arn:aws:sns:us-east-1:000000000000:ops",
             "subject": "#{node.name} failed", "message": "#{node.errorMessage}"}
    definition = write_definition(
        tmp_path / "p.json",
        shell("Hang", f"echo $$ >> {tmp_path}/pids; sleep 60", attemptTimeout="1 seconds",
              retryDelay="1 seconds", maximumRetries="1", onFail=ref("Alarm")),
        alarm)
    out = cli.run(definition, check=1)
    hang = by_object(out)["Hang"]
    assert hang["status"] == "FAILED" and hang["attempts"] == 2
    assert "timed out after 1 s" in hang["error"]
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2 and not any(alive(p) for p in pids)  # each attempt's tree was killed
    described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                         "--object-ids", hang["instanceId"])
    attempts = described["pipelineObjects"][0]["attemptList"]
    assert [a["status"] for a in attempts] == ["TIMEDOUT", "TIMEDOUT"]
    start2 = datetime.fromisoformat(attempts[1]["startTime"])
    end1 = datetime.fromisoformat(attempts[0]["endTime"])
    assert start2 - end1 >= timedelta(seconds=1)  # retryDelay honoured
    alarms = cli.alarm_lines()
    assert len(alarms) == 1
    assert alarms[0]["subject"] == "Hang failed" and "timed out" in alarms[0]["message"]


@pytest.mark.parametrize("mode", ["cascade", "none"])
def test_precondition_that_never_holds_times_out(cli: Cli, tmp_path: Path, mode: str) -> None:
    """RELIABILITY case 15: Exists on a missing file:// path."""
    node = {"id": "Input", "name": "Input", "type": "S3DataNode",
            "filePath": f"file://{tmp_path}/never-there.csv", "precondition": ref("Ready")}
    ready = {"id": "Ready", "name": "Ready", "type": "Exists", "preconditionTimeout":
             "3 seconds", "retryDelay": "1 seconds"}
    definition = write_definition(tmp_path / "p.json", node, ready,
                                  shell("Use", f"touch {tmp_path}/used", input=ref("Input")),
                                  failureAndRerunMode=mode)
    out = cli.run(definition, check=1)
    objs = by_object(out)
    assert objs["Ready"]["status"] == "FAILED"
    assert "precondition not met within 3 seconds" in objs["Ready"]["error"]
    expected = "CASCADE_FAILED" if mode == "cascade" else "WAITING_ON_DEPENDENCIES"
    assert objs["Use"]["status"] == expected
    assert not (tmp_path / "used").exists()
    described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                         "--object-ids", objs["Ready"]["instanceId"])
    [attempt] = described["pipelineObjects"][0]["attemptList"]
    events = Path(attempt["log"], "events").read_text()
    checks = [line for line in events.splitlines() if ": false" in line]
    assert 3 <= len(checks) <= 5  # one poll a second for 3 s: bounded, no busy loop


def test_lateness_fires_on_late_action_only_for_the_late_instance(cli: Cli,
                                                                  tmp_path: Path) -> None:
    # the interval starts a few seconds ahead, so process start-up does not count against
    # the deadline: the engine is waiting when the interval (cron) begins
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    late = {"id": "Late", "name": "Late", "type": "SnsAlarm", "topicArn": "arn:t",
            "subject": "#{node.name} is late", "message": "#{node.@scheduledStartTime}"}
    definition = write_definition(
        tmp_path / "p.json",
        shell("Slow", "sleep 5"),
        shell("Waits", "true", dependsOn=ref("Slow"), lateAfterTimeout="3 seconds",
              onLateAction=ref("Late")),
        shell("Prompt", "true", lateAfterTimeout="3 seconds", onLateAction=ref("Late")),
        late, start=start.strftime("%Y-%m-%dT%H:%M:%S"),
        end=(start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"))
    out = cli.run(definition)
    assert all(i["status"] == "FINISHED" for i in out["instances"])
    alarms = cli.alarm_lines()
    assert [a["subject"] for a in alarms] == ["Waits is late"]
    assert alarms[0]["message"] == start.strftime("%Y-%m-%dT%H:%M:%S")


def test_mark_finished_and_rerun_through_set_status(cli: Cli, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    runs = tmp_path / "runs"
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", f"echo A >> {runs}; test -f {flag}",
                                        maximumRetries="0"),
                                  shell("B", f"echo B >> {runs}", dependsOn=ref("A")))
    out = cli.run(definition, check=1)
    pid = out["pipelineId"]
    a_id, b_id = by_object(out)["A"]["instanceId"], by_object(out)["B"]["instanceId"]
    assert by_object(out)["B"]["status"] == "WAITING_ON_DEPENDENCIES"
    assert cli("set-status", "--pipeline-id", pid, "--object-ids", a_id, "--status",
               "MARK_FINISHED").stdout.strip() == f"MARK_FINISHED {a_id}"
    out = cli.run(definition)
    assert by_object(out)["A"]["status"] == "FINISHED" and by_object(out)["A"]["attempts"] == 1
    assert runs.read_text().split() == ["A", "B"]  # A was not run again; B ran

    flag.touch()
    cli("set-status", "--pipeline-id", pid, "--object-ids", a_id, "--status", "RERUN")
    listed = cli.json("list-runs", "--pipeline-id", pid, "--status", "waiting")
    assert [r["instanceId"] for r in listed["runs"]] == [a_id]
    out = cli.run(definition)
    assert by_object(out)["A"]["attempts"] == 2
    assert runs.read_text().split() == ["A", "B", "A"]  # only A: B is not a cascade rerun
    assert b_id in {i["instanceId"] for i in out["instances"]}


def test_rerun_with_cascade_reruns_the_cascade_failed(cli: Cli, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    definition = write_definition(tmp_path / "p.json",
                                  shell("A", f"test -f {flag}", maximumRetries="0"),
                                  shell("B", f"echo B >> {tmp_path}/b_runs",
                                        dependsOn=ref("A")),
                                  failureAndRerunMode="cascade")
    out = cli.run(definition, check=1)
    assert by_object(out)["B"]["status"] == "CASCADE_FAILED"
    flag.touch()
    cli("set-status", "--pipeline-id", out["pipelineId"], "--object-ids",
        by_object(out)["A"]["instanceId"], "--status", "rerun")
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED", "FINISHED"]
    assert (tmp_path / "b_runs").read_text() == "B\n"


def test_sigterm_interrupts_and_running_again_resumes(cli: Cli, tmp_path: Path) -> None:
    """RELIABILITY case 4."""
    started = tmp_path / "started"
    command = (f"if [ -f {started} ]; then echo second >> {tmp_path}/log; exit 0; fi; "
               f"echo $$ > {started}; sleep 30")
    definition = write_definition(tmp_path / "p.json", shell("Long", command),
                                  shell("Quick", f"echo quick >> {tmp_path}/quick"))
    proc = cli.spawn("run", str(definition), "--output", "json")
    wait_for(lambda: started.exists() and started.read_text().strip() != "", what="start")
    pid = derived_pipeline_id(str(definition))

    def quick_recorded() -> bool:  # its command ran AND the engine noted it FINISHED
        runs = cli.json("list-runs", "--pipeline-id", pid)["runs"]
        return any(r["objectId"] == "Quick" and r["status"] == "FINISHED" for r in runs)

    wait_for(quick_recorded, what="Quick FINISHED")
    child = int(started.read_text())
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    out = json.loads(stdout)
    assert out["interrupted"] is True
    long_ = by_object(out)["Long"]
    assert long_["status"] == "WAITING_FOR_RUNNER"
    assert not alive(child)  # the command's process tree was stopped
    described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                         "--object-ids", long_["instanceId"])
    assert [a["status"] for a in described["pipelineObjects"][0]["attemptList"]] == [
        "INTERRUPTED"]
    out = cli.run(definition)
    objs = by_object(out)
    assert objs["Long"]["status"] == "FINISHED" and objs["Long"]["attempts"] == 2
    assert (tmp_path / "quick").read_text() == "quick\n"  # finished work is not repeated


def test_usage_and_definition_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"objects": [{"id": "A", "type": "ShellCommandActivity", '
                   '"schedule": {"ref": "Missing"}}]}')
    result = cli("run", str(bad), check=2)
    assert "Missing" in result.stdout + result.stderr
    result = cli("run", str(tmp_path / "absent.json"), check=2)
    assert "absent.json" in result.stdout + result.stderr


def test_text_output_reports_progress_and_summary(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json", shell("A", "true"),
                                  shell("B", "exit 2", maximumRetries="0"))
    result = cli("run", str(definition), check=1)
    assert "@A_2024-01-01T00:00:00: RUNNING" in result.stderr
    assert ("@B_2024-01-01T00:00:00: FAILED after 1 attempt(s): command exited with code 2"
            in result.stderr)
    summary, logs = result.stdout.strip().splitlines()[-2:]
    assert summary.endswith("1 FAILED, 1 FINISHED")
    assert logs.startswith("logs: headrace logs @B_2024-01-01T00:00:00 --pipeline-id df-")
    assert f"(all under {tmp_path}/state/logs)" in logs


def test_default_store_location_is_under_xdg_data_home(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json", shell("A", "true"))
    env = cli.env()
    del env["HEADRACE_STORE"]
    import subprocess

    from tests.e2e.cli_kit import HEADRACE

    result = subprocess.run([HEADRACE, "run", str(definition)], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xdg" / "headrace" / "headrace.db").exists()
    assert os.listdir(tmp_path / "xdg" / "headrace" / "logs")


def test_script_uri_arguments_output_targets_and_log_uri(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "greet.sh"
    script.write_text('#!/bin/sh\necho "hello $1 and $2"\necho "to stderr" >&2\n')
    logs = tmp_path / "pipeline-logs"
    definition = write_definition(
        tmp_path / "p.json",
        shell("Greet", None, scriptUri=f"file://{script}",
              scriptArgument=["#{@scheduledStartTime}", "world"],
              stdout=f"file://{tmp_path}/out/greet.txt", stderr=f"{tmp_path}/out/err.txt",
              precondition=ref("Ready")),
        {"id": "Ready", "name": "Ready", "type": "ShellCommandPrecondition",
         "command": f"test -f {script}"},
        pipelineLogUri=f"file://{logs}")
    out = cli.run(definition)
    assert all(i["status"] == "FINISHED" for i in out["instances"])
    assert (tmp_path / "out/greet.txt").read_text() == "hello 2024-01-01T00:00:00 and world\n"
    assert (tmp_path / "out/err.txt").read_text() == "to stderr\n"
    greet = by_object(out)["Greet"]
    described = cli.json("describe-objects", "--pipeline-id", out["pipelineId"],
                         "--object-ids", greet["instanceId"])
    log_dir = Path(described["pipelineObjects"][0]["attemptList"][0]["log"])
    # <pipelineLogUri>/<pipelineId>/<componentId>/<instanceId>/<attemptId>/
    assert log_dir.relative_to(logs).parts == (
        out["pipelineId"], "Greet", greet["instanceId"], f"{greet['instanceId']}_Attempt=1")
    assert (log_dir / "stdout").read_text() == "hello 2024-01-01T00:00:00 and world\n"


def test_secrets_stay_out_of_errors_events_and_output(cli: Cli, tmp_path: Path) -> None:
    secret = "hunter2-very-secret"
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": ref("S")},
        {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
         "startDateTime": "2024-01-01T00:00:00", "endDateTime": "2024-01-01T00:15:00"},
        shell("A", "echo connecting with #{*myPassword} >&2; exit 3", maximumRetries="0")],
        "parameters": [{"id": "*myPassword", "type": "String", "default": secret}]}
    definition = tmp_path / "p.json"
    definition.write_text(json.dumps(body))
    result = cli("run", str(definition), "--output", "json", check=1)
    out = json.loads(result.stdout)
    a = by_object(out)["A"]
    assert a["error"] == "command exited with code 3: connecting with ****"
    assert secret not in result.stdout + result.stderr
    described = cli("describe-objects", "--pipeline-id", out["pipelineId"], "--object-ids",
                    a["instanceId"], "--output", "json").stdout
    assert secret not in described
    events = cli("logs", a["instanceId"], "--pipeline-id", out["pipelineId"], "--stream",
                 "events").stdout
    assert "running command" in events and "****" in events and secret not in events
    # the command's own stderr is its own: kept as it wrote it
    stderr = cli("logs", a["instanceId"], "--pipeline-id", out["pipelineId"], "--stream",
                 "stderr").stdout
    assert secret in stderr
