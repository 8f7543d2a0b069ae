"""The copy matrix across systems: every source/destination pair not covered elsewhere.

Each pair goes through the public copy API the CLI uses (``open_source``/``open_sink`` on URLs
as a user writes them, then ``copy``). The source is seeded with the plain drivers and SDK
(asyncpg, pymysql, botocore, hand-written RFC 4180 text) and the destination read back with
them, never through headrace's connectors. Checker (RELIABILITY.md): every source id exactly
once, nothing else, and every value equal after the documented conversion for the destination:

* PostgreSQL / MySQL tables: the value itself (timestamps compared as instants).
* CSV (file or S3 object): text, NULL as an unquoted empty field and '' as ``""``; numbers,
  booleans and timestamps must read back as the same value (``t``/``true``/``1`` all mean true).
* DynamoDB from rows (``connectors/formats/dynamodb_items.py``): a NULL column leaves the
  attribute out (never a NULL attribute); text S, numbers N, booleans BOOL, timestamps S in
  ISO-8601; rows decoded from CSV are text, so every value is S except the key, given the
  table's type (N).
* DynamoDB JSON lines on S3: the export form (``{"Item": {...}}``), items exactly as stored.

A DynamoDB source reads rows by its data format's column list, or, given by URL alone
(``ddb-url``, as ``headrace copy`` does), by the target table's columns.

Pairs covered elsewhere: tests/integration/test_sql_copy.py (table <-> table, table <-> CSV
bytes), test_copy_files_s3.py (file <-> S3), test_dynamodb.py (DynamoDB <-> DynamoDB/JSON).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from connectors.base import CSV, DYNAMODB_JSONL, EndpointOptions
from connectors.copy import copy
from connectors.urls import open_sink, open_source
from tests.integration.test_sql_copy import (
    SCHEMA,
    check,
    make_my,
    make_pg,
    my_rows,
    normal,
    pg_rows,
    source_rows,
)
from tests.services import aws

pytestmark = pytest.mark.anyio

N = 200
Row = tuple[Any, ...]
COLUMNS = SCHEMA.columns  # id bigint, name text, amount numeric, ts timestamptz, flag, note
#: Offsets the text sources write timestamps in (the instant is what must survive).
OFFSETS = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)))


def rows() -> list[Row]:
    """test_sql_copy's value set (NULL vs '', unicode, quotes, separators, newlines, a 70 KB
    note on row 17, numerics, timestamps, booleans) at N rows."""
    return source_rows(N)


# --- CSV as text: written and read here, not by the connectors ---------------------------------

def text_of(value: Any, i: int) -> str | None:
    """How a user's CSV spells a value: ISO timestamps in varying offsets, true/false."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(OFFSETS[i % len(OFFSETS)]).isoformat(sep=" ")
    return str(value)


def _quoted(text: str) -> str:
    one = io.StringIO()
    csv.writer(one, quoting=csv.QUOTE_ALL, lineterminator="").writerow([text])
    return one.getvalue()


def csv_bytes(data: list[Row]) -> bytes:
    """RFC 4180: every value quoted by the csv module, NULL an unquoted empty field (which the
    csv module of Python 3.11 cannot write beside quoted fields, hence one field at a time)."""
    lines = []
    for row in data:
        fields = [text_of(v, row[0]) for v in row]
        lines.append(",".join("" if f is None else _quoted(f) for f in fields) + "\n")
    return "".join(lines).encode()


def parse_csv(data: bytes) -> list[list[str | None]]:
    """RFC 4180 records; an unquoted empty field is None, a quoted one ''. (The csv module
    reads both as '', so this small reader tells them apart.)"""
    text = data.decode("utf-8")
    records: list[list[str | None]] = []
    fields: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            j = i + 1
            buf = []
            while True:
                k = text.index('"', j)
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            fields.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in ',\n':
                j += 1
            raw = text[i:j]
            assert '"' not in raw, f"stray quote in an unquoted field: {raw[:40]!r}"
            fields.append(raw if raw else None)
            i = j
        if i >= n or text[i] == "\n":
            records.append(fields)
            fields = []
            i += 1
        else:
            assert text[i] == ",", f"expected a separator at offset {i}, got {text[i]!r}"
            i += 1
            if i == n:  # a separator ends the data: an empty last field
                fields.append(None)
                records.append(fields)
    return records


_TRUE, _FALSE = {"t", "true", "1"}, {"f", "false", "0"}


def from_text(fields: list[str | None]) -> Row:
    """A CSV record read back as the value set's types; text that does not denote a value of
    the column's type fails the test."""
    assert len(fields) == len(COLUMNS), f"record has {len(fields)} fields: {fields[:3]}"
    out: list[Any] = []
    for column, text in zip(COLUMNS, fields, strict=True):
        if text is None:
            out.append(None)
        elif column.type == "bigint":
            out.append(int(text))
        elif column.type == "numeric":
            out.append(Decimal(text))
        elif column.type == "timestamptz":
            out.append(datetime.fromisoformat(text))
        elif column.type == "boolean":
            assert text.lower() in _TRUE | _FALSE, f"not a boolean: {text!r}"
            out.append(text.lower() in _TRUE)
        else:
            out.append(text)
    return tuple(out)


# --- DynamoDB items: written and read with botocore ---------------------------------------------

def item_of(row: Row) -> dict[str, Any]:
    """A DynamoDB item for a row as a user would store it: NULLs absent on even ids and NULL
    attributes on odd ones, timestamps as ISO text in varying offsets."""
    i = row[0]
    item: dict[str, Any] = {}
    for column, value in zip(COLUMNS, row, strict=True):
        if value is None:
            if i % 2:
                item[column.name] = {"NULL": True}
        elif isinstance(value, bool):
            item[column.name] = {"BOOL": value}
        elif isinstance(value, int | Decimal):
            item[column.name] = {"N": str(value)}
        elif isinstance(value, datetime):
            item[column.name] = {"S": value.astimezone(OFFSETS[i % len(OFFSETS)]).isoformat()}
        else:
            item[column.name] = {"S": value}
    return item


def canonical(item: dict[str, Any]) -> dict[str, Any]:
    """Numbers compared as numbers (the service may normalise their text)."""
    return {k: ("N", Decimal(v["N"])) if "N" in v else next(iter(v.items()))
            for k, v in item.items()}


def row_of_item(item: dict[str, Any], *, typed: bool) -> Row:
    """Read an item back as a row, asserting the documented attribute types: ``typed`` (from
    database rows) N/S/S/BOOL for amount/ts/flag, else S for everything but the key."""
    kinds = {"id": "N", "name": "S", "amount": "N", "ts": "S", "flag": "BOOL", "note": "S"}
    if not typed:
        kinds.update(amount="S", flag="S")
    out: list[Any] = []
    for column in COLUMNS:
        av = item.get(column.name)
        if av is None:
            out.append(None)
            continue
        ((kind, payload),) = av.items()
        assert kind == kinds[column.name], f"item {item['id']}: {column.name} is {kind}"
        if column.type == "bigint":
            out.append(int(payload))
        elif column.type == "numeric":
            out.append(Decimal(payload))
        elif column.type == "timestamptz":
            out.append(datetime.fromisoformat(payload))
        elif column.type == "boolean" and kind == "S":
            assert payload.lower() in _TRUE | _FALSE, f"not a boolean: {payload!r}"
            out.append(payload.lower() in _TRUE)
        else:
            out.append(payload)
    return tuple(out)


def check_items(expected: list[Row], items: list[dict[str, Any]], *, typed: bool) -> None:
    """Every id once; no NULL attributes (a NULL column is left out); values as expected."""
    for item in items:
        nulls = [k for k, v in item.items() if "NULL" in v]
        assert not nulls, f"item {item['id']}: NULL attributes {nulls} (should be absent)"
    check(expected, [row_of_item(item, typed=typed) for item in items])


# --- the five kinds of end ----------------------------------------------------------------------

@dataclass
class End:
    """One system's end of a copy: how to seed it as a source, make it a target, read it."""

    seed: Callable[[list[Row]], Any]          # -> (url, options); may be async
    target: Callable[[], tuple[str, EndpointOptions]]
    read: Callable[[], Any]                   # -> what the checker compares; may be async


class Ends:
    """Builds ends lazily, so a pair only creates the databases, buckets and tables it uses."""

    def __init__(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> None:
        self.request = request
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.cleanups: list[Callable[[], None]] = []

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def s3_client(self) -> Any:
        endpoint = self.fixture("s3_endpoint")
        self.monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        client = aws.client("s3", endpoint)
        self.cleanups.append(client.close)
        return client

    def dynamodb_client(self) -> Any:
        endpoint = self.fixture("dynamodb_endpoint")
        self.monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        client = aws.client("dynamodb", endpoint)
        self.cleanups.append(client.close)
        return client

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


def csv_options(typed_for_ddb: bool) -> EndpointOptions:
    """Plain CSV; with the column names declared when the other end is DynamoDB (whose
    attributes are named after them), as a data node's ``column`` list declares them."""
    return EndpointOptions(format=CSV.replace(columns=COLUMNS)) if typed_for_ddb \
        else EndpointOptions()


def file_end(ends: Ends, other: str) -> End:
    path = ends.tmp_path / "data.csv"

    def seed(data: list[Row]) -> tuple[str, EndpointOptions]:
        path.write_bytes(csv_bytes(data))
        return f"file://{path}", csv_options(other == "ddb")

    def target() -> tuple[str, EndpointOptions]:
        out = ends.tmp_path / "out.csv"
        return f"file://{out}", csv_options(other == "ddb")

    def read() -> list[Row]:
        return [from_text(r) for r in parse_csv((ends.tmp_path / "out.csv").read_bytes())]

    return End(seed, target, read)


def s3_end(ends: Ends, other: str) -> End:
    client = ends.s3_client()
    bucket = ends.fixture("s3_bucket")
    jsonl = other == "ddb"  # DynamoDB <-> S3 goes through the export's JSON lines
    key_in, key_out = ("in/items.json", "out/items.json") if jsonl else ("in/data.csv",
                                                                        "out/data.csv")
    options = EndpointOptions(format=DYNAMODB_JSONL) if jsonl else csv_options(False)

    def seed(data: list[Row]) -> tuple[str, EndpointOptions]:
        body = export_lines([item_of(r) for r in data]) if jsonl else csv_bytes(data)
        client.put_object(Bucket=bucket, Key=key_in, Body=body)
        return f"s3://{bucket}/{key_in}", options

    def target() -> tuple[str, EndpointOptions]:
        return f"s3://{bucket}/{key_out}", options

    def read() -> Any:
        body = client.get_object(Bucket=bucket, Key=key_out)["Body"].read()
        if jsonl:
            return [json.loads(line)["Item"] for line in body.decode().splitlines() if line]
        return [from_text(r) for r in parse_csv(body)]

    return End(seed, target, read)


def export_lines(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps({"Item": i}, ensure_ascii=False) + "\n" for i in items).encode()


def pg_end(ends: Ends, other: str) -> End:
    dsn = ends.fixture("pg_database")

    async def seed(data: list[Row]) -> tuple[str, EndpointOptions]:
        return await make_pg(dsn, "src", data), EndpointOptions()

    async def make_target() -> tuple[str, EndpointOptions]:
        return await make_pg(dsn, "dst", None), EndpointOptions()

    async def read() -> list[Row]:
        return await pg_rows(dsn, "dst")

    return End(seed, make_target, read)  # type: ignore[arg-type]


def mysql_end(ends: Ends, other: str) -> End:
    dsn = ends.fixture("mysql_database")

    async def seed(data: list[Row]) -> tuple[str, EndpointOptions]:
        return await make_my(dsn, "src", data), EndpointOptions()

    async def make_target() -> tuple[str, EndpointOptions]:
        return await make_my(dsn, "dst", None), EndpointOptions()

    def read() -> list[Row]:
        return my_rows(dsn, "dst")

    return End(seed, make_target, read)  # type: ignore[arg-type]


def ddb_end(ends: Ends, other: str, *, declared: bool = True) -> End:
    """``declared``: the source's column list comes from its data format; else the URL alone,
    as ``headrace copy`` gives it (the copy offers the target table's columns)."""
    client = ends.dynamodb_client()
    # One table for the whole module, emptied here: each pair uses DynamoDB at one end only,
    # and dynalite takes ~4 s to delete a table.
    table = ends.fixture("ddb_table")
    empty_table(client, table)
    # A scan names attributes, not columns: a DynamoDB source read into rows takes its
    # column list (names and types) from the data format, as a DynamoDBDataNode's does.
    source_options = EndpointOptions(format=DYNAMODB_JSONL.replace(columns=COLUMNS)) \
        if other != "s3" and declared else EndpointOptions()

    def seed(data: list[Row]) -> tuple[str, EndpointOptions]:
        items = [item_of(r) for r in data]
        for start in range(0, len(items), 25):
            left = {table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
            while left:
                left = client.batch_write_item(RequestItems=left).get("UnprocessedItems")
        return f"dynamodb://{table}", source_options

    def target() -> tuple[str, EndpointOptions]:
        return f"dynamodb://{table}", EndpointOptions()

    def read() -> list[dict[str, Any]]:
        return scan(client, table)

    return End(seed, target, read)


def scan(client: Any, table: str, **extra: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, **extra}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def empty_table(client: Any, table: str) -> None:
    keys = [{"id": item["id"]} for item in scan(client, table, ProjectionExpression="id")]
    for start in range(0, len(keys), 25):
        left = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start:start + 25]]}
        while left:
            left = client.batch_write_item(RequestItems=left).get("UnprocessedItems")
    assert not scan(client, table), f"table {table} still holds items"


@pytest.fixture(scope="module")
def ddb_table(dynamodb_endpoint: str) -> Iterator[str]:
    client = aws.client("dynamodb", dynamodb_endpoint)
    name = f"pairs_{secrets.token_hex(6)}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}])
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    try:
        yield name
    finally:
        client.close()
        # dynalite takes seconds to delete a table (more on a busy machine): a patient client.
        patient = botocore.session.get_session().create_client(
            "dynamodb", endpoint_url=dynamodb_endpoint,
            config=Config(read_timeout=120, retries={"max_attempts": 1}))
        try:
            patient.delete_table(TableName=name)
        finally:
            patient.close()


KINDS: dict[str, Callable[[Ends, str], End]] = {
    "file": file_end, "s3": s3_end, "pg": pg_end, "mysql": mysql_end, "ddb": ddb_end,
    "ddb-url": lambda ends, other: ddb_end(ends, other, declared=False)}

PAIRS = [
    ("file", "pg"), ("pg", "file"), ("file", "mysql"), ("mysql", "file"),
    ("s3", "pg"), ("pg", "s3"), ("s3", "mysql"), ("mysql", "s3"),
    ("ddb", "pg"), ("pg", "ddb"), ("ddb", "mysql"), ("mysql", "ddb"),
    ("ddb", "s3"), ("s3", "ddb"), ("ddb", "file"), ("file", "ddb"),
    ("ddb-url", "pg"), ("ddb-url", "mysql"),
]


@pytest.fixture
def ends(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> Iterator[Ends]:
    made = Ends(request, monkeypatch, tmp_path)
    yield made
    made.close()


async def _maybe(value: Any) -> Any:
    return await value if hasattr(value, "__await__") else value


def verify(src: str, dst: str, data: list[Row], got: Any) -> None:
    """The checker, in the destination's terms (module docstring)."""
    if (src, dst) in (("ddb", "s3"), ("s3", "ddb")):  # export JSON lines: items as they are
        ids = Counter(int(item["id"]["N"]) for item in got)
        lost = set(range(len(data))) - set(ids)
        assert (lost, {i for i, c in ids.items() if c > 1}, set(ids) - set(range(len(data)))) \
            == (set(), set(), set()), "ids lost, duplicated or unexpected"
        want = {r[0]: canonical(item_of(r)) for r in data}
        for item in got:
            assert canonical(item) == want[int(item["id"]["N"])], f"item {item['id']} differs"
    elif dst == "ddb":
        # Rows from a database are typed; rows decoded from CSV are text.
        check_items(data, got, typed=src in ("pg", "mysql"))
    else:
        check(data, got)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{s}-to-{d}" for s, d in PAIRS])
async def test_pair_moves_every_row_once_with_its_values(src: str, dst: str,
                                                         ends: Ends) -> None:
    data = rows()
    source_end, sink_end = KINDS[src](ends, dst), KINDS[dst](ends, src)
    src_url, src_options = await _maybe(source_end.seed(data))
    dst_url, dst_options = await _maybe(sink_end.target())
    result = await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    got = await _maybe(sink_end.read())
    verify(src, dst, data, got)
    assert result.rows == N


def test_csv_reader_tells_null_from_empty() -> None:
    """The checker's own CSV reader and writer (a bug here would hide one in the copies)."""
    data = [(1, None, "", 'a "q", b\nc', None), (2, "", None, "x", "")]
    text = csv_bytes(data)  # type: ignore[arg-type]
    assert text == b'"1",,"","a ""q"", b\nc",\n"2","",,"x",""\n'
    assert parse_csv(text) == [["1", None, "", 'a "q", b\nc', None],
                               ["2", "", None, "x", ""]]


def test_from_text_rejects_what_is_not_the_value() -> None:
    with pytest.raises(AssertionError):
        from_text(["1", "n", "1.00", "2024-01-01 00:00:00+00", "yes", "x"])
    moment = from_text(["1", None, "-1.50", "2024-01-01 05:30:00+05:30", "t", ""])
    assert normal(moment) == normal((1, None, Decimal("-1.5"),
                                     datetime(2024, 1, 1, tzinfo=UTC), True, ""))
