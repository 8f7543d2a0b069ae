"""Every byte survives every pair of ends (issue 10, part 1).

Ends: files and S3 objects in CSV, TSV and JSON lines, PostgreSQL and MySQL text columns, a
DynamoDB table. Each copy moves one table of ``(id, v)`` rows, one row per hard value (control
bytes 0x01-0x1F and DEL, each format's quote, escape and separator characters, backslash
sequences, CR/LF/CRLF, NULL vs '', non-BMP and unusual Unicode), so a pair costs one copy.
Sources are written and destinations read with the plain drivers, the SDK or hand-written text
(never through headrace's connectors); the checker compares value by value.

Where an end cannot hold a value (NUL in PostgreSQL text, invalid UTF-8 in any text column or
string attribute), the copy must fail naming the row and the column, never rewrite the value:
docs/compatibility.md, "Values each end can hold".
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import botocore.session
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import (
    CSV,
    DYNAMODB_JSONL,
    JSONL,
    PARQUET,
    TSV,
    Column,
    EndpointOptions,
    TextFormat,
)
from connectors.copy import copy
from connectors.errors import BadDataError
from connectors.urls import open_sink, open_source
from tests.integration.test_copy_pairs import _quoted, empty_table, parse_csv, scan
from tests.integration.test_sql_copy import my_connect, my_exec, pg_exec
from tests.services import aws
from tests.services.postgres import bin_dir as pg_bin_dir

pytestmark = pytest.mark.anyio

Values = dict[int, str | None]
COLUMNS = (Column("id", "bigint"), Column("v", "text"))

_CONTROLS = [chr(c) for c in range(1, 0x20)] + ["\x7f"]

#: The fixed list of hard values, each a row of its own (ids are positions).
HARD: list[str | None] = [
    None, "", " ", "plain",
    *_CONTROLS,
    *(f"a{c}b" for c in _CONTROLS),
    "a\x0bb\x0cc",                                    # the reported PostgreSQL -> MySQL case
    "\\", "\\\\", "a\\", "\\a", "\\N", "N", "NULL", "null", "\\.", ".", "\\x41", "\\101",
    "\\Z", "\\z", "\\f", "\\v", "\\b", "\\0", "\\t", "\\n", "\\r", "\\\t", "\\\n",
    '"', '""', "'", "''", ",", ";", "|", "\t", "a,b", 'a"b', '"a"', "a\tb\\tc",
    "\r", "\n", "\r\n", "\n\r", "a\rb", "a\nb", "a\r\nb", "end\r", "end\n", "\r\n\r\n",
    "  lead", "trail  ", "\t lead tab",
    "\ufeff", "\ufeffbom", "\u2028", "\u2029", "\x85", "\xa0", "\u200b", "\u202eRTL",
    "e\u0301", "\ud7ff", "\ue000", "\ufffd", "\ufffe", "\uffff", "\U00010000",
    "\U0001f680 rocket", "\U0010ffff", "日本語", "ünïcødé ✓",
    "x" * 5000, "y" * 140_000,                        # over the csv module's field limit
]
#: Values every end but PostgreSQL holds (see test_nul_is_refused_by_postgres...).
WITH_NUL: list[str | None] = ["\x00", "a\x00b", "\x00\x00", "\x00\\0\\000\\x00"]


# --- text forms, written and read here ------------------------------------------------------------

def csv_text(values: Values) -> bytes:
    """RFC 4180, every value quoted, NULL an unquoted empty field."""
    return "".join(f'"{i}",{"" if v is None else _quoted(v)}\n' for i, v in values.items()
                   ).encode()


def csv_values(data: bytes) -> Values:
    out: Values = {}
    for record in parse_csv(data):
        assert len(record) == 2, f"record with {len(record)} fields: {record!r}"[:200]
        assert record[0] is not None
        out[int(record[0])] = record[1]
    return out


_TSV_NAMED = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_TSV_OTHER = {"\b": "b", "\f": "f", "\v": "v"}


def _tsv_escape(value: str, style: int) -> str:
    """PostgreSQL text-format escaping; other control bytes spelled raw, by name (``\\v``),
    in octal or in hex depending on ``style``, since a reader must take all four."""
    out = []
    for ch in value:
        if ch in _TSV_NAMED:
            out.append(_TSV_NAMED[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            spelling = style % 4
            if spelling == 1 and ch in _TSV_OTHER:
                out.append("\\" + _TSV_OTHER[ch])
            elif spelling == 2:
                out.append(f"\\{ord(ch):03o}")
            elif spelling == 3:
                out.append(f"\\x{ord(ch):02x}")
            else:
                out.append(ch)
        elif ord(ch) > 0x7F and style % 4 == 3:  # bytes in hex, as PostgreSQL reads them
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def tsv_text(values: Values) -> bytes:
    null = "\\N"
    return "".join(f"{i}\t{null if v is None else _tsv_escape(v, i)}\n"
                   for i, v in values.items()).encode()


_TSV_SEQUENCE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_TSV_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _tsv_unescape(field: str) -> str:
    """PostgreSQL's reading: octal and hex escapes are bytes of the field's UTF-8."""
    def one(m: re.Match[str]) -> str:
        octal, hexa, other = m.groups()
        if octal is not None or hexa is not None:
            return chr(0xDC00 + (int(octal, 8) if octal is not None else int(hexa, 16)))
        return _TSV_SIMPLE.get(other, other)
    raw = _TSV_SEQUENCE.sub(one, field).encode("utf-8", "surrogatepass")
    # each escaped byte became U+DCxx: put the byte back, keep everything else's UTF-8
    return re.sub(rb"\xed[\xb0-\xb3][\x80-\xbf]",
                  lambda m: bytes(((m[0][1] & 0x0F) << 6 | (m[0][2] & 0x3F),)), raw
                  ).decode("utf-8")


def tsv_values(data: bytes) -> Values:
    out: Values = {}
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n"), "TSV output does not end a record"
    for line in text.split("\n")[:-1]:
        fields = line.split("\t")
        assert len(fields) == 2, f"line with {len(fields)} fields: {line!r}"[:200]
        out[int(fields[0])] = None if fields[1] == "\\N" else _tsv_unescape(fields[1])
    return out


def jsonl_text(values: Values) -> bytes:
    """One object per line; odd ids written with ``\\u`` escapes (surrogate pairs), even raw."""
    return "".join(json.dumps({"id": i, "v": v}, ensure_ascii=bool(i % 2)) + "\n"
                   for i, v in values.items()).encode()


def jsonl_values(data: bytes) -> Values:
    out: Values = {}
    for line in data.decode("utf-8").split("\n"):
        if line:
            obj = json.loads(line)
            assert set(obj) <= {"id", "v"}, f"unexpected keys in {line[:80]!r}"
            out[int(obj["id"])] = obj.get("v")
    return out


def parquet_bytes(values: Values) -> bytes:
    """A Parquet file (written by pyarrow itself, not by headrace) of ``values``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array(list(values), pa.int64()),
                      "v": pa.array(list(values.values()), pa.string())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def parquet_values(data: bytes) -> Values:
    """What a Parquet file holds, read by pyarrow: a second reader, not headrace's own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    assert set(table.column_names) <= {"id", "v"}, table.column_names
    return {int(i): v for i, v in zip(table.column("id").to_pylist(),
                                       table.column("v").to_pylist(), strict=True)}


@dataclass(frozen=True)
class TextKind:
    name: str
    fmt: TextFormat
    write: Callable[[Values], bytes]
    read: Callable[[bytes], Values]


TEXT_KINDS = {
    "csv": TextKind("csv", CSV.replace(columns=COLUMNS), csv_text, csv_values),
    "tsv": TextKind("tsv", TSV.replace(columns=COLUMNS), tsv_text, tsv_values),
    "jsonl": TextKind("jsonl", JSONL.replace(columns=COLUMNS), jsonl_text, jsonl_values),
    "parquet": TextKind("parquet", PARQUET.replace(columns=COLUMNS), parquet_bytes,
                        parquet_values),
}


# --- the ends -------------------------------------------------------------------------------------

class End:
    """One end of a copy: seed it as a source, name it as a target, read what it holds."""

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        raise NotImplementedError

    async def target(self) -> tuple[str, EndpointOptions]:
        raise NotImplementedError

    async def read(self) -> Values:
        raise NotImplementedError


class FileEnd(End):
    def __init__(self, kind: TextKind, folder: Path) -> None:
        self.kind, self.folder = kind, folder
        self.source = folder / f"in.{kind.fmt.extension}"
        self.output = folder / f"out.{kind.fmt.extension}"

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        self.source.write_bytes(self.kind.write(values))
        return f"file://{self.source}", EndpointOptions(format=self.kind.fmt)

    async def target(self) -> tuple[str, EndpointOptions]:
        return f"file://{self.output}", EndpointOptions(format=self.kind.fmt)

    async def read(self) -> Values:
        return self.kind.read(self.output.read_bytes())


class S3End(End):
    def __init__(self, kind: TextKind, client: Any, bucket: str) -> None:
        self.kind, self.client, self.bucket = kind, client, bucket
        ext = kind.fmt.extension
        self.key_in, self.key_out = f"in/data.{ext}", f"out/data.{ext}"

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        self.client.put_object(Bucket=self.bucket, Key=self.key_in, Body=self.kind.write(values))
        return f"s3://{self.bucket}/{self.key_in}", EndpointOptions(format=self.kind.fmt)

    async def target(self) -> tuple[str, EndpointOptions]:
        return f"s3://{self.bucket}/{self.key_out}", EndpointOptions(format=self.kind.fmt)

    async def read(self) -> Values:
        body = self.client.get_object(Bucket=self.bucket, Key=self.key_out)["Body"].read()
        return self.kind.read(body)


class PostgresEnd(End):
    DDL = "CREATE TABLE {t} (id bigint PRIMARY KEY, v text)"

    def __init__(self, dsn: str, stem: str, partitions: int = 1) -> None:
        self.dsn, self.src, self.dst = dsn, f"{stem}_src", f"{stem}_dst"
        self.partitions = partitions

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        await pg_exec(self.dsn, self.DDL.format(t=self.src))
        await pg_exec(self.dsn, f"INSERT INTO {self.src} VALUES ($1, $2)", list(values.items()))
        return f"{self.dsn}?table={self.src}", EndpointOptions(partitions=self.partitions)

    async def target(self) -> tuple[str, EndpointOptions]:
        await pg_exec(self.dsn, self.DDL.format(t=self.dst))
        return f"{self.dsn}?table={self.dst}", EndpointOptions()

    async def read(self) -> Values:
        conn = await asyncpg.connect(self.dsn)
        try:
            return {r["id"]: r["v"] for r in await conn.fetch(f"SELECT id, v FROM {self.dst}")}
        finally:
            await conn.close()


class MySqlEnd(End):
    DDL = "CREATE TABLE {t} (id bigint PRIMARY KEY, v longtext) DEFAULT CHARSET=utf8mb4"

    def __init__(self, dsn: str, stem: str, partitions: int = 1) -> None:
        self.dsn, self.src, self.dst = dsn, f"{stem}_src", f"{stem}_dst"
        self.partitions = partitions

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        my_exec(self.dsn, self.DDL.format(t=self.src))
        my_exec(self.dsn, f"INSERT INTO {self.src} VALUES (%s, %s)", list(values.items()))
        return f"{self.dsn}?table={self.src}", EndpointOptions(partitions=self.partitions)

    async def target(self) -> tuple[str, EndpointOptions]:
        my_exec(self.dsn, self.DDL.format(t=self.dst))
        return f"{self.dsn}?table={self.dst}", EndpointOptions()

    async def read(self) -> Values:
        conn = my_connect(self.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id, v FROM {self.dst}")
                return {int(i): v for i, v in cur.fetchall()}
        finally:
            conn.close()


class DynamoEnd(End):
    """Tables keyed by ``id`` (N); ``v`` is an S attribute, absent for NULL. The module's two
    tables are shared: a source is emptied before it is seeded; a target is read back by the
    copy's id range (each copy has ids of its own, ``Ends.base``), so it is never emptied."""

    def __init__(self, client: Any, source_table: str, target_table: str, base: int) -> None:
        self.client, self.source_table, self.target_table = client, source_table, target_table
        self.base = base

    async def seed(self, values: Values) -> tuple[str, EndpointOptions]:
        empty_table(self.client, self.source_table)
        items = [{"id": {"N": str(i)}, **({} if v is None else {"v": {"S": v}})}
                 for i, v in values.items()]
        for start in range(0, len(items), 25):
            left = {self.source_table: [{"PutRequest": {"Item": i}}
                                        for i in items[start:start + 25]]}
            while left:
                left = self.client.batch_write_item(RequestItems=left).get("UnprocessedItems")
        return (f"dynamodb://{self.source_table}",
                EndpointOptions(format=DYNAMODB_JSONL.replace(columns=COLUMNS)))

    async def target(self) -> tuple[str, EndpointOptions]:
        return f"dynamodb://{self.target_table}", EndpointOptions()

    async def read(self) -> Values:
        out: Values = {}
        window = {"FilterExpression": "id BETWEEN :lo AND :hi", "ExpressionAttributeValues": {
            ":lo": {"N": str(self.base)}, ":hi": {"N": str(self.base + ID_SPAN - 1)}}}
        for item in scan(self.client, self.target_table, **window):
            assert set(item) <= {"id", "v"}, f"unexpected attributes {sorted(item)}"
            v = item.get("v")
            if v is not None:
                assert set(v) == {"S"}, f"item {item['id']}: v is {v} (expected S)"
            out[int(item["id"]["N"])] = None if v is None else v["S"]
        return out


END_NAMES = ["file-csv", "file-tsv", "file-jsonl", "file-parquet", "s3-csv", "s3-tsv",
             "s3-jsonl", "s3-parquet", "pg", "mysql", "ddb"]
#: Ids each copy owns (``Ends.base`` + position); the hard list and every generated table fit.
ID_SPAN = 100_000


def _ddb_table(endpoint: str, key: tuple[str, str] = ("id", "N")) -> Iterator[str]:
    client = aws.client("dynamodb", endpoint)
    name = f"bytes_{secrets.token_hex(6)}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": key[0], "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": key[0],
                                               "AttributeType": key[1]}])
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    try:
        yield name
    finally:
        client.close()
        patient = botocore.session.get_session().create_client(  # dynalite deletes slowly
            "dynamodb", endpoint_url=endpoint,
            config=Config(read_timeout=120, retries={"max_attempts": 1}))
        try:
            patient.delete_table(TableName=name)
        finally:
            patient.close()


@pytest.fixture(scope="module")
def ddb_source_table(dynamodb_endpoint: str) -> Iterator[str]:
    yield from _ddb_table(dynamodb_endpoint)


@pytest.fixture(scope="module")
def ddb_target_table(dynamodb_endpoint: str) -> Iterator[str]:
    yield from _ddb_table(dynamodb_endpoint)


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def pg_module_database(pg_dsn: str) -> Iterator[str]:
    """One database for the module (each copy has tables of its own): creating and dropping
    one per copy cost more than the copy."""
    name = f"bytes_{secrets.token_hex(6)}"

    def run(sql: str) -> None:  # sync: the fixture may be first asked for inside a test's loop
        subprocess.run([str(pg_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        pg_dsn, "-c", sql], capture_output=True, timeout=60, check=True)

    run(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(pg_dsn, name)
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mysql_module_database(mysql_dsn: str) -> Iterator[str]:
    name = f"bytes_{secrets.token_hex(6)}"
    my_exec(mysql_dsn, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield _with_database(mysql_dsn, name)
    finally:
        my_exec(mysql_dsn, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def s3_module_bucket(s3_endpoint: str) -> Iterator[str]:
    name = f"bytes-{secrets.token_hex(6)}"
    client = aws.client("s3", s3_endpoint)
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
            client.delete_bucket(Bucket=name)
        finally:
            client.close()


_COPIES = itertools.count(1)


class Ends:
    """Builds ends lazily, so a copy only touches the systems it uses. Each ``Ends`` is one
    copy: its tables, keys and ids (from ``base``) are its own."""

    def __init__(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 tmp_path: Path) -> None:
        self.request, self.monkeypatch, self.tmp_path = request, monkeypatch, tmp_path
        self.closers: list[Callable[[], None]] = []
        self._made: dict[str, Any] = {}
        number = next(_COPIES)
        self.base = number * ID_SPAN
        self.stem = f"c{number}_{secrets.token_hex(3)}"

    def ids(self, values: list[str | None]) -> Values:
        """``values`` under this copy's ids."""
        return {self.base + i: v for i, v in enumerate(values)}

    def _client(self, service: str, fixture: str, variable: str) -> Any:
        if service not in self._made:
            endpoint = self.request.getfixturevalue(fixture)
            self.monkeypatch.setenv(variable, endpoint)
            client = aws.client(service, endpoint)
            self.closers.append(client.close)
            self._made[service] = client
        return self._made[service]

    def dynamodb(self) -> Any:
        return self._client("dynamodb", "dynamodb_endpoint", "AWS_ENDPOINT_URL_DYNAMODB")

    def make(self, name: str, role: str) -> End:
        system, _, kind = name.partition("-")
        if system == "file":
            folder = self.tmp_path / f"{self.stem}_{role}"
            folder.mkdir()
            return FileEnd(TEXT_KINDS[kind], folder)
        if system == "s3":
            client = self._client("s3", "s3_endpoint", "AWS_ENDPOINT_URL_S3")
            end = S3End(TEXT_KINDS[kind], client,
                        self.request.getfixturevalue("s3_module_bucket"))
            end.key_in = f"{self.stem}/{role}/in/data.{kind}"
            end.key_out = f"{self.stem}/{role}/out/data.{kind}"
            return end
        parts = 3 if kind == "parts" else 1  # "pg-parts": a table read in 3 parts at once
        if system == "pg":
            return PostgresEnd(self.request.getfixturevalue("pg_module_database"),
                               f"{self.stem}_{role}", parts)
        if system == "mysql":
            return MySqlEnd(self.request.getfixturevalue("mysql_module_database"),
                            f"{self.stem}_{role}", parts)
        return DynamoEnd(self.dynamodb(), self.request.getfixturevalue("ddb_source_table"),
                         self.request.getfixturevalue("ddb_target_table"), self.base)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


@pytest.fixture
def ends(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> Iterator[Ends]:
    made = Ends(request, monkeypatch, tmp_path)
    yield made
    made.close()


def differences(want: Values, got: Values) -> list[str]:
    """Each id lost, unexpected or changed, with both values (repr, cut short)."""
    out = [f"lost id {i}: {want[i]!r}"[:120] for i in sorted(set(want) - set(got))]
    out += [f"unexpected id {i}" for i in sorted(set(got) - set(want))]
    out += [f"id {i}: sent {want[i]!r}, got {got[i]!r}"[:160]
            for i in sorted(set(want) & set(got)) if want[i] != got[i]]
    return out


async def move(ends: Ends, src: str, dst: str, values: Values) -> Values:
    """Seed ``src`` with ``values``, copy it to ``dst`` as ``headrace copy`` does, read back."""
    source, sink = ends.make(src, "src"), ends.make(dst, "dst")
    src_url, src_options = await source.seed(values)
    dst_url, dst_options = await sink.target()
    result = await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    # A server-side copy (S3 CopyObject) moves an object without reading its records.
    assert result.rows == (0 if result.lane == "server-side" else len(values))
    return await sink.read()


PAIRS = [(s, d) for s in END_NAMES for d in END_NAMES]


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{s}-to-{d}" for s, d in PAIRS])
async def test_every_hard_value_survives_the_pair(src: str, dst: str, ends: Ends) -> None:
    values = ends.ids(HARD if "pg" in (src, dst) else HARD + WITH_NUL)
    got = await move(ends, src, dst, values)
    assert differences(values, got) == []


PARTITIONED = [("pg-parts", "mysql"), ("pg-parts", "file-tsv"), ("mysql-parts", "pg"),
               ("mysql-parts", "s3-csv"), ("mysql-parts", "ddb")]


@pytest.mark.parametrize(("src", "dst"), PARTITIONED,
                         ids=[f"{s}-to-{d}" for s, d in PARTITIONED])
async def test_a_table_read_in_parts_keeps_every_hard_value(src: str, dst: str,
                                                            ends: Ends) -> None:
    """``--partitions`` on a table source: parts read at once, the same values arrive."""
    values = ends.ids(HARD if "pg" in (src[:2], dst) else HARD + WITH_NUL)
    got = await move(ends, src, dst, values)
    assert differences(values, got) == []


async def test_postgres_vertical_tab_and_form_feed_reach_mysql(ends: Ends) -> None:
    """The reported case: ``E'a\\x0bb\\x0cc'`` arrived in MySQL as ``avbfc``."""
    values = ends.ids(["a\x0bb\x0cc", "\x0b", "\x0c"])
    assert await move(ends, "pg", "mysql", values) == values


# --- what an end cannot hold: refused, naming the row and the column ---------------------------

NOT_PG = [name for name in END_NAMES if name != "pg"]


@pytest.mark.parametrize("src", [*NOT_PG, "s3-csv/partitions"])
async def test_nul_is_refused_by_postgres_naming_row_and_column(src: str, ends: Ends) -> None:
    """PostgreSQL text cannot hold NUL: the copy fails at the NUL's row and column ``v``, and
    the target table holds nothing (also when ``--partitions`` loads by two COPY streams)."""
    src, _, partitioned = src.partition("/")
    values = ends.ids(["before", "a\x00b", "after"])
    source, sink = ends.make(src, "src"), ends.make("pg", "dst")
    src_url, src_options = await source.seed(values)
    dst_url, dst_options = await sink.target()
    if partitioned:
        dst_options = EndpointOptions(partitions=2)
    with pytest.raises(BadDataError) as caught:
        await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    message = str(caught.value)
    assert "NUL" in message or "0x00" in message, message
    assert re.search(r"\bcolumn v\b", message), message
    # the row: its line in a text source, its place in the read order of a table
    assert caught.value.line is not None, message
    if src.startswith(("file", "s3")):
        assert caught.value.line == 2, message
    assert await sink.read() == {}


INVALID_UTF8 = b"\xff\xfe"


def _with_invalid_utf8(kind: TextKind, values: Values) -> bytes:
    """``kind``'s text for ``values`` with the marker ``BAD`` replaced by invalid UTF-8."""
    return kind.write(values).replace(b"BAD", INVALID_UTF8)


@pytest.mark.parametrize(("src", "dst"), [
    ("file-csv", "pg"), ("file-tsv", "pg"), ("file-jsonl", "pg"), ("s3-tsv", "pg"),
    ("file-csv", "mysql"), ("file-tsv", "mysql"), ("s3-csv", "mysql"), ("file-jsonl", "mysql"),
    ("file-csv", "ddb"), ("s3-tsv", "ddb"), ("file-csv", "file-tsv"), ("file-tsv", "s3-jsonl"),
    ("s3-jsonl", "file-csv")])
async def test_invalid_utf8_is_refused_naming_row_and_column(src: str, dst: str,
                                                             ends: Ends) -> None:
    """No text column or string attribute holds invalid UTF-8, and no format change may
    guess what it meant: the copy fails naming line 2 and the column."""
    values = ends.ids(["before", "aBADb", "after"])
    source, sink = ends.make(src, "src"), ends.make(dst, "dst")
    assert isinstance(source, FileEnd | S3End)
    src_url, src_options = await source.seed(values)
    body = _with_invalid_utf8(source.kind, values)
    if isinstance(source, FileEnd):
        source.source.write_bytes(body)
    else:
        source.client.put_object(Bucket=source.bucket, Key=source.key_in, Body=body)
    dst_url, dst_options = await sink.target()
    with pytest.raises(BadDataError) as caught:
        await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    message = str(caught.value)
    assert "line 2" in message, message
    assert re.search(r"\bcolumn (v|2)\b", message), message
    if dst in ("pg", "mysql", "ddb"):
        assert await sink.read() == {}
    else:
        assert not getattr(sink, "output", Path("/nonexistent")).exists()


async def test_same_format_file_to_s3_keeps_invalid_utf8_byte_for_byte(ends: Ends) -> None:
    """A copy that does not change the format moves bytes, not text: what the file holds, the
    object holds, invalid UTF-8 included (nothing decodes it, so nothing can guess)."""
    values = ends.ids(["before", "aBADb", "after"])
    source, sink = ends.make("file-csv", "src"), ends.make("s3-csv", "dst")
    assert isinstance(source, FileEnd) and isinstance(sink, S3End)
    src_url, src_options = await source.seed(values)
    body = _with_invalid_utf8(source.kind, values)
    source.source.write_bytes(body)
    dst_url, dst_options = await sink.target()
    await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    assert sink.client.get_object(Bucket=sink.bucket, Key=sink.key_out)["Body"].read() == body


@pytest.fixture(scope="module")
def ddb_text_keyed_table(dynamodb_endpoint: str) -> Iterator[str]:
    yield from _ddb_table(dynamodb_endpoint, key=("v", "S"))


@pytest.mark.parametrize("missing", ["", None], ids=["empty-string", "null"])
async def test_dynamodb_refuses_an_empty_or_missing_key_naming_row_and_column(
        missing: str | None, ends: Ends, ddb_text_keyed_table: str) -> None:
    """DynamoDB keys cannot be empty strings and every item needs its key: a table keyed by
    ``v`` refuses row 2 by number and column before anything is written for it."""
    source = ends.make("file-csv", "src")
    client = ends.dynamodb()
    src_url, src_options = await source.seed(ends.ids(["a", missing, "c"]))
    with pytest.raises(BadDataError) as caught:
        await copy(open_source(src_url, src_options),
                   open_sink(f"dynamodb://{ddb_text_keyed_table}", EndpointOptions()))
    message = str(caught.value)
    assert (caught.value.line, caught.value.column) == (2, "v"), message
    held = {item["v"]["S"] for item in scan(client, ddb_text_keyed_table)}
    assert held <= {"a", "c"}, held  # never a rewritten key


# --- every Unicode scalar value, and generated values ---------------------------------------------

#: Every Unicode scalar value but NUL (which PostgreSQL refuses), 4,096 to a row.
SCALARS = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
SCALAR_ROWS = ["".join(map(chr, SCALARS[i:i + 4096])) for i in range(0, len(SCALARS), 4096)]
#: A walk through the ends in which each is a source once and a target once.
RING = ["file-csv", "pg", "mysql", "ddb", "s3-tsv", "file-jsonl", "s3-csv", "file-tsv",
        "s3-jsonl", "file-parquet", "s3-parquet", "file-csv"]


@pytest.mark.parametrize(("src", "dst"), list(itertools.pairwise(RING)),
                         ids=[f"{s}-to-{d}" for s, d in itertools.pairwise(RING)])
async def test_every_unicode_scalar_value_survives(src: str, dst: str, ends: Ends) -> None:
    values = ends.ids(SCALAR_ROWS)
    got = await move(ends, src, dst, values)
    assert differences(values, got) == []


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)
_HARDISH = st.sampled_from([c for c in _CONTROLS + list('\\"\',;|N.xXZfv0') if c])


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pair=st.sampled_from(PAIRS),
       rows=st.lists(st.one_of(st.none(), _TEXT,
                               st.lists(_HARDISH, max_size=6).map("".join)),
                     min_size=1, max_size=40))
async def test_generated_values_survive_a_pair(pair: tuple[str, str], rows: list[str | None],
                                               request: pytest.FixtureRequest,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Property: whatever text (no NUL: PostgreSQL is among the ends) a table holds, a copy
    between any two ends leaves it as it was. A small example count in the suite; more by hand
    by raising ``max_examples``."""
    made = Ends(request, monkeypatch, tmp_path)
    try:
        values = made.ids(rows)
        got = await move(made, *pair, values)
        assert differences(values, got) == []
    finally:
        made.close()


CRLF_VALUES: list[str | None] = [None, "", "a", "b\\c", 'q"q', "tab\there", "lf\ninside",
                                 "cr\rinside", "end"]


@pytest.mark.parametrize("src", ["file-csv", "file-tsv"])
@pytest.mark.parametrize("dst", ["pg", "mysql", "ddb", "file-jsonl", "s3-csv"])
async def test_crlf_line_breaks_end_records_and_are_not_data(src: str, dst: str,
                                                             ends: Ends) -> None:
    """A file whose records end in CRLF (written on Windows) holds the same values as one
    ending in LF, at every target: the CR is part of the line break, never of the last value
    (a CR inside a value is quoted or escaped, so it stays)."""
    values = ends.ids(CRLF_VALUES)
    source, sink = ends.make(src, "src"), ends.make(dst, "dst")
    assert isinstance(source, FileEnd)
    src_url, src_options = await source.seed(values)
    records = [source.kind.write({i: v}) for i, v in values.items()]
    source.source.write_bytes(b"".join(r[:-1] + b"\r\n" for r in records))
    dst_url, dst_options = await sink.target()
    await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    if isinstance(sink, S3End) and sink.kind.fmt.kind == source.kind.fmt.kind:
        # the same format: the object is the file, byte for byte, line breaks and all
        body = sink.client.get_object(Bucket=sink.bucket, Key=sink.key_out)["Body"].read()
        assert body == source.source.read_bytes()
        return
    assert differences(values, await sink.read()) == []


@pytest.mark.parametrize(("kind", "body", "want"), [
    ("tsv", b"a\n\\.\nb\n", ["a", ".", "b"]),             # TSV's \. is an escaped full stop
    ("csv", b"a\r\n\\.\r\nb\r\n", ["a", "\\.", "b"]),     # a CSV value, unquoted
    ("csv", b'a\n"\\."\nb\n', ["a", "\\.", "b"]),
    ("csv", b'"multi\n\\.\nline"\nb\n', ["multi\n\\.\nline", "b"]),  # inside quotes
])
@pytest.mark.parametrize("partitions", [1, 2], ids=["one-stream", "two-streams"])
async def test_a_line_copy_would_take_for_its_end_marker_is_data(
        kind: str, body: bytes, want: list[str], partitions: int, tmp_path: Path,
        pg_module_database: str) -> None:
    """``COPY FROM`` ends the data at a line holding only ``\\.`` and drops the rest with a
    success status: such a line in a one-column file is a value, and every row arrives (one
    COPY stream, or ``--partitions``' several)."""
    path = tmp_path / f"one.{kind}"
    path.write_bytes(body)
    table = f"one_{secrets.token_hex(4)}"
    await pg_exec(pg_module_database, f"CREATE TABLE {table} (v text)")
    fmt = TEXT_KINDS[kind].fmt.replace(columns=(Column("v"),))
    result = await copy(open_source(f"file://{path}", EndpointOptions(format=fmt)),
                        open_sink(f"{pg_module_database}?table={table}",
                                  EndpointOptions(partitions=partitions)))
    conn = await asyncpg.connect(pg_module_database)
    try:
        got = [r["v"] for r in await conn.fetch(f"SELECT v FROM {table}")]
    finally:
        await conn.close()
    assert sorted(got) == sorted(want)
    assert result.rows == len(want)


async def test_dynamodb_refuses_an_item_over_400_kb_naming_row_and_column(ends: Ends) -> None:
    """An item is at most 400 KB: the row that makes a bigger one is refused by number and
    column before the batch is sent (the service would refuse the whole batch, naming no
    row); a 300 KB value is kept."""
    values = ends.ids(["a", "é" * 150_000, "x" * 450_000])
    source, sink = ends.make("file-csv", "src"), ends.make("ddb", "dst")
    src_url, src_options = await source.seed(values)
    dst_url, dst_options = await sink.target()
    with pytest.raises(BadDataError) as caught:
        await copy(open_source(src_url, src_options), open_sink(dst_url, dst_options))
    assert (caught.value.line, caught.value.column) == (3, "v"), str(caught.value)
    assert "400 KB" in str(caught.value)
    held = await sink.read()
    assert all(held[i] == values[i] for i in held)  # what was written is not rewritten


#: A Custom format with an escape character: TSV's escapes, ``|`` between fields.
PIPES = TextFormat(kind="custom", column_separator="|", quote=None, escape_char="\\",
                   null="\\N", columns=COLUMNS)


def pipes_text(values: Values) -> bytes:
    null = "\\N"
    return "".join(f"{i}|{null if v is None else _tsv_escape(v, i).replace('|', chr(92) + '|')}\n"
                   for i, v in values.items()).encode()


@pytest.mark.parametrize("dst", ["pg", "mysql", "ddb", "file-csv"])
async def test_custom_format_with_escapes_keeps_every_hard_value(dst: str, ends: Ends) -> None:
    """A Custom format's escaped separator (``\\|``) and TSV escapes reach every kind of
    target as the value they stand for (PostgreSQL's COPY and LOAD DATA read the stream as it
    is, after the MySQL sink's escape translation)."""
    values = ends.ids(HARD if dst == "pg" else HARD + WITH_NUL)
    path = ends.tmp_path / f"{ends.stem}.txt"
    path.write_bytes(pipes_text(values))
    sink = ends.make(dst, "dst")
    dst_url, dst_options = await sink.target()
    await copy(open_source(f"file://{path}", EndpointOptions(format=PIPES)),
               open_sink(dst_url, dst_options))
    assert differences(values, await sink.read()) == []
