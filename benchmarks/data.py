"""Test data, generated once per size and cached (``.bench-cache/`` and the servers' own data).

* PostgreSQL table ``src_N``: ``id bigint`` (PK), ``ts timestamptz``, ``name text`` (~20 chars),
  ``amount numeric(12,2)``, ``flag boolean``, ``payload text`` (~100 chars with commas, quotes,
  non-ASCII, and a newline in every 50th row). No NULLs, so every native tool reads it the
  same way.
* The same rows as CSV (PostgreSQL's ``COPY ... CSV``): ``.bench-cache/src_N.csv`` and
  ``s3://bench/src_N.csv``; and in MariaDB (table ``bench.src_N``, loaded from that CSV).
* S3 objects for the byte paths: one big object and many 1 MiB objects (sizes per mode).
* DynamoDB table ``items_M`` (id N, ts, name, amount, flag, payload) and its export lines.

A size already present (right row count / object listed) is reused, so only the first run of
a size pays for generation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks import config
from benchmarks.measure import shell

PG_COLUMNS = ("id bigint PRIMARY KEY, ts timestamptz NOT NULL, name text NOT NULL, "
              "amount numeric(12,2) NOT NULL, flag boolean NOT NULL, payload text NOT NULL")
MYSQL_COLUMNS = ("id BIGINT PRIMARY KEY, ts DATETIME NOT NULL, name VARCHAR(64) NOT NULL, "
                 "amount DECIMAL(12,2) NOT NULL, flag TINYINT(1) NOT NULL, "
                 "payload TEXT NOT NULL")
#: LOAD DATA of PostgreSQL's CSV (t/f booleans, +00 offsets) into the MariaDB table.
MYSQL_CSV_LOAD = ("FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                  "LINES TERMINATED BY '\\n' (id, @ts, name, amount, @flag, payload) "
                  "SET ts = LEFT(@ts, 19), flag = (@flag = 't')")
#: LOAD DATA of PostgreSQL's text format (COPY TO STDOUT without options).
MYSQL_TEXT_LOAD = ("FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                   "(id, @ts, name, amount, @flag, payload) "
                   "SET ts = LEFT(@ts, 19), flag = (@flag = 't')")

_GENERATE_SQL = """
INSERT INTO {table}
SELECT i,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       'name-' || substr(md5(i::text), 1, 8) || '-' || lpad(i::text, 7, '0'),
       ((i * 7919) % 10000000) / 100.0,
       i % 3 = 0,
       'row ' || i || ', "quoted", café ' || md5(i::text) || md5((i + 1)::text)
         || CASE WHEN i % 50 = 0 THEN E'\\nsecond line, ünïcödé' ELSE '' END
FROM generate_series(1::bigint, {n}::bigint) AS i
"""


@dataclass(frozen=True)
class Sizes:
    rows: int
    big_bytes: int
    small_count: int
    small_bytes: int
    items: int

    @classmethod
    def for_run(cls, rows: int, quick: bool) -> Sizes:
        if quick:
            return cls(rows=rows, big_bytes=128 * 2**20, small_count=100, small_bytes=2**20,
                       items=min(20_000, rows))
        return cls(rows=rows, big_bytes=2**30, small_count=1000, small_bytes=2**20,
                   items=200_000)


def src_table(rows: int) -> str:
    return f"src_{rows}"


def csv_key(rows: int) -> str:
    return f"src_{rows}.csv"


def csv_path(rows: int) -> Path:
    return config.CACHE / csv_key(rows)


def items_table(items: int) -> str:
    return f"items_{items}"


def big_key(size: int) -> str:
    return f"big/{size // 2**20}MiB.bin"


def small_prefix(count: int) -> str:
    return f"small-{count}/"


def _log(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


def _checked(argv: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {out.stderr.strip()[-600:]}")
    return out.stdout.strip()


def psql(sql: str, env: dict[str, str]) -> str:
    return _checked([config.tool("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                     "-c", sql], env)


def mariadb(sql: str, env: dict[str, str], *, database: str | None = config.MYSQL_DB) -> str:
    argv = [config.tool("mariadb"), "-h", config.HOST, "-P", str(config.MYSQL_PORT), "-uroot",
            "--local-infile=1", "-N", "-B", "-e", sql]
    if database:
        argv.insert(1, f"--database={database}")
    return _checked(argv, env)


def s5cmd(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([config.tool("s5cmd"), "--endpoint-url", config.S3_ENDPOINT, *args],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0 and "no object found" not in out.stderr.lower():
        raise RuntimeError(f"s5cmd {' '.join(args)}: {out.stderr.strip()[-400:]}")
    return out.stdout


def reclaim(env: dict[str, str]) -> None:
    """Delete the outputs (``out/``, ``dlt/``) and have SeaweedFS compact the bucket's volumes.

    SeaweedFS keeps the bytes of overwritten and deleted objects until a vacuum. A full run
    writes tens of GB (every run of every contender rewrites its 1 GiB or 330 MB output):
    before this, the server ran out of volumes mid-run and refused every write
    (``InternalError``), for the other users of the test server too. Outside any timing.
    """
    for prefix in ("out/*", "dlt/*"):
        s5cmd(env, "rm", config.s3_url(prefix))
    url = (f"http://{config.HOST}:{config.S3_MASTER_PORT}/vol/vacuum?garbageThreshold=0.05"
           f"&collection={config.BUCKET}")
    try:
        with urllib.request.urlopen(url, timeout=900) as response:
            response.read()
    except OSError as exc:  # a server without this admin API: outputs are deleted at least
        _log(f"volume vacuum failed ({exc}); continuing")


def s3_exists(env: dict[str, str], key: str) -> bool:
    return bool(s5cmd(env, "ls", config.s3_url(key)).strip())


def pg_count(table: str, env: dict[str, str]) -> int:
    exists = psql(f"SELECT to_regclass('{table}') IS NOT NULL", env) == "t"
    return int(psql(f"SELECT count(*) FROM {table}", env)) if exists else -1


def mysql_count(table: str, env: dict[str, str]) -> int:
    found = mariadb("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                    f"'{config.MYSQL_DB}' AND TABLE_NAME = '{table}'", env)
    return int(mariadb(f"SELECT COUNT(*) FROM {table}", env)) if found == "1" else -1


def reset_pg_table(table: str, env: dict[str, str]) -> None:
    psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({PG_COLUMNS})", env)


def reset_mysql_table(table: str, env: dict[str, str]) -> None:
    mariadb(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({MYSQL_COLUMNS}) "
            "DEFAULT CHARSET=utf8mb4", env)


def ensure_base(env: dict[str, str]) -> None:
    """The MariaDB database and the S3 bucket."""
    mariadb(f"CREATE DATABASE IF NOT EXISTS {config.MYSQL_DB}", env, database=None)
    if config.BUCKET not in s5cmd(env, "ls"):
        s5cmd(env, "mb", f"s3://{config.BUCKET}")


def ensure_rows(rows: int, env: dict[str, str]) -> None:
    table = src_table(rows)
    if pg_count(table, env) != rows:
        _log(f"generating {rows:,} rows in PostgreSQL {table}")
        reset_pg_table(table, env)
        psql(_GENERATE_SQL.format(table=table, n=rows), env)
        psql(f"VACUUM ANALYZE {table}", env)
    path = csv_path(rows)
    if not path.exists():
        _log(f"exporting {path.name}")
        config.CACHE.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        psql(f"\\copy {table} TO '{temp}' CSV", env)
        os.replace(temp, path)
    if not s3_exists(env, csv_key(rows)):
        _log(f"uploading {csv_key(rows)}")
        s5cmd(env, "cp", str(path), config.s3_url(csv_key(rows)))
    if mysql_count(table, env) != rows:
        _log(f"loading {rows:,} rows into MariaDB {config.MYSQL_DB}.{table}")
        reset_mysql_table(table, env)
        mariadb(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} CHARACTER SET utf8mb4 "
                f"{MYSQL_CSV_LOAD}; ANALYZE TABLE {table}", env)


def ensure_objects(sizes: Sizes, env: dict[str, str]) -> None:
    big = config.CACHE / f"big-{sizes.big_bytes // 2**20}MiB.bin"
    if not big.exists():
        _log(f"writing {big.name}")
        temp = big.with_suffix(".tmp")
        with open(temp, "wb") as fh:
            for _ in range(sizes.big_bytes // 2**20):
                fh.write(os.urandom(2**20))
        os.replace(temp, big)
    if not s3_exists(env, big_key(sizes.big_bytes)):
        _log(f"uploading {big_key(sizes.big_bytes)}")
        s5cmd(env, "cp", str(big), config.s3_url(big_key(sizes.big_bytes)))
    small = config.CACHE / f"small-{sizes.small_count}"
    if not (small / f"obj-{sizes.small_count - 1:05d}.bin").exists():
        _log(f"writing {sizes.small_count} small objects")
        small.mkdir(parents=True, exist_ok=True)
        for i in range(sizes.small_count):
            (small / f"obj-{i:05d}.bin").write_bytes(os.urandom(sizes.small_bytes))
    listed = s5cmd(env, "ls", config.s3_url(small_prefix(sizes.small_count)) + "*")
    if len(listed.splitlines()) != sizes.small_count:
        _log(f"uploading {sizes.small_count} small objects")
        s5cmd(env, "cp", f"{small}/*", config.s3_url(small_prefix(sizes.small_count)))


def big_file(sizes: Sizes) -> Path:
    return config.CACHE / f"big-{sizes.big_bytes // 2**20}MiB.bin"


def small_dir(sizes: Sizes) -> Path:
    return config.CACHE / f"small-{sizes.small_count}"


def items_key(items: int) -> str:
    return f"items_{items}.jsonl"


def items_bytes(items: int) -> int:
    path = config.CACHE / items_key(items)
    return path.stat().st_size if path.exists() else 0


def ensure_items(items: int, env: dict[str, str]) -> None:
    """DynamoDB table ``items_M`` (dynalite keeps it in memory: reloaded after a restart) and
    the same items as plain JSON lines in ``s3://bench/items_M.jsonl``."""
    table = items_table(items)
    py = config.PYTHON
    native = f"{py} -m benchmarks.native_dynamodb"
    lines = config.CACHE / items_key(items)
    if not lines.exists():
        shell(f"{native} generate-plain {items} > {lines}.tmp && mv {lines}.tmp {lines}", env)
    if not s3_exists(env, items_key(items)):
        s5cmd(env, "cp", str(lines), config.s3_url(items_key(items)))
    check = subprocess.run([py, "-c", (
        "import boto3,sys\n"
        "c=boto3.client('dynamodb')\n"
        f"n=0\nkw={{'TableName': '{table}', 'Select': 'COUNT'}}\n"
        "while True:\n"
        "    p=c.scan(**kw); n+=p['Count']\n"
        "    if 'LastEvaluatedKey' not in p: break\n"
        "    kw['ExclusiveStartKey']=p['LastEvaluatedKey']\n"
        "print(n)")], env=env, capture_output=True, text=True)
    if check.returncode == 0 and check.stdout.strip() == str(items):
        return
    _log(f"loading {items:,} items into DynamoDB {table}")
    shell(f"{native} drop {table} && {native} create {table} && "
          f"{native} generate {items} | {native} load {table}", env, timeout=3600)
