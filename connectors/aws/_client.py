"""aiobotocore clients from the standard AWS configuration.

Configuration is botocore's own: credentials from the environment, ``AWS_PROFILE`` and the
shared files, web identity, container/instance metadata; the region from ``AWS_REGION`` /
``AWS_DEFAULT_REGION`` / the profile (``us-east-1`` when none is set); endpoints from
``AWS_ENDPOINT_URL`` and per service ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_DYNAMODB``,
``AWS_ENDPOINT_URL_SNS`` (botocore >= 1.31 reads these itself; headrace only reads them to choose
path-style S3 addressing for a custom endpoint and to tell two endpoints apart). Retries use
botocore's ``standard`` mode (throttling, 5xx and connection errors, with jittered backoff and
a retry quota), except timeouts: a call that timed out is not tried again by the client (a
silent server would otherwise be waited for once per try); it fails as a transient
:class:`~connectors.errors.TimedOut` and the attempt's own retries decide. ``connect_timeout``
and ``read_timeout`` (:mod:`connectors.timeouts`) may be set on the endpoint URL's query
(``AWS_ENDPOINT_URL_S3=http://host:8333?read_timeout=20``), which is removed before botocore
sees the URL. The connection pool is sized to the copy's parallelism.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import botocore.exceptions as bexc
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from connectors.errors import ConfigError
from connectors.timeouts import CONNECT_PARAM, READ_PARAM, Timeouts, timeouts_from_params
from connectors.tracing import trace_aws_client

from . import _bounds
from ._errors import map_errors

log = logging.getLogger("headrace.connectors.aws")
_URL = re.compile(r"^https?://[^/\s]", re.IGNORECASE)

DEFAULT_REGION = "us-east-1"
DEFAULT_MAX_ATTEMPTS = 5

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


def endpoint_variable(service: str) -> str | None:
    """The variable :func:`endpoint_from_env` took the endpoint from, if any."""
    for name in (f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return name
    return None


def check_endpoint(service: str, endpoint_url: str | None = None) -> None:
    """An endpoint must be an http(s) URL: botocore refuses ``127.0.0.1:9`` with a bare
    ValueError deep in client creation. A :class:`ConfigError` naming where it came from."""
    url = endpoint_url or endpoint_from_env(service)
    if url is None or _URL.match(url):
        return
    where = endpoint_variable(service) if endpoint_url is None else "the endpoint"
    raise ConfigError(f"{where}={url!r} is not a URL: an endpoint needs its scheme "
                      f"(http://{url.split('://')[-1]} or https://...)", connector=service,
                      operation="connect")


def region_from_env() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def endpoint_settings(service: str,
                      endpoint_url: str | None = None) -> tuple[str | None, Timeouts]:
    """(the endpoint URL to hand botocore, the timeouts): ``connect_timeout`` and
    ``read_timeout`` are taken off the URL's query (``endpoint_url``, else the environment's
    ``AWS_ENDPOINT_URL_<SERVICE>``). The URL returned is None when botocore may read the
    environment itself (no query there)."""
    url = endpoint_url or endpoint_from_env(service)
    if not url or "?" not in url:
        return endpoint_url, Timeouts()
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    where = "the endpoint" if endpoint_url else (endpoint_variable(service) or "the endpoint")
    unknown = sorted(set(params) - {CONNECT_PARAM, READ_PARAM})
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)} in the endpoint "
                          f"URL (it takes {CONNECT_PARAM} and {READ_PARAM}, in seconds)",
                          connector=service, operation="connect")
    timeouts = timeouts_from_params(params, where=where)
    return urlunsplit(parts._replace(query="")), timeouts


def client_config(service: str, *, parallel: int = 4, endpoint_url: str | None = None,
                  max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                  timeouts: Timeouts | None = None) -> Config:
    timeouts = timeouts or Timeouts()
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
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
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
    check_endpoint(service, endpoint_url)
    endpoint_url, timeouts = endpoint_settings(service, endpoint_url)
    config = client_config(service, parallel=parallel, endpoint_url=endpoint_url,
                           max_attempts=max_attempts, timeouts=timeouts)
    sess = session()
    if region is None and not sess.get_config_variable("region"):
        region = DEFAULT_REGION
    with map_errors(service, "connect"):
        creator = sess.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                     config=config, verify=_verify(service, endpoint_url))
        c = trace_aws_client(await creator.__aenter__())
        # botocore's max_attempts counts the retries, not the first try
        c.meta.events.register("needs-retry", _RetryReporter(service, max_attempts + 1))
        c.meta.events.register_first("needs-retry", _NoRetryOfTimeouts(service, timeouts))
    shown = endpoint_url or endpoint_from_env(service) or "AWS"
    try:
        with _bounds.using(_bounds.ClientBounds(timeouts, shown.split("?", 1)[0])):
            yield c
    except BaseException as exc:
        await creator.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await creator.__aexit__(None, None, None)


def _verify(service: str, endpoint_url: str | None) -> bool | None:
    """False for a plain ``http://`` endpoint, where no certificate is ever checked: botocore
    otherwise loads the CA bundle before the first request (py-spy: ~1.5% of a 1 GiB
    S3 -> file copy, on its critical path). None (botocore's default) for anything else."""
    url = endpoint_url or endpoint_from_env(service) or ""
    return False if url.lower().startswith("http://") else None


#: Operations whose reply makes the write visible: a timeout waiting on them is phase commit.
_COMMITS = frozenset({"CompleteMultipartUpload", "PutObject", "CopyObject"})


class _NoRetryOfTimeouts:
    """Ends a call that timed out with :class:`TimedOut` (the phase, the seconds, the setting)
    instead of letting botocore try again: runs first among the retry handlers (a handler
    that raises ends the call)."""

    def __init__(self, service: str, timeouts: Timeouts) -> None:
        self.service = service
        self.timeouts = timeouts

    def __call__(self, caught_exception: BaseException | None = None, operation: Any = None,
                 request_dict: dict[str, Any] | None = None, **_: Any) -> None:
        name = str(getattr(operation, "name", "call"))
        url = str((request_dict or {}).get("url") or "").split("?", 1)[0]
        if isinstance(caught_exception, bexc.ConnectTimeoutError):
            phase, which = "connect", "connect"
        elif isinstance(caught_exception, bexc.ReadTimeoutError):
            phase, which = ("commit" if name in _COMMITS else "read"), "read"
        else:
            return
        raise self.timeouts.watch(which, phase, connector=self.service,
                                  operation=name).error(url or None) from caught_exception


class _RetryReporter:
    """Says on the log (stderr, for the command line) each call that could not reach the
    service, as it happens: botocore retries connection errors with backoff (a dead endpoint
    takes some seconds before its error), and a wait nobody is told about looks like a hang.
    Never decides anything (returns None: botocore's own retry handler does)."""

    def __init__(self, service: str, total_attempts: int) -> None:
        self.service = service
        self.max_attempts = total_attempts

    def __call__(self, attempts: int = 0, caught_exception: BaseException | None = None,
                 operation: Any = None, **_: Any) -> None:
        if caught_exception is None:
            return  # a response: throttling and 5xx retries are counted, not printed
        name = getattr(operation, "name", "call")
        then = "; retrying" if attempts < self.max_attempts else ""
        log.warning("%s: %s, attempt %d of %d: %s%s", self.service, name, attempts,
                    self.max_attempts, caught_exception, then)


def retry_count(response: dict[str, Any]) -> int:
    """How many times botocore retried the call that produced ``response``."""
    meta = response.get("ResponseMetadata") or {}
    return int(meta.get("RetryAttempts") or 0)
