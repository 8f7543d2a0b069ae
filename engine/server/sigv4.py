"""Verifying AWS Signature Version 4 on incoming requests, and the credentials it checks
against.

The signature is recomputed with botocore's own signer (``botocore.auth.SigV4Auth``: the
canonical request, the string to sign and the key derivation the clients use), over exactly the
headers the client says it signed, at the time it says it signed; the two are compared in
constant time. A request dated more than 15 minutes from the server's clock is refused, as AWS
refuses it. Secrets stay in memory: no message, log line or repr holds one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from engine.errors import UsageError
from engine.server.protocol import AwsError

SERVICE = "datapipeline"
#: AWS's window: a signature dated further than this from the server's clock is refused
MAX_SKEW = timedelta(minutes=15)
ENV_CREDENTIALS = "HEADRACE_API_CREDENTIALS"
_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+(?P<params>.+)", re.S)


@dataclass(frozen=True)
class CredentialSet:
    """Access key id -> secret. ``repr`` shows the ids only."""

    secrets: Mapping[str, str] = field(repr=False)

    def __repr__(self) -> str:
        return f"<CredentialSet {sorted(self.secrets)}>"

    def __len__(self) -> int:
        return len(self.secrets)


def read_credentials_file(path: str) -> CredentialSet:
    """``ACCESS_KEY_ID SECRET_ACCESS_KEY`` a line; blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the credentials file {path}: {exc.strerror}") from None
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise UsageError(f"{path}, line {number}: expected ACCESS_KEY_ID SECRET_ACCESS_KEY "
                             f"(two words), found {len(words)}")
        secrets[words[0]] = words[1]
    if not secrets:
        raise UsageError(f"the credentials file {path} holds no credentials")
    return CredentialSet(secrets)


def parse_credentials_env(value: str) -> CredentialSet:
    """``ID:SECRET[,ID:SECRET...]`` (the form of ``$HEADRACE_API_CREDENTIALS``)."""
    secrets: dict[str, str] = {}
    for number, item in enumerate(value.split(","), 1):
        item = item.strip()
        if not item:
            continue
        key, sep, secret = item.partition(":")
        if not sep or not key or not secret:
            raise UsageError(f"${ENV_CREDENTIALS}: entry {number} is not ID:SECRET")
        secrets[key] = secret
    if not secrets:
        raise UsageError(f"${ENV_CREDENTIALS} holds no credentials")
    return CredentialSet(secrets)


def configured_credentials(path: str | None,
                           environ: Mapping[str, str] = os.environ) -> CredentialSet | None:
    """The credentials from ``--credentials FILE``, else the environment, else None."""
    if path:
        return read_credentials_file(path)
    if environ.get(ENV_CREDENTIALS):
        return parse_credentials_env(environ[ENV_CREDENTIALS])
    return None


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request."""

    method: str
    path: str
    query: str
    #: lower-case name -> values in arrival order
    headers: Mapping[str, Sequence[str]]
    body: bytes


def _missing() -> AwsError:
    return AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)


def _bad_signature(message: str) -> AwsError:
    return AwsError("InvalidSignatureException", message, 403)


def _auth_params(header: str) -> dict[str, str]:
    match = _AUTH.fullmatch(header.strip())
    if match is None:
        raise AwsError("IncompleteSignatureException", "the Authorization header is not "
                       "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...")
    params: dict[str, str] = {}
    for part in match.group("params").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            params[key] = value
    for needed in ("Credential", "SignedHeaders", "Signature"):
        if not params.get(needed):
            raise AwsError("IncompleteSignatureException",
                           f"the Authorization header has no {needed}")
    return params


def access_key_of(headers: Mapping[str, Sequence[str]]) -> str | None:
    """The access key id a request claims, without verifying anything (for early refusal
    and access logs)."""
    values = headers.get("authorization")
    if not values:
        return None
    try:
        return _auth_params(values[0])["Credential"].split("/", 1)[0]
    except AwsError:
        return None


def precheck(headers: Mapping[str, Sequence[str]], credentials: CredentialSet) -> None:
    """Refuse at once, before the body is read, a request with no signature or one made
    with an access key this server does not know."""
    if not headers.get("authorization"):
        raise _missing()
    key = access_key_of(headers)
    if key is not None and key not in credentials.secrets:
        raise AwsError("UnrecognizedClientException", "The security token included in the "
                       "request is invalid.")


def verify(request: SignedRequest, credentials: CredentialSet,
           now: datetime | None = None) -> str:
    """Check the request's SigV4 signature; return the access key id it was signed with, or
    raise :class:`AwsError` with AWS's ``__type`` for what is wrong."""
    values = request.headers.get("authorization")
    if not values:
        raise _missing()
    params = _auth_params(values[0])
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AwsError("IncompleteSignatureException", "the Credential must be "
                       "KEY/DATE/REGION/SERVICE/aws4_request")
    key_id, day, region, service, _ = scope
    secret = credentials.secrets.get(key_id)
    if secret is None:
        raise AwsError("UnrecognizedClientException", "The security token included in the "
                       "request is invalid.")
    if service != SERVICE:
        raise _bad_signature(f"Credential should be scoped to correct service: '{SERVICE}'.")
    stamp = (request.headers.get("x-amz-date") or [""])[0]
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _bad_signature("the request has no valid X-Amz-Date (YYYYMMDDTHHMMSSZ)") from None
    if day != stamp[:8]:
        raise _bad_signature("the Credential's date is not the day of X-Amz-Date")
    current = now or datetime.now(UTC)
    if abs(current - signed_at) > MAX_SKEW:
        raise _bad_signature(f"Signature expired or not yet valid: {stamp} is more than 15 "
                             f"minutes from the server's time "
                             f"{current.strftime('%Y%m%dT%H%M%SZ')}")
    signed = [h.strip() for h in params["SignedHeaders"].lower().split(";") if h.strip()]
    if "host" not in signed or "x-amz-date" not in signed:
        raise _bad_signature("the signed headers must include host and x-amz-date")
    digest = hashlib.sha256(request.body).hexdigest()
    claimed_values = request.headers.get("x-amz-content-sha256")
    claimed = claimed_values[0] if claimed_values else None
    if claimed is not None and not hmac.compare_digest(claimed, digest):
        raise _bad_signature("X-Amz-Content-SHA256 does not match the request body")
    headers: dict[str, str] = {}
    for name in signed:
        got = request.headers.get(name)
        if not got:
            raise _bad_signature(f"the signed header {name!r} is not in the request")
        headers[name] = ",".join(got)
    url = f"http://{headers['host']}{request.path}" + (f"?{request.query}" if request.query
                                                        else "")
    rebuilt = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    rebuilt.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key_id, secret), service, region)
    canonical = signer.canonical_request(rebuilt)
    expected = signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)
    if not hmac.compare_digest(expected, params["Signature"]):
        raise _bad_signature("The request signature we calculated does not match the "
                             "signature you provided. Check your AWS Secret Access Key and "
                             "signing method.")
    return key_id
