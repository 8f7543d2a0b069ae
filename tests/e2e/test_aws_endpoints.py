"""AWS endpoints (issue 11, defect 7): an endpoint without a scheme is one clear error naming
its variable (it was a 60-line traceback), and a dead endpoint's retries are said as they
happen (they were 18 s of silence before the error). Only loopback is ever addressed: port 9
of the test's own network namespace, where nothing listens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, ref, write_definition

DEAD = "http://127.0.0.1:9"


@dataclass
class AwsCli(Cli):
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = super().env()
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            env.pop(name, None)
        env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test-secret",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                    **self.extra})
        return env


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("a,1\n")
    return path


def test_an_endpoint_without_a_scheme_is_one_clear_error(tmp_path: Path,
                                                         source: Path) -> None:
    cli = AwsCli(tmp_path, {"AWS_ENDPOINT_URL_S3": "127.0.0.1:9"})
    result = cli("copy", str(source), "s3://bucket/k.csv", check=2)
    assert result.stderr.splitlines() == [
        "headrace copy: error: s3: connect: AWS_ENDPOINT_URL_S3='127.0.0.1:9' is not a URL: "
        "an endpoint needs its scheme (http://127.0.0.1:9 or https://...)"]
    everywhere = AwsCli(tmp_path, {"AWS_ENDPOINT_URL": "localhost:9000"})
    assert "AWS_ENDPOINT_URL='localhost:9000' is not a URL" in everywhere(
        "copy", "s3://bucket/k.csv", str(tmp_path / "out.csv"), check=2).stderr
    # in a pipeline: the attempt fails once, with the same words, and is not retried
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": "s3://bucket/in.csv"},
        {"id": "Out", "name": "Out", "type": "S3DataNode", "filePath": str(tmp_path / "o.csv")},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "local", "maximumRetries": "2"})
    out = cli.run(definition, check=1)
    [copy] = out["instances"]
    assert copy["status"] == "FAILED" and copy["attempts"] == 1
    assert "AWS_ENDPOINT_URL_S3='127.0.0.1:9' is not a URL" in copy["error"]
    assert "Traceback" not in json.dumps(out)


def test_a_dead_endpoints_retries_are_said_as_they_happen(tmp_path: Path,
                                                          source: Path) -> None:
    cli = AwsCli(tmp_path, {"AWS_ENDPOINT_URL_S3": DEAD})
    result = cli("copy", str(source), "s3://bucket/k.csv", check=1, timeout=120)
    lines = result.stderr.splitlines()
    retries = [x for x in lines if x.startswith("headrace copy: warning: s3: ")]
    assert len(retries) == 6, lines
    assert retries[0].endswith(f'attempt 1 of 6: Could not connect to the endpoint URL: '
                               f'"{DEAD}/bucket?uploads&prefix=k.csv"; retrying')
    assert "attempt 6 of 6" in retries[-1] and not retries[-1].endswith("retrying")
    assert lines[-1].startswith("headrace copy: error: s3: ")
    assert "test-secret" not in result.stderr
