"""Every measured path: the headrace commands, the native baseline and the peers on it.

A :class:`Contender` is one way to do a path's work (``headrace copy``, a CopyActivity run by
``headrace run``, the native pipe, sling, dlt); ``setup`` runs before every measured run,
outside the timing (empty the target table, recreate the DynamoDB table).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import config, data, pipelines

HEADRACE = "headrace copy"
PIPELINE = "headrace run"
NATIVE = "native"
SLING = "sling"
DLT = "dlt"
OURS = (HEADRACE, PIPELINE)
PEERS = (SLING, DLT)


@dataclass
class Contender:
    label: str
    argv: list[str]
    setup: Callable[[], None] | None = None
    #: Rows the headrace copy must report (a sanity check that it did the whole job).
    expect_rows: int | None = None


@dataclass
class BenchPath:
    key: str
    title: str
    rows: int
    nbytes: int
    contenders: list[Contender] = field(default_factory=list)

    def get(self, label: str) -> Contender | None:
        return next((c for c in self.contenders if c.label == label), None)


class Builder:
    """Builds the paths for one run (sizes, environment, tools)."""

    def __init__(self, sizes: data.Sizes, env: dict[str, str]) -> None:
        self.sizes = sizes
        env.update(self.sling_connections())
        self.env = env
        self.rows = sizes.rows
        self.src = data.src_table(sizes.rows)
        self.csv_bytes = data.csv_path(sizes.rows).stat().st_size \
            if data.csv_path(sizes.rows).exists() else 0
        self.out = config.CACHE / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.s5 = f"{shlex.quote(config.tool('s5cmd'))} --endpoint-url {config.S3_ENDPOINT}"
        self.psql = f"{shlex.quote(config.tool('psql'))} -X -q -v ON_ERROR_STOP=1"
        self.maria = (f"{shlex.quote(config.tool('mariadb'))} -h {config.HOST} "
                      f"-P {config.MYSQL_PORT} -uroot --database={config.MYSQL_DB}")
        self.sling = config.sling_binary()
        self.peers_py = config.peers_python()

    # -- helpers ---------------------------------------------------------------------------
    def _bash(self, script: str) -> list[str]:
        return ["bash", "-o", "pipefail", "-c", script]

    def _copy(self, source: str, dest: str, *extra: str) -> list[str]:
        return [config.HEADRACE, "copy", source, dest, "--output", "json", *extra]

    def _pipeline(self, key: str, source: str, target: str) -> list[str]:
        definition = pipelines.write(pipelines.copy_definition(source, target),
                                     self.out / f"{key}.pipeline.json")
        store = self.out / f"{key}.store.db"

        def argv() -> list[str]:
            return pipelines.run_argv(definition, store, "--pipeline-id", f"df-bench-{key}")
        # a fresh store per run, so each run is a first run of the instance
        return ["bash", "-c", f"rm -f {shlex.quote(str(store))}* && exec "
                + " ".join(shlex.quote(a) for a in argv())]

    def _sling(self, src_conn: str, stream: str, tgt_conn: str, obj: str,
               *extra: str) -> list[str] | None:
        if self.sling is None:
            return None
        return [self.sling, "run", "--src-conn", src_conn, "--src-stream", stream,
                "--tgt-conn", tgt_conn, "--tgt-object", obj, *extra]

    def _truncate_pg(self, table: str) -> Callable[[], None]:
        def setup() -> None:
            data.reset_pg_table(table, self.env)
        return setup

    def _truncate_mysql(self, table: str) -> Callable[[], None]:
        def setup() -> None:
            data.reset_mysql_table(table, self.env)
        return setup

    def _drop_pg(self, table: str) -> Callable[[], None]:
        return lambda: data.psql(f"DROP TABLE IF EXISTS {table}", self.env) and None

    def _drop_mysql(self, table: str) -> Callable[[], None]:
        return lambda: data.mariadb(f"DROP TABLE IF EXISTS {table}", self.env) and None

    @staticmethod
    def _add(path: BenchPath, label: str, argv: list[str] | None,
             setup: Callable[[], None] | None = None, expect_rows: int | None = None) -> None:
        if argv is not None:
            path.contenders.append(Contender(label, argv, setup, expect_rows))

    @staticmethod
    def sling_connections() -> dict[str, str]:
        """sling's connections, named by environment variables."""
        return {
            "BENCH_PG": f"postgresql://postgres@{config.HOST}:{config.PG_PORT}/{config.PG_DB}"
                        "?sslmode=disable",
            "BENCH_MY": f"mysql://root@{config.HOST}:{config.MYSQL_PORT}/{config.MYSQL_DB}",
            "BENCH_S3": json.dumps({"type": "s3", "bucket": config.BUCKET,
                                    "access_key_id": config.S3_KEY,
                                    "secret_access_key": config.S3_SECRET,
                                    "endpoint": config.S3_ENDPOINT, "region": config.REGION}),
        }

    # -- the paths -------------------------------------------------------------------------
    def all(self) -> list[BenchPath]:
        return [self.pg_s3(), self.pg_parquet(), self.s3_pg(), self.mysql_s3(),
                self.s3_mysql(), self.pg_mysql(), self.mysql_pg(), self.s3_s3_big(),
                self.s3_s3_small(), self.file_s3(), self.s3_file(), self.ddb_s3(),
                self.s3_ddb()]

    def pg_s3(self) -> BenchPath:
        p = BenchPath("pg-s3", "PostgreSQL -> S3 CSV", self.rows, self.csv_bytes)
        n = self.rows
        self._add(p, HEADRACE, self._copy(config.pg_url(self.src),
                                          config.s3_url("out/hr-pg.csv")), expect_rows=n)
        self._add(p, PIPELINE, self._pipeline("pg-s3", f"pg:{self.src}", "s3:out/pipe-pg.csv"))
        self._add(p, NATIVE, self._bash(
            f"{self.psql} -c '\\copy {self.src} TO STDOUT CSV' | "
            f"{self.s5} pipe {config.s3_url('out/native-pg.csv')}"))
        self._add(p, SLING, self._sling("BENCH_PG", f"public.{self.src}", "BENCH_S3",
                                        config.s3_url("out/sling-pg.csv")))
        if self.peers_py:
            self._add(p, DLT, [self.peers_py, str(config.ROOT / "benchmarks" / "peer_dlt.py"),
                               "pg", self.src, config.s3_url("dlt")])
        return p

    def pg_parquet(self) -> BenchPath:
        """PostgreSQL -> Parquet on S3 (issue 18). No native tool writes Parquet from
        PostgreSQL, so the baseline is headrace's own CSV path of the same table (pg-s3's
        command): the ratio is what Parquet costs over CSV; dlt writes Parquet through
        pyarrow, as headrace does."""
        p = BenchPath("pg-parquet", "PostgreSQL -> S3 Parquet (baseline: headrace's CSV path)",
                      self.rows, self.csv_bytes)
        self._add(p, HEADRACE, self._copy(config.pg_url(self.src),
                                          config.s3_url("out/hr-pg-parquet/"),
                                          "--format", "parquet"), expect_rows=self.rows)
        self._add(p, NATIVE, self._copy(config.pg_url(self.src),
                                        config.s3_url("out/hr-pg-csv-baseline.csv")))
        if self.peers_py:
            self._add(p, DLT, [self.peers_py, str(config.ROOT / "benchmarks" / "peer_dlt.py"),
                               "pg", self.src, config.s3_url("dlt"), "parquet"])
        return p

    def s3_pg(self) -> BenchPath:
        p = BenchPath("s3-pg", "S3 CSV -> PostgreSQL", self.rows, self.csv_bytes)
        src = config.s3_url(data.csv_key(self.rows))
        self._add(p, HEADRACE, self._copy(src, config.pg_url("dst_pg")),
                  self._truncate_pg("dst_pg"), expect_rows=self.rows)
        self._add(p, PIPELINE, self._pipeline("s3-pg", f"s3:{data.csv_key(self.rows)}",
                                              "pg:dst_pg"), self._truncate_pg("dst_pg"))
        self._add(p, NATIVE, self._bash(
            f"{self.s5} cat {src} | {self.psql} -c '\\copy dst_pg FROM STDIN CSV'"),
            self._truncate_pg("dst_pg"))
        self._add(p, SLING, self._sling("BENCH_S3", src, "BENCH_PG", "public.sling_pg",
                                        "--mode", "full-refresh", "--src-options",
                                        "{header: false}"), self._drop_pg("sling_pg"))
        return p

    def mysql_s3(self) -> BenchPath:
        p = BenchPath("mysql-s3", "MySQL -> S3 CSV", self.rows, self.csv_bytes)
        self._add(p, HEADRACE, self._copy(config.mysql_url(self.src),
                                          config.s3_url("out/hr-my.csv")), expect_rows=self.rows)
        self._add(p, PIPELINE, self._pipeline("mysql-s3", f"mysql:{self.src}",
                                              "s3:out/pipe-my.csv"))
        self._add(p, NATIVE, self._bash(
            f"{self.maria} --quick --batch -N -e 'SELECT * FROM {self.src}' | "
            f"{self.s5} pipe {config.s3_url('out/native-my.tsv')}"))
        self._add(p, SLING, self._sling("BENCH_MY", f"{config.MYSQL_DB}.{self.src}",
                                        "BENCH_S3", config.s3_url("out/sling-my.csv")))
        if self.peers_py:
            self._add(p, DLT, [self.peers_py, str(config.ROOT / "benchmarks" / "peer_dlt.py"),
                               "mysql", self.src, config.s3_url("dlt")])
        return p

    def s3_mysql(self) -> BenchPath:
        p = BenchPath("s3-mysql", "S3 CSV -> MySQL", self.rows, self.csv_bytes)
        key = data.csv_key(self.rows)
        src = config.s3_url(key)
        local = self.out / "native-download.csv"
        self._add(p, HEADRACE, self._copy(src, config.mysql_url("dst_my")),
                  self._truncate_mysql("dst_my"), expect_rows=self.rows)
        self._add(p, PIPELINE, self._pipeline("s3-mysql", f"s3:{key}", "mysql:dst_my"),
                  self._truncate_mysql("dst_my"))
        self._add(p, NATIVE, self._bash(
            f"{self.s5} cp {src} {local} && {self.maria} --local-infile=1 -e "
            + shlex.quote(f"LOAD DATA LOCAL INFILE '{local}' INTO TABLE dst_my "
                          f"CHARACTER SET utf8mb4 {data.MYSQL_CSV_LOAD}")
            + f" && rm -f {local}"), self._truncate_mysql("dst_my"))
        self._add(p, SLING, self._sling("BENCH_S3", src, "BENCH_MY",
                                        f"{config.MYSQL_DB}.sling_my", "--mode", "full-refresh",
                                        "--src-options", "{header: false}"),
                  self._drop_mysql("sling_my"))
        return p

    def pg_mysql(self) -> BenchPath:
        p = BenchPath("pg-mysql", "PostgreSQL -> MySQL", self.rows, self.csv_bytes)
        self._add(p, HEADRACE, self._copy(config.pg_url(self.src), config.mysql_url("dst_my")),
                  self._truncate_mysql("dst_my"), expect_rows=self.rows)
        self._add(p, NATIVE, self._bash(
            f"{self.psql} -c '\\copy {self.src} TO STDOUT' | {self.maria} --local-infile=1 -e "
            + shlex.quote(f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE dst_my "
                          f"CHARACTER SET utf8mb4 {data.MYSQL_TEXT_LOAD}")),
            self._truncate_mysql("dst_my"))
        self._add(p, SLING, self._sling("BENCH_PG", f"public.{self.src}", "BENCH_MY",
                                        f"{config.MYSQL_DB}.sling_my", "--mode",
                                        "full-refresh"), self._drop_mysql("sling_my"))
        return p

    def mysql_pg(self) -> BenchPath:
        p = BenchPath("mysql-pg", "MySQL -> PostgreSQL", self.rows, self.csv_bytes)
        self._add(p, HEADRACE, self._copy(config.mysql_url(self.src), config.pg_url("dst_pg")),
                  self._truncate_pg("dst_pg"), expect_rows=self.rows)
        self._add(p, NATIVE, self._bash(
            f"{self.maria} --quick --batch -N -e 'SELECT * FROM {self.src}' | "
            f"{self.psql} -c '\\copy dst_pg FROM STDIN'"), self._truncate_pg("dst_pg"))
        self._add(p, SLING, self._sling("BENCH_MY", f"{config.MYSQL_DB}.{self.src}",
                                        "BENCH_PG", "public.sling_pg", "--mode",
                                        "full-refresh"), self._drop_pg("sling_pg"))
        return p

    def s3_s3_big(self) -> BenchPath:
        size = self.sizes.big_bytes
        p = BenchPath("s3-s3-big", f"S3 -> S3, 1 x {size // 2**20} MiB", 0, size)
        src = config.s3_url(data.big_key(size))
        self._add(p, HEADRACE, self._copy(src, config.s3_url("out/hr-big.bin")))
        self._add(p, NATIVE, self._bash(f"{self.s5} cp {src} "
                                        f"{config.s3_url('out/native-big.bin')}"))
        return p

    def s3_s3_small(self) -> BenchPath:
        count, each = self.sizes.small_count, self.sizes.small_bytes
        p = BenchPath("s3-s3-many", f"S3 -> S3, {count:,} x {each // 2**20} MiB", 0,
                      count * each)
        src = config.s3_url(data.small_prefix(count))
        self._add(p, HEADRACE, self._copy(src, config.s3_url("out/hr-small/")))
        self._add(p, NATIVE, self._bash(f"{self.s5} cp '{src}*' "
                                        f"{config.s3_url('out/native-small/')}"))
        return p

    def file_s3(self) -> BenchPath:
        size = self.sizes.big_bytes
        p = BenchPath("file-s3", f"file -> S3, {size // 2**20} MiB", 0, size)
        local = data.big_file(self.sizes)
        self._add(p, HEADRACE, self._copy(str(local), config.s3_url("out/hr-up.bin")))
        self._add(p, NATIVE, self._bash(f"{self.s5} cp {local} "
                                        f"{config.s3_url('out/native-up.bin')}"))
        return p

    def s3_file(self) -> BenchPath:
        size = self.sizes.big_bytes
        p = BenchPath("s3-file", f"S3 -> file, {size // 2**20} MiB", 0, size)
        src = config.s3_url(data.big_key(size))
        self._add(p, HEADRACE, self._copy(src, str(self.out / "hr-down.bin")))
        self._add(p, NATIVE, self._bash(f"{self.s5} cp {src} {self.out / 'native-down.bin'}"))
        return p

    def _native_ddb(self) -> str:
        return f"{shlex.quote(config.PYTHON)} -m benchmarks.native_dynamodb"

    def ddb_s3(self) -> BenchPath:
        items = self.sizes.items
        p = BenchPath("ddb-s3", f"DynamoDB ({items:,} items) -> S3 JSON lines", items,
                      data.items_bytes(items))
        table = data.items_table(items)
        self._add(p, HEADRACE, self._copy(f"dynamodb://{table}",
                                          config.s3_url("out/hr-items.jsonl")),
                  expect_rows=items)
        self._add(p, NATIVE, self._bash(f"{self._native_ddb()} scan {table} | "
                                        f"{self.s5} pipe {config.s3_url('out/native-items.json')}"))
        return p

    def s3_ddb(self) -> BenchPath:
        items = self.sizes.items
        p = BenchPath("s3-ddb", f"S3 JSON lines -> DynamoDB ({items:,} items)", items,
                      data.items_bytes(items))
        native = self._native_ddb()

        def fresh(table: str) -> Callable[[], None]:
            def setup() -> None:
                from benchmarks.measure import shell
                shell(f"{native} drop {table} && {native} create {table}", self.env)
            return setup

        # the data is plain JSON lines; beside DynamoDB a .jsonl end now defaults to the
        # typed export lines ({"Item": ...}), so the plain format is named
        self._add(p, HEADRACE, self._copy(config.s3_url(data.items_key(items)),
                                          "dynamodb://back_hr", "--format", "jsonl"),
                  fresh("back_hr"),
                  expect_rows=items)
        self._add(p, NATIVE, self._bash(
            f"{self.s5} cat {config.s3_url(data.items_key(items))} | {native} load back_native"),
            fresh("back_native"))
        return p


def choose(paths: list[BenchPath], only: str | None) -> list[BenchPath]:
    if not only:
        return paths
    wanted = [k.strip() for k in only.split(",") if k.strip()]
    known = {p.key for p in paths}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise SystemExit(f"benchmarks: unknown path(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return [p for p in paths if p.key in wanted]


def output_dir() -> Path:
    return config.CACHE / "out"
