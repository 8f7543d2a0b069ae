"""SigV4 verification against requests signed by botocore's own signer: the good one passes,
and each way of getting it wrong is refused with AWS's error type; credentials read from a
file or the environment, with errors that never show a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from engine.errors import UsageError
from engine.server.protocol import AwsError
from engine.server.sigv4 import (
    SignedRequest,
    parse_credentials_env,
    read_credentials_file,
    verify,
)

CREDS = parse_credentials_env("AKID1:secret/one+x,AKID2:secret-two")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def signed(body: bytes = b"{}", key: str = "AKID1", secret: str = "secret/one+x",
           service: str = "datapipeline", at: datetime = NOW,
           extra: dict[str, str] | None = None) -> SignedRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:8065/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "DataPipeline.ListPipelines", **(extra or {})})
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(
            tzinfo=None)):
        SigV4Auth(Credentials(key, secret), service, "eu-west-1").add_auth(request)
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    headers.setdefault("host", ["127.0.0.1:8065"])
    return SignedRequest("POST", "/", "", headers, body)


def error_of(request: SignedRequest, now: datetime = NOW) -> tuple[str, int]:
    with pytest.raises(AwsError) as exc:
        verify(request, CREDS, now)
    assert "secret" not in exc.value.message
    return exc.value.type, exc.value.status


def test_a_good_signature_names_its_key() -> None:
    assert verify(signed(), CREDS, NOW) == "AKID1"
    assert verify(signed(key="AKID2", secret="secret-two"), CREDS, NOW) == "AKID2"
    assert verify(signed(), CREDS, NOW + timedelta(minutes=14)) == "AKID1"


def test_what_is_refused() -> None:
    good = signed()
    assert error_of(signed(secret="nope")) == ("InvalidSignatureException", 403)
    assert error_of(signed(key="AKIDX", secret="x")) == ("UnrecognizedClientException", 400)
    assert error_of(signed(service="s3")) == ("InvalidSignatureException", 403)
    assert error_of(good, NOW + timedelta(minutes=16)) == ("InvalidSignatureException", 403)
    assert error_of(good, NOW - timedelta(minutes=16)) == ("InvalidSignatureException", 403)
    tampered = SignedRequest("POST", "/", "", good.headers, b'{"marker": "1"}')
    assert error_of(tampered) == ("InvalidSignatureException", 403)
    retargeted = dict(good.headers)
    retargeted["x-amz-target"] = ["DataPipeline.DeletePipeline"]
    assert error_of(SignedRequest("POST", "/", "", retargeted, b"{}"))[0] == (
        "InvalidSignatureException")
    unsigned = {k: v for k, v in good.headers.items() if k != "authorization"}
    assert error_of(SignedRequest("POST", "/", "", unsigned, b"{}")) == (
        "MissingAuthenticationTokenException", 403)
    lying = signed(extra={"X-Amz-Content-SHA256": "0" * 64})
    assert error_of(lying)[0] == "InvalidSignatureException"


def test_credentials_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    path.write_text("# operators\nAKIDA secretA\n\nAKIDB  secretB\n")
    creds = read_credentials_file(str(path))
    assert dict(creds.secrets) == {"AKIDA": "secretA", "AKIDB": "secretB"}
    assert "secretA" not in repr(creds)
    path.write_text("AKIDA secretA extra\n")
    with pytest.raises(UsageError, match=r"line 1: expected ACCESS_KEY_ID") as exc:
        read_credentials_file(str(path))
    assert "secretA" not in str(exc.value)
    with pytest.raises(UsageError, match="entry 2 is not ID:SECRET") as exc:
        parse_credentials_env("A:b,notapair")
    with pytest.raises(UsageError, match="cannot read"):
        read_credentials_file(str(tmp_path / "missing"))
