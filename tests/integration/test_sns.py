"""SNS publishing (SnsAlarm) against moto on loopback.

What was published is read back the way a subscriber gets it: the topic delivers to an SQS queue
on the same moto server, and the test receives the notification from that queue.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.aws import SNS_MESSAGE_LIMIT as MESSAGE_LIMIT
from connectors.aws import SNS_SUBJECT_LIMIT as SUBJECT_LIMIT
from connectors.aws import clean_sns_subject as clean_subject
from connectors.aws import publish_sns as publish
from connectors.aws import sns_region_of as region_of
from connectors.errors import ConfigError, NotFoundError
from tests.services import aws

pytestmark = pytest.mark.anyio


@pytest.fixture
def topic(sns_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any, str]]:
    """A fresh topic with an SQS subscriber: (topic ARN, sqs client, queue URL)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", sns_endpoint)
    sns = aws.client("sns", sns_endpoint)
    sqs = aws.client("sqs", sns_endpoint)
    name = f"alarms-{secrets.token_hex(4)}"
    arn = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue,
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    try:
        yield arn, sqs, queue
    finally:
        sns.delete_topic(TopicArn=arn)
        sqs.delete_queue(QueueUrl=queue)
        sns.close()
        sqs.close()


def received(sqs: Any, queue: str) -> list[dict[str, Any]]:
    reply = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in reply.get("Messages", [])]


async def test_publish_reaches_a_subscriber(topic: tuple[str, Any, str]) -> None:
    arn, sqs, queue = topic
    message_id = await publish(arn, "copy failed: orders", "Error: disk full\nat 2024-01-01")
    [note] = received(sqs, queue)
    assert note["MessageId"] == message_id
    assert note["Subject"] == "copy failed: orders"
    assert note["Message"] == "Error: disk full\nat 2024-01-01"


async def test_long_subject_is_cut_and_kept_in_the_message(topic: tuple[str, Any, str]) -> None:
    arn, sqs, queue = topic
    subject = "Pipeline df-0123 object CopyOrders failed on attempt 3 of 3: " + "x" * 120
    await publish(arn, subject, "details")
    [note] = received(sqs, queue)
    assert len(note["Subject"]) == SUBJECT_LIMIT and note["Subject"].endswith("...")
    assert note["Message"] == f"Subject: {subject}\n\ndetails"


async def test_huge_message_is_cut_with_a_note(topic: tuple[str, Any, str]) -> None:
    arn, sqs, queue = topic
    await publish(arn, "big", "é" * MESSAGE_LIMIT)
    [note] = received(sqs, queue)
    assert len(note["Message"].encode()) <= MESSAGE_LIMIT
    assert note["Message"].endswith("to SNS's 256 KiB limit]")


async def test_missing_topic_is_not_found(topic: tuple[str, Any, str]) -> None:
    arn, _, _ = topic
    missing = arn.rsplit(":", 1)[0] + ":no-such-topic"
    with pytest.raises(NotFoundError, match="no-such-topic"):
        await publish(missing, "s", "m")


async def test_a_non_arn_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="topicArn"):
        await publish("my-topic", "s", "m")


def test_subject_cleaning() -> None:
    assert clean_subject("line one\nline\ttwo") == ("line one line two", False)
    assert clean_subject("naïve ✓") == ("na?ve ?", False)
    cut, was_cut = clean_subject("y" * 150)
    assert was_cut and len(cut) == SUBJECT_LIMIT


def test_region_of_reads_the_arn() -> None:
    assert region_of("arn:aws:sns:eu-west-2:123456789012:alarms") == "eu-west-2"
    assert region_of("alarms") is None
