"""DynamoDB calls whose JSON bodies headrace builds and reads itself.

botocore walks every attribute of every item through its shape model twice per request (validate,
serialize) and once per response (parse). On a 2-core machine that shares its CPU with the server
this costs more than the server's own work: 20,000 items written and scanned against dynalite took
3.1 s + 0.9 s of client CPU through the modeled path and 1.8 s + 0.2 s through this one, doubling
the scan rate. DynamoDB speaks plain JSON 1.0, and our items are already in its wire form
(:mod:`connectors.dynamodb_items`), so :func:`call` lets botocore do everything else (endpoint,
credentials, signing, the HTTP pool, error parsing) but hands it the finished body and takes the
response JSON before its parser runs. Error responses (status >= 300) go through botocore as
usual, so exceptions keep their codes.

The hand-off uses a context variable that is set only around :func:`call`, so other calls on the
same client are untouched.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any

import botocore.exceptions as bexc
from aiobotocore.session import get_session
from botocore import xform_name
from botocore.config import Config
from botocore.loaders import Loader, create_loader

from connectors.errors import (
    AuthenticationFailed,
    BadDataError,
    ConfigError,
    ConnectionLost,
    ConnectorError,
    NotFoundError,
    TerminalError,
    Throttled,
    TransientError,
    Unreachable,
)

_RAW_BODY: ContextVar[bytes | None] = ContextVar("headrace_dynamodb_raw_body", default=None)
_RAW_KEY = "HeadraceRawResponse"
_HOOK_ID = "headrace-dynamodb-wire"

#: Where botocore looks for credentials, in order (named in errors; no values ever are).
CREDENTIAL_SOURCES = (
    "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "SSO / profile in the config file (AWS_PROFILE, ~/.aws/config)",
    "shared credentials file (~/.aws/credentials or AWS_SHARED_CREDENTIALS_FILE)",
    "credential_process",
    "container credentials (AWS_CONTAINER_CREDENTIALS_*)",
    "EC2 instance metadata (off when AWS_EC2_METADATA_DISABLED=true)",
)

_AUTH_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationToken",
    "MissingAuthenticationTokenException", "IncompleteSignatureException",
    "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "AccessDeniedException", "AuthorizationError", "AuthFailure",
})
_THROTTLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "LimitExceededException", "TooManyRequestsException",
    "Throttled", "SlowDown",
})
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFound", "NotFoundException",
                              "TableNotFoundException"})
_TRANSIENT_CODES = frozenset({"InternalServerError", "InternalFailure", "ServiceUnavailable",
                              "InternalError", "InternalErrorException"})


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

    ``route`` holds the few modeled parameters botocore's endpoint rules read (``TableName``,
    ``RequestItems`` with its table names); they are serialized and then replaced by ``payload``.
    The client must have had :func:`install_wire_hooks`. Raises botocore's exceptions.
    """
    body = payload if isinstance(payload, bytes) else encode(payload)
    token = _RAW_BODY.set(body)
    try:
        reply = await getattr(client, xform_name(operation))(**(route or {}))
    finally:
        _RAW_BODY.reset(token)
    return reply.get(_RAW_KEY, {})


def client_config(max_connections: int) -> Config:
    """Config for a DynamoDB client used with :func:`call`.

    No botocore retries: the connectors retry themselves so every resend and throttle is counted
    (and the whole-batch retry budget is ours). No parameter validation: the server validates.
    """
    return Config(max_pool_connections=max(2, max_connections), parameter_validation=False,
                  retries={"total_max_attempts": 1, "mode": "standard"},
                  connect_timeout=10, read_timeout=60)


@functools.cache
def _shared_loader() -> Loader:
    """One botocore model loader for every session: parsing the service JSON models again for
    each client (a precondition polls with a fresh one) costs about 0.2 s of CPU."""
    return create_loader()


@asynccontextmanager
async def open_client(region: str | None, *, max_connections: int = 10,
                      describe: str = "dynamodb") -> AsyncIterator[Any]:
    """A DynamoDB client for ``region`` (None: the standard AWS config), wire hooks installed.

    The endpoint comes from the standard config too (``AWS_ENDPOINT_URL_DYNAMODB``).
    """
    session = get_session()
    session.register_component("data_loader", _shared_loader())
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(session.create_client(
                "dynamodb", region_name=region, config=client_config(max_connections)))
        except bexc.BotoCoreError as exc:
            raise map_error(exc, connector=describe, operation="connect") from exc
        install_wire_hooks(client)
        yield client


def map_error(exc: BaseException, *, connector: str, operation: str,
              subject: str | None = None) -> ConnectorError:
    """The connector error for a botocore/aiobotocore exception (message names no secret).

    ``subject`` is what was being acted on ("table orders"), used in not-found messages.
    A ``ValidationException`` is bad data for writes and a configuration error otherwise.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return AuthenticationFailed(
            f"no usable AWS credentials; sources tried: {'; '.join(CREDENTIAL_SOURCES)}",
            connector=connector, operation=operation)
    if isinstance(exc, bexc.NoRegionError):
        return ConfigError("no AWS region: give one (?region=...) or set AWS_DEFAULT_REGION",
                           connector=connector, operation=operation)
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectTimeoutError):
        return Unreachable(f"cannot reach the endpoint: {type(exc).__name__}",
                           connector=connector, operation=operation)
    if isinstance(exc, bexc.ConnectionClosedError | bexc.ReadTimeoutError
                  | bexc.HTTPClientError | bexc.ResponseStreamingError):
        return ConnectionLost(f"connection failed mid-request: {type(exc).__name__}",
                              connector=connector, operation=operation)
    if isinstance(exc, bexc.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")).rsplit("#", 1)[-1]
        text = str(error.get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _NOT_FOUND_CODES:
            what = subject or "resource"
            return NotFoundError(f"{what} not found ({code}: {text})", connector=connector,
                                 operation=operation)
        if code in _AUTH_CODES:
            verdict = ("these credentials may not do this" if "Denied" in code
                       or code == "AuthorizationError" else "the credentials were refused")
            return AuthenticationFailed(
                f"{code}: {verdict}; credential sources: {'; '.join(CREDENTIAL_SOURCES)}",
                connector=connector, operation=operation)
        if code in _THROTTLE_CODES:
            return Throttled(f"{code}: {text}", connector=connector, operation=operation)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(f"{code or status}: {text}", connector=connector,
                                  operation=operation)
        if code == "ValidationException" and operation in ("BatchWriteItem", "PutItem"):
            return BadDataError(f"{code}: {text}", connector=connector, operation=operation)
        if code in ("ValidationException", "SerializationException", "InvalidParameter",
                    "InvalidParameterValue", "InvalidParameterException"):
            return ConfigError(f"{code}: {text}", connector=connector, operation=operation)
        return TerminalError(f"{code or status}: {text}", connector=connector,
                             operation=operation)
    if isinstance(exc, bexc.BotoCoreError):
        return TerminalError(f"{type(exc).__name__}: {exc}", connector=connector,
                             operation=operation)
    if isinstance(exc, OSError):
        return ConnectionLost(f"{type(exc).__name__}: {exc}", connector=connector,
                              operation=operation)
    return TerminalError(f"{type(exc).__name__}: {exc}", connector=connector,
                         operation=operation)
