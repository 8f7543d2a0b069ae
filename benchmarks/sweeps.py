"""Sweeps of the copy path's knobs: which values make each kind of copy fastest.

Each point is one copy through :mod:`benchmarks.copy_once` (the knob set, the others at their
defaults), measured from outside; the table keeps the median of the runs of every point.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import config, data
from benchmarks.measure import CommandFailed, run

MiB = 2**20


@dataclass
class Sweep:
    name: str
    knob: str  # copy_once flag without dashes
    values: list[int]
    source: str
    dest: str
    nbytes: int
    rows: int
    setup: Callable[[], None] | None = None
    points: list[dict[str, Any]] = field(default_factory=list)


def _argv(sweep: Sweep, value: int) -> list[str]:
    return [config.PYTHON, "-m", "benchmarks.copy_once", sweep.source, sweep.dest,
            f"--{sweep.knob.replace('_', '-')}", str(value)]


def build(sizes: data.Sizes, env: dict[str, str], quick: bool) -> list[Sweep]:
    n = sizes.rows
    src = data.src_table(n)
    csv = data.csv_path(n).stat().st_size
    big = sizes.big_bytes
    items = sizes.items

    def truncate_pg() -> None:
        data.reset_pg_table("dst_pg", env)

    def fresh_ddb() -> None:
        from benchmarks.measure import shell
        native = f"{config.PYTHON} -m benchmarks.native_dynamodb"
        shell(f"{native} drop sweep_ddb && {native} create sweep_ddb", env)

    ranges = [1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB] if quick else \
        [1 * MiB, 4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB]
    parts = [5 * MiB, 8 * MiB, 16 * MiB] if quick else [5 * MiB, 8 * MiB, 16 * MiB, 32 * MiB]
    parallel = [1, 2, 4, 8] if quick else [1, 2, 4, 8, 16]
    depth = [1, 2, 4, 8]
    big_url = config.s3_url(data.big_key(big))
    small_url = config.s3_url(data.small_prefix(sizes.small_count))
    small_bytes = sizes.small_count * sizes.small_bytes
    down = str(config.CACHE / "out" / "sweep-down.bin")
    copy_parts = [64 * MiB, 128 * MiB, 256 * MiB, 2 * big]  # 2 x the object: one CopyObject
    return [
        Sweep("PostgreSQL -> S3: S3 part size", "chunk_size", parts, config.pg_url(src),
              config.s3_url("out/sweep-pg.csv"), csv, n),
        Sweep("PostgreSQL -> S3: parts in flight", "parallel", parallel, config.pg_url(src),
              config.s3_url("out/sweep-pg.csv"), csv, n),
        Sweep("PostgreSQL -> S3: stream depth", "stream_depth", depth, config.pg_url(src),
              config.s3_url("out/sweep-pg.csv"), csv, n),
        Sweep("S3 -> PostgreSQL: range size", "chunk_size", ranges,
              config.s3_url(data.csv_key(n)), config.pg_url("dst_pg"), csv, n, truncate_pg),
        Sweep("S3 -> PostgreSQL: ranges in flight", "parallel", parallel,
              config.s3_url(data.csv_key(n)), config.pg_url("dst_pg"), csv, n, truncate_pg),
        Sweep("S3 -> file (direct): range size", "chunk_size", ranges, big_url, down, big, 0),
        Sweep("S3 -> file (direct): ranges in flight", "parallel", parallel, big_url, down,
              big, 0),
        Sweep("file -> S3 (direct): part size", "chunk_size", parts, str(data.big_file(sizes)),
              config.s3_url("out/sweep-up.bin"), big, 0),
        Sweep("file -> S3 (direct): parts in flight", "parallel", parallel,
              str(data.big_file(sizes)), config.s3_url("out/sweep-up.bin"), big, 0),
        Sweep("S3 -> S3, one object: server-side copy part size", "copy_part_size", copy_parts,
              big_url, config.s3_url("out/sweep-big.bin"), big, 0),
        Sweep("S3 -> S3, many objects: server-side requests in flight", "copy_parallel",
              [4, 8, 16, 32, 64], small_url, config.s3_url("out/sweep-small/"), small_bytes, 0),
        Sweep("DynamoDB -> S3: scan segments", "parallel", parallel[:4],
              f"dynamodb://{data.items_table(items)}", config.s3_url("out/sweep-items.jsonl"),
              data.items_bytes(items), items),
        Sweep("S3 -> DynamoDB: writers", "parallel", parallel[:4],
              config.s3_url(data.items_key(items)), "dynamodb://sweep_ddb",
              data.items_bytes(items), items, fresh_ddb),
    ]


def select(all_sweeps: list[Sweep], only: str | None, values: str | None) -> list[Sweep]:
    """The sweeps whose name contains one of ``only``'s words, with ``values`` if given."""
    chosen = all_sweeps
    if only:
        words = [w.strip().lower() for w in only.split(",") if w.strip()]
        chosen = [s for s in all_sweeps if any(w in s.name.lower() for w in words)]
        if not chosen:
            raise SystemExit(f"benchmarks: no sweep matches --sweep-only {only!r}")
    if values:
        numbers = [int(v) for v in values.split(",") if v.strip()]
        for sweep in chosen:
            sweep.values = list(numbers)
    return chosen


def run_sweep(sweep: Sweep, env: dict[str, str], runs: int) -> Sweep:
    """Every value once per round, the order reversed every other round (the machine's load
    drifts; interleaving keeps the points comparable), then the median of each value."""
    seconds: dict[int, list[float]] = {v: [] for v in sweep.values}
    rss: dict[int, list[int]] = {v: [] for v in sweep.values}
    errors: dict[int, str] = {}
    for round_no in range(runs):
        order = sweep.values if round_no % 2 == 0 else list(reversed(sweep.values))
        for value in order:
            if value in errors:
                continue
            try:
                if sweep.setup is not None:
                    sweep.setup()
                m = run(_argv(sweep, value), env, timeout=1800)
            except (CommandFailed, RuntimeError) as exc:
                errors[value] = str(exc).splitlines()[0][:200]
                continue
            seconds[value].append(m.seconds)
            rss[value].append(m.peak_rss)
            print(f"benchmarks: sweep {sweep.name} {sweep.knob}={value}: {m.seconds:.2f} s, "
                  f"{m.peak_rss / 1e6:.0f} MB", file=sys.stderr, flush=True)
    for value in sweep.values:
        point: dict[str, Any] = {"value": value, "error": errors.get(value)}
        if seconds[value]:
            s = statistics.median(seconds[value])
            point.update(seconds=round(s, 2), mb_per_s=round(sweep.nbytes / 1e6 / s, 1),
                         rows_per_s=round(sweep.rows / s) if sweep.rows else None,
                         peak_rss_mb=round(max(rss[value]) / 1e6, 1),
                         all_seconds=[round(x, 2) for x in seconds[value]])
        sweep.points.append(point)
    return sweep
