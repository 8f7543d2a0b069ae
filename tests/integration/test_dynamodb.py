"""The DynamoDB connector against a real dynalite on loopback.

Checker (RELIABILITY.md): source items have ids 0..N-1; after a run the destination, read back
through botocore's own modeled client (not through the connector's wire code), must hold every
id exactly once (nothing lost, duplicated or unexpected) with every attribute as it was written.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

from connectors.base import (
    DYNAMODB_JSONL,
    JSONL,
    Column,
    EndpointOptions,
    Progress,
    RowBatch,
    Schema,
)
from connectors.copy import copy
from connectors.dynamodb import (
    DynamoDBSink,
    DynamoDBSource,
    DynamoDBTable,
    RetryPolicy,
    sink_from_url,
    source_from_url,
    table_exists,
    table_has_data,
    table_info,
)
from connectors.errors import (
    AuthenticationFailed,
    BadDataError,
    NotFoundError,
    Throttled,
    root_cause,
)
from connectors.testing import DynamoFaultPlan, MemorySource, check_round_trip, dynamo_fault_proxy
from tests.services import aws

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(base_delay=0.002, max_delay=0.05, max_attempts=40)


# -- fixtures and helpers ---------------------------------------------------------------------

@pytest.fixture
def endpoint(dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    return dynamodb_endpoint


@pytest.fixture
def ddb(endpoint: str) -> Iterator[Any]:
    """botocore's modeled client: creates tables and reads them back independently."""
    client = aws.client("dynamodb", endpoint)
    try:
        yield client
    finally:
        client.close()


class Tables:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.made: list[str] = []

    def create(self, *, read: int | None = None, write: int | None = None,
               range_key: bool = False) -> str:
        name = f"t_{secrets.token_hex(6)}"
        keys = [{"AttributeName": "id", "KeyType": "HASH"}]
        attrs = [{"AttributeName": "id", "AttributeType": "N"}]
        if range_key:
            keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "sk", "AttributeType": "S"})
        extra: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}
        if read or write:
            extra = {"ProvisionedThroughput": {"ReadCapacityUnits": read or 1,
                                               "WriteCapacityUnits": write or 1}}
        self.client.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attrs,
                                 **extra)
        self.client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
        self.made.append(name)
        return name

    def put(self, table: str, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": _to_botocore(i)}} for i in items[start:start + 25]]
            left = {table: requests}
            while left:
                left = self.client.batch_write_item(RequestItems=left).get("UnprocessedItems")

    def scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = self.client.scan(**kwargs)
            items.extend(_from_botocore(i) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def tables(ddb: Any) -> Iterator[Tables]:
    made = Tables(ddb)
    yield made
    for name in made.made:
        ddb.delete_table(TableName=name)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _convert(av: Any, blob: Any) -> Any:
    """Wire <-> botocore's form, which differs only in binary values (base64 text vs bytes)."""
    ((kind, value),) = av.items()
    if kind == "B":
        return {"B": blob(value)}
    if kind == "BS":
        return {"BS": [blob(v) for v in value]}
    if kind == "L":
        return {"L": [_convert(v, blob) for v in value]}
    if kind == "M":
        return {"M": {k: _convert(v, blob) for k, v in value.items()}}
    return {kind: value}


def _to_botocore(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _convert(v, base64.b64decode) for k, v in item.items()}


def _from_botocore(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _convert(v, _b64) for k, v in item.items()}


def _canonical(av: Any) -> Any:
    """Comparable form: numbers as Decimal, set members sorted."""
    ((kind, value),) = av.items()
    if kind == "N":
        return ("N", Decimal(value))
    if kind == "NS":
        return ("NS", sorted(Decimal(v) for v in value))
    if kind in ("SS", "BS"):
        return (kind, sorted(value))
    if kind == "L":
        return ("L", [_canonical(v) for v in value])
    if kind == "M":
        return ("M", {k: _canonical(v) for k, v in value.items()})
    return (kind, value)


def rich_item(i: int) -> dict[str, Any]:
    """An item using every attribute type; every 7th one is sparse (no name)."""
    item: dict[str, Any] = {
        "id": {"N": str(i)},
        "name": {"S": f"name {i} é ✓"},
        "big": {"N": f"12345678901234567890.12345678901234567{i % 10}"},
        "small": {"N": f"-0.000{i}"},
        "blob": {"B": _b64(bytes([i % 256, 0, 255]))},
        "flag": {"BOOL": i % 2 == 0},
        "nothing": {"NULL": True},
        "list": {"L": [{"N": str(i)}, {"S": "x"}, {"M": {"deep": {"BOOL": False}}}]},
        "map": {"M": {"a": {"S": "b"}, "n": {"N": "1.25"}, "e": {"L": []}}},
        "tags": {"SS": ["a", f"t{i}"]},
        "nums": {"NS": ["1", str(i + 2)]},
        "blobs": {"BS": [_b64(b"\x00\x00"), _b64(bytes([1, i % 256]))]},
    }
    if i % 7 == 3:
        del item["name"]
    return item


def check(found: list[dict[str, Any]], n: int,
          expected: dict[int, dict[str, Any]] | None = None) -> None:
    """Every id 0..n-1 exactly once; with ``expected``, every attribute as written."""
    ids = [int(item["id"]["N"]) for item in found]
    counts = Counter(ids)
    lost = set(range(n)) - set(counts)
    duplicated = sorted(i for i, c in counts.items() if c > 1)
    unexpected = sorted(set(counts) - set(range(n)))
    assert (sorted(lost)[:10], duplicated[:10], unexpected[:10]) == ([], [], [])
    if expected is not None:
        for item in found:
            want = expected[int(item["id"]["N"])]
            assert {k: _canonical(v) for k, v in item.items()} == \
                {k: _canonical(v) for k, v in want.items()}


def jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({"Item": i}, ensure_ascii=False) + "\n" for i in items).encode()


async def produce(source: DynamoDBSource, progress: Progress | None = None) -> bytes:
    send, receive = anyio.create_memory_object_stream[bytes](2)
    chunks: list[bytes] = []

    async def drain() -> None:
        async with receive:
            async for chunk in receive:
                chunks.append(chunk)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            async with send:
                await source.produce_bytes(DYNAMODB_JSONL, send, progress or Progress())
    except BaseExceptionGroup as group:
        raise root_cause(group) from None
    return b"".join(chunks)


async def consume(sink: DynamoDBSink, data: bytes, chunk: int = 4096,
                  progress: Progress | None = None) -> None:
    send, receive = anyio.create_memory_object_stream[bytes](2)
    with receive:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sink.consume_bytes, DYNAMODB_JSONL, receive,
                              progress or Progress())
                async with send:
                    for start in range(0, len(data), chunk):
                        await send.send(data[start:start + chunk])
        except BaseExceptionGroup as group:
            raise root_cause(group) from None


# -- round trips ------------------------------------------------------------------------------

async def test_json_lines_round_trip_keeps_every_item_and_type(tables: Tables) -> None:
    n = 1200
    expected = {i: rich_item(i) for i in range(n)}
    first, second = tables.create(), tables.create()
    tables.put(first, list(expected.values()))

    progress = Progress()
    source = source_from_url(f"dynamodb://{first}", EndpointOptions(parallel=3))
    data = await produce(source, progress)
    lines = data.decode().splitlines()
    assert len(lines) == n == progress.rows == source.stats.items
    assert all(line.startswith('{"Item":{') for line in lines)
    check([json.loads(line)["Item"] for line in lines], n, expected)

    sink = sink_from_url(f"dynamodb://{second}", EndpointOptions(parallel=4))
    await consume(sink, data, chunk=1777)  # chunk edges fall inside lines
    assert sink.stats.items == n and sink.stats.resent == 0
    check(tables.scan(second), n, expected)


async def test_plain_json_lines_from_a_scan(tables: Tables) -> None:
    n = 300
    expected = {i: rich_item(i) for i in range(n)}
    table = tables.create()
    tables.put(table, list(expected.values()))
    source = source_from_url(f"dynamodb://{table}", EndpointOptions(parallel=2))
    send, receive = anyio.create_memory_object_stream[bytes](2)
    chunks: list[bytes] = []

    async def drain() -> None:
        async with receive:
            async for chunk in receive:
                chunks.append(chunk)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        async with send:
            await source.produce_bytes(JSONL, send, Progress())
    objects = [json.loads(line, parse_float=Decimal) for line in b"".join(chunks).splitlines()]
    check([{"id": {"N": str(o["id"])}} for o in objects], n)
    for obj in objects:
        want = expected[obj["id"]]
        assert obj["big"] == Decimal(want["big"]["N"])  # no float rounding
        assert obj["blob"] == want["blob"]["B"] and obj["nothing"] is None
        assert obj["tags"] == sorted(want["tags"]["SS"])
        assert ("name" in obj) == ("name" in want)


async def test_copy_between_tables_keeps_every_item(tables: Tables) -> None:
    n = 600
    expected = {i: rich_item(i) for i in range(n)}
    first, second = tables.create(), tables.create()
    tables.put(first, list(expected.values()))
    result = await copy(source_from_url(f"dynamodb://{first}", EndpointOptions(parallel=2)),
                        sink_from_url(f"dynamodb://{second}", EndpointOptions(parallel=2)))
    # the wire JSON passes as is (bytes lane): no Python value conversion, sets stay sets
    assert (result.lane, result.format, result.rows) == ("bytes", DYNAMODB_JSONL, n)
    check(tables.scan(second), n, expected)


async def test_item_count_is_the_estimated_total(tables: Tables) -> None:
    """DescribeTable's ItemCount is the progress total, marked estimated; a count of 0 is no
    total (a new table says 0 until DynamoDB's six-hourly refresh; dynalite always does)."""
    n = 250
    table = tables.create()
    tables.put(table, [{"id": {"N": str(i)}} for i in range(n)])
    source = source_from_url(f"dynamodb://{table}", EndpointOptions(parallel=2))
    reply = tables.client.describe_table(TableName=table)
    assert reply["Table"]["ItemCount"] == 0  # dynalite never refreshes it
    assert await source.total() is None
    progress = Progress()
    result = await copy(source, sink_from_url(f"dynamodb://{tables.create()}",
                                              EndpointOptions(parallel=2)), progress=progress)
    assert result.rows == n and progress.total is None and progress.fraction() is None
    refreshed = {**reply, "Table": {**reply["Table"], "ItemCount": 5_000}}
    assert table_info(refreshed).item_count == 5_000


@pytest.mark.parametrize("segments", [1, 2, 5, 8])
async def test_parallel_scan_returns_every_item_once(tables: Tables, segments: int) -> None:
    n = 700
    table = tables.create()
    tables.put(table, [{"id": {"N": str(i)}, "v": {"S": "x" * (i % 50)}} for i in range(n)])
    source = DynamoDBSource(DynamoDBTable(table_name=table, columns=(Column("id", "bigint"),)),
                            EndpointOptions(parallel=segments), page_limit=37)
    send, receive = anyio.create_memory_object_stream[Any](4)
    ids: list[int] = []

    async def drain() -> None:
        async with receive:
            async for batch in receive:
                ids.extend(row[0] for row in batch.rows)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        async with send:
            await source.produce_rows(send, Progress())
    check([{"id": {"N": str(i)}} for i in ids], n)
    assert source.stats.requests >= n // 37  # it paged


async def test_rows_by_columns_round_trip(tables: Tables) -> None:
    table = tables.create(range_key=True)
    schema = Schema((Column("id", "bigint"), Column("sk", "text"), Column("amount", "numeric"),
                     Column("ratio", "double"), Column("flag", "boolean"),
                     Column("payload", "binary"), Column("note", "text")))
    rows = [(i, f"k{i % 3}", Decimal(f"{i}.25"), i / 4, i % 3 == 0, bytes([i % 256]) * 3,
             None if i % 5 == 0 else f"note {i}") for i in range(300)]
    model = DynamoDBTable(table_name=table, columns=schema.columns)
    await check_round_trip(lambda: DynamoDBSink(model), lambda: DynamoDBSource(model), rows,
                           schema, ordered=False)


async def test_text_rows_get_the_tables_key_types(tables: Tables) -> None:
    """Rows decoded from untyped text (all strings) still land under a numeric key."""
    table = tables.create(range_key=True)
    schema = Schema((Column("id"), Column("sk"), Column("note")))
    rows = [(str(i), f"s{i}", "x" if i % 2 else None) for i in range(100)]
    await copy(MemorySource(schema, rows), sink_from_url(f"dynamodb://{table}",
                                                         EndpointOptions()))
    found = tables.scan(table)
    check(found, 100)
    assert all(set(item) == ({"id", "sk", "note"} if int(item["id"]["N"]) % 2 else {"id", "sk"})
               for item in found)


async def test_a_row_without_its_key_is_named(tables: Tables) -> None:
    table = tables.create()
    schema = Schema((Column("id", "bigint"), Column("note")))
    rows = [(1, "a"), (2, "b"), (None, "no id"), (4, "d")]
    with pytest.raises(BadDataError) as info:
        await copy(MemorySource(schema, rows), sink_from_url(f"dynamodb://{table}",
                                                             EndpointOptions()))
    assert info.value.line == 3 and "id" in str(info.value)


# -- RELIABILITY case 11 ----------------------------------------------------------------------

async def test_unprocessed_items_and_throttles_are_resent_exactly(
        tables: Tables, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1500
    table = tables.create()
    schema = Schema((Column("id", "bigint"), Column("name", "text")))
    rows = [(i, f"row {i}") for i in range(n)]
    plan = DynamoFaultPlan(forward_fraction=0.7, throttle_probability=0.1, seed=11)
    async with dynamo_fault_proxy(endpoint, plan) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        sink = DynamoDBSink(DynamoDBTable(table_name=table), EndpointOptions(parallel=4),
                            retry=FAST_RETRY)
        progress = Progress()
        send, receive = anyio.create_memory_object_stream[Any](2)
        with receive:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sink.consume_rows, receive, progress)
                async with send:
                    for start in range(0, n, 200):
                        await send.send(RowBatch(schema, rows[start:start + 200], start + 1))
    counts = proxy.counts
    # every item reached the table exactly once ...
    assert counts.items_accepted == n == sink.stats.items == progress.rows
    assert len(set(counts.accepted_keys)) == n
    # ... and only what the server handed back was sent again
    assert sink.stats.resent == counts.items_unprocessed > 0
    assert sink.stats.throttles == counts.throttled_batches > 0
    assert counts.items_received == n + counts.items_unprocessed + counts.throttled_items
    assert progress.retry_causes == {"dynamodb.unprocessed": counts.items_unprocessed,
                                     "dynamodb.throttled": counts.throttled_batches}
    check(tables.scan(table), n, {i: {"id": {"N": str(i)}, "name": {"S": f"row {i}"}}
                                   for i in range(n)})


async def test_a_starved_batch_fails_within_its_budget(tables: Tables, endpoint: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    table = tables.create()
    async with dynamo_fault_proxy(endpoint, DynamoFaultPlan(throttle_probability=1.0)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        sink = DynamoDBSink(DynamoDBTable(table_name=table), EndpointOptions(parallel=1),
                            retry=RetryPolicy(base_delay=0.001, max_delay=0.01, max_attempts=5))
        with pytest.raises(Throttled, match="gave up after 5 attempts"):
            await consume(sink, jsonl([{"id": {"N": "1"}}]))
    assert proxy.counts.throttled_batches == 5


# -- errors -----------------------------------------------------------------------------------

async def test_missing_table_is_not_found(endpoint: str) -> None:
    name = f"missing_{secrets.token_hex(4)}"
    with pytest.raises(NotFoundError, match=f"table '{name}': ResourceNotFoundException"):
        await produce(source_from_url(f"dynamodb://{name}", EndpointOptions()))
    with pytest.raises(NotFoundError, match=name):
        await consume(sink_from_url(f"dynamodb://{name}", EndpointOptions()),
                      jsonl([{"id": {"N": "1"}}]))


async def test_refused_credentials_fail_fast_without_retries(tables: Tables, endpoint: str,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    table = tables.create()
    secret = "wrong-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    async with dynamo_fault_proxy(endpoint, DynamoFaultPlan(refuse_credentials=True)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        with pytest.raises(AuthenticationFailed) as info:
            await produce(source_from_url(f"dynamodb://{table}", EndpointOptions()))
    assert proxy.counts.requests == 1
    assert "UnrecognizedClientException" in str(info.value)
    assert secret not in str(info.value)


async def test_missing_credentials_name_the_sources_tried(endpoint: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AuthenticationFailed) as info:
        await produce(source_from_url("dynamodb://anytable", EndpointOptions()))
    text = str(info.value)
    assert "AWS_ACCESS_KEY_ID" in text and "instance metadata" in text


async def test_bad_lines_are_named(tables: Tables) -> None:
    table = tables.create()
    sink = sink_from_url(f"dynamodb://{table}", EndpointOptions())
    good = jsonl([{"id": {"N": str(i)}} for i in range(3)])
    with pytest.raises(BadDataError) as info:
        await consume(sink, good + b'{"Item": {"id": {"N": "9"}, "x": {"Q": 1}}}\n')
    assert info.value.line == 4 and "attribute x" in str(info.value)
    with pytest.raises(BadDataError) as info:
        await consume(sink, good + b"not json\n")
    assert info.value.line == 4
    with pytest.raises(BadDataError) as info:
        await consume(sink, good + jsonl([{"other": {"S": "no key"}}]))
    assert info.value.line == 4 and "id" in str(info.value)
    with pytest.raises(BadDataError) as info:
        await consume(sink, good + b"x" * (5 * 2**20), chunk=2**20)
    assert info.value.line == 4 and "longer than" in str(info.value)


async def test_items_the_server_refuses_name_their_lines(tables: Tables) -> None:
    table = tables.create()
    sink = sink_from_url(f"dynamodb://{table}", EndpointOptions(parallel=1))
    items = [{"id": {"N": str(i)}} for i in range(30)]
    items[27] = {"id": {"S": "text where the key is a number"}}
    with pytest.raises(BadDataError) as info:
        await consume(sink, jsonl(items))
    assert "lines 26-30" in str(info.value)


# -- throughput caps --------------------------------------------------------------------------

async def test_write_throughput_percent_paces_the_load(tables: Tables) -> None:
    table = tables.create(write=40)
    model = DynamoDBTable(table_name=table, write_throughput_percent=1.0)
    sink = DynamoDBSink(model, EndpointOptions(parallel=2))
    await consume(sink, jsonl([{"id": {"N": str(i)}} for i in range(80)]))
    assert sink.stats.items == 80
    assert sink.stats.throughput_wait > 0  # 80 units at 40/s cannot pass without waiting
    check(tables.scan(table), 80)


async def test_read_throughput_percent_pages_and_paces_the_scan(tables: Tables) -> None:
    table = tables.create(read=2)
    n = 120
    tables.put(table, [{"id": {"N": str(i)}} for i in range(n)])
    model = DynamoDBTable(table_name=table, read_throughput_percent=0.5)
    source = DynamoDBSource(model, EndpointOptions(parallel=1))
    data = await produce(source)
    check([json.loads(line)["Item"] for line in data.splitlines()], n)
    assert source.stats.requests > 1  # small pages sized to the 1 unit/s share
    assert source.stats.throughput_wait > 0


async def test_on_demand_tables_are_not_paced(tables: Tables) -> None:
    table = tables.create()
    model = DynamoDBTable(table_name=table, write_throughput_percent=0.1)
    sink = DynamoDBSink(model, EndpointOptions())
    await consume(sink, jsonl([{"id": {"N": str(i)}} for i in range(60)]))
    assert sink.stats.throughput_wait == 0


# -- preconditions ----------------------------------------------------------------------------

async def test_precondition_helpers(tables: Tables) -> None:
    table = tables.create()
    missing = f"missing_{secrets.token_hex(4)}"
    assert await table_exists(table) is True
    assert await table_exists(missing) is False
    assert await table_has_data(table) is False
    assert await table_has_data(missing) is False
    tables.put(table, [{"id": {"N": "1"}}])
    assert await table_has_data(table) is True
