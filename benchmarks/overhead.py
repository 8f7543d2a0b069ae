"""Engine overhead: N no-op ShellCommandActivity instances, and N idle precondition polls.

* no-ops: ``headrace run`` end to end (start, plan, store, N x fork/exec ``true``, exit);
  instances per second = N / wall time; CPU seconds and peak RSS from ``wait4``.
* idle polls: N instances whose input waits on an ``Exists`` that never holds, all polling at
  once (``--max-concurrency`` above N). Once every poll has started (counted in the store),
  the process's CPU time is read from ``/proc`` at the start and end of a window: the cost of
  keeping N polls alive and checking each every ``retryDelay``, as a share of one core.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import config, pipelines
from benchmarks.measure import run


@dataclass
class NoopResult:
    instances: int
    seconds: float
    instances_per_s: float
    cpu_seconds: float
    peak_rss_mb: float
    finished: int


@dataclass
class PollResult:
    instances: int
    retry_delay: str
    warmup_seconds: float
    window_seconds: float
    cpu_seconds_in_window: float
    core_percent: float
    peak_rss_mb: float


def noop(instances: int, env: dict[str, str], *, max_active: int = 32) -> NoopResult:
    work = config.CACHE / "overhead"
    definition = pipelines.write(pipelines.noop_definition(instances, max_active),
                                 work / "noop.json")
    store = work / "noop.db"
    for stale in work.glob("noop.db*"):
        stale.unlink()
    m = run(pipelines.run_argv(definition, store, "--max-concurrency", str(max_active),
                               "--pipeline-id", "df-bench-noop"), env, timeout=1800)
    statuses = [i["status"] for i in json.loads(m.stdout)["instances"]]
    return NoopResult(instances, round(m.seconds, 2), round(instances / m.seconds, 1),
                      round(m.cpu_seconds, 2), round(m.peak_rss_mb, 1),
                      statuses.count("FINISHED"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _count(store: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


def idle_polls(instances: int, env: dict[str, str], *, retry_delay: str = "30 seconds",
               window: float = 60.0, warmup_limit: float = 300.0) -> PollResult:
    work = config.CACHE / "overhead"
    missing = work / "never-there.csv"
    definition = pipelines.write(
        pipelines.idle_precondition_definition(instances, missing, retry_delay),
        work / "polls.json")
    store = work / "polls.db"
    for stale in work.glob("polls.db*"):
        stale.unlink()
    argv = pipelines.run_argv(definition, store, "--max-concurrency", str(instances + 16),
                              "--pipeline-id", "df-bench-polls")
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    running = ("SELECT COUNT(*) FROM hr_attempts a JOIN hr_instances i ON "
               "a.pipeline_id = i.pipeline_id AND a.instance_id = i.id "
               "WHERE i.category = 'precondition' AND a.status = 'RUNNING'")
    try:
        while _count(store, running) < instances:
            if proc.poll() is not None:
                raise RuntimeError(f"headrace run exited early ({proc.returncode})")
            if time.perf_counter() - started > warmup_limit:
                raise RuntimeError(f"only {_count(store, running)} of {instances} polls "
                                   f"started within {warmup_limit:.0f} s")
            time.sleep(0.5)
        warmup = time.perf_counter() - started
        cpu1, t1 = _cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(window)
        cpu2, t2 = _cpu_seconds(proc.pid), time.perf_counter()
        peak = _peak_rss(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    used = cpu2 - cpu1
    return PollResult(instances, retry_delay, round(warmup, 1), round(t2 - t1, 1),
                      round(used, 2), round(100 * used / (t2 - t1), 2),
                      round(peak / 1e6, 1))


def as_dict(result: NoopResult | PollResult) -> dict[str, object]:
    return asdict(result)
