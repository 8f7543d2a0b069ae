"""``--verify`` into PostgreSQL and MySQL tables (issue 18 part 3): both ends' rows and
content checksums, compared before the load commits.

Checker: a verified copy reports equal figures and the target holds the rows (read with the
plain drivers); a target that changes what it stores (a trigger: the "silent corruption" case
verify exists for) fails the copy naming both figures, and the target then holds exactly what
it held before (nothing committed). Figures are independent of how values are spelt: CSV text
and typed database values of the same rows give the same checksum.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from connectors.base import EndpointOptions
from connectors.copy import CopyOptions, VerifyFailed, copy
from connectors.local import LocalSink, LocalSource
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
