"""The MySQL/MariaDB connector against a real MariaDB on loopback."""

from __future__ import annotations

import hashlib
import inspect
import secrets
import socket
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiomysql.connection
import anyio
import pymysql
import pytest

from connectors import mysql
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
from connectors.mysql import AIOMYSQL_INTERNALS as PINNED
from connectors.mysql import MySqlEndpoint, MySqlSink, MySqlSource
from connectors.testing import (
    FaultProxy,
    MemorySink,
    MemorySource,
    check_abort_leaves_nothing,
    check_clogged_sink,
)
from tests.integration.sql_kit import IDS, csv_bytes

pytestmark = pytest.mark.anyio

NULL_WORD_CSV = CSV.replace(null="NULL")

#: sha256 of the aiomysql internals connectors/mysql/_infile.py and _watched.py rely on
#: (aiomysql 0.3.2).
UPSTREAM = {
    "Connection._connect":
        "620ec9f8e9fa568d27335124474352d5cd75861cdd3c251be20ffb38e1f7c0f3",
    "Connection._read_bytes":
        "6ed264b6e87ae5ec7ec0a2f037f5b5ff9f85a5e3e30a4eb49c5b6057fa3aae6c",
    "Connection._execute_command":
        "aed9c70a8d28d69930cc91d57cc8211dfbc62e6f1b4028789c297dbf7c26df52",
    "Connection.write_packet":
        "31b7218ae001c3e383622df7f0a33d38545f9a0a6a291f62b6e9e501c4c377b7",
    "Connection._read_packet":
        "e062bdc2e56fcde947602c13e0deb9db4df6fbeda4065b85315eeaff8749d95f",
    "MySQLResult._read_load_local_packet":
        "93fa00f034cc1add8e63f8058864bd61a68f65905b46d6e7e57501e48e204373",
}


def run(dsn: str, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
    p = urlsplit(dsn)
    conn = pymysql.connect(host=p.hostname, port=p.port, user=p.username or "root",
                           password=p.password or "", database=p.path.lstrip("/") or None,
                           charset="utf8mb4", autocommit=True,
                           init_command="SET time_zone='+00:00'")
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def test_aiomysql_internals_used_by_the_infile_hook_are_unchanged() -> None:
    for name in PINNED:
        cls, fn = name.split(".")
        source = inspect.getsource(getattr(getattr(aiomysql.connection, cls), fn))
        assert hashlib.sha256(source.encode()).hexdigest() == UPSTREAM[name], (
            f"aiomysql {name} changed: re-check connectors/mysql/_infile.py and "
            "_watched.py, then update the hash")


async def test_load_data_from_the_stream_and_read_back(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    sink = mysql.sink_from_url(f"{mysql_database}?table=t", EndpointOptions())
    assert sink.can_consume(TSV) and sink.can_consume(NULL_WORD_CSV)
    assert not sink.converts(TSV) and not sink.converts(NULL_WORD_CSV)
    # LOAD DATA cannot tell headrace CSV's NULL from '': the sink marks NULLs first
    assert sink.can_consume(CSV) and sink.converts(CSV)
    data = b"".join(f"{i}\tname {i}\n".encode() for i in range(3000))
    result = await copy(MemorySource(IDS, data=data, fmt=TSV, chunk_size=4096), sink)
    assert (result.lane, result.rows) == ("bytes", 3000)
    assert run(mysql_database, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t"
               ) == [(3000, 3000, 0, 2999)]
    out = MemorySink(CSV)
    await copy(mysql.source_from_url(f"{mysql_database}?table=t", EndpointOptions()), out)
    assert out.committed_bytes is not None
    assert sorted(out.committed_bytes.decode().splitlines()) == sorted(
        f'{i},"name {i}"' for i in range(3000))


async def test_values_round_trip_through_tsv_and_csv(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, s text, d decimal(10,3), "
                        "ts datetime(6), tz timestamp(6) NULL, b boolean, bits bit(5), "
                        "raw varbinary(10))")
    values = ["", None, "tab\there", "nl\nhere", 'q"uote', "back\\slash", "ünï ✓ 😀",
              "comma,here", "NULL", "\\N"]
    for i, v in enumerate(values):
        run(mysql_database, "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (i, v, Decimal("-1.250") if i % 2 else None, datetime(2024, 1, 2, 3, 4, 5, i),
             datetime(2024, 6, 1, 12, 0, 0) if i % 3 else None, i % 2 == 0, i, bytes([i, 255])))
    for fmt in (TSV, NULL_WORD_CSV, NULL_WORD_CSV.replace(column_separator=";")):
        run(mysql_database, "DROP TABLE IF EXISTS t2")
        run(mysql_database, "CREATE TABLE t2 LIKE t")
        out = MemorySink(fmt)
        await copy(mysql.source_from_url(f"{mysql_database}?table=t", EndpointOptions()), out)
        assert out.committed_bytes is not None
        sink = mysql.sink_from_url(f"{mysql_database}?table=t2", EndpointOptions())
        await copy(MemorySource(IDS, data=out.committed_bytes, fmt=fmt), sink)
        assert run(mysql_database, "SELECT * FROM t2 ORDER BY id") == run(
            mysql_database, "SELECT * FROM t ORDER BY id"), fmt


async def test_rows_lane_types(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int, d decimal(10,2), ts timestamp(6) NULL, "
                        "dt datetime, b tinyint(1), bits bit(3), j json)")
    run(mysql_database, "INSERT INTO t VALUES (1, 2.50, '2024-01-01 10:00:00', "
                        "'2024-01-02 03:04:05', 1, b'101', '{\"a\": 1}'), "
                        "(2, NULL, NULL, NULL, 0, NULL, NULL)")
    src = mysql.source_from_url(f"{mysql_database}?table=t", EndpointOptions())
    schema = await src.schema()
    assert schema is not None
    # MariaDB's JSON is LONGTEXT with a check: information_schema calls it longtext
    assert [c.type for c in schema.columns] == ["integer", "numeric", "timestamptz",
                                                "timestamp", "boolean", "bigint", "text"]
    out = MemorySink()
    await copy(src, out)
    assert out.rows[0][:6] == (1, Decimal("2.50"), datetime(2024, 1, 1, 10, tzinfo=UTC),
                               datetime(2024, 1, 2, 3, 4, 5), True, 5)
    assert out.rows[1] == (2, None, None, None, False, None, None)


async def test_load_data_bad_value_fails_with_row_and_commits_nothing(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int, name text)")
    sink = mysql.sink_from_url(f"{mysql_database}?table=t", EndpointOptions())
    with pytest.raises(BadDataError) as info:
        await copy(MemorySource(IDS, data=csv_bytes(40, bad_line=23), fmt=NULL_WORD_CSV), sink)
    assert info.value.line == 23
    assert "abc" in str(info.value)
    assert run(mysql_database, "SELECT count(*) FROM t") == [(0,)]


async def test_rows_lane_bad_value_names_row_and_commits_nothing(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int, name text)")
    rows: list[tuple[Any, ...]] = [(i, f"n{i}") for i in range(30)]
    rows[25] = ("twenty-six", "x")
    sink = mysql.sink_from_url(f"{mysql_database}?table=t", EndpointOptions())
    with pytest.raises(BadDataError) as info:
        await copy(MemorySource(IDS, rows, batch_rows=10), sink)
    assert info.value.line == 26
    assert run(mysql_database, "SELECT count(*) FROM t") == [(0,)]


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_a_load_under_a_checkpoint_key_happens_once(mysql_database: str, lane: str) -> None:
    run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    rows = [(i, f"n{i}") for i in range(50)]
    extra = {"data": csv_bytes(50), "fmt": NULL_WORD_CSV} if lane == "bytes" else {}

    def sink(key: str) -> Any:
        return MySqlSink(MySqlEndpoint.from_url(f"{mysql_database}?table=t").model_copy(
            update={"checkpoint_key": key}))

    await copy(MemorySource(IDS, rows, **extra), sink("p/@Load_1/0"))
    await copy(MemorySource(IDS, rows, **extra), sink("p/@Load_1/0"))  # loads nothing
    assert run(mysql_database, "SELECT count(*), count(DISTINCT id) FROM t") == [(50, 50)]
    await copy(MemorySource(IDS, rows, **extra), sink("p/@Load_1/1"))  # a rerun: a new key
    assert run(mysql_database, "SELECT count(*) FROM t") == [(100,)]
    assert run(mysql_database, "SELECT load_key, rows_loaded FROM headrace_checkpoints "
                               "ORDER BY load_key") == [("p/@Load_1/0", 50), ("p/@Load_1/1", 50)]


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_cancelled_copy_leaves_no_rows(mysql_database: str, lane: str) -> None:
    run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    rows = [(i, f"n{i}") for i in range(400)]

    async def observe() -> int:
        return run(mysql_database, "SELECT count(*) FROM t")[0][0]

    await check_abort_leaves_nothing(
        lambda: mysql.sink_from_url(f"{mysql_database}?table=t", EndpointOptions()),
        observe, rows, IDS,
        **({"data": csv_bytes(400), "fmt": NULL_WORD_CSV} if lane == "bytes" else {}))
    run(mysql_database, "INSERT INTO t VALUES (1, 'after')")
    assert await observe() == 1


async def test_insert_query_upserts_and_create_table_sql(mysql_database: str) -> None:
    ep = MySqlEndpoint.from_url(mysql_database).model_copy(update={
        "table": "t",
        "create_table_sql": "CREATE TABLE t (id int PRIMARY KEY, name text)",
        "insert_query": "INSERT INTO t (id, name) VALUES (?, ?) "
                        "ON DUPLICATE KEY UPDATE name = VALUES(name)"})
    await copy(MemorySource(IDS, [(1, "a"), (2, "100% b")]), MySqlSink(ep))
    await copy(MemorySource(IDS, [(1, "new"), (3, "c")]), MySqlSink(ep))
    assert run(mysql_database, "SELECT * FROM t ORDER BY id") == [
        (1, "new"), (2, "100% b"), (3, "c")]


async def test_create_from_schema_and_injection_is_inert(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE victim (id int)")
    evil = "x`; DROP TABLE victim; --"
    schema = Schema((Column("id", "bigint"), Column("name", "text"), Column("ok", "boolean"),
                     Column("at", "timestamptz"), Column("amount", "numeric")))
    sink = mysql.sink_from_url(f"{mysql_database}?table={evil}", EndpointOptions(create=True))
    value = "'); DROP TABLE victim; --"
    await copy(MemorySource(schema, [(1, value, True, datetime(2024, 1, 1, tzinfo=UTC),
                                      Decimal("1.5"))]), sink)
    assert run(mysql_database, "SELECT count(*) FROM victim") == [(0,)]
    assert run(mysql_database, "SELECT name, ok FROM `x``; DROP TABLE victim; --`") == [
        (value, 1)]
    assert await mysql.table_exists(mysql_database, evil)
    assert not await mysql.table_exists(mysql_database, "victim; DROP TABLE victim")


async def test_wrong_password_is_authentication_failed_without_the_password(
        mysql_database: str) -> None:
    user = f"u{secrets.token_hex(4)}"
    run(mysql_database, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-pass'")
    try:
        p = urlsplit(mysql_database)
        url = f"mysql://{user}:hunter2-wrong@{p.hostname}:{p.port}{p.path}?table=t"
        sink = mysql.sink_from_url(url, EndpointOptions())
        assert "hunter2" not in sink.describe
        with pytest.raises(AuthenticationFailed) as info:
            await copy(MemorySource(IDS, [(1, "a")]), sink)
        assert "hunter2" not in str(info.value) and not info.value.transient
    finally:
        run(mysql_database, f"DROP USER '{user}'@'%'")


async def test_missing_table_and_unreachable(mysql_database: str) -> None:
    with pytest.raises(NotFoundError):
        await copy(mysql.source_from_url(f"{mysql_database}?table=nope", EndpointOptions()),
                   MemorySink(CSV))
    with pytest.raises(NotFoundError):
        await copy(MemorySource(IDS, [(1, "a")]),
                   mysql.sink_from_url(f"{mysql_database}?table=nope", EndpointOptions()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unreachable):
        await mysql.source_from_url(f"mysql://root@127.0.0.1:{port}/db?table=t",
                                    EndpointOptions()).schema()


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_connection_lost_mid_load_is_transient_and_commits_nothing(
        mysql_database: str, lane: str) -> None:
    run(mysql_database, "CREATE TABLE t (id bigint, name text)")
    n = 60_000
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        url = mysql_database.replace(":53306/", f":{proxy.port}/")
        sink = mysql.sink_from_url(f"{url}?table=t", EndpointOptions())
        proxy.reset_after(300_000, direction="up")
        if lane == "bytes":
            source = MemorySource(IDS, data=csv_bytes(n), fmt=NULL_WORD_CSV, chunk_size=16384)
        else:
            source = MemorySource(IDS, [(i, f"name {i}") for i in range(n)], batch_rows=2000)
        with pytest.raises(TransientError):
            await copy(source, sink)
    assert run(mysql_database, "SELECT count(*) FROM t") == [(0,)]


async def test_source_connection_lost_mid_read_is_transient(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, name text)")
    run(mysql_database, "INSERT INTO t SELECT seq, REPEAT('x', 60) FROM seq_1_to_40000")
    async with FaultProxy("127.0.0.1", 53306) as proxy:
        url = mysql_database.replace(":53306/", f":{proxy.port}/")
        proxy.reset_after(400_000, direction="down")
        out = MemorySink(CSV)
        with pytest.raises(TransientError):
            await copy(mysql.source_from_url(f"{url}?table=t", EndpointOptions()), out)
        assert out.committed_bytes is None


async def test_clogged_consumer_holds_back_the_reader(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, name text)")
    run(mysql_database, "INSERT INTO t SELECT seq, REPEAT('y', 200) FROM seq_1_to_40000")
    ep = MySqlEndpoint.from_url(f"{mysql_database}?table=t").model_copy(
        update={"chunk_size": 64 * 1024})
    # bound: the stream's slots and the chunk being sent (the rest of a fetch waits unsent)
    await check_clogged_sink(lambda: MySqlSource(ep), fmt=CSV, depth=2, hold=0.3,
                             max_read_ahead_bytes=4 * 64 * 1024)


@pytest.mark.parametrize("lane", ["bytes", "rows"])
async def test_stalled_consumer_leaves_the_result_in_the_socket(mysql_database: str,
                                                                lane: str) -> None:
    """The driver must not pull the rest of the result into memory while the copy waits.

    asyncmy buffers whatever arrives on the socket without limit; the source pauses the
    transport between fetches. Python-level allocations (the driver's buffer is a bytearray)
    are measured with tracemalloc while the consumer is stalled.
    """
    import tracemalloc

    run(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, name text)")
    run(mysql_database, "INSERT INTO t SELECT seq, REPEAT('z', 1000) FROM seq_1_to_48000")
    source = mysql.source_from_url(f"{mysql_database}?table=t", EndpointOptions())
    send, recv = anyio.create_memory_object_stream[Any](1)
    received = 0
    tracemalloc.start()
    try:
        async with anyio.create_task_group() as tg:

            async def produce() -> None:
                if lane == "bytes":
                    await source.produce_bytes(CSV, send, Progress())
                else:
                    await source.produce_rows(send, Progress())
                await send.aclose()

            tg.start_soon(produce)
            first = await recv.receive()
            base, _ = tracemalloc.get_traced_memory()
            await anyio.sleep(0.8)  # the server could send all 48 MB meanwhile
            held = tracemalloc.get_traced_memory()[0] - base
            received += len(first) if lane == "bytes" else len(first.rows)
            async for item in recv:
                received += len(item) if lane == "bytes" else len(item.rows)
    finally:
        tracemalloc.stop()
        send.close()
        recv.close()
    assert held < 16_000_000, f"{held} bytes buffered while the consumer was stalled"
    line_bytes = sum(len(f'{i},"{"z" * 1000}"\n') for i in range(1, 48001))
    assert received == (line_bytes if lane == "bytes" else 48000)


async def test_query_source_header_and_custom_format(mysql_database: str) -> None:
    run(mysql_database, "CREATE TABLE t (id int, name text)")
    run(mysql_database, "INSERT INTO t VALUES (1, 'a|b'), (2, NULL), (3, 'x\\\\y')")
    src = mysql.source_from_url(mysql_database, EndpointOptions(
        query="SELECT id, name AS `the name` FROM t ORDER BY id ;"))
    custom = TextFormat(kind="custom", column_separator="|", quote=None, escape_char="\\",
                        null="\\N")
    out = MemorySink(custom)
    await copy(src, out)
    assert out.committed_bytes == b"1|a\\|b\n2|\\N\n3|x\\\\y\n"
    out2 = MemorySink(CSV.replace(header=True))
    await copy(src, out2)
    assert out2.committed_bytes == b'id,the name\n1,"a|b"\n2,\n3,"x\\y"\n'


async def test_execute_script_and_query_is_true(mysql_database: str) -> None:
    await mysql.execute_script(mysql_database, """
        CREATE TABLE runs (day date, n int, label text);
        INSERT INTO runs VALUES (?, ?, 'a; b -- c');
        INSERT INTO runs SELECT day + INTERVAL 1 DAY, n + ?, '50%' FROM runs;
    """, ["2024-03-01", "41", 1])
    assert run(mysql_database, "SELECT CAST(day AS CHAR), n, label FROM runs ORDER BY day") == [
        ("2024-03-01", 41, "a; b -- c"), ("2024-03-02", 42, "50%")]
    with pytest.raises(ConfigError):
        await mysql.execute_script(mysql_database, "SELECT ?", [])
    assert await mysql.query_is_true(mysql_database, "SELECT count(*) FROM runs")
    assert not await mysql.query_is_true(mysql_database, "SELECT n FROM runs WHERE n > 100")
    assert not await mysql.query_is_true(mysql_database, "SELECT 0")
    assert await mysql.table_exists(mysql_database, "runs")
    assert not await mysql.table_exists(mysql_database, "nope")


async def test_headerless_csv_loads_by_position_when_the_width_matches(
        mysql_database: str, tmp_path: Any) -> None:
    """A CSV without a header decodes to ``col1``...; the sink maps fields by position."""
    from connectors.local import LocalSource

    run(mysql_database, "CREATE TABLE t (id int PRIMARY KEY, name text, flag boolean)")
    path = tmp_path / "in.csv"
    path.write_bytes(b'1,"a, b",t\n2,,f\n3,"",true\n')
    sink = mysql.sink_from_url(f"{mysql_database}?table=t", EndpointOptions())
    result = await copy(LocalSource(str(path)), sink)
    assert result.rows == 3
    assert run(mysql_database, "SELECT id, name, flag FROM t ORDER BY id") == [
        (1, "a, b", 1), (2, None, 0), (3, "", 1)]

    run(mysql_database, "CREATE TABLE narrow (id int PRIMARY KEY, name text)")
    narrow = mysql.sink_from_url(f"{mysql_database}?table=narrow", EndpointOptions())
    with pytest.raises(BadDataError, match="Row 1 was truncated") as err:
        await copy(LocalSource(str(path)), narrow)
    assert err.value.line == 1
    assert run(mysql_database, "SELECT count(*) FROM narrow") == [(0,)]
    # rows that name columns the table lacks, with another width, cannot be mapped at all
    with pytest.raises(BadDataError, match="cannot be matched by position"):
        await copy(MemorySource(Schema((Column("x"), Column("y"), Column("z"))),
                                [(1, "a", True)]), narrow)
