"""Driving the ``headrace`` CLI in subprocesses: a private store, log root and alarm file per
test, definition files written from Python, JSON output parsed."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADRACE = str(Path(sys.executable).with_name("headrace"))


@dataclass
class Cli:
    root: Path

    @property
    def store(self) -> str:
        return f"sqlite:///{self.root}/state/store.db"

    @property
    def alarms(self) -> Path:
        """Where the log notifier appends SnsAlarm messages (beside the store)."""
        return self.root / "state" / "logs" / "alarms.jsonl"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HEADRACE_STORE": self.store, "HEADRACE_NOTIFIER": "log",
                    "XDG_DATA_HOME": str(self.root / "xdg"), "PYTHONUNBUFFERED": "1"})
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS"):
            env.pop(name, None)
        return env

    def __call__(self, *args: str, timeout: float = 60,
                 check: int | None = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([HEADRACE, *args], capture_output=True, text=True,
                                timeout=timeout, env=self.env(), cwd=self.root, check=False)
        if check is not None and result.returncode != check:
            raise AssertionError(f"headrace {' '.join(args)} exited {result.returncode}, "
                                 f"expected {check}\nstdout:\n{result.stdout}\nstderr:\n"
                                 f"{result.stderr}")
        return result

    def json(self, *args: str, check: int | None = 0, timeout: float = 60) -> Any:
        return json.loads(self(*args, "--output", "json", check=check, timeout=timeout).stdout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([HEADRACE, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(),
                                cwd=self.root)

    def run(self, definition: Path, *args: str, check: int | None = 0) -> dict[str, Any]:
        """``headrace run DEFINITION --output json``; returns the parsed output."""
        return self.json("run", str(definition), *args, check=check)

    def alarm_lines(self) -> list[dict[str, Any]]:
        if not self.alarms.exists():
            return []
        return [json.loads(line) for line in self.alarms.read_text().splitlines() if line]


def write_definition(path: Path, *objects: dict[str, Any], period: str = "15 minutes",
                     start: str = "2024-01-01T00:00:00", end: str = "2024-01-01T00:15:00",
                     schedule_type: str = "cron", **default: Any) -> Path:
    """A definition file: Default (schedule S + ``default``), Schedule S, ``objects``."""
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": schedule_type,
         "schedule": {"ref": "S"}, **default},
        {"id": "S", "name": "S", "type": "Schedule", "period": period,
         "startDateTime": start, "endDateTime": end},
        *objects]}
    path.write_text(json.dumps(body, indent=2))
    return path


def shell(object_id: str, command: str | None, **fields: Any) -> dict[str, Any]:
    """A ShellCommandActivity (``command`` None: set ``scriptUri`` in ``fields``)."""
    body = {"id": object_id, "name": object_id, "type": "ShellCommandActivity",
            "workerGroup": "local", **fields}
    if command is not None:
        body["command"] = command
    return body


def ref(object_id: str) -> dict[str, str]:
    return {"ref": object_id}


def by_object(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``run --output json`` instances keyed by object id (one interval per object)."""
    return {i["objectId"]: i for i in output["instances"]}


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[str, str]:
    """Signal a child (unless it has exited), wait for it, kill it if it outlives 30 s; what
    it printed (stdout, stderr) when its pipes were not taken by a :class:`Lines`."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out or "", err or ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie has exited
        return stat.read_text().split()[2] != "Z"
    return True


class Lines:
    """The lines of a child's stream, read by a thread as they come, so a test can wait for
    one with a deadline (a blocking readline would hang the test instead of failing it)."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Once the child has exited: the rest of the stream is read, and it is closed."""
        self._thread.join(timeout=30)
        self._stream.close()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait(self, predicate: Callable[[str], bool], timeout: float = 30,
             what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
            if line is None or left <= 0:
                raise AssertionError(f"no line {what or predicate} in:\n" + "\n".join(self.seen))
            if line:
                self.seen.append(line)
                if predicate(line):
                    return line

    def wait_all(self, *predicates: Callable[[str], bool], timeout: float = 30,
                 what: str = "") -> None:
        """Wait until each predicate has matched a line, in any order."""
        def done(_: str) -> bool:
            return all(any(p(seen) for seen in self.seen) for p in predicates)

        if not self.seen or not done(""):
            self.wait(done, timeout, what)
