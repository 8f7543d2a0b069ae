"""The PostgreSQL connector against a real server on loopback."""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from connectors import postgres
from connectors.base import CSV, TSV, Column, EndpointOptions, Progress, Schema, TextFormat
from connectors.copy import copy
from connectors.errors import (
    AuthenticationFailed,
    BadDataError,
    ConfigError,
    NotFoundError,
    TransientError,
    Unreachable,
)
from connectors.postgres import PostgresEndpoint, PostgresSink, PostgresSource
from connectors.testing import (
    FaultProxy,
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
)
from tests.integration.sql_kit import IDS, csv_bytes

pytestmark = pytest.mark.anyio



async def sql(dsn: str, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(statement, *args)]
    finally:
        await conn.close()


async def test_copy_csv_bytes_in_and_out(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    sink = postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions())
    result = await copy(MemorySource(IDS, data=csv_bytes(500), fmt=CSV), sink)
    assert (result.lane, result.rows) == ("bytes", 500)
    assert await sql(pg_database, "SELECT count(*), count(DISTINCT id), min(id), max(id) "
                                  "FROM t") == [(500, 500, 0, 499)]
    out = MemorySink(TSV)
    await copy(postgres.source_from_url(f"{pg_database}?table=t", EndpointOptions()), out)
    assert out.committed_bytes is not None
    assert sorted(out.committed_bytes.decode().splitlines()) == sorted(
        f"{i}\tname {i}" for i in range(500))


async def test_query_source_and_custom_separator(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t AS SELECT g AS id, 'n|' || g AS name "
                           "FROM generate_series(1, 5) g")
    src = postgres.source_from_url(pg_database, EndpointOptions(
        query="SELECT id, name FROM t WHERE id > 3 ORDER BY id;\n"))
    assert src.can_produce(CSV.replace(column_separator="|"))
    assert not src.can_produce(TextFormat(kind="jsonl"))
    out = MemorySink(CSV.replace(column_separator="|"))
    await copy(src, out)
    assert out.committed_bytes == b'4|"n|4"\n5|"n|5"\n'
    schema = await src.schema()
    assert schema is not None
    assert [(c.name, c.type) for c in schema.columns] == [("id", "integer"), ("name", "text")]


async def test_rows_lane_converts_text_values_to_column_types(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id int, amount numeric(8,2), ok boolean, "
                           "at timestamptz, day date, doc jsonb)")
    schema = Schema(tuple(Column(n) for n in ("id", "amount", "ok", "at", "day", "doc")))
    rows = [("1", "12.50", "t", "2024-01-02 03:04:05+02", "2024-01-02", '{"a": 1}'),
            (2, Decimal("0.01"), False, None, None, {"b": [1, 2]})]
    sink = postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions())
    await copy(MemorySource(schema, rows), sink)
    got = await sql(pg_database, "SELECT id, amount, ok, at::text, day::text, doc::text "
                                 "FROM t ORDER BY id")
    assert got == [(1, Decimal("12.50"), True, "2024-01-02 01:04:05+00", "2024-01-02",
                    '{"a": 1}'),
                   (2, Decimal("0.01"), False, None, None, '{"b": [1, 2]}')]


async def test_type_error_names_sqlstate_column_and_line_and_commits_nothing(
        pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    sink = postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions())
    with pytest.raises(BadDataError) as info:
        await copy(MemorySource(IDS, data=csv_bytes(50, bad_line=37), fmt=CSV, chunk_size=64),
                   sink)
    err = info.value
    assert err.sqlstate == "22P02"  # type: ignore[attr-defined]
    assert err.line == 37
    assert "column id" in str(err) and "22P02" in str(err) and "line 37" in str(err)
    assert not err.transient
    assert await sql(pg_database, "SELECT count(*) FROM t") == [(0,)]


async def test_rows_lane_bad_value_names_line(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    rows = [(str(i), f"n{i}") for i in range(30)]
    rows[21] = ("twenty-two", "n21")
    sink = postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions())
    with pytest.raises(BadDataError) as info:
        await copy(MemorySource(IDS, rows, batch_rows=8), sink)
    assert info.value.line == 22
    assert await sql(pg_database, "SELECT count(*) FROM t") == [(0,)]


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_cancelled_copy_leaves_no_rows(pg_database: str, lane: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    rows = [(i, f"n{i}") for i in range(400)]

    async def observe() -> int:
        return (await sql(pg_database, "SELECT count(*) FROM t"))[0][0]

    await check_abort_leaves_nothing(
        lambda: postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions()),
        observe, rows, IDS,
        **({"data": csv_bytes(400), "fmt": CSV} if lane == "bytes" else {}))
    # the table is usable afterwards (no lock or open transaction left behind)
    await sql(pg_database, "INSERT INTO t VALUES (1, 'after')")
    assert await observe() == 1


async def test_missing_table(pg_database: str) -> None:
    sink = postgres.sink_from_url(f"{pg_database}?table=nope", EndpointOptions())
    with pytest.raises(NotFoundError, match="nope"):
        await copy(MemorySource(IDS, [(1, "a")]), sink)
    src = postgres.source_from_url(f"{pg_database}?table=nope", EndpointOptions())
    with pytest.raises(NotFoundError, match="42P01"):
        await copy(src, MemorySink(CSV))


async def test_create_table_from_source_schema_and_create_table_sql(pg_database: str) -> None:
    schema = Schema((Column("id", "bigint"), Column("price", "numeric"),
                     Column("seen", "timestamptz"), Column("ok", "boolean"),
                     Column("doc", "json"), Column("raw", "binary")))
    sink = postgres.sink_from_url(f"{pg_database}?table=made.t1", EndpointOptions(create=True))
    await sql(pg_database, "CREATE SCHEMA made")
    await copy(MemorySource(schema, [(1, Decimal("2.50"), None, True, '{"x": 1}', b"\x00\xff")]),
               sink)
    cols = await sql(pg_database, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'made' AND table_name = 't1' "
                                  "ORDER BY ordinal_position")
    assert cols == [("id", "bigint"), ("price", "numeric"),
                    ("seen", "timestamp with time zone"), ("ok", "boolean"), ("doc", "jsonb"),
                    ("raw", "bytea")]
    assert await sql(pg_database, "SELECT raw FROM made.t1") == [(b"\x00\xff",)]

    ep = PostgresEndpoint.from_url(pg_database).model_copy(update={
        "table": "t2", "create_table_sql": "CREATE TABLE t2 (id bigint, name text DEFAULT 'd')"})
    await copy(MemorySource(IDS, [(7, "seven")]), PostgresSink(ep))
    assert await sql(pg_database, "SELECT * FROM t2") == [(7, "seven")]


async def test_create_on_the_bytes_lane_takes_the_source_tables_columns(
        pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE src (id bigint, price numeric(8,2), seen timestamptz, "
                           "note text)")
    await sql(pg_database, "INSERT INTO src VALUES (1, 2.50, '2024-01-02 03:04:05+00', 'a,b'), "
                           "(2, NULL, NULL, '')")
    source = postgres.source_from_url(f"{pg_database}?table=src", EndpointOptions())
    sink = postgres.sink_from_url(f"{pg_database}?table=made", EndpointOptions(create=True))
    result = await copy(source, sink)
    assert (result.lane, result.rows) == ("bytes", 2)
    cols = await sql(pg_database, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'made' ORDER BY ordinal_position")
    assert [c for c, _ in cols] == ["id", "price", "seen", "note"]
    assert dict(cols)["seen"] == "timestamp with time zone"
    assert await sql(pg_database, "SELECT * FROM made ORDER BY id") == await sql(
        pg_database, "SELECT * FROM src ORDER BY id")
    # without --create, a missing table is still an error, and the source is not asked
    plain = postgres.sink_from_url(f"{pg_database}?table=absent", EndpointOptions())
    assert not plain.needs_source_schema
    with pytest.raises(NotFoundError, match="absent"):
        await copy(source, plain)


async def test_insert_query_upserts(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    await sql(pg_database, "INSERT INTO t VALUES (1, 'old'), (5, 'keep')")
    ep = PostgresEndpoint.from_url(pg_database).model_copy(update={
        "table": "t", "insert_query": "INSERT INTO t (id, name) VALUES (?, ?) "
                                      "ON CONFLICT (id) DO UPDATE SET name = excluded.name"})
    sink = PostgresSink(ep)
    assert not sink.can_consume(CSV)  # an insertQuery takes rows
    await copy(MemorySource(IDS, data=b"1,new\n2,two\n", fmt=CSV), sink)
    assert await sql(pg_database, "SELECT * FROM t ORDER BY id") == [
        (1, "new"), (2, "two"), (5, "keep")]


async def test_injection_through_table_names_and_values_is_inert(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE victim (id int)")
    await sql(pg_database, "INSERT INTO victim VALUES (1)")
    evil = 'x"; DROP TABLE victim; --'
    sink = postgres.sink_from_url(f"{pg_database}?table={evil}", EndpointOptions(create=True))
    value = "'); DROP TABLE victim; --"
    await copy(MemorySource(IDS, [(1, value)]), sink)
    assert await sql(pg_database, "SELECT count(*) FROM victim") == [(1,)]
    assert await sql(pg_database, 'SELECT name FROM "x""; DROP TABLE victim; --"') == [(value,)]
    assert await postgres.table_exists(pg_database, 'public."x""; DROP TABLE victim; --"')
    assert not await postgres.table_exists(pg_database, "victim; DROP TABLE victim")
    assert await sql(pg_database, "SELECT count(*) FROM victim") == [(1,)]


async def test_unknown_role_is_authentication_failed_without_password(pg_database: str) -> None:
    url = pg_database.replace("postgresql://postgres@",
                              "postgresql://nobody_here:hunter2-secret@")
    sink = postgres.sink_from_url(f"{url}?table=t", EndpointOptions())
    assert "hunter2" not in sink.describe
    with pytest.raises(AuthenticationFailed) as info:
        await copy(MemorySource(IDS, [(1, "a")]), sink)
    assert "hunter2" not in str(info.value)
    assert not info.value.transient


async def test_unreachable_server_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = postgres.source_from_url(f"postgresql://u:pw@127.0.0.1:{port}/db?table=t",
                                   EndpointOptions())
    with pytest.raises(Unreachable) as info:
        await src.schema()
    assert info.value.transient


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_connection_dropped_mid_copy_is_transient_and_commits_nothing(
        pg_database: str, lane: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id bigint, name text)")
    n = 60_000
    data = csv_bytes(n)
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        url = pg_database.replace(":55432/", f":{proxy.port}/")
        sink = postgres.sink_from_url(f"{url}?table=t", EndpointOptions())
        proxy.reset_after(200_000, direction="up")
        if lane == "bytes":
            source = MemorySource(IDS, data=data, fmt=CSV, chunk_size=16 * 1024)
        else:
            source = MemorySource(IDS, [(i, f"name {i}") for i in range(n)], batch_rows=1000)
        with pytest.raises(TransientError):
            await copy(source, sink)
        assert proxy.resets >= 1
    assert await sql(pg_database, "SELECT count(*) FROM t") == [(0,)]
    # a retry on a fresh connection completes: every id exactly once
    sink = postgres.sink_from_url(f"{pg_database}?table=t", EndpointOptions())
    await copy(MemorySource(IDS, data=data, fmt=CSV), sink)
    assert await sql(pg_database, "SELECT count(*), count(DISTINCT id) FROM t") == [(n, n)]


async def test_source_connection_dropped_mid_read_is_transient(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t AS SELECT g AS id, repeat('x', 50) AS name "
                           "FROM generate_series(1, 50000) g")
    async with FaultProxy("127.0.0.1", 55432) as proxy:
        url = pg_database.replace(":55432/", f":{proxy.port}/")
        proxy.reset_after(300_000, direction="down")
        out = MemorySink(CSV)
        with pytest.raises(TransientError):
            await copy(postgres.source_from_url(f"{url}?table=t", EndpointOptions()), out)
        assert out.committed_bytes is None


async def test_execute_script_binds_arguments_in_one_transaction(pg_database: str) -> None:
    await postgres.execute_script(pg_database, """
        CREATE TABLE runs (day date, n int, label text);
        INSERT INTO runs VALUES (?, ?, 'first; with semicolon');
        INSERT INTO runs SELECT day + 1, n + ?, '?' FROM runs;
    """, ["2024-03-01", "41", "1"])
    assert await sql(pg_database, "SELECT day::text, n, label FROM runs ORDER BY day") == [
        ("2024-03-01", 41, "first; with semicolon"), ("2024-03-02", 42, "?")]
    with pytest.raises(BadDataError):
        await postgres.execute_script(pg_database, "DELETE FROM runs; INSERT INTO runs "
                                                   "VALUES (?, 1, 'x')", ["not a date"])
    assert len(await sql(pg_database, "SELECT * FROM runs")) == 2  # the DELETE rolled back
    with pytest.raises(ConfigError, match="placeholders"):
        await postgres.execute_script(pg_database, "SELECT ?", [])


async def test_query_is_true_and_table_exists(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE ready (ok boolean)")
    assert not await postgres.query_is_true(pg_database, "SELECT ok FROM ready")
    await sql(pg_database, "INSERT INTO ready VALUES (false)")
    assert not await postgres.query_is_true(pg_database, "SELECT ok FROM ready")
    assert await postgres.query_is_true(pg_database, "SELECT count(*) FROM ready")
    assert not await postgres.query_is_true(pg_database, "SELECT 'f'::text")
    assert await postgres.table_exists(pg_database, "ready")
    assert await postgres.table_exists(pg_database, "public.READY")
    assert not await postgres.table_exists(pg_database, "missing")


@pytest.mark.parametrize(("mode", "expected"), [
    ("APPEND", [(1, "old"), (1, "new1"), (2, "old"), (3, "new3")]),
    ("KEEP_EXISTING", [(1, "old"), (2, "old"), (3, "new3")]),
    ("OVERWRITE_EXISTING", [(1, "new1"), (2, "old"), (3, "new3")]),
    ("TRUNCATE", [(1, "new1"), (3, "new3")]),
])
async def test_redshift_copy_load_modes(pg_database: str, mode: str,
                                        expected: list[tuple[int, str]]) -> None:
    pk = "" if mode == "APPEND" else " PRIMARY KEY"
    await sql(pg_database, f"CREATE TABLE t (id int{pk}, name text)")
    await sql(pg_database, "INSERT INTO t VALUES (1, 'old'), (2, 'old')")
    source = MemorySource(IDS, data=b"1,new1\n3,new3\n", fmt=CSV)
    progress = Progress()
    await postgres.redshift_copy_load(pg_database, source, table="t", insert_mode=mode,
                                      progress=progress)  # type: ignore[arg-type]
    assert sorted(await sql(pg_database, "SELECT id, name FROM t")) == sorted(expected)
    assert progress.rows == 2
    assert await sql(pg_database, "SELECT count(*) FROM pg_tables WHERE tablename = 'staging'"
                     ) == [(0,)]


async def test_redshift_copy_load_with_primary_keys_and_failure_rolls_back(
        pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t (id int, name text)")
    await sql(pg_database, "INSERT INTO t VALUES (1, 'old')")
    rows_source = MemorySource(IDS, [(1, "new"), (2, "two")])
    await postgres.redshift_copy_load(pg_database, rows_source, table="t",
                                      insert_mode="OVERWRITE_EXISTING", primary_keys=["id"])
    assert sorted(await sql(pg_database, "SELECT * FROM t")) == [(1, "new"), (2, "two")]
    with pytest.raises(ConfigError, match="key"):
        await postgres.redshift_copy_load(pg_database, MemorySource(IDS, [(3, "x")]),
                                          table="t", insert_mode="KEEP_EXISTING")
    with pytest.raises(BadDataError):
        await postgres.redshift_copy_load(
            pg_database, MemorySource(IDS, data=b"5,ok\nbad,row\n", fmt=CSV), table="t",
            insert_mode="TRUNCATE")
    assert sorted(await sql(pg_database, "SELECT * FROM t")) == [(1, "new"), (2, "two")]


async def test_clogged_consumer_holds_back_the_reader(pg_database: str) -> None:
    await sql(pg_database, "CREATE TABLE t AS SELECT g AS id, repeat('y', 200) AS name "
                           "FROM generate_series(1, 40000) g")
    ep = PostgresEndpoint.from_url(f"{pg_database}?table=t").model_copy(
        update={"chunk_size": 64 * 1024})
    # bound: the stream's slots, the chunk being sent, the one being gathered, and what
    # asyncpg holds of the COPY stream while its output callback waits (about 4 chunks)
    await check_clogged_sink(lambda: PostgresSource(ep), fmt=CSV, depth=2, hold=0.3,
                             max_read_ahead_bytes=8 * 64 * 1024)
