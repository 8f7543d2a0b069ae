"""aiobotocore clients from the standard AWS configuration, and AWS errors -> connector errors.

Configuration is botocore's own: credentials from the environment, ``AWS_PROFILE`` and the
shared files, web identity, container/instance metadata; the region from ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / the profile (``us-east-1`` when none is set); endpoints from
``AWS_ENDPOINT_URL`` and per service ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL_SNS`` (botocore >= 1.31 reads these itself; headrace only reads them to choose
path-style S3 addressing for a custom endpoint and to tell two endpoints apart). Retries use
botocore's ``standard`` mode (throttling, 5xx and connection errors, with jittered backoff and
a retry quota). The connection pool is sized to the copy's parallelism.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import botocore.exceptions as bexc
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from connectors.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionLost,
    ConnectorError,
    NotFoundError,
    TerminalError,
    Throttled,
    TransientError,
    Unreachable,
)
from connectors.tracing import trace_aws_client

DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_ATTEMPTS = 5

#: Where botocore looks for credentials, in order (named in authentication errors).
CREDENTIAL_SOURCES = (
    "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "AWS_PROFILE and the shared credentials file (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE)",
    "the config file (~/.aws/config, AWS_CONFIG_FILE)",
    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
    "container credentials (AWS_CONTAINER_CREDENTIALS_*)",
    "instance metadata (unless AWS_EC2_METADATA_DISABLED=true)",
)

_THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestThrottled", "RequestThrottledException", "TransactionInProgressException",
    "LimitExceededException",
})
_AUTH_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "InvalidToken", "UnrecognizedClientException",
    "InvalidClientTokenId", "InvalidSignatureException", "MissingAuthenticationToken",
    "AuthFailure", "AuthorizationError", "IncompleteSignature", "403",
})
_NOT_FOUND_CODES = frozenset({
    "NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404", "ResourceNotFoundException",
    "NotFoundException", "TableNotFoundException",
})
_TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "ServiceUnavailableException",
    "InternalServerError", "BadDigest", "IDPCommunicationError",
})

#: Variables that change which credentials or region a session resolves.
_SESSION_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
_sessions: dict[str, AioSession] = {}


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _SESSION_VARS:
        digest.update(f"{name}={os.environ.get(name, '')}\0".encode())
    return digest.hexdigest()


def session() -> AioSession:
    """A botocore session for the current configuration.

    Sessions cache credentials and service models, so one is kept per set of credential and
    region variables: a changed environment gets a fresh session, the same one is reused.
    """
    key = _fingerprint()
    sess = _sessions.get(key)
    if sess is None:
        sess = _sessions[key] = get_session()
        # Timestamps in responses stay ISO text: headrace reads none of them, and botocore's
        # dateutil parsing was ~7% of the CPU of a prefix copy (one CopyObject per object).
        sess.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=_keep_text)
    return sess


def _keep_text(value: str) -> str:
    return value


def endpoint_from_env(service: str) -> str | None:
    """The endpoint botocore will use for ``service`` from the environment, if any."""
    key = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    return os.environ.get(key) or os.environ.get("AWS_ENDPOINT_URL") or None


def region_from_env() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def client_config(service: str, *, parallel: int = 4, endpoint_url: str | None = None,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS, connect_timeout: float = 10,
                  read_timeout: float = 60) -> Config:
    s3: dict[str, Any] | None = None
    if service == "s3":
        # No SHA-256 of every body for the signature: botocore already skips it over https
        # when a checksum header is sent, but over plain http (a local S3-compatible server)
        # it hashed every part, ~10% of an upload's CPU. The body's CRC32 checksum header,
        # which is signed, still lets the server refuse a damaged body.
        s3 = {"payload_signing_enabled": False}
        if endpoint_url or endpoint_from_env("s3"):
            s3["addressing_style"] = "path"
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max(10, parallel + 2),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3=s3,
    )


@asynccontextmanager
async def client(service: str, *, parallel: int = 4, region: str | None = None,
                 endpoint_url: str | None = None,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> AsyncIterator[Any]:
    """An aiobotocore client for ``service``; closed (its pool too) on exit.

    ``endpoint_url`` overrides the configured endpoint (tests, fault proxies); normally leave it
    None and let ``AWS_ENDPOINT_URL_<SERVICE>`` decide.
    """
    config = client_config(service, parallel=parallel, endpoint_url=endpoint_url,
                           max_attempts=max_attempts)
    sess = session()
    if region is None and not sess.get_config_variable("region"):
        region = DEFAULT_REGION
    with map_aws_errors(service, "connect"):
        creator = sess.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                     config=config)
        c = trace_aws_client(await creator.__aenter__())
    try:
        yield c
    except BaseException as exc:
        await creator.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await creator.__aexit__(None, None, None)


def retry_count(response: dict[str, Any]) -> int:
    """How many times botocore retried the call that produced ``response``."""
    meta = response.get("ResponseMetadata") or {}
    return int(meta.get("RetryAttempts") or 0)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, bexc.ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "")
    return ""


def _status(exc: bexc.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _secrets() -> list[str]:
    return [v for v in (os.environ.get("AWS_SECRET_ACCESS_KEY"),
                        os.environ.get("AWS_SESSION_TOKEN"),
                        os.environ.get("AWS_SECURITY_TOKEN")) if v and len(v) >= 4]


def scrub(text: str) -> str:
    """``text`` with any configured AWS secret (key, session token) replaced by ``***``."""
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text


def translate(exc: BaseException, connector: str, operation: str,
              target: str | None = None) -> ConnectorError | None:
    """The connector error for a botocore/aiohttp exception, or None if it is not one of them.

    Messages carry the AWS error code and message and the target (bucket/key, table); any
    configured secret that a server or library echoed back is replaced by ``***``.
    """
    mapped = _translate(exc, connector, operation, target)
    if mapped is not None:
        clean = scrub(mapped.message)
        if clean != mapped.message:
            mapped = type(mapped)(clean, connector=connector, operation=operation)
    return mapped


def _translate(exc: BaseException, connector: str, operation: str,
               target: str | None) -> ConnectorError | None:
    where = f"{target}: " if target else ""
    kw = {"connector": connector, "operation": operation}
    if isinstance(exc, bexc.ClientError):
        code = error_code(exc)
        status = _status(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        text = f"{where}{code or status}" + (f" ({message})" if message else "")
        if code in _AUTH_CODES or status == 403:
            return AuthenticationFailed(
                f"{text}; the credentials were refused. headrace takes AWS credentials from, "
                f"in order: {'; '.join(CREDENTIAL_SOURCES)}", **kw)
        if code in _NOT_FOUND_CODES or status == 404:
            return NotFoundError(text, **kw)
        if code in _THROTTLE_CODES or (status in (429, 503) and code != "ServiceUnavailable"):
            return Throttled(text, **kw)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(text, **kw)
        if code in ("PreconditionFailed", "412") or status == 412:
            return TransientError(f"{where}the object changed while it was being read", **kw)
        return TerminalError(text, **kw)
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return AuthenticationFailed(
            f"{where}no usable AWS credentials found; tried: {'; '.join(CREDENTIAL_SOURCES)}",
            **kw)
    if isinstance(exc, bexc.CredentialRetrievalError | bexc.ProfileNotFound |
                  bexc.NoAuthTokenError):
        return AuthenticationFailed(f"{where}{exc}; credential sources: "
                                    f"{'; '.join(CREDENTIAL_SOURCES)}", **kw)
    if isinstance(exc, bexc.NoRegionError | bexc.ParamValidationError |
                  bexc.InvalidEndpointConfigurationError | bexc.UnknownServiceError):
        return ConfigError(f"{where}{exc}", **kw)
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectTimeoutError |
                  aiohttp.ClientConnectorError):
        return Unreachable(f"{where}{exc}", **kw)
    if isinstance(exc, bexc.ReadTimeoutError | bexc.ConnectionClosedError |
                  bexc.ResponseStreamingError | bexc.IncompleteReadError |
                  aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError |
                  aiohttp.ClientOSError | aiohttp.ClientConnectionError |
                  bexc.HTTPClientError | asyncio.TimeoutError | ConnectionError):
        return ConnectionLost(f"{where}{exc.__class__.__name__}: {exc}", **kw)
    if isinstance(exc, bexc.BotoCoreError):
        return TerminalError(f"{where}{exc}", **kw)
    return None


@contextmanager
def map_aws_errors(connector: str, operation: str, target: str | None = None) -> Iterator[None]:
    """Translate botocore/aiohttp exceptions raised inside into connector errors."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        mapped = translate(exc, connector, operation, target)
        if mapped is None:
            raise
        raise mapped from exc
