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


def test_dynamodb_to_json_lines_defaults_to_typed_export_lines_and_back(
        cli_env: dict[str, str], dynamodb_endpoint: str, tmp_path: Path) -> None:
    """Beside a DynamoDB table a .jsonl file holds DynamoDB's export lines: every attribute
    keeps its type and items with different attributes load back as they were."""
    import secrets as tokens

    from tests.services import aws

    client = aws.client("dynamodb", dynamodb_endpoint)
    names = [f"cli_{tokens.token_hex(5)}" for _ in range(2)]
    for name in names:
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id",
                                                   "AttributeType": "N"}])
        client.get_waiter("table_exists").wait(TableName=name,
                                               WaiterConfig={"Delay": 0.05})
    items = [{"id": {"N": "1"}, "name": {"S": "one"}, "tags": {"SS": ["a", "b"]}},
             {"id": {"N": "2"}, "amount": {"N": "2.5"}, "ok": {"BOOL": True}},
             {"id": {"N": "3"}, "gone": {"NULL": True}, "nested": {"M": {"x": {"L": [
                 {"N": "1"}, {"S": "y"}]}}}}]
    for item in items:
        client.put_item(TableName=names[0], Item=item)
    env = {**cli_env, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint}

    out = run([f"dynamodb://{names[0]}", "items.jsonl"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert sorted(lines, key=lambda x: x["Item"]["id"]["N"]) == [{"Item": i} for i in items]

    back = run(["items.jsonl", f"dynamodb://{names[1]}"], env, tmp_path)
    assert back.returncode == 0, back.stderr
    loaded = client.scan(TableName=names[1])["Items"]
    assert sorted(loaded, key=lambda x: x["id"]["N"]) == items
    client.close()  # the tables go with the in-memory server (dynalite deletes take seconds)


@pytest.mark.anyio
async def test_issue_10_postgres_vertical_tab_and_form_feed_reach_mysql_with_create(
        pg_database: str, mysql_database: str, tmp_path: Path) -> None:
    """Issue 10's reproduction as written: a PostgreSQL row E'a\\x0bb\\x0cc' copied with
    ``--create`` arrived in MySQL as 'avbfc', exit 0."""
    import asyncpg

    from tests.integration.test_sql_copy import my_connect

    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute("CREATE TABLE t (id int, v text)")
        await conn.execute("INSERT INTO t VALUES (1, E'a\\x0bb\\x0cc')")
    finally:
        await conn.close()
    done = run([f"{pg_database}?table=t", f"{mysql_database}?table=t", "--create"],
               dict(os.environ), tmp_path)
    assert done.returncode == 0, done.stderr
    mysql = my_connect(mysql_database)
    try:
        with mysql.cursor() as cur:
            cur.execute("SELECT v FROM t")
            assert cur.fetchall() == (("a\x0bb\x0cc",),)
    finally:
        mysql.close()
