"""Client spans of the data plane against the real servers, captured in process: PostgreSQL
queries and COPY, MySQL LOAD DATA and reads, DynamoDB batch writes, each under the copy stage
that made it."""

from __future__ import annotations

from typing import Any

import asyncpg
import pymysql
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from connectors import mysql, postgres
from connectors.base import CSV, TSV, EndpointOptions
from connectors.copy import copy
from connectors.testing import MemorySink, MemorySource
from tests.integration.sql_kit import IDS
from tests.otel_kit import recording

pytestmark = pytest.mark.anyio

ROWS = 2000


def _data(sep: str = "\t") -> bytes:
    return b"".join(f"{i}{sep}name {i}\n".encode() for i in range(ROWS))


def _parent(spans: list[ReadableSpan], span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None
    [parent] = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


def _named(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_postgres_copy_and_queries_are_client_spans_under_their_stage(
        pg_database: str) -> None:
    conn = await asyncpg.connect(pg_database)
    await conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    await conn.close()
    url = f"{pg_database}?table=t"
    with recording() as exporter:
        await copy(MemorySource(IDS, data=_data(), fmt=TSV, chunk_size=8192),
                   postgres.sink_from_url(url, EndpointOptions()))
        out = MemorySink(CSV)
        result = await copy(postgres.source_from_url(url, EndpointOptions()), out)
    assert result.rows == ROWS
    spans = list(exporter.get_finished_spans())
    loads = [s for s in _named(spans, "COPY t")
             if s.attributes.get("headrace.copy.direction") == "in"]
    reads = [s for s in _named(spans, "COPY t")
             if s.attributes.get("headrace.copy.direction") == "out"]
    assert len(loads) == 1 and len(reads) == 1
    for span, stage in ((loads[0], "copy write"), (reads[0], "copy read")):
        assert span.kind == SpanKind.CLIENT
        assert _parent(spans, span).name == stage
        attrs: dict[str, Any] = dict(span.attributes or {})
        assert attrs["db.system"] == "postgresql" and attrs["db.operation"] == "COPY"
        assert attrs["db.name"] == pg_database.rsplit("/", 1)[1]
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["db.sql.table"] == "t"
    assert reads[0].attributes["db.response.returned_rows"] == ROWS
    # plain queries (the sink's checks of the target table) are spans too, with their text
    queries = [s for s in spans if s.attributes and s.attributes.get("db.system") ==
               "postgresql" and s.attributes.get("db.operation") != "COPY"]
    assert queries and all(s.kind == SpanKind.CLIENT for s in queries)
    assert all("db.query.text" in s.attributes for s in queries)
    assert all(_parent(spans, s).name.startswith("copy") for s in queries)


def _mysql(dsn: str, sql: str) -> None:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(dsn)
    con = pymysql.connect(host=parts.hostname, port=parts.port, user=unquote(parts.username
                                                                            or "root"),
                          database=parts.path.lstrip("/"), autocommit=True)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


async def test_mysql_load_data_and_read_are_client_spans(mysql_database: str) -> None:
    _mysql(mysql_database, "CREATE TABLE t (id bigint PRIMARY KEY, name text)")
    url = f"{mysql_database}?table=t"
    with recording() as exporter:
        await copy(MemorySource(IDS, data=_data(), fmt=TSV, chunk_size=8192),
                   mysql.sink_from_url(url, EndpointOptions()))
        await copy(mysql.source_from_url(url, EndpointOptions()), MemorySink(CSV))
    spans = list(exporter.get_finished_spans())
    [load] = _named(spans, "LOAD DATA")
    [read] = _named(spans, "SELECT t")
    assert _parent(spans, load).name == "copy write"
    assert _parent(spans, read).name == "copy read"
    for span in (load, read):
        assert span.kind == SpanKind.CLIENT
        assert span.attributes["db.system"] == "mysql"
        assert span.attributes["server.port"] == int(mysql_database.rsplit(":", 1)[1]
                                                     .split("/")[0])
    assert read.attributes["db.sql.table"] == "t"


async def test_dynamodb_batch_writes_are_client_spans_with_the_table(
        dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    from aiobotocore.session import get_session

    from connectors.urls import open_sink

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    table = f"otel-{secrets.token_hex(4)}"
    async with get_session().create_client("dynamodb", endpoint_url=dynamodb_endpoint) as ddb:
        await ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                               KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id",
                                                      "AttributeType": "N"}])
        try:
            with recording() as exporter:
                await copy(MemorySource(IDS, data=_data(","), fmt=CSV, chunk_size=8192),
                           open_sink(f"dynamodb://{table}", EndpointOptions()))
        finally:
            await ddb.delete_table(TableName=table)
    spans = list(exporter.get_finished_spans())
    writes = _named(spans, "DynamoDB.BatchWriteItem")
    assert len(writes) >= ROWS // 25  # 25 items per batch
    for span in writes:
        assert span.kind == SpanKind.CLIENT
        assert span.attributes["rpc.system"] == "aws-api"
        assert span.attributes["rpc.service"] == "DynamoDB"
        assert tuple(span.attributes["aws.dynamodb.table_names"]) == (table,)
        assert span.attributes["http.response.status_code"] == 200
        assert _parent(spans, span).name == "copy write"
