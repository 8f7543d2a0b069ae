"""Parquet ends: round trips PostgreSQL -> Parquet on S3 -> PostgreSQL and MySQL -> Parquet ->
MySQL for every mapped type, NULLs included, through the public copy API on URLs (as
``headrace copy`` does).

Checker: the source tables are seeded and the targets read back with the plain drivers; the
Parquet files are read with pyarrow and DuckDB directly (never through the connectors), and
each must show the documented types (docs/compatibility.md) and the source's values. The
targets are made by ``--create`` from the Parquet schema, so their column types are checked
too.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base import PARQUET, EndpointOptions
from connectors.copy import CopyOptions, copy
from connectors.errors import BadDataError
from connectors.formats import CsvToParquet, ParquetEncoder
from connectors.urls import open_sink, open_source
from tests.integration.test_sql_copy import my_connect, my_exec, pg_exec
from tests.services import aws

pytestmark = pytest.mark.anyio

N = 300
T0 = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))

PG_DDL = """CREATE TABLE {t} (
  id bigint PRIMARY KEY, small smallint, num integer, amount numeric(12,3), exact numeric,
  ratio real, score double precision, flag boolean, ts timestamptz, local_ts timestamp,
  day date, name text, blob bytea, doc json, docb jsonb)"""

#: column -> the Arrow type the Parquet file must have (docs/compatibility.md)
PG_ARROW = {
    "id": pa.int64(), "small": pa.int16(), "num": pa.int32(), "amount": pa.decimal128(12, 3),
    "exact": pa.string(), "ratio": pa.float32(), "score": pa.float64(), "flag": pa.bool_(),
    "ts": pa.timestamp("us", tz="UTC"), "local_ts": pa.timestamp("us"), "day": pa.date32(),
    "name": pa.string(), "blob": pa.binary(), "doc": pa.string(), "docb": pa.string(),
}
#: column -> the PostgreSQL type ``--create`` must give it back
PG_TYPES = {
    "id": "bigint", "small": "smallint", "num": "integer", "amount": "numeric(12,3)",
    "exact": "numeric", "ratio": "real", "score": "double precision", "flag": "boolean",
    "ts": "timestamp with time zone", "local_ts": "timestamp without time zone",
    "day": "date", "name": "text", "blob": "bytea", "doc": "jsonb", "docb": "jsonb",
}


def pg_source_rows(n: int = N) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        null = i % 10 == 9  # every tenth row: NULL in every column but the key
        rows.append((
            i,
            None if null else (-32768 if i == 1 else i % 32767),
            None if null else (2**31 - 1 if i == 2 else -i * 1000),
            None if null else Decimal(i * 7919 % 10_000_000) / 1000 - Decimal("4000.5"),
            None if null else (Decimal("12345678901234567890.123456789012345") if i == 3
                               else Decimal(i) / 7),
            None if null else float(i) / 4,
            None if null else (i * 0.1 if i != 4 else 1e300),
            None if null else bool(i % 2),
            None if null else (T0 + timedelta(hours=i, microseconds=i)).astimezone(
                PLUS_0530 if i % 3 else UTC),
            None if null else datetime(2023, 12, 31, 23, 0) + timedelta(minutes=i),
            None if null else date(1999, 12, 31) + timedelta(days=i),
            None if null else ("" if i == 5 else f"ünï {i} \"q\", \n\t 日本"),
            None if null else (b"" if i == 6 else bytes(range(i % 256)) + b"\x00\xff"),
            None if null else json.dumps({"i": i, "list": [1, "two", None]}),
            None if null else json.dumps({"nested": {"k": i}}),
        ))
    return rows


def pg_normal(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Comparable values: instants in UTC, JSON parsed, the numeric's value (not its text)."""
    out = list(row)
    if out[8] is not None:
        out[8] = out[8].astimezone(UTC)
    for i in (13, 14):
        if out[i] is not None:
            out[i] = json.loads(out[i]) if isinstance(out[i], str) else out[i]
    if out[4] is not None:
        out[4] = Decimal(out[4])
    if out[5] is not None:
        out[5] = round(float(out[5]), 4)
    return tuple(out)


async def pg_fetch(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def s3_object(endpoint: str, bucket: str, key: str) -> bytes:
    client = aws.client("s3", endpoint)
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    finally:
        client.close()


def duckdb_rows(path: Path, columns: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        return [tuple(r) for r in con.execute(
            f"SELECT {columns} FROM read_parquet('{path}') ORDER BY id").fetchall()]
    finally:
        con.close()


async def test_postgres_to_parquet_on_s3_and_back(pg_database: str, s3_endpoint: str,
                                                  s3_bucket: str, tmp_path: Path) -> None:
    rows = pg_source_rows()
    await pg_exec(pg_database, PG_DDL.format(t="src"))
    await pg_exec(pg_database, "INSERT INTO src VALUES "
                  "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)", rows)
    expected = [pg_normal(r) for r in await pg_fetch(pg_database,
                                                     "SELECT * FROM src ORDER BY id")]

    prefix = f"s3://{s3_bucket}/out/"
    result = await copy(open_source(f"{pg_database}?table=src"),
                        open_sink(prefix, EndpointOptions(format=PARQUET)))
    assert result.rows == N
    assert result.stages == ("source", "transcode", "sink")  # COPY's CSV, parsed by pyarrow

    data = s3_object(s3_endpoint, s3_bucket, "out/part-00000.parquet")
    file = pq.ParquetFile(io.BytesIO(data))
    assert {f.name: f.type for f in file.schema_arrow} == PG_ARROW
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    table = file.read()
    assert table.num_rows == N
    by_id = {r["id"]: r for r in table.to_pylist()}
    assert by_id[9]["small"] is None and by_id[9]["ts"] is None and by_id[9]["blob"] is None
    assert by_id[1]["small"] == -32768 and by_id[2]["num"] == 2**31 - 1
    assert by_id[3]["exact"] == "12345678901234567890.123456789012345"
    assert by_id[5]["name"] == "" and by_id[6]["blob"] == b""
    assert by_id[7]["ts"] == rows[7][8].astimezone(UTC)  # the instant, written in UTC
    assert by_id[8]["amount"] == rows[8][3]

    local = tmp_path / "out.parquet"
    local.write_bytes(data)
    assert duckdb_rows(local, "id, amount, flag, day, name, blob") == \
        [(r[0], r[3], r[7], r[10], r[11], r[12]) for r in rows]
    duck_ts = duckdb_rows(local, "id, ts")
    assert [(i, None if ts is None else ts.astimezone(UTC)) for i, ts in duck_ts] == \
        [(r[0], None if r[8] is None else r[8].astimezone(UTC)) for r in rows]

    back = await copy(open_source(prefix, EndpointOptions(format=PARQUET)),
                      open_sink(f"{pg_database}?table=back", EndpointOptions(create=True)))
    assert back.rows == N
    got = [pg_normal(r) for r in await pg_fetch(pg_database, "SELECT * FROM back ORDER BY id")]
    assert got == expected
    types = dict(await pg_fetch(
        pg_database, "SELECT column_name, CASE WHEN data_type = 'numeric' AND "
        "numeric_precision IS NOT NULL THEN format('numeric(%s,%s)', numeric_precision, "
        "numeric_scale) ELSE data_type END FROM information_schema.columns "
        "WHERE table_name = 'back'"))
    assert types == PG_TYPES


MY_DDL = """CREATE TABLE {t} (
  id bigint PRIMARY KEY, tiny tinyint, small smallint, num int, big bigint,
  ubig bigint unsigned, amount decimal(12,3), ratio float, score double, flag boolean,
  ts timestamp(6) NULL, local_ts datetime(6), day date, name varchar(200), body longtext,
  bin longblob, doc json) DEFAULT CHARSET=utf8mb4"""

MY_ARROW = {
    "id": pa.int64(), "tiny": pa.int8(), "small": pa.int16(), "num": pa.int32(),
    "big": pa.int64(), "ubig": pa.decimal128(20, 0), "amount": pa.decimal128(12, 3),
    "ratio": pa.float32(), "score": pa.float64(), "flag": pa.bool_(),
    "ts": pa.timestamp("us", tz="UTC"), "local_ts": pa.timestamp("us"), "day": pa.date32(),
    "name": pa.string(), "body": pa.string(), "bin": pa.binary(), "doc": pa.string(),
}
MY_TYPES = {
    "id": "bigint(20)", "tiny": "tinyint(4)", "small": "smallint(6)", "num": "int(11)",
    "big": "bigint(20)", "ubig": "decimal(20,0)", "amount": "decimal(12,3)", "ratio": "float",
    "score": "double", "flag": "tinyint(1)", "ts": "datetime(6)", "local_ts": "datetime(6)",
    "day": "date", "name": "longtext", "body": "longtext", "bin": "longblob",
    "doc": "longtext",
}
MY_COLUMNS = ", ".join(MY_ARROW)


def my_source_rows(n: int = N) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        null = i % 10 == 9
        rows.append((
            i,
            None if null else (-128 if i == 1 else i % 127),
            None if null else (-32768 if i == 2 else i * 3),
            None if null else -i * 100_000,
            None if null else (2**63 - 1 if i == 3 else i * 10**12),
            None if null else (2**64 - 1 if i == 4 else i),
            None if null else Decimal(i * 7919 % 10_000_000) / 1000 - Decimal("4000.5"),
            None if null else float(i) / 4,
            None if null else i * 0.1,
            None if null else bool(i % 2),
            None if null else (T0 + timedelta(hours=i)).replace(tzinfo=None),
            None if null else datetime(2023, 12, 31, 23, 0, 0, i) + timedelta(minutes=i),
            None if null else date(1999, 12, 31) + timedelta(days=i),
            None if null else ("" if i == 5 else f"ünï {i} 日本"),
            None if null else "long " * (i % 50) + "✓",
            None if null else (b"" if i == 6 else bytes(range(i % 256)) + b"\x00\xff"),
            None if null else json.dumps({"i": i, "list": [1, "two", None]}),
        ))
    return rows


def my_fetch(dsn: str, table: str) -> list[tuple[Any, ...]]:
    conn = my_connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {MY_COLUMNS} FROM {table} ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def my_normal(row: tuple[Any, ...]) -> tuple[Any, ...]:
    out = list(row)
    out[9] = None if out[9] is None else bool(out[9])
    out[16] = None if out[16] is None else json.loads(out[16])
    out[15] = None if out[15] is None else bytes(out[15])
    return tuple(out)


async def test_mysql_to_parquet_and_back(mysql_database: str, tmp_path: Path) -> None:
    rows = my_source_rows()
    my_exec(mysql_database, MY_DDL.format(t="src"))
    my_exec(mysql_database, f"INSERT INTO src ({MY_COLUMNS}) VALUES "
            f"({', '.join(['%s'] * len(MY_ARROW))})", rows)
    expected = [my_normal(r) for r in my_fetch(mysql_database, "src")]

    out = tmp_path / "t.parquet"
    result = await copy(open_source(f"{mysql_database}?table=src"), open_sink(str(out)))
    assert result.rows == N
    assert result.stages == ("source", "transcode", "sink")  # the unload's CSV lines

    file = pq.ParquetFile(out)
    assert {f.name: f.type for f in file.schema_arrow} == MY_ARROW
    by_id = {r["id"]: r for r in file.read().to_pylist()}
    assert by_id[4]["ubig"] == Decimal(2**64 - 1) and by_id[3]["big"] == 2**63 - 1
    assert by_id[1]["tiny"] == -128 and by_id[9]["doc"] is None
    # TIMESTAMP columns are instants: the session is UTC, so the stored wall time is UTC
    assert by_id[0]["ts"] == T0.replace(microsecond=T0.microsecond)
    assert duckdb_rows(out, "id, amount, name, bin") == \
        [(r[0], r[6], r[13], r[15]) for r in rows]

    back = await copy(open_source(str(out)),
                      open_sink(f"{mysql_database}?table=back", EndpointOptions(create=True)))
    assert back.rows == N
    assert [my_normal(r) for r in my_fetch(mysql_database, "back")] == expected
    conn = my_connect(mysql_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'back'")
            types = dict(cur.fetchall())
    finally:
        conn.close()
    # MariaDB spells JSON as longtext with a check; widths in parentheses are display widths
    assert {k: v.lower() for k, v in types.items()} == MY_TYPES


@pytest.mark.parametrize(("codec", "stored"), [("zstd", "ZSTD"), ("snappy", "SNAPPY"),
                                                ("none", "UNCOMPRESSED")])
async def test_each_compression(codec: str, stored: str, tmp_path: Path,
                                pg_database: str) -> None:
    await pg_exec(pg_database, "CREATE TABLE t AS SELECT g AS id, 'name ' || g AS name "
                  "FROM generate_series(1, 1000) g")
    out = tmp_path / "out"
    fmt = PARQUET.replace(parquet_compression=codec)
    await copy(open_source(f"{pg_database}?table=t"),
               open_sink(f"{out}/", EndpointOptions(format=fmt)))
    meta = pq.ParquetFile(out / "part-00000.parquet").metadata
    assert meta.num_rows == 1000
    assert meta.row_group(0).column(1).compression == stored


async def test_row_groups_stream_into_the_upload(pg_database: str, s3_endpoint: str,
                                                 s3_bucket: str) -> None:
    """Row groups are cut as the rows arrive, so a big table becomes several groups (each
    uploaded as it is made), and the object reads back whole."""
    rows = 300_000  # > 2 x ROW_GROUP_ROWS
    await pg_exec(pg_database, "CREATE TABLE big AS SELECT g::bigint AS id, 'name ' || g "
                  f"AS name FROM generate_series(1, {rows}) g")
    result = await copy(open_source(f"{pg_database}?table=big"),
                        open_sink(f"s3://{s3_bucket}/one.parquet"))
    assert result.stages == ("source", "transcode", "sink")
    file = pq.ParquetFile(io.BytesIO(s3_object(s3_endpoint, s3_bucket, "one.parquet")))
    assert file.metadata.num_rows == rows
    assert file.metadata.num_row_groups >= 3

    await pg_exec(pg_database, "CREATE TABLE again (id bigint, name text)")
    await copy(open_source(f"s3://{s3_bucket}/one.parquet"),
               open_sink(f"{pg_database}?table=again"))
    got = await pg_fetch(pg_database, "SELECT count(*), count(DISTINCT id), sum(id) FROM again")
    assert got == [(rows, rows, rows * (rows + 1) // 2)]


async def test_an_empty_table_writes_its_columns(pg_database: str, tmp_path: Path) -> None:
    await pg_exec(pg_database, "CREATE TABLE e (id bigint, amount numeric(5,2))")
    out = tmp_path / "e.parquet"
    result = await copy(open_source(f"{pg_database}?table=e"), open_sink(str(out)))
    assert result.rows == 0
    assert result.stages == ("source", "transcode", "sink")
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.schema.types == [pa.int64(), pa.decimal128(5, 2)]


def test_encoder_emits_bytes_before_the_footer() -> None:
    """Bounded memory: each full row group leaves the encoder at once, not at finish."""
    from connectors.base import Column, RowBatch, Schema

    enc = ParquetEncoder(PARQUET, row_group_rows=100)
    schema = Schema((Column("id", "bigint"), Column("name", "text")))
    sizes = [len(enc.encode(RowBatch(schema, [(i, f"n{i}") for i in range(b, b + 100)])))
             for b in range(0, 1000, 100)]
    tail = enc.finish()
    assert all(size > 0 for size in sizes[1:])  # every batch after the first flushed a group
    assert 0 < len(tail) < sum(sizes)


def test_text_values_are_parsed_and_bad_ones_name_the_column() -> None:
    from connectors.base import Column, RowBatch, Schema

    schema = Schema((Column("n", "numeric", precision=6, scale=2), Column("t", "timestamptz"),
                     Column("f", "boolean")))
    enc = ParquetEncoder(PARQUET, location="out.parquet")
    data = enc.encode(RowBatch(schema, [("12.50", "2024-01-02T03:04:05+00:00", "t")]))
    data += enc.finish()
    row = pq.read_table(io.BytesIO(data)).to_pylist()[0]
    assert row == {"n": Decimal("12.50"), "t": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                   "f": True}
    enc = ParquetEncoder(PARQUET, location="out.parquet")
    with pytest.raises(BadDataError, match=r"out\.parquet: column 'n'") as info:
        enc.encode(RowBatch(schema, [("abc", None, None)], first_line=7))
    assert info.value.line == 7


async def test_not_parquet_is_a_clear_error(tmp_path: Path, pg_database: str) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"id,name\n1,a\n")
    await pg_exec(pg_database, "CREATE TABLE t (id bigint, name text)")
    with pytest.raises(BadDataError, match=r"bad\.parquet: not a readable Parquet file"):
        await copy(open_source(str(bad)), open_sink(f"{pg_database}?table=t"))
    assert await pg_fetch(pg_database, "SELECT count(*) FROM t") == [(0,)]


# --- the bytes lane into Parquet (a database's CSV parsed by pyarrow) ---------------------------

async def test_both_lanes_write_the_same_file(pg_database: str, mysql_database: str,
                                              tmp_path: Path) -> None:
    """The bytes lane (COPY's CSV, the MySQL unload's lines) and the rows lane (the drivers'
    typed values) give equal Arrow tables, types and metadata included, for every type."""
    await pg_exec(pg_database, PG_DDL.format(t="src"))
    await pg_exec(pg_database, "INSERT INTO src VALUES "
                  "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)", pg_source_rows())
    my_exec(mysql_database, MY_DDL.format(t="src"))
    my_exec(mysql_database, f"INSERT INTO src ({MY_COLUMNS}) VALUES "
            f"({', '.join(['%s'] * len(MY_ARROW))})", my_source_rows())
    for dsn in (pg_database, mysql_database):
        tables = []
        for transcode, stages in ((True, ("source", "transcode", "sink")),
                                  (False, ("source", "encode", "sink"))):
            out = tmp_path / f"{transcode}.parquet"
            result = await copy(open_source(f"{dsn}?table=src"), open_sink(str(out)),
                                CopyOptions(parquet_from_csv=transcode))
            assert result.stages == stages and result.rows == N
            tables.append(pq.read_table(out))
        fast, rows = tables
        assert fast.schema.equals(rows.schema, check_metadata=True)
        assert fast.equals(rows), dsn


@pytest.mark.parametrize(("value", "transcode"), [("NaN", True), ("NaN", False),
                                                  ("infinity", True)])
async def test_a_value_parquet_cannot_hold_names_row_and_column(
        value: str, transcode: bool, pg_database: str, s3_endpoint: str,
        s3_bucket: str) -> None:
    """A NaN numeric has no decimal form (either lane) and Arrow reads no infinite timestamp
    (the bytes lane; asyncpg reads it as year 9999): the copy fails naming the row and the
    column, and no object is left."""
    kind = "numeric(10,2)" if value == "NaN" else "timestamptz"
    good = "1.5" if value == "NaN" else "2024-01-01 00:00:00+00"
    await pg_exec(pg_database, f"CREATE TABLE odd (id int, amount {kind})")
    await pg_exec(pg_database, f"INSERT INTO odd SELECT g, (CASE WHEN g = 70000 THEN "
                  f"'{value}' ELSE '{good}' END)::{kind} FROM generate_series(1, 100000) g")
    with pytest.raises(BadDataError) as info:
        await copy(open_source(f"{pg_database}?table=odd"),  # heap order: the ids
                   open_sink(f"s3://{s3_bucket}/odd.parquet"),
                   CopyOptions(parquet_from_csv=transcode))
    message = str(info.value)
    assert info.value.line == 70000 and "'amount'" in message
    assert f"'{value}'" in message
    if value == "NaN":
        assert "'NaN' (a NaN)" in message and "a NaN has no decimal form" in message
    if transcode:
        assert "row 70000, column 'amount'" in message and info.value.column == "amount"
    client = aws.client("s3", s3_endpoint)
    try:
        assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    finally:
        client.close()


async def test_columns_the_bytes_lane_cannot_name_keep_the_rows_lane(
        pg_database: str, tmp_path: Path) -> None:
    """A query naming two columns alike has no CSV reading by name: the rows lane writes it."""
    out = tmp_path / "dup.parquet"
    query = EndpointOptions(query="SELECT 1 AS a, 2 AS a")
    result = await copy(open_source(pg_database, query), open_sink(str(out)))
    assert result.stages == ("source", "encode", "sink") and result.rows == 1
    table = pq.ParquetFile(out).read()
    assert table.column_names == ["a", "a"]
    assert [table.column(i).to_pylist() for i in (0, 1)] == [[1], [2]]


def test_records_cut_anywhere_read_the_same() -> None:
    """Chunks cut inside a quoted value, a doubled quote, a newline in a value or a UTF-8
    character give the file the whole text gives."""
    from connectors.base import Column, Schema

    schema = Schema((Column("id", "bigint"), Column("t", "text"), Column("b", "binary"),
                     Column("at", "timestamptz"), Column("n", "numeric", precision=50,
                                                         scale=2)))
    lines = []
    for i in range(500):
        text = '""' if i % 7 == 0 else f'"ün ""{i}"",\n\r日本"'  # "": the empty string
        lines.append(f'{i},{text if i % 11 else ""},\\x{bytes([i % 256, 0]).hex()},'
                     f'2024-01-0{1 + i % 9} 0{i % 10}:00:00.5+0{i % 6},{i}.25\n')
    data = "".join(lines).encode()

    def written(step: int) -> Any:
        enc = CsvToParquet(PARQUET, schema, where="t")
        out = b"".join(enc.feed(data[k:k + step]) for k in range(0, len(data), step))
        out += enc.finish()
        return pq.read_table(io.BytesIO(out))

    whole = written(len(data))
    assert whole.num_rows == 500
    row = whole.slice(3, 1).to_pylist()[0]
    assert row == {"id": 3, "t": 'ün "3",\n\r日本', "b": bytes([3, 0]),
                   "at": datetime(2024, 1, 4, 0, 0, 0, 500000, tzinfo=UTC),  # 03:00+03
                   "n": Decimal("3.25")}
    assert whole.column("t")[7].as_py() == "" and whole.column("t")[11].as_py() is None
    for step in (1, 7, 4096):
        assert written(step).equals(whole)


async def test_nanosecond_timestamps_are_exact_or_refused(tmp_path: Path) -> None:
    """Other tools write nanosecond timestamps: whole microseconds are read exactly; a value
    with nanoseconds is refused naming the file, row and column (not rounded), and the
    destination is not written."""
    base = 1_709_251_198_123_456_000  # 2024-02-29 23:59:58.123456 UTC, in ns
    ns = pa.timestamp("ns", tz="UTC")
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "at": pa.array([base, None, base + 1000], ns)}),
                   whole, coerce_timestamps=None, version="2.6")
    assert pq.ParquetFile(whole).schema_arrow.field("at").type == ns
    out = tmp_path / "whole.jsonl"
    result = await copy(open_source(str(whole)), open_sink(str(out)))
    assert result.rows == 3
    got = [json.loads(line)["at"] for line in out.read_text().splitlines()]
    assert got[0].startswith("2024-02-29") and "23:59:58.123456" in got[0]
    assert got[1] is None and "23:59:58.123457" in got[2]

    odd = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "at": pa.array([base, base, base + 1], ns)}),
                   odd, coerce_timestamps=None, version="2.6")
    bad = tmp_path / "odd.jsonl"
    with pytest.raises(BadDataError, match=r"odd\.parquet, line 3, column at: the timestamp "
                       r"1709251198123456001 ns since the epoch has nanoseconds"):
        await copy(open_source(str(odd)), open_sink(str(bad)))
    assert not bad.exists()


async def test_a_partitioned_read_transcodes_whole_records(pg_database: str,
                                                          tmp_path: Path) -> None:
    """``--partitions``: the parts' CSV arrives interleaved, a chunk of whole records at a
    time, and is parsed as one stream into one file."""
    await pg_exec(pg_database, "CREATE TABLE p (id bigint PRIMARY KEY, note text)")
    await pg_exec(pg_database, "INSERT INTO p SELECT g, 'line ' || g || E'\\n\"q\"' "
                  "FROM generate_series(1, 200000) g")
    out = tmp_path / "p.parquet"
    result = await copy(open_source(f"{pg_database}?table=p", EndpointOptions(partitions=4)),
                        open_sink(str(out)))
    assert result.stages == ("source", "transcode", "sink") and result.rows == 200_000
    table = pq.read_table(out)
    ids = table.column("id").to_pylist()
    assert sorted(ids) == list(range(1, 200_001))
    notes = dict(zip(ids, table.column("note").to_pylist(), strict=True))
    assert notes[12345] == 'line 12345\n"q"'


def test_a_record_longer_than_a_block() -> None:
    """pyarrow parses 1 MiB blocks; a value longer than that is read whole, and a bad value
    after it still names its row."""
    from connectors.base import Column, Schema

    schema = Schema((Column("id", "bigint"), Column("t", "text")))
    big = "y\n" * 1_500_000
    enc = CsvToParquet(PARQUET, schema, where="src")
    out = enc.feed(f'1,"{big}"\n2,b\n'.encode()) + enc.finish()
    table = pq.read_table(io.BytesIO(out))
    assert table.column("t").to_pylist() == [big, "b"]
    enc = CsvToParquet(PARQUET, schema, where="src")
    with pytest.raises(BadDataError, match=r"src: row 3, column 'id': 'z' cannot be written"):
        enc.feed(f'1,"{big}"\n2,b\nz,c\n'.encode())
