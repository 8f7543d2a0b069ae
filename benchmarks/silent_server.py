"""How long a silent server takes to fail a copy, with the default timeouts, per system.

``python -m benchmarks.silent_server [--only mysql,postgres,s3,dynamodb,sns] [--native-cap S]
[--output text|json]``, with the test servers' environment (``eval "$(python -m tests.services
env)"``, or under ``/work/bin/ns NAME run``). Each system sits behind the TCP fault proxy
(``connectors.testing.FaultProxy``), whose blackhole accepts connections and forwards
nothing: set before the copy (``connect``), or once data flows (``mid-stream``), as a source
and as a sink. The figure is the seconds from the start of the silence to the copy's error,
and the error's phase. Nothing is configured: these are the defaults (``connect_timeout`` 10 s,
``read_timeout`` 30 s, :mod:`connectors.timeouts`).

The native tools against the same silent proxy are the baseline (``mariadb``, ``psql`` and
``s5cmd`` with their own defaults), each cut off at ``--native-cap`` seconds (shown as ``>S``):
they wait for the greeting or the reply for as long as the operating system keeps the
connection open.

Timing only; the behaviour is tested in ``tests/integration/test_timeouts.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio

from connectors import aws, mysql, postgres
from connectors.base import CSV, DYNAMODB_JSONL, Column, EndpointOptions, Schema, Sink, Source
from connectors.copy import copy
from connectors.dynamodb import DynamoDBSink, DynamoDBSource, DynamoDBTable
from connectors.errors import HeadraceError, TimedOut
from connectors.s3 import S3Sink, S3Source
from connectors.testing import FaultProxy, MemorySink, MemorySource

IDS = Schema((Column("id", "bigint"), Column("name", "text")))
MiB = 1024 * 1024
SYSTEMS = ("mysql", "postgres", "s3", "dynamodb", "sns")


def csv_data(n: int) -> bytes:
    return b"".join(b"%d,name %d\n" % (i, i) for i in range(n))


def port_of(url: str) -> int:
    return urlsplit(url).port or 0


def retarget(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{port}")).geturl()


async def measure(proxy: FaultProxy, run: Callable[[], Awaitable[object]],
                  when: Callable[[FaultProxy], bool] | None) -> dict[str, Any]:
    """Seconds from the silence to ``run``'s error, and the error's phase."""
    started = [time.monotonic()]
    result: dict[str, Any] = {}
    if when is None:
        proxy.blackhole()

    async def silence() -> None:
        assert when is not None
        while not when(proxy):  # noqa: ASYNC110 (a counter, no event to wait on)
            await anyio.sleep(0.01)
        proxy.blackhole()
        started[0] = time.monotonic()

    async def attempt() -> None:
        try:
            with anyio.fail_after(300):
                await run()
            result["error"] = "finished (no fault)"
        except TimedOut as exc:
            result.update(phase=exc.phase, error=str(exc))
        except (HeadraceError, TimeoutError) as exc:
            result.update(phase=None, error=f"{type(exc).__name__}: {exc}")
        result["seconds"] = round(time.monotonic() - started[0], 2)
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        if when is not None:
            group.start_soon(silence)
        group.start_soon(attempt)
    proxy.heal()
    return result


def down_past(n: int) -> Callable[[FaultProxy], bool]:
    return lambda p: p.bytes_down > n


def up_past(n: int) -> Callable[[FaultProxy], bool]:
    return lambda p: p.bytes_up > n


Case = tuple[str, Callable[[FaultProxy], tuple[Source, Sink]], Callable[[FaultProxy], bool] | None]


async def sql_cases(name: str, dsn: str) -> list[Case]:
    table = f"silent_{secrets.token_hex(4)}"
    if name == "mysql":
        import pymysql

        p = urlsplit(dsn)
        conn = pymysql.connect(host=p.hostname, port=p.port, user=p.username or "root",
                               database=p.path.lstrip("/"), autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id bigint, name text)")
            cur.execute(f"INSERT INTO {table} SELECT seq, REPEAT('x', 100) "
                        "FROM seq_1_to_200000")
            cur.execute(f"CREATE TABLE {table}_in (id bigint, name text)")
        conn.close()
        module: Any = mysql
        fmt = CSV.replace(null="NULL")
    else:
        import asyncpg

        conn2 = await asyncpg.connect(dsn)
        await conn2.execute(f"CREATE TABLE {table} AS SELECT i AS id, repeat('x', 100) AS name "
                            "FROM generate_series(1, 200000) i")
        await conn2.execute(f"CREATE TABLE {table}_in (id bigint, name text)")
        await conn2.close()
        module = postgres
        fmt = CSV

    def source(proxy: FaultProxy) -> tuple[Source, Sink]:
        url = retarget(dsn, proxy.port) + f"?table={table}"
        return module.source_from_url(url, EndpointOptions()), MemorySink(CSV)

    def sink(proxy: FaultProxy) -> tuple[Source, Sink]:
        url = retarget(dsn, proxy.port) + f"?table={table}_in"
        return (MemorySource(IDS, data=csv_data(500_000), fmt=fmt),
                module.sink_from_url(url, EndpointOptions()))

    return [("source, connect", source, None),
            ("source, mid-stream", source, down_past(300_000)),
            ("sink, connect", sink, None),
            ("sink, mid-stream", sink, up_past(300_000))]


async def s3_cases(endpoint: str) -> list[Case]:
    bucket = f"silent-{secrets.token_hex(4)}"
    async with aws.client("s3", endpoint_url=endpoint) as c:
        await c.create_bucket(Bucket=bucket)
        await c.put_object(Bucket=bucket, Key="in/big.csv", Body=csv_data(1_500_000))

    def via(proxy: FaultProxy) -> str:
        return f"http://127.0.0.1:{proxy.port}"

    def source(proxy: FaultProxy) -> tuple[Source, Sink]:
        return (S3Source(f"s3://{bucket}/in/big.csv", chunk_size=4 * MiB, parallel=1,
                         endpoint_url=via(proxy)), MemorySink(CSV))

    def sink(proxy: FaultProxy) -> tuple[Source, Sink]:
        return (MemorySource(IDS, data=csv_data(1_500_000), fmt=CSV),
                S3Sink(f"s3://{bucket}/out/", CSV, part_size=16 * MiB, parallel=1,
                       endpoint_url=via(proxy)))

    return [("source, connect", source, None),
            ("source, mid-stream", source, down_past(MiB)),
            ("sink, connect", sink, None),
            ("sink, mid-stream", sink, up_past(MiB))]


async def dynamodb_cases(endpoint: str) -> list[Case]:
    table = f"silent_{secrets.token_hex(4)}"
    async with aws.client("dynamodb", endpoint_url=endpoint) as c:
        await c.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "id",
                                                    "AttributeType": "N"}])
        for start in range(0, 4000, 25):
            left: Any = {table: [{"PutRequest": {"Item": {"id": {"N": str(i)},
                                                          "pad": {"S": "p" * 300}}}}
                                 for i in range(start, start + 25)]}
            while left:
                left = (await c.batch_write_item(RequestItems=left)).get("UnprocessedItems")

    def source(proxy: FaultProxy) -> tuple[Source, Sink]:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{proxy.port}"
        return (DynamoDBSource(DynamoDBTable(table_name=table), EndpointOptions(parallel=1),
                               page_limit=500), MemorySink(DYNAMODB_JSONL))

    def sink(proxy: FaultProxy) -> tuple[Source, Sink]:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = f"http://127.0.0.1:{proxy.port}"
        return (MemorySource(IDS, [(i, "n" * 200) for i in range(20_000)], batch_rows=500),
                DynamoDBSink(DynamoDBTable(table_name=table), EndpointOptions(parallel=1)))

    return [("source, connect", source, None),
            ("source, mid-stream", source, down_past(300_000)),
            ("sink, connect", sink, None),
            ("sink, mid-stream", sink, up_past(100_000))]


async def run_system(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if name == "sns":
        endpoint = os.environ["AWS_ENDPOINT_URL_SNS"]
        async with aws.client("sns", endpoint_url=endpoint) as c:
            arn = (await c.create_topic(Name=f"silent-{secrets.token_hex(4)}"))["TopicArn"]
        async with FaultProxy("127.0.0.1", port_of(endpoint)) as proxy:
            os.environ["AWS_ENDPOINT_URL_SNS"] = f"http://127.0.0.1:{proxy.port}"
            try:
                found = await measure(proxy, lambda: aws.publish_sns(arn, "s", "m"), None)
            finally:
                os.environ["AWS_ENDPOINT_URL_SNS"] = endpoint
        return [{"system": name, "case": "publish, connect", **found}]
    if name in ("mysql", "postgres"):
        dsn = os.environ["HEADRACE_TEST_MYSQL_DSN" if name == "mysql" else "HEADRACE_TEST_PG_DSN"]
        target, cases = port_of(dsn), await sql_cases(name, dsn)
        saved = None
    elif name == "s3":
        endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
        target, cases, saved = port_of(endpoint), await s3_cases(endpoint), None
    else:
        endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        target, cases, saved = port_of(endpoint), await dynamodb_cases(endpoint), endpoint
    try:
        for label, make, when in cases:
            async with FaultProxy("127.0.0.1", target) as proxy:
                source, sink = make(proxy)
                found = await measure(proxy, lambda s=source, k=sink: copy(s, k), when)
            rows.append({"system": name, "case": label, **found})
            print(f"  {name:9} {label:20} {found.get('seconds')!s:>6} s  "
                  f"phase {found.get('phase')}", file=sys.stderr, flush=True)
    finally:
        if saved is not None:
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = saved
    return rows


async def native(name: str, cap: float) -> dict[str, Any] | None:
    """The system's own client against the silent proxy, with its defaults; None if the tool
    is not installed."""
    if name == "mysql":
        dsn, tool = os.environ["HEADRACE_TEST_MYSQL_DSN"], shutil.which("mariadb")
    elif name == "postgres":
        dsn, tool = os.environ["HEADRACE_TEST_PG_DSN"], shutil.which("psql")
    elif name == "s3":
        dsn, tool = os.environ["AWS_ENDPOINT_URL_S3"], shutil.which("s5cmd")
    else:
        return None
    if tool is None:
        return None
    async with FaultProxy("127.0.0.1", port_of(dsn)) as proxy:
        proxy.blackhole()
        if name == "mysql":
            argv = [tool, "-h127.0.0.1", f"-P{proxy.port}", "-uroot", "-e", "SELECT 1"]
        elif name == "postgres":
            argv = [tool, retarget(dsn, proxy.port), "-c", "SELECT 1"]
        else:
            argv = [tool, "--endpoint-url", f"http://127.0.0.1:{proxy.port}", "ls"]
        started = time.monotonic()
        with anyio.move_on_after(cap) as scope:
            await anyio.run_process(argv, check=False)
        waited = time.monotonic() - started
        proxy.heal()
    shown = f">{cap:g}" if scope.cancelled_caught else f"{waited:.2f}"
    return {"system": name, "case": f"native {os.path.basename(tool)}, connect",
            "seconds": shown, "phase": None, "error": "cut off" if scope.cancelled_caught
            else "failed by itself"}


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in args.only:
        rows.extend(await run_system(name))
        if args.native_cap > 0:
            found = await native(name, args.native_cap)
            if found is not None:
                rows.append(found)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.silent_server")
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x],
                        default=list(SYSTEMS), help=f"comma-separated: {','.join(SYSTEMS)}")
    parser.add_argument("--native-cap", type=float, default=60.0,
                        help="seconds a native tool may wait (0: skip the natives)")
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    rows = anyio.run(main_async, args)
    if args.output == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'system':9} {'case':34} {'seconds':>8}  phase")
        for row in rows:
            print(f"{row['system']:9} {row['case']:34} {row['seconds']!s:>8}  "
                  f"{row.get('phase') or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
