"""DynamoDB pacing (token bucket, backoff), URLs and error mapping: no server needed.

The bucket runs on a virtual clock, so these tests check the arithmetic, not the wall clock.
"""

from __future__ import annotations

import random

import botocore.exceptions as bexc
import pytest

from connectors.aws import full_jitter
from connectors.base import EndpointOptions
from connectors.dynamodb import (
    DynamoDBTable,
    RetryPolicy,
    TokenBucket,
    map_error,
    parse_url,
    sink_from_url,
    table_info,
    throughput_rate,
)
from connectors.errors import (
    AuthenticationFailed,
    BadDataError,
    ConfigError,
    NotFoundError,
    Throttled,
    TimedOut,
    TransientError,
    TransientFault,
    Unreachable,
)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.anyio
async def test_bucket_paces_spending_to_its_rate() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(20):  # 20 requests of 5 units at 10 units/s, starting with 10 in hand
        await bucket.acquire()
        bucket.spend(5)
    # 100 units spent; 10 were in the bucket, the last request may start while 5 remain owed
    assert clock.now == pytest.approx((100 - 10 - 5) / 10, abs=0.05)
    assert bucket.waited == pytest.approx(clock.now)


@pytest.mark.anyio
async def test_bucket_lets_one_request_go_into_debt_then_waits_it_off() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(4.0, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    bucket.spend(20)  # a page that cost far more than the burst
    assert bucket.tokens == pytest.approx(-16)
    await bucket.acquire()
    assert clock.now == pytest.approx(4.0, abs=0.01)  # 16 units owed at 4/s
    assert bucket.tokens > 0


@pytest.mark.anyio
async def test_bucket_does_not_wait_while_it_holds_tokens() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(100.0, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    bucket.spend(50)
    await bucket.acquire()
    assert clock.sleeps == []


def test_bucket_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)


@pytest.mark.parametrize(("percent", "units", "expected"), [
    (0.5, 100, 50.0), (1.0, 7, 7.0), (None, 100, None), (0.5, None, None), (0.5, 0, None),
])
def test_throughput_rate(percent: float | None, units: float | None,
                         expected: float | None) -> None:
    assert throughput_rate(percent, units) == expected


def test_full_jitter_stays_under_its_ceiling_and_varies() -> None:
    rng = random.Random(1)
    delays = [full_jitter(n, base=0.1, cap=2.0, rng=rng) for n in range(12) for _ in range(20)]
    assert all(0 <= d <= 2.0 for d in delays)
    first = [full_jitter(0, base=0.1, cap=2.0, rng=rng) for _ in range(50)]
    assert all(d <= 0.1 for d in first)
    assert len(set(first)) > 40  # parallel retries do not line up


def test_retry_policy_delay_grows_with_the_attempt() -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=10, rng=random.Random(3))
    early = max(policy.delay(1) for _ in range(200))
    late = max(policy.delay(8) for _ in range(200))
    assert early <= 0.02 < late <= 2.56


# -- URLs and the config model ----------------------------------------------------------------

def test_parse_url_reads_table_region_and_percents() -> None:
    table = parse_url("dynamodb://Orders.v2?region=eu-west-1&readThroughputPercent=0.5"
                      "&write_throughput_percent=0.25")
    assert table == DynamoDBTable(table_name="Orders.v2", region="eu-west-1",
                                  read_throughput_percent=0.5, write_throughput_percent=0.25)
    assert parse_url("dynamodb://abc").region is None
    assert parse_url("dynamodb://abc?region=eu-west-1").url == "dynamodb://abc?region=eu-west-1"


@pytest.mark.parametrize(("url", "fragment"), [
    ("s3://bucket/key", "not a dynamodb"),
    ("dynamodb://ab", "table_name"),
    ("dynamodb://a b c", "table_name"),
    ("dynamodb://table/extra", "dynamodb://TABLE"),
    ("dynamodb://table?colour=red", "unknown parameter 'colour'"),
    ("dynamodb://table?read_throughput_percent=2", "read_throughput_percent"),
    ("dynamodb://table?write_throughput_percent=0.01", "write_throughput_percent"),
])
def test_parse_url_refuses_bad_urls_clearly(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_url(url)


def test_from_node_reads_definition_fields() -> None:
    table = DynamoDBTable.from_node({"tableName": "orders", "region": "eu-west-1",
                                     "readThroughputPercent": "0.25", "writeThroughputPercent": ""})
    assert table == DynamoDBTable(table_name="orders", region="eu-west-1",
                                  read_throughput_percent=0.25)
    with pytest.raises(ConfigError, match="writeThroughputPercent"):
        DynamoDBTable.from_node({"tableName": "orders", "writeThroughputPercent": "1.5"})
    with pytest.raises(ConfigError, match="tableName"):
        DynamoDBTable.from_node({})


def test_sink_from_url_builds_a_sink() -> None:
    sink = sink_from_url("dynamodb://things?region=us-west-2", EndpointOptions(parallel=3))
    assert sink.describe == "dynamodb://things?region=us-west-2"
    assert sink.table.region == "us-west-2"


def test_table_info_reads_key_order_and_capacity() -> None:
    info = table_info({"Table": {
        "TableName": "t1", "TableStatus": "ACTIVE",
        "KeySchema": [{"AttributeName": "sk", "KeyType": "RANGE"},
                      {"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "N"},
                                 {"AttributeName": "sk", "AttributeType": "S"},
                                 {"AttributeName": "gsi", "AttributeType": "B"}],
        "ProvisionedThroughput": {"ReadCapacityUnits": 40, "WriteCapacityUnits": 10}}})
    assert info.key_names == ("pk", "sk")
    assert info.key_types == {"pk": "N", "sk": "S"}
    assert (info.read_units, info.write_units) == (40, 10)
    on_demand = table_info({"Table": {
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}}})
    assert (on_demand.read_units, on_demand.write_units) == (None, None)


# -- error mapping ----------------------------------------------------------------------------

def _client_error(code: str, status: int = 400, message: str = "msg") -> bexc.ClientError:
    return bexc.ClientError({"Error": {"Code": code, "Message": message},
                             "ResponseMetadata": {"HTTPStatusCode": status}}, "Scan")


@pytest.mark.parametrize(("exc", "kind"), [
    (_client_error("ResourceNotFoundException"), NotFoundError),
    (_client_error("UnrecognizedClientException"), AuthenticationFailed),
    (_client_error("InvalidSignatureException"), AuthenticationFailed),
    (_client_error("AccessDeniedException"), AuthenticationFailed),
    (_client_error("ProvisionedThroughputExceededException"), Throttled),
    (_client_error("ThrottlingException"), Throttled),
    (_client_error("InternalServerError", 500), TransientFault),
    (_client_error("Whatever", 503), Throttled),
    (_client_error("Whatever", 502), TransientFault),
    (_client_error("ValidationException"), ConfigError),
    (bexc.NoCredentialsError(), AuthenticationFailed),
    (bexc.NoRegionError(), ConfigError),
    (bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unreachable),
    (bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TimedOut),
])
def test_map_error_classifies(exc: Exception, kind: type) -> None:
    error = map_error(exc, connector="dynamodb://t", operation="Scan", subject="table 't'")
    assert type(error) is kind
    assert error.transient == issubclass(kind, TransientError)
    assert "dynamodb://t" in str(error)


def test_validation_on_a_write_is_bad_data() -> None:
    error = map_error(_client_error("ValidationException"), connector="c",
                      operation="BatchWriteItem")
    assert isinstance(error, BadDataError)


def test_credential_errors_name_the_sources_and_no_secret(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    secret = "s3cr3t-value-never-shown"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    refused = _client_error("UnrecognizedClientException",
                            message="The security token included in the request is invalid.")
    for exc in (bexc.NoCredentialsError(), refused):
        text = str(map_error(exc, connector="dynamodb://t", operation="Scan"))
        assert "AWS_ACCESS_KEY_ID" in text and "credentials file" in text
        assert secret not in text


def test_not_found_names_the_table() -> None:
    error = map_error(_client_error("ResourceNotFoundException"), connector="dynamodb://t",
                      operation="DescribeTable", subject="table 'orders'")
    assert "table 'orders': ResourceNotFoundException" in str(error)
