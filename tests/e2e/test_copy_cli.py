"""``headrace copy`` as a user runs it: file -> S3 -> file, JSON summary, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEADRACE = [str(Path(sys.executable).with_name("headrace"))]


@pytest.fixture
def cli_env(s3_endpoint: str) -> dict[str, str]:
    """This process's sandboxed AWS settings (from conftest) plus the S3 endpoint."""
    return {**os.environ, "AWS_ENDPOINT_URL_S3": s3_endpoint}


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HEADRACE, "copy", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_file_to_s3_to_file_with_json_summary(cli_env: dict[str, str], s3_bucket: str,
                                              tmp_path: Path) -> None:
    data = b"".join(b'%d,"row %d",\n' % (i, i) for i in range(5000))
    (tmp_path / "in.csv").write_bytes(data)
    up = run(["in.csv", f"s3://{s3_bucket}/cli/in.csv", "--output", "json"], cli_env,
             tmp_path)
    assert up.returncode == 0, up.stderr
    summary = json.loads(up.stdout)
    assert summary["rows"] == 5000 and summary["bytes"] == len(data)
    assert set(summary) >= {"rows", "bytes", "seconds", "rowsPerSecond", "mbPerSecond",
                            "peakRssBytes"}
    assert summary["peakRssBytes"] > 0 and up.stderr == ""  # no progress line without a tty

    down = run([f"s3://{s3_bucket}/cli/in.csv", "out/back.csv", "--parallel", "2"],
               cli_env, tmp_path)
    assert down.returncode == 0, down.stderr
    assert "copied 5,000 rows" in down.stdout
    assert (tmp_path / "out" / "back.csv").read_bytes() == data


def test_errors_are_one_line_without_traceback_or_secret(cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    missing = run(["nope.csv", "x.csv"], cli_env, tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "nope.csv" in missing.stderr
    assert "Traceback" not in missing.stderr

    secret_url = "ftp://admin:hunter2secret@127.0.0.1/x.csv"
    unknown = run([secret_url, "x.csv"], cli_env, tmp_path)
    assert unknown.returncode == 2
    assert "hunter2secret" not in unknown.stderr and "unknown scheme 'ftp'" in unknown.stderr

    usage = run(["only-one-arg"], cli_env, tmp_path)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
