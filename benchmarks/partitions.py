"""Partitioned reads and loads (``headrace copy --partitions N``) against the single native
pipe.

For PostgreSQL -> S3 and MySQL -> S3 (reads) and S3 -> PostgreSQL and S3 -> MySQL (loads by
N streams into a staging table; the target is emptied before every run), every round runs
the native pipe once and ``headrace copy --partitions N`` once per N (the order flips every
round), and records for each: wall seconds, CPU seconds of the whole process (rows per
CPU-second, as peers report it), peak RSS and the load on the database while it ran,
sampled every 0.2 s from a separate connection: the most connections the copy held at once
and its longest open transaction.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks import config, data
from benchmarks.measure import CommandFailed, run

NATIVE = 0  # the native pipe's slot among the values

_PG_LOAD = ("SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), "
            "0) FROM pg_stat_activity WHERE datname = current_database() AND "
            "pid <> pg_backend_pid() AND backend_type = 'client backend'")
_MY_LOAD = ("SELECT (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' "
            "AND ID <> CONNECTION_ID()), (SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, "
            "trx_started, NOW(6))), 0) / 1e6 FROM information_schema.INNODB_TRX)")


class LoadSampler:
    """Polls the source server for the copy's connections and its oldest transaction."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv, self.env = argv, env
        self.connections = 0
        self.longest_transaction = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            out = subprocess.run(self.argv, env=self.env, capture_output=True, text=True,
                                 check=False)
            fields = out.stdout.split()
            if out.returncode == 0 and len(fields) == 2:
                self.connections = max(self.connections, int(float(fields[0])))
                self.longest_transaction = max(self.longest_transaction, float(fields[1]))

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class PartitionRun:
    name: str
    source: str
    native: str  # the native pipe (bash script)
    sampler: list[str]  # the load sampler's query (on the database end)
    rows: int
    nbytes: int
    dest: str | None = None  # None: a fresh S3 object per N
    setup: Callable[[], None] | None = None  # before every run (outside the timing)
    points: list[dict[str, Any]] = field(default_factory=list)


def build(rows: int, env: dict[str, str], *, loads: bool = True) -> list[PartitionRun]:
    src = data.src_table(rows)
    csv = data.csv_path(rows).stat().st_size
    s5 = f"{shlex.quote(config.tool('s5cmd'))} --endpoint-url {config.S3_ENDPOINT}"
    psql = f"{shlex.quote(config.tool('psql'))} -X -q"  # PG* variables: the benchmark env
    maria = (f"{shlex.quote(config.tool('mariadb'))} -h {config.HOST} -P {config.MYSQL_PORT} "
             f"-uroot --database={config.MYSQL_DB}")
    pg_load = [*shlex.split(psql), "-At", "-F", " ", "-c", _PG_LOAD]
    my_load = [*shlex.split(maria), "-N", "-B", "-e", _MY_LOAD.format(db=config.MYSQL_DB)]
    csv_url = config.s3_url(data.csv_key(rows))
    local = config.CACHE / "out" / "native-part-download.csv"
    load_runs = [
        PartitionRun("S3 CSV -> PostgreSQL", csv_url,
                     f"{s5} cat {csv_url} | {psql} -c '\\copy dst_pg FROM STDIN CSV'",
                     pg_load, rows, csv, config.pg_url("dst_pg"),
                     lambda: data.reset_pg_table("dst_pg", env)),
        PartitionRun("S3 CSV -> MySQL", csv_url,
                     f"{s5} cp {csv_url} {local} && {maria} --local-infile=1 -e "
                     + shlex.quote(f"LOAD DATA LOCAL INFILE '{local}' INTO TABLE dst_my "
                                   f"CHARACTER SET utf8mb4 {data.MYSQL_CSV_LOAD}")
                     + f" && rm -f {local}",
                     my_load, rows, csv, config.mysql_url("dst_my"),
                     lambda: data.reset_mysql_table("dst_my", env)),
    ] if loads else []
    return [
        PartitionRun("PostgreSQL -> S3 CSV", config.pg_url(src),
                     f"{psql} -c '\\copy {src} TO STDOUT CSV' | "
                     f"{s5} pipe {config.s3_url('out/native-part-pg.csv')}",
                     pg_load, rows, csv),
        PartitionRun("MySQL -> S3 CSV", config.mysql_url(src),
                     f"{maria} --quick --batch -N -e 'SELECT * FROM {src}' | "
                     f"{s5} pipe {config.s3_url('out/native-part-my.tsv')}",
                     my_load, rows, csv),
        *load_runs,
    ]


def _argv(part: PartitionRun, value: int) -> list[str]:
    if value == NATIVE:
        return ["bash", "-o", "pipefail", "-c", part.native]
    dest = part.dest or config.s3_url(f"out/part-{value}.csv")
    return [config.HEADRACE, "copy", part.source, dest, "--partitions", str(value)]


def run_partitions(part: PartitionRun, values: list[int], env: dict[str, str],
                   runs: int) -> PartitionRun:
    """The native pipe and every N once per round, interleaved (order flipped each round)."""
    slots = [NATIVE, *values]
    taken: dict[int, list[dict[str, float]]] = {v: [] for v in slots}
    errors: dict[int, str] = {}
    for round_no in range(runs):
        for value in slots if round_no % 2 == 0 else list(reversed(slots)):
            if value in errors:
                continue
            try:
                if part.setup is not None:
                    part.setup()
                with LoadSampler(part.sampler, env) as load:
                    m = run(_argv(part, value), env, timeout=1800)
            except (CommandFailed, RuntimeError) as exc:
                errors[value] = str(exc).splitlines()[0][:200]
                continue
            taken[value].append({"seconds": m.seconds, "cpu": m.cpu_seconds,
                                 "rss": m.peak_rss, "connections": load.connections,
                                 "transaction": load.longest_transaction})
            label = "native" if value == NATIVE else f"--partitions {value}"
            print(f"benchmarks: partitions {part.name} {label}: {m.seconds:.2f} s, "
                  f"{m.cpu_seconds:.2f} CPU s, {m.peak_rss / 1e6:.0f} MB, "
                  f"{load.connections} connections, longest transaction "
                  f"{load.longest_transaction:.1f} s", file=sys.stderr, flush=True)
    native = [t["seconds"] for t in taken[NATIVE]]
    for value in slots:
        runs_of = taken[value]
        point: dict[str, Any] = {"partitions": value or "native", "error": errors.get(value)}
        if runs_of:
            seconds = statistics.median(t["seconds"] for t in runs_of)
            cpu = statistics.median(t["cpu"] for t in runs_of)
            point.update(
                seconds=round(seconds, 2), all_seconds=[round(t["seconds"], 2) for t in runs_of],
                cpu_seconds=round(cpu, 2),
                rows_per_cpu_second=round(part.rows / cpu) if cpu else None,
                peak_rss_mb=round(max(t["rss"] for t in runs_of) / 1e6, 1),
                connections=max(int(t["connections"]) for t in runs_of),
                longest_transaction_s=round(max(t["transaction"] for t in runs_of), 1))
            if native and value != NATIVE:
                pairs = zip(native, (t["seconds"] for t in runs_of), strict=False)
                point["ratio_vs_native"] = round(statistics.median(n / s for n, s in pairs), 2)
        part.points.append(point)
    return part


def table(parts: list[dict[str, Any]]) -> str:
    lines = ["| path | contender | median s (runs) | vs native | CPU s | rows per CPU-s | "
             "peak RSS | connections | longest transaction |",
             "|---|---|---|---|---|---|---|---|---|"]
    for part in parts:
        for p in part["points"]:
            who = "native pipe" if p["partitions"] == "native" else \
                f"`--partitions {p['partitions']}`"
            if p.get("error"):
                lines.append(f"| {part['name']} | {who} | failed: {p['error']} | | | | | | |")
                continue
            runs = ", ".join(f"{s:.2f}" for s in p["all_seconds"])
            lines.append(
                f"| {part['name']} | {who} | {p['seconds']:.2f} ({runs}) | "
                f"{p.get('ratio_vs_native', '-')} | {p['cpu_seconds']:.2f} | "
                f"{p['rows_per_cpu_second']:,} | {p['peak_rss_mb']:.0f} MB | "
                f"{p['connections']} | {p['longest_transaction_s']:.1f} s |")
    return "\n".join(lines)
