"""``python -m benchmarks``: copy throughput and engine overhead against native tools.

Starts the loopback servers (``python -m tests.services up``), generates the data once per size
(cached), runs every path several times alternating headrace and the native baseline, then the
peers, the engine overhead, the memory check (N/5 and N rows) and the knob sweeps, and prints
the tables. ``--quick`` is a small version that finishes in under two minutes. The servers this
run started are stopped at the end (also after a failure) unless ``--keep-servers``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from benchmarks import config, data, overhead, partitions, report, runner, sweeps
from benchmarks.measure import CommandFailed, run
from benchmarks.paths import Builder, choose

#: Every path, measured at a small and a full size (rows N/5 and N; objects 128 MiB and the
#: full object size; DynamoDB items 20k and the full count).
MEMORY_PATHS = ("pg-s3", "s3-pg", "mysql-s3", "s3-mysql", "pg-mysql", "mysql-pg", "s3-s3-big",
                "s3-s3-many", "file-s3", "s3-file", "ddb-s3", "s3-ddb")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small data, one run, no peers or sweeps (under two minutes)")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows in the SQL table (default 2,000,000; quick: 50,000)")
    parser.add_argument("--runs", type=int, default=None,
                        help="measured runs per contender (default 3; quick: 1)")
    parser.add_argument("--peer-runs", type=int, default=1, help="runs of sling and dlt")
    parser.add_argument("--only", default=None,
                        help="comma-separated path keys (pg-s3,s3-pg,mysql-s3,s3-mysql,"
                             "pg-mysql,mysql-pg,s3-s3-big,s3-s3-many,file-s3,s3-file,ddb-s3,"
                             "s3-ddb); 'none' runs no copy path")
    parser.add_argument("--no-peers", action="store_true", help="skip sling and dlt")
    parser.add_argument("--sweeps", choices=["yes", "no"], default=None,
                        help="run the knob sweeps (default: yes, quick: no)")
    parser.add_argument("--sweep-runs", type=int, default=1)
    parser.add_argument("--sweep-only", default=None,
                        help="comma-separated words; run only the sweeps whose name contains "
                             "one of them (e.g. 'part size,range size')")
    parser.add_argument("--sweep-values", default=None,
                        help="comma-separated knob values (bytes for sizes) replacing every "
                             "selected sweep's own list, e.g. 5242880,8388608")
    parser.add_argument("--overhead", choices=["yes", "no"], default="yes")
    parser.add_argument("--memory", choices=["yes", "no"], default=None,
                        help="peak RSS of every path at a small and the full size "
                             "(default: yes, quick: no)")
    parser.add_argument("--instances", type=int, default=None,
                        help="instances for the overhead runs (default 1000; quick 200)")
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.add_argument("--partitions", choices=["yes", "no"], default=None,
                        help="measure --partitions on the PostgreSQL and MySQL sources against "
                             "the native pipe (default: yes, no with --quick)")
    parser.add_argument("--partition-values", default="1,2,4,8")
    parser.add_argument("--keep-servers", action="store_true",
                        help="leave the servers this run started running (default: stop them "
                             "at the end, also after a failure)")
    parser.add_argument("--save", default=None,
                        help="also write the JSON results to this file "
                             "(default .bench-cache/results-<time>.json)")
    return parser.parse_args(argv)


def _log(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


@contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def compile_sources() -> None:
    """Byte-compile the project's modules first, as ``pip install`` does for an installed
    headrace: with ``PYTHONDONTWRITEBYTECODE`` set (it is on some machines) every measured
    process would otherwise compile ~100 modules from source at start-up (py-spy: ~5% of a
    PostgreSQL -> S3 copy's samples at 1M rows)."""
    import compileall

    for package in ("engine", "connectors"):
        compileall.compile_dir(str(config.ROOT / package), quiet=1)


def services_up(env: dict[str, str]) -> list[str]:
    """Start the loopback servers that are not running (the project's service code, as
    ``python -m tests.services up`` does); returns the keys of those this run started. When
    one fails to start, those it did start are stopped again before it gives up."""
    from tests.services import ServiceError, down, up
    from tests.services.orchestrate import select

    keys = config.SERVICES.split(",")
    _log("starting the loopback servers (tests.services up)")
    with _environ(env):
        running = {s.key for s in select(keys) if s.running_pid() is not None}
        try:
            return up(keys, log=_log).launched
        except ServiceError as exc:
            down([k for k in keys if k not in running], log=_log)
            raise SystemExit(f"benchmarks: the servers did not start:\n{str(exc)[-2000:]}") \
                from None


def services_down(keys: list[str], env: dict[str, str]) -> None:
    """Stop the servers this run started (SeaweedFS alone keeps ~45% of a core busy)."""
    from tests.services import down

    if keys:
        _log(f"stopping the servers this run started: {', '.join(keys)} (--keep-servers "
             "keeps them)")
        with _environ(env):
            down(keys, log=_log)


def machine() -> dict[str, Any]:
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = platform.processor() or ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30), "cpu": cpu,
            "python": platform.python_version(), "os": platform.platform()}


def memory_check(rows: int, env: dict[str, str], keys: list[str],
                 full: data.Sizes) -> list[dict[str, Any]]:
    """Peak RSS of ``headrace copy`` on the same paths at a small and at the full size.

    Rows: N/5 and N. Objects: the quick run's 128 MiB (100 x 1 MiB) and the full ones.
    DynamoDB: 20,000 items (or fewer) and the full count. Peak memory must not follow the size.
    """
    small = data.Sizes.for_run(max(1000, rows // 5), quick=True)
    points = []
    for label, sizes in (("small", small), ("full", full)):
        data.ensure_rows(sizes.rows, env)
        if any(k.startswith(("s3-s3", "file-", "s3-file")) for k in keys):
            data.ensure_objects(sizes, env)
        if any("ddb" in k for k in keys):
            data.ensure_items(sizes.items, env)
        builder = Builder(sizes, env)
        for path in choose(builder.all(), ",".join(keys)):
            contender = path.get("headrace copy")
            if contender is None:
                continue
            point: dict[str, Any] = {"path": path.key, "size": label, "rows": path.rows,
                                     "bytes": path.nbytes}
            try:
                if contender.setup:
                    contender.setup()
                m = run(contender.argv, env)
                point.update(seconds=round(m.seconds, 2), peak_rss_mb=round(m.peak_rss_mb, 1))
            except (CommandFailed, RuntimeError) as exc:
                point["error"] = str(exc).splitlines()[0][:200]
            _log(f"memory {path.key} ({label}: {path.rows:,} rows, {path.nbytes / 1e6:,.0f} MB):"
                 f" {point.get('peak_rss_mb')} MB")
            points.append(point)
            data.reclaim(env)
    return points


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()

    env = config.Env.build().values
    compile_sources()
    started_servers = services_up(env)
    try:
        return _measure(args, env, started)
    finally:
        if not args.keep_servers:
            services_down(started_servers, env)


def _measure(args: argparse.Namespace, env: dict[str, str], started: float) -> int:
    quick = args.quick
    rows = args.rows or (50_000 if quick else 2_000_000)
    runs = args.runs or (1 if quick else 3)
    do_sweeps = (args.sweeps or ("no" if quick else "yes")) == "yes"
    do_memory = (args.memory or ("no" if quick else "yes")) == "yes"
    peers = not (args.no_peers or quick)
    instances = args.instances or (200 if quick else 1000)
    sizes = data.Sizes.for_run(rows, quick)
    data.ensure_base(env)
    data.reclaim(env)  # what earlier runs left on the S3 server
    data.ensure_rows(rows, env)
    builder = Builder(sizes, env)
    selected = [] if args.only == "none" else choose(builder.all(), args.only)
    if any(p.key in ("s3-s3-big", "s3-s3-many", "file-s3", "s3-file") for p in selected) or \
            do_sweeps:
        data.ensure_objects(sizes, env)
    if any(p.key.startswith("ddb") or p.key.endswith("ddb") for p in selected) or do_sweeps:
        data.ensure_items(sizes.items, env)
    builder = Builder(sizes, env)  # sizes of freshly generated files
    selected = [] if args.only == "none" else choose(builder.all(), args.only)

    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "rows": rows, "runs": runs, "quick": quick, "items": sizes.items,
        "big_object_bytes": sizes.big_bytes, "small_objects": sizes.small_count,
        "csv_bytes": builder.csv_bytes, "paths": [], "overhead": {}, "memory": [],
        "sweeps": []}
    save = args.save or str(config.CACHE / f"results-{int(time.time())}.json")

    def checkpoint() -> None:
        """Write what is measured so far: a run stopped by a failure keeps its earlier steps."""
        with open(save, "w") as fh:
            json.dump(results, fh, indent=1, default=str)

    for path in selected:
        _log(f"path {path.key}: {path.title}")
        res = runner.run_path(path, env, runs=runs, peer_runs=args.peer_runs, peers=peers)
        results["paths"].append(runner.summary_row(res))
        checkpoint()
        data.reclaim(env)

    if args.overhead == "yes":
        _log(f"engine overhead: {instances} no-op instances")
        results["overhead"]["noop"] = asdict(overhead.noop(instances, env))
        _log(f"engine overhead: no-ops {results['overhead']['noop']}")
        delay, window = ("10 seconds", 15.0) if quick else ("30 seconds", 60.0)
        _log(f"engine overhead: {instances} idle precondition polls")
        results["overhead"]["polls"] = asdict(
            overhead.idle_polls(instances, env, retry_delay=delay, window=window))
        _log(f"engine overhead: polls {results['overhead']['polls']}")
        checkpoint()

    if do_memory:
        keys = list(MEMORY_PATHS) if args.only in (None, "none") else \
            [p.key for p in selected]
        results["memory"] = memory_check(rows, env, keys, sizes)
        checkpoint()

    if (args.partitions or ("no" if quick else "yes")) == "yes":
        values = [int(v) for v in args.partition_values.split(",") if v.strip()]
        results["partitions"] = []
        for part in partitions.build(rows, env):
            _log(f"partitions {part.name}: native pipe and --partitions {values}")
            results["partitions"].append(asdict(partitions.run_partitions(part, values, env,
                                                                          runs)))
            checkpoint()
            data.reclaim(env)

    if do_sweeps:
        for sweep in sweeps.select(sweeps.build(sizes, env, quick), args.sweep_only,
                                   args.sweep_values):
            results["sweeps"].append(asdict(sweeps.run_sweep(sweep, env, args.sweep_runs)))
            results["sweeps"][-1].pop("setup", None)
            checkpoint()
            data.reclaim(env)

    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    checkpoint()
    if args.output == "json":
        print(json.dumps(results, indent=1, default=str))
    else:
        print(render(results))
    _log(f"done in {results['elapsed_seconds']:.0f} s; JSON in {save}")
    return 0


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    parts = [f"# headrace benchmarks, {results['date']}",
             f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; Python {m['python']}. "
             f"N = {results['rows']:,} rows ({results['csv_bytes'] / 1e6:.1f} MB as CSV), "
             f"{results['items']:,} DynamoDB items; {results['runs']} run(s) per contender, "
             "ratios = median over rounds of baseline seconds / headrace seconds "
             "(above 1: headrace is faster).", ""]
    if results["paths"]:
        parts += ["## Copy paths", "", report.main_table(results["paths"]), "",
                  report.detail_table(results["paths"]), ""]
    if results["overhead"]:
        parts += ["## Engine overhead", "",
                  report.overhead_table(results["overhead"].get("noop"),
                                        results["overhead"].get("polls")), ""]
    if results["memory"]:
        parts += ["## Memory (small and full size)", "", report.memory_table(results["memory"]), ""]
    if results.get("partitions"):
        parts += ["## Partitioned reads", "", partitions.table(results["partitions"]), ""]
    if results["sweeps"]:
        parts += ["## Sweeps", "", report.sweep_tables(results["sweeps"])]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
