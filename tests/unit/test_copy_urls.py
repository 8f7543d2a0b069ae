"""URL dispatch, password redaction, AWS configuration and AWS error mapping (no network)."""

from __future__ import annotations

import aiohttp
import botocore.exceptions as bexc
import pytest

from connectors import aws
from connectors.base import EndpointOptions
from connectors.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionLost,
    NotFoundError,
    TerminalFault,
    Throttled,
    TimedOut,
    TransientError,
    TransientFault,
    Unreachable,
)
from connectors.local import LocalSink, LocalSource
from connectors.s3 import S3Sink, S3Source, parse_s3_url
from connectors.urls import open_sink, open_source, redact_text, redact_url, scheme_of

pytestmark = pytest.mark.anyio


def test_scheme_picks_the_connector() -> None:
    assert isinstance(open_source("/tmp/x.csv"), LocalSource)
    assert isinstance(open_sink("file:///tmp/x.csv"), LocalSink)
    assert isinstance(open_source("s3://bucket/key.csv"), S3Source)
    sink = open_sink("s3://bucket/prefix/", EndpointOptions(parallel=7))
    assert isinstance(sink, S3Sink) and sink.parallel == 7 and sink.url.is_prefix
    assert scheme_of("C:\\data\\x.csv") == "file"
    assert scheme_of("PostgreSQL://h/db") == "postgresql"


def test_jdbc_mariadb_and_redshift_urls_pick_the_sql_connectors() -> None:
    from connectors.mysql import MySqlSink, MySqlSource
    from connectors.postgres import PostgresSink, PostgresSource

    assert scheme_of("jdbc:mysql://h:3306/db") == "mysql"
    assert scheme_of("JDBC:PostgreSQL://h/db") == "postgresql"
    cases = {
        "mariadb://root@h:3306/db?table=t": (MySqlSource, MySqlSink, "mysql://root@h:3306/db"),
        "jdbc:mysql://u:pw@h/db?table=t": (MySqlSource, MySqlSink, "mysql://u@h:3306/db"),
        "jdbc:mariadb://h/db?table=t": (MySqlSource, MySqlSink, "mysql://h:3306/db"),
        "redshift://u:pw@h/dev?table=t": (PostgresSource, PostgresSink, "redshift://u@h:5439/dev"),
        "jdbc:redshift://h:5439/dev?table=t": (PostgresSource, PostgresSink,
                                               "redshift://h:5439/dev"),
        "jdbc:postgresql://h/db?table=t&user=u&password=pw": (
            PostgresSource, PostgresSink, "postgresql://u@h:5432/db"),
    }
    for url, (source_cls, sink_cls, shown) in cases.items():
        source, sink = open_source(url), open_sink(url)
        assert isinstance(source, source_cls) and isinstance(sink, sink_cls), url
        assert source.describe.startswith(shown) and "pw" not in source.describe, url


def test_jdbc_passwords_are_redacted() -> None:
    url = "jdbc:mysql://app:hunter2@h/db?table=t"
    assert redact_url(url) == "jdbc:mysql://app:***@h/db?table=t"
    query = "jdbc:postgresql://h/db?user=a&password=p%40ss&table=t"
    assert redact_url(query) == "jdbc:postgresql://h/db?user=a&password=***&table=t"
    text = f"failed: {url} and {query}, passwords hunter2 / p@ss / p%40ss"
    clean = redact_text(text, url, query)
    assert not any(p in clean for p in ("hunter2", "p@ss", "p%40ss")), clean


def test_unknown_scheme_lists_the_known_ones_without_the_password() -> None:
    with pytest.raises(ConfigError) as err:
        open_source("ftp://me:topsecret@host/file.csv")
    message = str(err.value)
    assert "topsecret" not in message and "me:***@host" in message
    for scheme in ("file", "s3", "postgresql", "mysql", "dynamodb"):
        assert scheme in message


def test_redaction() -> None:
    url = "postgresql://app:s3cr%40t@db.local:5432/prod?table=t"
    assert redact_url(url) == "postgresql://app:***@db.local:5432/prod?table=t"
    assert redact_url("s3://bucket/key") == "s3://bucket/key"
    assert redact_url("mysql://user@host/db") == "mysql://user@host/db"
    text = f"could not connect to {url} (password s3cr%40t refused)"
    assert "s3cr" not in redact_text(text, url)


def test_s3_url_parsing() -> None:
    u = parse_s3_url("s3://bucket/a/b%20c.csv")
    assert (u.bucket, u.key, u.is_prefix) == ("bucket", "a/b c.csv", False)
    assert parse_s3_url("s3://bucket").is_prefix
    with pytest.raises(ConfigError, match="not an S3 URL"):
        parse_s3_url("s3:/bucket/key")


async def test_botocore_honours_service_endpoint_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:2")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", "http://127.0.0.1:3")
    for service, url in (("s3", "http://127.0.0.1:1"), ("dynamodb", "http://127.0.0.1:2"),
                         ("sns", "http://127.0.0.1:3")):
        async with aws.client(service, parallel=16) as c:
            assert c.meta.endpoint_url == url
            assert c.meta.config.max_pool_connections == 18
            assert c.meta.config.retries["mode"] == "standard"
    async with aws.client("s3") as c:
        assert c.meta.config.s3 == {"addressing_style": "path", "payload_signing_enabled": False}


async def test_sessions_follow_credential_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    first = aws.session()
    assert aws.session() is first
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another")
    assert aws.session() is not first


def client_error(code: str, status: int, message: str = "msg") -> bexc.ClientError:
    return bexc.ClientError({"Error": {"Code": code, "Message": message},
                             "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize(("exc", "kind"), [
    (client_error("SlowDown", 503), Throttled),
    (client_error("ProvisionedThroughputExceededException", 400), Throttled),
    (client_error("InternalError", 500), TransientFault),
    (client_error("Whatever", 503), Throttled),
    (client_error("ServiceUnavailable", 503), TransientFault),
    (client_error("TooManyRequests", 429), Throttled),
    (client_error("NoSuchKey", 404), NotFoundError),
    (client_error("NoSuchBucket", 404), NotFoundError),
    (client_error("404", 404), NotFoundError),
    (client_error("SignatureDoesNotMatch", 403), AuthenticationFailed),
    (client_error("InvalidAccessKeyId", 403), AuthenticationFailed),
    (client_error("InvalidArgument", 400), TerminalFault),
    (bexc.NoCredentialsError(), AuthenticationFailed),
    (bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), Unreachable),
    (bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), TimedOut),
    (bexc.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"), TimedOut),
    (aiohttp.ClientPayloadError("Response payload is not completed"), ConnectionLost),
])
def test_aws_errors_map_to_connector_errors(exc: Exception, kind: type) -> None:
    with pytest.raises(kind) as err, aws.map_errors("s3", "get", "s3://b/k"):
        raise exc
    assert err.value.__cause__ is exc
    assert type(err.value) is kind
    assert err.value.transient == issubclass(kind, TransientError)
    assert "s3: get: s3://b/k" in str(err.value)


def test_auth_errors_name_the_credential_sources() -> None:
    with pytest.raises(AuthenticationFailed) as err, aws.map_errors("dynamodb", "scan"):
        raise bexc.NoCredentialsError()
    assert "AWS_ACCESS_KEY_ID" in str(err.value) and "AWS_PROFILE" in str(err.value)


def test_echoed_secrets_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-shown")
    with pytest.raises(AuthenticationFailed) as err, aws.map_errors("s3", "get"):
        raise client_error("SignatureDoesNotMatch", 403, "signed with s3cr3t-never-shown")
    assert "s3cr3t-never-shown" not in str(err.value) and "signed with ***" in str(err.value)


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), aws.map_errors("s3", "get"):
        raise KeyError("x")


def test_copy_default_format_beside_dynamodb_is_export_lines() -> None:
    from connectors.base import DYNAMODB_JSONL
    from engine.cli.copy_cmd import default_format

    assert default_format("dynamodb://t", "s3://b/items.jsonl") == DYNAMODB_JSONL
    assert default_format("/data/items", "dynamodb://t") == DYNAMODB_JSONL  # no extension
    assert default_format("dynamodb://t", "file:///x/items.csv") is None  # CSV as asked
    assert default_format("dynamodb://t", "postgresql://h/db?table=t") is None
    assert default_format("dynamodb://a", "dynamodb://b") is None
    assert default_format("in.jsonl", "s3://b/out.jsonl") is None  # no DynamoDB end


def test_copy_registers_every_password_of_its_urls_for_telemetry_scrubbing() -> None:
    from click.testing import CliRunner

    from engine.cli.copy_cmd import copy
    from engine.telemetry.redact import MASK, scrub

    jdbc = "jdbc:mysql://127.0.0.1:1/db?user=u&password=jdbc-pw-7Qx&table=t"
    encoded = "postgresql://u:enc%40pw-9Zk@127.0.0.1:1/db?table=t"
    result = CliRunner().invoke(copy, [jdbc, encoded])
    assert result.exit_code != 0  # nothing listens on port 1
    assert scrub("jdbc-pw-7Qx") == MASK
    assert scrub("enc@pw-9Zk") == MASK  # the decoded form, as a server would quote it
    assert scrub("enc%40pw-9Zk") == MASK


def test_redact_url_masks_a_url_too_malformed_to_parse() -> None:
    from connectors.urls import redact_url

    # an unclosed IPv6 bracket makes urllib's parser raise; the password must still go
    shown = redact_url("postgresql://app:s3cret@[db/x?table=t")
    assert "s3cret" not in shown and shown.startswith("postgresql://app:***@[db")
    assert redact_url("jdbc:mysql://h/db?user=u&password=pw&x=1") == (
        "jdbc:mysql://h/db?user=u&password=***&x=1")


def test_end_formats_per_end_and_headers() -> None:
    from connectors.base import CSV, DYNAMODB_JSONL, JSONL, TSV
    from engine.cli.copy_cmd import end_formats

    assert end_formats("in.csv", "out.txt") == (None, None)  # each end decides
    assert end_formats("in.csv", "out.txt", both="tsv") == (TSV, TSV)
    assert end_formats("in.csv", "out.txt", both="tsv", source_format="csv") == (CSV, TSV)
    assert end_formats("in.csv", "out.jsonl", header=True) == (CSV.replace(header=True), None)
    assert end_formats("in.tsv", "s3://b/k.tsv", header=True) == (
        TSV.replace(header=True), TSV.replace(header=True))
    assert end_formats("-", "-", source_format="jsonl", header=True) == (
        JSONL, CSV.replace(header=True))
    # a database end has its own types: a header applies to the file end only
    assert end_formats("postgresql://h/db?table=t", "out.csv", header=True) == (
        None, CSV.replace(header=True))
    assert end_formats("dynamodb://t", "out.jsonl") == (DYNAMODB_JSONL, DYNAMODB_JSONL)
