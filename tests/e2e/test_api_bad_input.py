"""What ``headrace serve`` answers to requests no SDK would send, and to requests it must
refuse: AWS's error shapes (``__type``, ``message``), HTTP 400 (403 for authentication),
never a 500 and never a traceback. Authentication: unsigned, wrongly signed, unknown key,
expired; only ``/healthz`` open. A fuzzed corpus over the service model's shapes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.server import shapes
from tests.e2e.api_kit import HEADRACE, KEY_ID, SECRET, Server, server_env, start_server

OPERATIONS_SERVED = sorted(shapes.INPUTS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve-bad"), "--no-scheduler",
                       "--task-poll-seconds", "0")
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log_text()


def _aws_error(status: int, body: dict[str, Any], raw: bytes) -> str:
    assert status in (400, 403, 404), (status, raw[:500])
    assert set(body) == {"__type", "message"}, raw[:500]
    assert "Traceback" not in body["message"]
    return str(body["__type"])


def test_healthz_needs_no_credentials(server: Server) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok", "store": "ok"}


def test_authentication_errors(server: Server) -> None:
    status, body, raw = server.raw("{}", sign=False)
    assert (status, _aws_error(status, body, raw)) == (403,
                                                       "MissingAuthenticationTokenException")
    status, body, raw = server.raw("{}", key="AKIDUNKNOWN", secret="x")
    assert _aws_error(status, body, raw) == "UnrecognizedClientException" and status == 400
    status, body, raw = server.raw("{}", secret="wrong-secret")
    assert (status, _aws_error(status, body, raw)) == (403, "InvalidSignatureException")
    assert SECRET not in raw.decode() and "wrong-secret" not in raw.decode()
    # a signature made 20 minutes ago, replayed: expired
    past = datetime.now(UTC) - timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past.replace(
            tzinfo=None)):
        status, body, raw = server.raw("{}")
    assert (status, _aws_error(status, body, raw)) == (403, "InvalidSignatureException")
    assert "15 minutes" in body["message"]
    # a body changed after signing
    signed = server.raw("{}")
    assert signed[0] == 200
    status, body, raw = _tampered(server)
    assert (status, _aws_error(status, body, raw)) == (403, "InvalidSignatureException")
    status, body, raw = server.raw("{}", headers={"Authorization": "Bearer nonsense"},
                                   sign=False)
    assert _aws_error(status, body, raw) == "IncompleteSignatureException"
    # unauthenticated requests to other paths reach nothing either: the console wants its
    # login (401 to a client that is not a browser), anything else is not served
    import urllib.error
    import urllib.request

    for path, code in (("/console/", 401), ("/console/pipelines", 401), ("/nope", 404)):
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{server.url}{path}", timeout=10)
        assert exc.value.code == code, path
        text = exc.value.read()
        exc.value.close()
        if code == 404:
            assert json.loads(text)["__type"] == "UnknownOperationException"
        else:
            assert b"log in first" in text


def _tampered(server: Server) -> tuple[int, dict[str, Any], bytes]:
    import http.client

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=f"{server.url}/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "DataPipeline.ListPipelines"})
    SigV4Auth(Credentials(KEY_ID, SECRET), "datapipeline", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = b'{"marker": "100"}'
    conn.request("POST", "/", body=body, headers=dict(request.headers.items()))
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw), raw


@pytest.mark.parametrize(("body", "target", "expected"), [
    (b"{not json", "DataPipeline.ListPipelines", "SerializationException"),
    (b"[1, 2]", "DataPipeline.ListPipelines", "SerializationException"),
    (b"\xff\xfe", "DataPipeline.ListPipelines", "SerializationException"),
    (b'{"a": ' + b"1" * 5000 + b"}", "DataPipeline.ListPipelines", "SerializationException"),
    (b"[" * 100_000, "DataPipeline.ListPipelines", "SerializationException"),
    (b"{}", "DataPipeline.Explode", "UnknownOperationException"),
    (b"{}", "DynamoDB_20120810.ListTables", "UnknownOperationException"),
    (b"{}", None, "UnknownOperationException"),
    (b"{}", "DataPipeline.PollForTask", "InvalidRequestException"),
    (b"{}", "DataPipeline.SetTaskStatus", "InvalidRequestException"),
    (b'{"taskId": "not-one-of-ours"}', "DataPipeline.ReportTaskProgress",
     "TaskNotFoundException"),
    (b'{"taskId": "eyJ4IjogMX0", "taskStatus": "FINISHED"}', "DataPipeline.SetTaskStatus",
     "TaskNotFoundException"),
    (b"{}", "DataPipeline.CreatePipeline", "InvalidRequestException"),
    (b'{"name": 5, "uniqueId": "u"}', "DataPipeline.CreatePipeline", "InvalidRequestException"),
    (b'{"name": "", "uniqueId": "u"}', "DataPipeline.CreatePipeline",
     "InvalidRequestException"),
    (b'{"pipelineIds": "df-1"}', "DataPipeline.DescribePipelines", "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "sphere": "INSTANCE", "limit": "10"}',
     "DataPipeline.QueryObjects", "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "sphere": "INSTANCE", "limit": true}',
     "DataPipeline.QueryObjects", "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "cancelActive": "yes"}', "DataPipeline.DeactivatePipeline",
     "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "startTimestamp": {}}', "DataPipeline.ActivatePipeline",
     "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "pipelineObjects": [{"id": "A"}]}',
     "DataPipeline.PutPipelineDefinition", "InvalidRequestException"),
    (b'{"pipelineId": "df-1", "pipelineObjects": [null]}',
     "DataPipeline.PutPipelineDefinition", "InvalidRequestException"),
    (b'{"pipelineId": "\\u0001"}', "DataPipeline.DeletePipeline", "InvalidRequestException"),
    (b'{"pipelineId": "\\ud800"}', "DataPipeline.DeletePipeline", "InvalidRequestException"),
])
def test_malformed_requests(server: Server, body: bytes, target: str | None,
                            expected: str) -> None:
    status, parsed, raw = server.raw(body, target)
    assert (status, _aws_error(status, parsed, raw)) == (400, expected)


def test_missing_required_members_are_named(server: Server) -> None:
    status, body, _ = server.raw('{"pipelineId": "df-1"}', "DataPipeline.SetStatus")
    assert status == 400 and body["__type"] == "InvalidRequestException"
    assert body["message"].startswith("2 validation errors detected")
    assert "'objectIds'" in body["message"] and "'status'" in body["message"]


def test_a_10_mb_body_is_refused_before_it_is_read(server: Server) -> None:
    big = b'{"marker": "' + b"x" * 10_000_000 + b'"}'
    started = time.monotonic()
    status, body, raw = server.raw(big)
    assert (status, _aws_error(status, body, raw)) == (400, "InvalidRequestException")
    assert "larger than" in body["message"]
    assert time.monotonic() - started < 30


def test_oversize_definitions(server: Server) -> None:
    c = server.client()
    pid = c.create_pipeline(name="big", uniqueId="big")["pipelineId"]
    field = {"key": "command", "stringValue": "x" * 10_241}  # AWS's 10,240 per field
    objects = [{"id": "A", "name": "A", "fields": [{"key": "type",
                                                    "stringValue": "ShellCommandActivity"},
                                                   field]}]
    status, body, _ = server.raw(json.dumps({"pipelineId": pid, "pipelineObjects": objects}),
                                 "DataPipeline.PutPipelineDefinition")
    assert status == 400 and body["__type"] == "InvalidRequestException"
    assert "pipelineObjects.1.member.fields.2.member.stringValue" in body["message"]
    assert "10240" in body["message"] and "xxxx" not in body["message"]
    many = [{"id": f"O{i}", "name": f"O{i}", "fields": [
        {"key": "type", "stringValue": "ShellCommandActivity"},
        {"key": "command", "stringValue": "y" * 10_000}]} for i in range(900)]
    status, body, _ = server.raw(json.dumps({"pipelineId": pid, "pipelineObjects": many}),
                                 "DataPipeline.PutPipelineDefinition")
    assert (status, body["__type"]) == (400, "InvalidRequestException")  # over 8 MiB
    long_key = [{"id": "A", "name": "A", "fields": [{"key": "k" * 257, "stringValue": ""}]}]
    status, body, _ = server.raw(json.dumps({"pipelineId": pid, "pipelineObjects": long_key}),
                                 "DataPipeline.ValidatePipelineDefinition")
    assert (status, body["__type"]) == (400, "InvalidRequestException")


def test_wrong_content_type(server: Server) -> None:
    status, body, raw = server.raw("{}", headers={"Content-Type": "text/plain"})
    assert (status, _aws_error(status, body, raw)) == (400, "InvalidRequestException")


# --- the fuzzed corpus ---------------------------------------------------------------------

def _value_for(shape: shapes.Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that fit ``shape`` most of the time and break it some of the time."""
    wrong = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                      st.text(max_size=20), st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
    if depth > 4:
        return wrong
    if isinstance(shape, shapes.Str):
        right: st.SearchStrategy[Any] = (st.sampled_from(shape.enum) if shape.enum else st.one_of(
            st.text(max_size=40), st.sampled_from(["", "@A_2024-01-01T00:00:00", "df-X",
                                                    "INSTANCE", "#{@scheduledStartTime}",
                                                    "#{", "x" * 1025])))
    elif isinstance(shape, shapes.Bool):
        right = st.booleans()
    elif isinstance(shape, shapes.Int):
        right = st.integers(-5, 2**33)
    elif isinstance(shape, shapes.Timestamp):
        right = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                          st.sampled_from(["2024-01-01T00:00:00", "yesterday", ""]))
    elif isinstance(shape, shapes.ListOf):
        right = st.lists(_value_for(shape.member, depth + 1), max_size=4)
    elif isinstance(shape, shapes.MapOf):
        right = st.dictionaries(st.text(max_size=5), _value_for(shape.value, depth + 1),
                                max_size=3)
    else:
        assert isinstance(shape, shapes.Struct)
        right = st.fixed_dictionaries({}, optional={
            name: _value_for(member, depth + 1) for name, member in shape.members.items()})
    return st.one_of(right, right, right, wrong)


_REQUESTS = st.sampled_from(sorted(shapes.INPUTS)).flatmap(
    lambda op: st.tuples(st.just(op), _value_for(shapes.INPUTS[op])))


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(request=_REQUESTS)
def test_fuzzed_requests_get_an_answer_or_an_aws_error(server: Server,
                                                       request: tuple[str, Any]) -> None:
    operation, body = request
    try:
        data = json.dumps(body, allow_nan=True).encode()
    except (ValueError, OverflowError):
        return
    status, parsed, raw = server.raw(data, f"DataPipeline.{operation}")
    if status == 200:
        assert isinstance(parsed, dict)
    else:
        _aws_error(status, parsed, raw)
        if operation not in OPERATIONS_SERVED:
            assert parsed["__type"] in ("UnknownOperationException",), raw


#: requests found worth keeping (each once broke, or nearly broke, an assumption)
CORPUS = [
    ("QueryObjects", {"pipelineId": "df-1", "sphere": "INSTANCE", "marker": "%%%"}),
    ("QueryObjects", {"pipelineId": "df-1", "sphere": "INSTANCE", "limit": -1}),
    ("QueryObjects", {"pipelineId": "df-1", "sphere": "INSTANCE",
                      "query": {"selectors": [{"fieldName": "@scheduledStartTime",
                                               "operator": {"type": "BETWEEN",
                                                            "values": ["a", "b"]}}]}}),
    ("ActivatePipeline", {"pipelineId": "df-1", "startTimestamp": 1e300}),
    ("ActivatePipeline", {"pipelineId": "df-1", "startTimestamp": "9999-99-99"}),
    ("DescribeObjects", {"pipelineId": "df-1", "objectIds": [], "marker": "x"}),
    ("ListPipelines", {"marker": "-1"}),
    ("EvaluateExpression", {"pipelineId": "df-1", "objectId": "A", "expression": "#{" * 500}),
    ("SetStatus", {"pipelineId": "df-1", "objectIds": [], "status": "RERUN"}),
]


@pytest.mark.parametrize(("operation", "body"), CORPUS, ids=[f"{o}-{i}" for i, (o, _) in
                                                            enumerate(CORPUS)])
def test_corpus(server: Server, operation: str, body: dict[str, Any]) -> None:
    c = server.client()
    pid = c.create_pipeline(name="corpus", uniqueId="corpus")["pipelineId"]
    body = {k: (pid if v == "df-1" else v) for k, v in body.items()}
    status, parsed, raw = server.raw(json.dumps(body), f"DataPipeline.{operation}")
    assert (status, _aws_error(status, parsed, raw)) == (400, "InvalidRequestException")


# --- refusing to start -------------------------------------------------------------------------

def _serve(tmp_path: Path, *args: str, credentials: bool = False) -> subprocess.CompletedProcess[
        str]:
    env = server_env(tmp_path, f"sqlite:///{tmp_path}/s.db")
    if not credentials:
        env.pop("HEADRACE_API_CREDENTIALS")
    return subprocess.run([HEADRACE, "serve", "--port", "0", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_serve_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    out = _serve(tmp_path)
    assert out.returncode == 2 and "no credentials" in out.stderr
    out = _serve(tmp_path, "--no-auth", "--host", "0.0.0.0")
    assert out.returncode == 2 and "loopback" in out.stderr
    bad = tmp_path / "creds"
    bad.write_text("ONLYONEWORD\n")
    out = _serve(tmp_path, "--credentials", str(bad))
    assert out.returncode == 2 and f"{bad}, line 1" in out.stderr


def test_no_auth_on_loopback_serves_unsigned_requests(tmp_path: Path) -> None:
    env = server_env(tmp_path, f"sqlite:///{tmp_path}/s.db")
    env.pop("HEADRACE_API_CREDENTIALS")
    srv = start_server(tmp_path, "--no-auth", "--no-scheduler", env=env)
    try:
        status, body, _ = srv.raw("{}", sign=False)
        assert status == 200 and body["pipelineIdList"] == []
    finally:
        assert srv.stop(signal.SIGINT) == 130


def test_tls(tmp_path: Path) -> None:
    import ssl
    import urllib.request

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    srv = start_server(tmp_path, "--no-scheduler", "--tls-cert", str(cert_file), "--tls-key",
                       str(key_file))
    try:
        assert srv.url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert_file))
        with urllib.request.urlopen(f"{srv.url}/healthz", context=context,
                                    timeout=10) as response:
            assert response.status == 200
        c = srv.client(verify=str(cert_file))
        assert c.list_pipelines()["pipelineIdList"] == []
    finally:
        srv.stop()
