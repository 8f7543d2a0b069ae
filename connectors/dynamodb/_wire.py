"""DynamoDB calls whose JSON bodies headrace builds and reads itself.

botocore walks every attribute of every item through its shape model twice per request (validate,
serialize) and once per response (parse). On a 2-core machine that shares its CPU with the server
this costs more than the server's own work: 20,000 items written and scanned against dynalite took
3.1 s + 0.9 s of client CPU through the modeled path and 1.8 s + 0.2 s through this one, doubling
the scan rate. DynamoDB speaks plain JSON 1.0, and our items are already in its wire form
(``_items``), so :func:`call` lets botocore do everything else (endpoint,
credentials, signing, the HTTP pool, error parsing) on a tiny stand-in request, then hands it the
finished body in place of the stand-in's and takes the response JSON before its parser runs.
Error responses (status >= 300) go through botocore as usual, so exceptions keep their codes.

The hand-off uses a context variable that is set only around :func:`call`, so other calls on the
same client are untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import botocore.exceptions as bexc
from botocore import xform_name

from connectors import aws
from connectors.errors import BadDataError, ConfigError, ConnectorError, TerminalFault

_RAW_BODY: ContextVar[bytes | None] = ContextVar("headrace_dynamodb_raw_body", default=None)
_RAW_KEY = "HeadraceRawResponse"
_HOOK_ID = "headrace-dynamodb-wire"


def _swap_body(params: dict[str, Any], **_: Any) -> None:
    body = _RAW_BODY.get()
    if body is not None:
        params["body"] = body


def _take_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any],
               **_: Any) -> None:
    if _RAW_BODY.get() is None or response_dict["status_code"] >= 300:
        return
    customized_response_dict[_RAW_KEY] = json.loads(response_dict["body"] or b"{}")
    response_dict["body"] = b"{}"


def install_wire_hooks(client: Any) -> None:
    """Let :func:`call` work on ``client`` (idempotent)."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}", _swap_body,
                                unique_id=f"{_HOOK_ID}-call")
    client.meta.events.register(f"before-parse.{service}", _take_body,
                                unique_id=f"{_HOOK_ID}-parse")


def encode(payload: dict[str, Any]) -> bytes:
    """The JSON body for a request payload (compact, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def call(client: Any, operation: str, payload: dict[str, Any] | bytes,
               route: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``payload`` (a dict or finished JSON bytes) as ``operation``; return the reply JSON.

    ``route`` is a small valid request of the same operation (``TableName``, or ``RequestItems``
    with the table names) for botocore's validation and endpoint rules; its serialized body is
    then replaced by ``payload``. The client must have had :func:`install_wire_hooks`. Raises
    botocore's exceptions.
    """
    body = payload if isinstance(payload, bytes) else encode(payload)
    token = _RAW_BODY.set(body)
    try:
        reply = await getattr(client, xform_name(operation))(**(route or {}))
    finally:
        _RAW_BODY.reset(token)
    raw: dict[str, Any] = reply.get(_RAW_KEY, {})
    return raw


@asynccontextmanager
async def open_client(region: str | None, *, max_connections: int = 10,
                      describe: str = "dynamodb") -> AsyncIterator[Any]:
    """A DynamoDB client from :func:`connectors.aws.client` with the wire hooks installed.

    botocore does not retry (``max_attempts=0``): the connector retries itself, so every resend and
    throttle is counted and the whole-batch retry budget is its own. The endpoint comes from
    the standard configuration (``AWS_ENDPOINT_URL_DYNAMODB``).
    """
    with aws.map_errors(describe, "connect"):
        async with aws.client("dynamodb", parallel=max_connections, region=region,
                              max_attempts=0) as client:
            install_wire_hooks(client)
            yield client


def map_error(exc: BaseException, *, connector: str, operation: str,
              subject: str | None = None) -> ConnectorError:
    """The connector error for a botocore/aiobotocore exception (:func:`connectors.aws.translate`).

    A ``ValidationException`` is bad data for writes and a configuration error otherwise.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if aws.error_code(exc) == "ValidationException":
        message = exc.response.get("Error", {}).get("Message", "")  # type: ignore[attr-defined]
        text = f"{subject}: {message}" if subject else message
        if operation in ("BatchWriteItem", "PutItem"):
            return BadDataError(f"ValidationException: {text}", connector=connector,
                                operation=operation)
        return ConfigError(f"ValidationException: {text}", connector=connector,
                           operation=operation)
    mapped = aws.translate(exc, connector, operation, subject)
    if mapped is None:
        return TerminalFault(f"{type(exc).__name__}: {exc}", connector=connector,
                             operation=operation)
    return mapped


#: What a botocore call raises (mapped by :func:`map_error`).
BOTO_ERRORS = (bexc.BotoCoreError, bexc.ClientError)
