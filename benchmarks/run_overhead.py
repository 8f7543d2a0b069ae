"""Engine overhead: ``headrace run`` of a pipeline of N no-op instances (``true``).

    .venv/bin/python benchmarks/run_overhead.py [--instances 1000] [--objects 10]

Builds a definition of ``--objects`` ShellCommandActivities on a 15-minute schedule with
enough past intervals for ``--instances`` instances in all, runs it once on a fresh SQLite
store, and prints instances per second (wall time of the whole command, start-up included) and
the peak RSS of the headrace process (from ``getrusage`` of the child), with the CPU time it
and its commands used and the load average (a busy machine lowers the rate, not the CPU).
Not a test: nothing is asserted; numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def definition(instances: int, objects: int) -> dict[str, object]:
    intervals = -(-instances // objects)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    end = start + timedelta(minutes=15 * intervals)
    fmt = "%Y-%m-%dT%H:%M:%S"
    body: list[dict[str, object]] = [
        {"id": "Default", "name": "Default", "scheduleType": "cron", "schedule": {"ref": "S"},
         "workerGroup": "bench"},
        {"id": "S", "name": "S", "type": "Schedule", "period": "15 minutes",
         "startDateTime": start.strftime(fmt), "endDateTime": end.strftime(fmt)},
    ]
    body += [{"id": f"Noop{n}", "name": f"Noop{n}", "type": "ShellCommandActivity",
              "command": "true"} for n in range(objects)]
    return {"objects": body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--max-concurrency", type=int, default=32)
    args = parser.parse_args()
    headrace = str(Path(sys.executable).with_name("headrace"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "pipeline.json")
        path.write_text(json.dumps(definition(args.instances, args.objects)))
        env = {**os.environ, "HEADRACE_STORE": f"sqlite:///{tmp}/store.db",
               "HEADRACE_NOTIFIER": "log"}
        before = time.perf_counter()
        result = subprocess.run([headrace, "run", str(path), "--output", "json",
                                 "--max-concurrency", str(args.max_concurrency)],
                                env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - before
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime
    if result.returncode != 0:
        sys.exit(f"headrace run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    done = [i for i in json.loads(result.stdout)["instances"] if i["status"] == "FINISHED"]
    print(f"{len(done)} instances in {elapsed:.2f} s: {len(done) / elapsed:.0f} instances/s; "
          f"CPU {cpu:.2f} s ({1000 * cpu / len(done):.1f} ms per instance, the commands "
          f"included); peak RSS {peak_kib / 1024:.0f} MiB; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
