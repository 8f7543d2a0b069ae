"""``python -m benchmarks.validation``: how validation time grows with the size of a definition.

Generates definitions of N and 10 x N objects (default 1,000 and 10,000) in three shapes that
used to cost more than linear time: a chain of ``parent`` references (each object inherits its
command from the one before), a chain of ``dependsOn`` references, and a flat definition whose
every object has an expression and a reference. Each is read and validated in this process
(``engine.definition.load``, as ``headrace validate`` does) ``--runs`` times; the table gives the
median seconds and the ratio of the large to the small (10 means linear). The large
definitions must validate in under 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.definition import load

DEFAULT = {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "Daily"},
           "workerGroup": "wg", "failureAndRerunMode": "cascade"}
SCHEDULE = {"id": "Daily", "type": "Schedule", "period": "1 day",
            "startDateTime": "2030-01-01T00:00:00"}
LIMIT_SECONDS = 2.0


def parent_chain(n: int) -> list[dict[str, Any]]:
    first = {"id": "A0", "type": "ShellCommandActivity",
             "command": "echo #{myGreeting} #{@scheduledStartTime}"}
    return [first, *({"id": f"A{i}", "parent": {"ref": f"A{i - 1}"}, "myIndex": str(i)}
                     for i in range(1, n))]


def depends_chain(n: int) -> list[dict[str, Any]]:
    return [{"id": f"A{i}", "type": "ShellCommandActivity", "command": f"echo {i}",
             **({"dependsOn": {"ref": f"A{i - 1}"}} if i else {})} for i in range(n)]


def flat(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        out.append({"id": f"Node{i}", "type": "S3DataNode",
                    "directoryPath": "s3://bucket/#{format(@scheduledStartTime,'YYYY-MM-dd')}"})
        out.append({"id": f"Copy{i}", "type": "ShellCommandActivity", "stage": "false",
                    "command": "cp #{input.directoryPath} /tmp", "input": {"ref": f"Node{i}"}})
    return out


SHAPES: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "parent chain": parent_chain, "dependsOn chain": depends_chain,
    "flat, expressions": flat}


def measure(objects: list[dict[str, Any]], runs: int, folder: Path) -> float:
    """Median seconds to read and validate the definition from a file."""
    path = folder / f"definition-{len(objects)}.json"
    path.write_text(json.dumps({"objects": [DEFAULT, SCHEDULE, *objects],
                                "parameters": [{"id": "myGreeting", "default": "hello"}]}))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        _, report = load(str(path))
        times.append(time.perf_counter() - started)
        if report.errors:
            raise SystemExit(f"the generated definition is refused: {report.errors[0]}")
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1_000, help="the small size (N)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    small, large = args.objects, args.objects * 10
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in SHAPES.items():
            t_small = measure(shape(small), args.runs, Path(tmp))
            t_large = measure(shape(large), args.runs, Path(tmp))
            rows.append({"shape": name, "small": small, "large": large,
                         "small_seconds": round(t_small, 3), "large_seconds": round(t_large, 3),
                         "ratio": round(t_large / t_small, 1),
                         "under_limit": t_large < LIMIT_SECONDS})
    if args.output == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'shape':<20} {'N':>7} {'s':>7} {'10N':>7} {'s':>7} {'ratio':>6}  (10 = linear)")
        for r in rows:
            print(f"{r['shape']:<20} {r['small']:>7,} {r['small_seconds']:>7.3f} "
                  f"{r['large']:>7,} {r['large_seconds']:>7.3f} {r['ratio']:>6.1f}"
                  f"{'' if r['under_limit'] else '  OVER 2 s'}")
    return 0 if all(r["under_limit"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
