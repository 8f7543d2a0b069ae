"""AWS errors (botocore, aiohttp) as connector errors, with any configured secret masked."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import aiohttp
import botocore.exceptions as bexc

from connectors.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionLost,
    ConnectorError,
    HeadraceError,
    NotFoundError,
    TerminalFault,
    Throttled,
    TimedOut,
    TransientFault,
    Unreachable,
)

from . import _bounds

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


def error_code(exc: BaseException) -> str:
    if isinstance(exc, bexc.ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "")
    return ""


def _status(exc: bexc.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


#: The environment variables that hold AWS secrets (never shown anywhere).
AWS_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
#: Shorter values are not masked: replacing them everywhere would garble every text.
_MIN_SECRET = 4


def aws_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """The configured AWS secrets (secret key, session token) worth masking: the one list both
    connector errors (:func:`scrub`) and the engine's telemetry scrubbing use."""
    env = os.environ if env is None else env
    return [v for v in (env.get(name) for name in AWS_SECRET_VARIABLES)
            if v and len(v) >= _MIN_SECRET]


def scrub(text: str) -> str:
    """``text`` with any configured AWS secret (key, session token) replaced by ``***``."""
    for secret in aws_secrets():
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
        if clean != mapped.message and not isinstance(mapped, TimedOut):
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
            return TransientFault(text, **kw)
        if code in ("PreconditionFailed", "412") or status == 412:
            return TransientFault(f"{where}the object changed while it was being read", **kw)
        return TerminalFault(text, **kw)
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
    if isinstance(exc, bexc.ConnectTimeoutError | bexc.ReadTimeoutError):
        which = "connect" if isinstance(exc, bexc.ConnectTimeoutError) else "read"
        bounds = _bounds.current()
        subject = f"{target} (endpoint {bounds.endpoint})" if target \
            else f"endpoint {bounds.endpoint}"
        return bounds.timeouts.watch(which, which, connector=connector,
                                     operation=operation).error(subject)
    if isinstance(exc, bexc.EndpointConnectionError | aiohttp.ClientConnectorError):
        return Unreachable(f"{where}{exc}", **kw)
    if isinstance(exc, bexc.ConnectionClosedError |
                  bexc.ResponseStreamingError | bexc.IncompleteReadError |
                  aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError |
                  aiohttp.ClientOSError | aiohttp.ClientConnectionError |
                  bexc.HTTPClientError | asyncio.TimeoutError | ConnectionError):
        return ConnectionLost(f"{where}{exc.__class__.__name__}: {exc}", **kw)
    if isinstance(exc, bexc.BotoCoreError):
        return TerminalFault(f"{where}{exc}", **kw)
    return None


@contextmanager
def map_errors(connector: str, operation: str, target: str | None = None) -> Iterator[None]:
    """Translate botocore/aiohttp exceptions raised inside into connector errors."""
    try:
        yield
    except HeadraceError:
        raise
    except Exception as exc:
        mapped = translate(exc, connector, operation, target)
        if mapped is None:
            raise
        raise mapped from exc
