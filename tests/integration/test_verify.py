"""``--verify`` into PostgreSQL and MySQL tables (issue 18 part 3): both ends' rows and
content checksums, compared before the load commits; Parquet objects on S3 and an
insertQuery's rows too.

Checker: a verified copy reports equal figures and the target holds the rows (read with the
plain drivers); a target that changes what it stores (a trigger: the "silent corruption" case
verify exists for) fails the copy naming both figures, and the target then holds exactly what
it held before (nothing committed). Figures are independent of how values are spelt: CSV text
and typed database values of the same rows give the same checksum.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors.base import PARQUET, EndpointOptions
from connectors.copy import CopyOptions, VerifyFailed, copy
from connectors.errors import BadDataError, ConfigError
from connectors.formats import record_tally
from connectors.local import LocalSink, LocalSource
from connectors.mysql import MySqlEndpoint, MySqlSink
from connectors.postgres import PostgresEndpoint, PostgresSink
from connectors.urls import open_sink, open_source
from tests.integration.test_sql_copy import (
    check,
    make_my,
    make_pg,
    my_exec,
    my_rows,
    pg_exec,
    pg_rows,
    source_rows,
)
from tests.services import aws

pytestmark = pytest.mark.anyio

N = 240
VERIFY = CopyOptions(verify=True)


@pytest.mark.parametrize(("src_kind", "dst_kind"), [
    ("pg", "pg"), ("pg", "mysql"), ("mysql", "pg"), ("mysql", "mysql")])
async def test_verified_table_copies(src_kind: str, dst_kind: str, pg_database: str,
                                     mysql_database: str) -> None:
    rows = source_rows(N)
    make = {"pg": (make_pg, pg_database), "mysql": (make_my, mysql_database)}
    src_make, src_dsn = make[src_kind]
    dst_make, dst_dsn = make[dst_kind]
    src = await src_make(src_dsn, "src", rows)
    dst = await dst_make(dst_dsn, "dst", rows[:10])  # rows already there stay out of it
    if dst_kind == "pg":
        await pg_exec(dst_dsn, "DELETE FROM dst WHERE id < 10")
    else:
        my_exec(dst_dsn, "UPDATE dst SET id = id + 100000")
    result = await copy(open_source(src), open_sink(dst), VERIFY)
    assert result.verify is not None and result.verify.ok
    assert result.verify.source.rows == result.verify.dest.rows == N
    assert result.verify.source.checksum == result.verify.dest.checksum
    got = await pg_rows(dst_dsn, "dst") if dst_kind == "pg" else my_rows(dst_dsn, "dst")
    check(rows, [r for r in got if r[0] < 100000])


async def test_text_and_typed_values_give_one_checksum(pg_database: str,
                                                       tmp_path: Path) -> None:
    """The same rows from a CSV file and from a table verify to the same checksum."""
    src = await make_pg(pg_database, "src", source_rows(50))
    first = await copy(open_source(src), open_sink(f"{pg_database}?table=a",
                                                   EndpointOptions(create=True)), VERIFY)
    csv_path = tmp_path / "rows.csv"
    await copy(open_source(src), open_sink(str(csv_path)))
    await make_pg(pg_database, "b", None)
    again = await copy(open_source(str(csv_path)), open_sink(f"{pg_database}?table=b"), VERIFY)
    assert first.verify is not None and again.verify is not None
    assert again.verify.ok
    assert again.verify.dest == first.verify.dest


async def test_a_postgres_target_that_alters_rows_fails_and_keeps_nothing(
        pg_database: str) -> None:
    rows = source_rows(N)
    src = await make_pg(pg_database, "src", rows)
    dst = await make_pg(pg_database, "dst", None)
    await pg_exec(pg_database, """
        CREATE FUNCTION mangle() RETURNS trigger AS $$
        BEGIN
          IF NEW.id = 7 THEN NEW.name := 'changed'; END IF;
          IF NEW.id = 8 THEN RETURN NULL; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""")
    await pg_exec(pg_database, "CREATE TRIGGER mangle BEFORE INSERT ON dst FOR EACH ROW "
                  "EXECUTE FUNCTION mangle()")
    with pytest.raises(VerifyFailed) as info:
        await copy(open_source(src), open_sink(dst), VERIFY)
    v = info.value.verification
    assert (v.source.rows, v.dest.rows) == (N, N - 1)
    assert v.source.checksum != v.dest.checksum
    assert f"the source sent {N} rows (checksum {v.source.checksum})" in str(info.value)
    assert f"the destination holds {N - 1} (checksum {v.dest.checksum})" in str(info.value)
    assert await pg_rows(pg_database, "dst") == []


async def test_a_mysql_target_that_alters_rows_fails_and_keeps_nothing(
        mysql_database: str) -> None:
    rows = source_rows(N)
    src = await make_my(mysql_database, "src", rows)
    dst = await make_my(mysql_database, "dst", rows[:3])
    before = my_rows(mysql_database, "dst")
    my_exec(mysql_database, "CREATE TRIGGER mangle BEFORE INSERT ON dst FOR EACH ROW "
            "SET NEW.note = IF(NEW.id = 42, 'changed', NEW.note)")
    my_exec(mysql_database, "DELETE FROM src WHERE id < 3")
    with pytest.raises(VerifyFailed) as info:
        await copy(open_source(src), open_sink(dst), VERIFY)
    v = info.value.verification
    assert v.source.rows == v.dest.rows == N - 3
    assert v.source.checksum != v.dest.checksum
    assert my_rows(mysql_database, "dst") == before


async def test_verified_files_are_read_back(pg_database: str, tmp_path: Path) -> None:
    """Files: the SHA-256 of the bytes as written against the file read back before the
    rename; the figure is the file's own SHA-256 (checked here with hashlib)."""
    src = await make_pg(pg_database, "src", source_rows(N))
    for dest, gz in ((tmp_path / "one.csv", False), (tmp_path / "one.csv.gz", True)):
        result = await copy(open_source(src), open_sink(str(dest)), VERIFY)
        assert result.verify is not None and result.verify.ok
        assert result.verify.dest.rows == N
        assert result.verify.dest.checksum == hashlib.sha256(dest.read_bytes()).hexdigest()
        assert gz == dest.read_bytes().startswith(b"\x1f\x8b")
    parts = tmp_path / "parts"
    # small reads and parts: several parts, each cut at a record boundary
    result = await copy(LocalSource(str(tmp_path / "one.csv"), chunk_size=4096),
                        LocalSink(f"{parts}/", part_bytes=4096), VERIFY)
    names = sorted(p.name for p in parts.iterdir())
    assert len(names) > 1
    whole = b"".join((parts / n).read_bytes() for n in names)
    assert result.verify is not None and result.verify.ok
    assert result.verify.dest.checksum == hashlib.sha256(whole).hexdigest()
    parquet = tmp_path / "t.parquet"
    result = await copy(open_source(src), open_sink(str(parquet)), VERIFY)
    assert result.verify is not None and result.verify.dest.rows == N


async def test_verified_s3_objects_match_their_stored_etags(pg_database: str, s3_endpoint: str,
                                                            s3_bucket: str) -> None:
    """S3: each part's MD5 as sent against the ETag S3 computed of it, before the upload
    completes; the figure is then the object's own ETag."""
    rows = source_rows(3000)
    src = await make_pg(pg_database, "src", rows)
    client = aws.client("s3", s3_endpoint)
    try:
        for key, part_size in (("small.csv", 5 * 1024 * 1024), ("big.csv", 5 * 1024 * 1024)):
            sink = open_sink(f"s3://{s3_bucket}/{key}",
                             EndpointOptions(chunk_size=part_size))
            if key == "big.csv":  # more than one part: a multipart upload
                await pg_exec(pg_database, "UPDATE src SET note = repeat('y', 5000)")
            result = await copy(open_source(src), sink, VERIFY)
            assert result.verify is not None and result.verify.ok
            assert result.verify.dest.rows == len(rows)
            etag = client.head_object(Bucket=s3_bucket, Key=key)["ETag"].strip('"')
            assert result.verify.dest.checksum == etag
        assert "-" in etag  # big.csv went in parts
    finally:
        client.close()


async def test_verified_parquet_objects_on_s3(pg_database: str, s3_endpoint: str,
                                             s3_bucket: str) -> None:
    """Parquet on S3: the parts' MD5s as sent against S3's ETags, and the rows the footer of
    those bytes declares against the rows read, on both lanes into Parquet."""
    rows = source_rows(3000)
    src = await make_pg(pg_database, "src", rows)
    client = aws.client("s3", s3_endpoint)
    try:
        for key, transcode in (("t.parquet", True), ("rows/", False)):
            result = await copy(open_source(src),
                                open_sink(f"s3://{s3_bucket}/{key}",
                                          EndpointOptions(format=PARQUET)),
                                CopyOptions(verify=True, parquet_from_csv=transcode))
            assert ("transcode" in result.stages) == transcode
            assert result.verify is not None and result.verify.ok
            assert result.verify.source.rows == result.verify.dest.rows == len(rows)
            name = key if key.endswith(".parquet") else f"{key}part-00000.parquet"
            etag = client.head_object(Bucket=s3_bucket, Key=name)["ETag"].strip('"')
            assert result.verify.dest.checksum == etag
            body = client.get_object(Bucket=s3_bucket, Key=name)["Body"].read()
            assert pq.ParquetFile(io.BytesIO(body)).metadata.num_rows == len(rows)
    finally:
        client.close()


def test_parquet_rows_are_the_footers(tmp_path: Path) -> None:
    """The Parquet row figure is read from the footer of the bytes as they streamed past;
    bytes that do not end as a Parquet file are an error, not a figure."""
    import pyarrow as pa

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": list(range(70_000)), "s": ["x" * 30] * 70_000}), path,
                   row_group_size=10_000)
    data = path.read_bytes()
    tally = record_tally(PARQUET, location="s3://b/t.parquet")
    for start in range(0, len(data), 65_536):
        tally.feed(data[start:start + 65_536])
    assert tally.records == 70_000
    cut = record_tally(PARQUET, location="s3://b/t.parquet")
    cut.feed(data[:-10])
    with pytest.raises(BadDataError, match=r"s3://b/t\.parquet: the bytes written do not end"):
        _ = cut.records


@pytest.mark.parametrize("kind", ["pg", "mysql"])
async def test_a_plain_insert_query_is_read_back(kind: str, pg_database: str,
                                                 mysql_database: str) -> None:
    """Through ``INSERT INTO t (cols) VALUES (?, ...)`` each field is stored as it is in the
    named column: the rows are read back from that table by those columns (in the query's
    order, not the table's), and a target that alters them fails with nothing committed."""
    rows = source_rows(N)
    dsn = pg_database if kind == "pg" else mysql_database
    src = await (make_pg if kind == "pg" else make_my)(dsn, "src", rows)
    await (make_pg if kind == "pg" else make_my)(dsn, "dst", None)
    query = "INSERT INTO dst (note, id, name) VALUES (?, ?, ?)"
    select = EndpointOptions(query="SELECT note, id, name FROM src")

    def sink() -> PostgresSink | MySqlSink:
        if kind == "pg":
            return PostgresSink(PostgresEndpoint.from_url(dsn).model_copy(
                update={"insert_query": query}))
        return MySqlSink(MySqlEndpoint.from_url(dsn).model_copy(  # MySQL needs the table
            update={"insert_query": query, "table": "dst"}))

    source_url = src.split("?")[0]
    result = await copy(open_source(source_url, select), sink(), VERIFY)
    assert result.verify is not None and result.verify.ok
    assert result.verify.source.rows == result.verify.dest.rows == N
    got = await pg_rows(dsn, "dst") if kind == "pg" else my_rows(dsn, "dst")
    assert [(r[0], r[1], r[5]) for r in got] == [(r[0], r[1], r[5]) for r in rows]

    if kind == "pg":
        await pg_exec(dsn, "DELETE FROM dst")
        await pg_exec(dsn, "CREATE FUNCTION mangle() RETURNS trigger AS $$ BEGIN "
                      "IF NEW.id = 7 THEN NEW.name := 'changed'; END IF; RETURN NEW; "
                      "END $$ LANGUAGE plpgsql")
        await pg_exec(dsn, "CREATE TRIGGER mangle BEFORE INSERT ON dst FOR EACH ROW "
                      "EXECUTE FUNCTION mangle()")
    else:
        my_exec(dsn, "DELETE FROM dst")
        my_exec(dsn, "CREATE TRIGGER mangle BEFORE INSERT ON dst FOR EACH ROW "
                "SET NEW.name = IF(NEW.id = 7, 'changed', NEW.name)")
    with pytest.raises(VerifyFailed) as info:
        await copy(open_source(source_url, select), sink(), VERIFY)
    v = info.value.verification
    assert v.source.rows == v.dest.rows == N and v.source.checksum != v.dest.checksum
    assert (await pg_rows(dsn, "dst") if kind == "pg" else my_rows(dsn, "dst")) == []


async def test_an_insert_query_that_computes_is_refused_before_loading(
        pg_database: str) -> None:
    src = await make_pg(pg_database, "src", source_rows(10))
    await make_pg(pg_database, "dst", None)
    for query in ("INSERT INTO dst (id, name) VALUES (?, upper(?))",
                  "INSERT INTO dst VALUES (?, ?, ?, ?, ?, ?)",
                  "INSERT INTO dst (id, name) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"):
        sink = PostgresSink(PostgresEndpoint.from_url(pg_database).model_copy(
            update={"insert_query": query}))
        with pytest.raises(ConfigError, match=r"needs its plain form, INSERT INTO table"):
            await copy(open_source(src), sink, VERIFY)
    assert await pg_rows(pg_database, "dst") == []
