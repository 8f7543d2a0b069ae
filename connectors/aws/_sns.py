"""Publishing to an SNS topic, for ``SnsAlarm`` actions.

The endpoint and credentials come from the standard AWS configuration (``AWS_ENDPOINT_URL_SNS``,
``AWS_ENDPOINT_URL``, profiles, environment). The region is the one given, else the topic ARN's,
else the configured default. SNS limits a subject to 100 printable ASCII characters on one line
and a message to 256 KiB: a longer subject is cut (line breaks become spaces) and the full
subject is added at the top of the message, so nothing of an alarm is lost; an over-long message
is cut at a character boundary with a note saying so.
"""

from __future__ import annotations

import logging

from connectors.errors import ConfigError

from ._client import client
from ._errors import map_errors

log = logging.getLogger(__name__)

SUBJECT_LIMIT = 100
MESSAGE_LIMIT = 256 * 1024  # bytes, UTF-8
_CONNECTOR = "sns"


def region_of(topic_arn: str) -> str | None:
    """The region of ``arn:aws:sns:REGION:ACCOUNT:NAME``, or None when it is not such an ARN."""
    parts = topic_arn.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "sns" and parts[3]:
        return parts[3]
    return None


def clean_subject(subject: str) -> tuple[str, bool]:
    """``subject`` made acceptable to SNS, and whether it had to be cut.

    SNS takes printable ASCII on one line: other characters become ``?``, line breaks and tabs
    become spaces; then the text is cut to :data:`SUBJECT_LIMIT` characters.
    """
    flat = " ".join(subject.split())
    ascii_only = "".join(c if " " <= c <= "~" else "?" for c in flat)
    if len(ascii_only) <= SUBJECT_LIMIT:
        return ascii_only, False
    return ascii_only[: SUBJECT_LIMIT - 3].rstrip() + "...", True


def fit_message(message: str, note: str = "") -> str:
    """``note`` + ``message``, cut at :data:`MESSAGE_LIMIT` UTF-8 bytes (with a note) if needed."""
    text = note + message
    data = text.encode("utf-8")
    if len(data) <= MESSAGE_LIMIT:
        return text
    tail = f"\n[headrace: message cut from {len(data)} bytes to SNS's 256 KiB limit]"
    keep = data[: MESSAGE_LIMIT - len(tail.encode("utf-8"))].decode("utf-8", errors="ignore")
    return keep + tail


async def publish(topic_arn: str, subject: str, message: str, *,
                  region: str | None = None) -> str:
    """Publish ``message`` with ``subject`` to ``topic_arn``; return SNS's message id.

    Raises connector errors (:func:`~._errors.translate`): NotFoundError (no such topic),
    AuthenticationFailed, Throttled (transient), ConfigError for something that is not an ARN.
    botocore retries transient faults itself.
    """
    if not topic_arn or not topic_arn.startswith("arn:"):
        raise ConfigError(f"topicArn must be an SNS topic ARN, got {topic_arn!r}",
                          connector=_CONNECTOR, operation="Publish")
    short, cut = clean_subject(subject)
    note = ""
    if cut:
        log.warning("SNS subject cut to %d characters for %s", SUBJECT_LIMIT, topic_arn)
        note = f"Subject: {' '.join(subject.split())}\n\n"
    body = fit_message(message, note)
    with map_errors(_CONNECTOR, "Publish", topic_arn):
        async with client("sns", region=region or region_of(topic_arn)) as sns:
            extra = {"Subject": short} if short else {}
            reply = await sns.publish(TopicArn=topic_arn, Message=body, **extra)
    return str(reply["MessageId"])
