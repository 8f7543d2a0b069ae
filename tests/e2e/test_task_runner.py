"""The Task Runner verbs (issue 15) on the worker leasing (issue 14): a small task runner
written only against boto3 (PollForTask, ReportTaskProgress, SetTaskStatus) runs the
ShellCommandActivity of a worker group end to end, next to a ``headrace worker`` of the same
group; a cancelled instance is seen as ``canceled`` by the runner's next ReportTaskProgress."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.api_kit import Server, server_env, start_server
from tests.e2e.cli_kit import HEADRACE, wait_for
from tests.e2e.worker_kit import definition, shell_step

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path, pg_database: str) -> Iterator[Server]:
    srv = start_server(tmp_path / "serve", "--poll-interval", "0.2", "--task-poll-seconds",
                       "1", store=pg_database)
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log_text()


def fields_of(obj: dict[str, Any]) -> dict[str, str]:
    return {f["key"]: f.get("stringValue", f.get("refValue", "")) for f in obj["fields"]}


class TaskRunner:
    """What a user's task runner does, in boto3 only: poll its group, run the command of the
    ShellCommandActivity it was given, report progress while it runs, set the status."""

    def __init__(self, client: Any, group: str, hostname: str) -> None:
        self.client, self.group, self.hostname = client, group, hostname

    def poll(self) -> dict[str, Any] | None:
        task = self.client.poll_for_task(workerGroup=self.group, hostname=self.hostname)
        return task.get("taskObject")

    def command_of(self, task: dict[str, Any]) -> str:
        for obj in task["objects"].values():
            fields = fields_of(obj)
            if fields.get("type") == "ShellCommandActivity":
                return fields["command"]
        raise AssertionError(f"no ShellCommandActivity in {task}")

    def run(self, task: dict[str, Any], env: dict[str, str]) -> bool:
        """Run the task's command; False when it was cancelled meanwhile."""
        proc = subprocess.Popen(["bash", "-c", self.command_of(task)], env=env)
        try:
            while proc.poll() is None:
                progress = self.client.report_task_progress(taskId=task["taskId"])
                if progress["canceled"]:
                    proc.kill()
                    proc.wait()
                    self.client.set_task_status(taskId=task["taskId"], taskStatus="FAILED",
                                                errorMessage="canceled")
                    return False
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.kill()
        if proc.returncode == 0:
            self.client.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
        else:
            self.client.set_task_status(taskId=task["taskId"], taskStatus="FAILED",
                                        errorMessage=f"exit {proc.returncode}")
        return True


def _activate(client: Any, path: Path, name: str) -> str:
    import json

    body = json.loads(path.read_text())
    objects = [{"id": o["id"], "name": o["name"], "fields": [
        {"key": k, "refValue": v["ref"]} if isinstance(v, dict) else
        {"key": k, "stringValue": str(v)} for k, v in o.items() if k not in ("id", "name")]}
        for o in body["objects"]]
    pid = client.create_pipeline(name=name, uniqueId=name)["pipelineId"]
    put = client.put_pipeline_definition(pipelineId=pid, pipelineObjects=objects)
    assert not put["errored"], put
    client.activate_pipeline(pipelineId=pid, startTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
    return str(pid)


def _instances(client: Any, pid: str) -> dict[str, dict[str, str]]:
    ids = client.query_objects(pipelineId=pid, sphere="INSTANCE")["ids"]
    if not ids:
        return {}
    described = client.describe_objects(pipelineId=pid, objectIds=ids)["pipelineObjects"]
    return {o["id"]: fields_of(o) for o in described}


def test_a_boto3_task_runner_and_a_worker_share_a_group(server: Server, tmp_path: Path,
                                                        pg_database: str) -> None:
    client = server.client()
    out = tmp_path / "out"
    out.mkdir()
    path = definition(tmp_path / "p.json", shell_step(
        "Step", f"echo ran >> {out}/#{{@scheduledStartTime}}.txt", workerGroup="etl",
        maxActiveInstances="10"), instances=6)
    pid = _activate(client, path, "shared")
    runner = TaskRunner(client, "etl", "runner-host")
    client.report_task_runner_heartbeat(taskrunnerId="runner-1", workerGroup="etl",
                                        hostname="runner-host")
    task = None
    deadline = time.monotonic() + 60
    while task is None and time.monotonic() < deadline:
        task = runner.poll()
    assert task is not None and task["pipelineId"] == pid
    assert task["attemptId"].endswith("_Attempt=1")
    assert runner.run(task, server_env(tmp_path, pg_database))
    # a headrace worker of the same group takes the rest
    worker = subprocess.Popen([HEADRACE, "worker", "--store", pg_database, "--worker-group",
                               "etl", "--worker-id", "w-etl", "--lease-seconds", "3"],
                              env=server_env(tmp_path, pg_database), stderr=subprocess.PIPE,
                              text=True)
    try:
        def all_finished() -> bool:
            statuses = [f["@status"] for f in _instances(client, pid).values()
                        if f.get("@componentParent") == "Step"]
            return statuses.count("FINISHED") == 6

        wait_for(all_finished, 90, "every instance to finish")
    finally:
        worker.terminate()
        worker.communicate(timeout=60)
    files = sorted(out.iterdir())
    assert len(files) == 6 and all(f.read_text() == "ran\n" for f in files)
    instances = _instances(client, pid)
    hosts = set()
    for fields in instances.values():
        attempt = client.describe_objects(pipelineId=pid, objectIds=[fields["@headAttempt"]])
        hosts.add(fields_of(attempt["pipelineObjects"][0])["@hostname"])
    assert hosts == {"runner-host", "w-etl"}
    listed = {w["workerId"] for w in _list_workers(pg_database, tmp_path)}
    assert {"runner-1", "w-etl"} <= listed


def _list_workers(store: str, root: Path) -> list[dict[str, Any]]:
    import json

    result = subprocess.run([HEADRACE, "list-workers", "--store", store, "--output", "json"],
                            capture_output=True, text=True, env=server_env(root, store),
                            check=True)
    return list(json.loads(result.stdout))


def test_a_cancelled_task_is_seen_as_canceled_by_the_next_progress_report(
        server: Server, tmp_path: Path, pg_database: str) -> None:
    client = server.client()
    path = definition(tmp_path / "p.json", shell_step("Long", "sleep 600",
                                                      workerGroup="etl"))
    pid = _activate(client, path, "cancel")
    runner = TaskRunner(client, "etl", "runner-host")
    task = None
    deadline = time.monotonic() + 60
    while task is None and time.monotonic() < deadline:
        task = runner.poll()
    assert task is not None
    [(instance_id, fields)] = [(i, f) for i, f in _instances(client, pid).items()
                               if f.get("@componentParent") == "Long"]
    assert fields["@status"] == "RUNNING"
    assert client.report_task_progress(taskId=task["taskId"])["canceled"] is False
    client.set_status(pipelineId=pid, objectIds=[instance_id], status="TRY_CANCEL")
    assert runner.run(task, server_env(tmp_path, pg_database)) is False  # saw canceled

    def canceled() -> bool:
        return _instances(client, pid)[instance_id]["@status"] == "CANCELED"

    wait_for(canceled, 60, "the instance to be CANCELED")
    # the task is gone: a late report is TaskNotFound
    with pytest.raises(client.exceptions.TaskNotFoundException):
        client.report_task_progress(taskId=task["taskId"])
