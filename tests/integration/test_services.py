"""One real round trip per loopback server, plus the services CLI itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import aiomysql
import asyncpg
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from tests import services
from tests.services import aws
from tests.services.config import REPO_ROOT


@pytest.mark.anyio
async def test_postgres_runs_queries_in_a_fresh_database(pg_database: str) -> None:
    connection = await asyncpg.connect(pg_database)
    try:
        await connection.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        await connection.executemany("INSERT INTO t VALUES ($1, $2)", [(1, "a"), (2, "ü")])
        rows = await connection.fetch("SELECT id, name FROM t ORDER BY id")
        database = await connection.fetchval("SELECT current_database()")
        fsync = await connection.fetchval("SHOW fsync")
    finally:
        await connection.close()
    assert [tuple(row) for row in rows] == [(1, "a"), (2, "ü")]
    assert pg_database.endswith(f"/{database}")
    assert fsync == "off"


@pytest.mark.anyio
async def test_mariadb_runs_queries_with_local_infile_on(mysql_database: str) -> None:
    parts = urllib.parse.urlsplit(mysql_database)
    connection = await aiomysql.connect(host=parts.hostname, port=parts.port, user="root",
                                        db=parts.path.lstrip("/"), autocommit=True)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10))")
            await cursor.execute("INSERT INTO t VALUES (1, 'ü'), (2, '😀')")
            await cursor.execute("SELECT id, name FROM t ORDER BY id")
            rows = await cursor.fetchall()
            await cursor.execute("SELECT @@local_infile, DATABASE()")
            local_infile, database = await cursor.fetchone()
    finally:
        connection.close()
    assert list(rows) == [(1, "ü"), (2, "😀")]
    assert local_infile == 1
    assert mysql_database.endswith(f"/{database}")


def _s3(endpoint: str, secret: str | None = None) -> Any:
    credentials = services.environment(["s3"])
    return get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=credentials["AWS_REGION"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or credentials["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.mark.anyio
async def test_s3_put_get_and_a_bad_signature_is_rejected(s3_endpoint: str, s3_bucket: str) -> None:
    body = b"headrace\n" * 1000
    async with _s3(s3_endpoint) as client:
        await client.put_object(Bucket=s3_bucket, Key="dir/object.txt", Body=body)
        response = await client.get_object(Bucket=s3_bucket, Key="dir/object.txt")
        async with response["Body"] as stream:
            assert await stream.read() == body
    async with _s3(s3_endpoint, secret="not-the-secret") as client:
        with pytest.raises(ClientError) as rejected:
            await client.get_object(Bucket=s3_bucket, Key="dir/object.txt")
    assert rejected.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_s3_bucket_fixture_cleans_up_objects_and_uploads(s3_endpoint: str) -> None:
    """The teardown the fixture uses leaves no bucket behind, even with an open multipart upload."""
    from tests.conftest import _empty_and_delete_bucket

    client = aws.client("s3", s3_endpoint)
    bucket = f"t-cleanup-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="a", Body=b"1")
    client.create_multipart_upload(Bucket=bucket, Key="big")
    _empty_and_delete_bucket(client, bucket)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    client.close()
    assert bucket not in names


@pytest.mark.anyio
async def test_dynamodb_creates_a_table_and_stores_an_item(dynamodb_endpoint: str) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    async with get_session().create_client("dynamodb", endpoint_url=dynamodb_endpoint) as client:
        await client.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        )
        try:
            described = await client.describe_table(TableName=table)
            await client.put_item(TableName=table, Item={"id": {"N": "7"}, "v": {"S": "x"}})
            item = await client.get_item(TableName=table, Key={"id": {"N": "7"}})
        finally:
            await client.delete_table(TableName=table)
    assert described["Table"]["TableStatus"] == "ACTIVE"
    assert item["Item"] == {"id": {"N": "7"}, "v": {"S": "x"}}


@pytest.mark.anyio
async def test_sns_publish_reaches_a_subscribed_queue(sns_endpoint: str) -> None:
    session = get_session()
    name = f"t-{uuid.uuid4().hex[:8]}"
    async with session.create_client("sns", endpoint_url=sns_endpoint) as sns, \
            session.create_client("sqs", endpoint_url=sns_endpoint) as sqs:
        topic_arn = (await sns.create_topic(Name=name))["TopicArn"]
        queue_url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        queue_arn = (await sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
        await sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        published = await sns.publish(TopicArn=topic_arn, Subject="s", Message="hello headrace")
        received = await sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)
    assert published["MessageId"]
    [message] = received["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Message"] == "hello headrace"
    assert envelope["MessageId"] == published["MessageId"]


def _export_one_span(exporter: SpanExporter, project: str) -> str:
    provider = TracerProvider(resource=Resource.create({
        "service.name": "headrace-tests", "openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("probe") as span:
        span.set_attribute("headrace.check", project)
        span_id = format(span.get_span_context().span_id, "016x")
    provider.shutdown()
    return span_id


def _spans_of(phoenix_url: str, project: str) -> list[dict[str, Any]]:
    """Poll Phoenix's REST API until the project has spans (ingestion is asynchronous)."""
    url = f"{phoenix_url}/v1/projects/{urllib.parse.quote(project)}/spans"
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                spans = json.load(response).get("data", [])
        except urllib.error.HTTPError as error:
            if error.code != 404:  # the project appears with its first span
                raise
            spans = []
        if spans:
            return list(spans)
        time.sleep(0.2)
    return []


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_otlp_span_is_exported_and_read_back_from_phoenix(
    transport: str, phoenix_url: str, otlp_http_endpoint: str, otlp_grpc_endpoint: str
) -> None:
    project = f"headrace-{transport}-{uuid.uuid4().hex[:8]}"
    if transport == "http":
        exporter: SpanExporter = HttpSpanExporter(endpoint=f"{otlp_http_endpoint}/v1/traces")
    else:
        exporter = GrpcSpanExporter(endpoint=otlp_grpc_endpoint, insecure=True)
    span_id = _export_one_span(exporter, project)
    spans = _spans_of(phoenix_url, project)
    assert [span["name"] for span in spans] == ["probe"]
    assert spans[0]["context"]["span_id"] == span_id
    assert spans[0]["attributes"]["headrace.check"] == project


def test_services_up_is_idempotent_and_env_lists_every_variable(sns_endpoint: str) -> None:
    again = services.up(["sns"])
    assert again.launched == []
    assert again.reused == ["sns"]
    assert again.env["AWS_ENDPOINT_URL_SNS"] == sns_endpoint
    printed = subprocess.run([sys.executable, "-m", "tests.services", "env"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout
    names = {line.split("=", 1)[0].removeprefix("export ") for line in printed.splitlines()}
    assert {"HEADRACE_TEST_PG_DSN", "HEADRACE_TEST_MYSQL_DSN", "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
            "AWS_EC2_METADATA_DISABLED", "HEADRACE_TEST_PHOENIX_URL",
            "HEADRACE_TEST_OTLP_HTTP_ENDPOINT", "HEADRACE_TEST_OTLP_GRPC_ENDPOINT",
            "HEADRACE_TEST_S5CMD", "HEADRACE_TEST_SERVICES_DIR"} <= names


def test_unknown_service_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "tests.services", "up", "--only", "pg,redis"],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "unknown service redis" in result.stderr


@pytest.mark.anyio
async def test_fault_proxy_reset_mid_copy_leaves_postgres_without_partial_rows(
    pg_database: str,
) -> None:
    from connectors.testing import FaultProxy

    parts = urllib.parse.urlsplit(pg_database)
    direct = await asyncpg.connect(pg_database)
    try:
        await direct.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
        async with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
            proxied = await asyncpg.connect(pg_database.replace(f":{parts.port}/",
                                                                f":{proxy.port}/"))
            proxy.reset_after(200_000, direction="up", times=1)
            rows = [(i, "p" * 100) for i in range(20_000)]
            with pytest.raises((OSError, asyncpg.exceptions.ConnectionDoesNotExistError)):
                await proxied.copy_records_to_table("t", records=rows)
            proxied.terminate()
            assert proxy.resets == 1
            assert proxy.bytes_up >= 200_000
        assert await direct.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await direct.close()
