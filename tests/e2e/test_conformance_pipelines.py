"""Two real AWS sample definitions, unchanged, run end to end against the loopback servers.

Only parameter values and the AWS endpoint variables differ from what the samples ran with on
AWS: MariaDB stands in for RDS MySQL, SeaweedFS for S3, PostgreSQL for Redshift.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import pymysql

from tests.services import aws

CONFORMANCE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance"
RDS_TO_S3 = "awslabs__data-pipeline-samples__samples_RDStoS3_RDStoS3Pipeline.json"
S3_TSV_TO_REDSHIFT = ("awslabs__data-pipeline-samples__samples_S3TsvFilesToRedshiftTablesIfReady_"
                      "S3TsvFilesToRedshiftTablesIfReady.json")


def _conformance(name: str) -> Path:
    return CONFORMANCE / name


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "HEADRACE_STORE": f"sqlite:///{tmp_path}/store.db",
                "HEADRACE_NOTIFIER": "log"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, env=full_env, timeout=300, check=False)


def _s3(env: dict[str, str]) -> Any:
    return aws.client("s3", env["AWS_ENDPOINT_URL_S3"])


def _mysql(dsn: str) -> Any:
    parts = urlsplit(dsn)
    return pymysql.connect(host=parts.hostname, port=parts.port, user=parts.username or "root",
                           database=parts.path.lstrip("/"), autocommit=True)


def test_rds_mysql_to_s3_sample(mysql_database: str, s3_bucket: str,
                                services_env: dict[str, str], tmp_path: Path) -> None:
    db = urlsplit(mysql_database).path.lstrip("/")
    user, password = f"u{secrets.token_hex(4)}", f"pw-{secrets.token_hex(8)}"
    conn = _mysql(mysql_database)
    rows = [(i, f"name {i}", None if i % 7 == 0 else ("" if i % 5 == 0 else f'note, "{i}"\n'),
             f"{i}.25") for i in range(200)]
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(40), note TEXT, "
                    "amount DECIMAL(10,2))")
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON `{db}`.* TO '{user}'@'%'")
    try:
        host, port = urlsplit(mysql_database).hostname, urlsplit(mysql_database).port
        result = _run([
            "run", str(_conformance(RDS_TO_S3)), "--output", "json", "--parameter-values",
            f"myRDSConnectStr=jdbc:mysql://{host}:{port}/{db}", f"myRDSUsername={user}",
            f"*myRDSPassword={password}", "myRDSTableName=orders",
            f"myOutputS3Path=s3://{s3_bucket}/export", f"myS3LogsPath=file://{tmp_path}/logs",
            "myEc2RdsSecurityGrps=sg-local",
        ], services_env, tmp_path)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        conn.close()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [i["status"] for i in report["instances"]] == ["FINISHED"]
    s3 = _s3(services_env)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("export/") and keys[0].endswith(".csv")
    body = s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read().decode()
    got = list(csv.reader(io.StringIO(body), strict=True))
    by_id = {int(r[0]): r for r in got}
    assert sorted(by_id) == list(range(200)) and len(got) == 200  # none lost, none duplicated
    for i, name, note, amount in rows:
        assert by_id[i][1] == name and by_id[i][3] == amount
        assert by_id[i][2] == (note or "")
    # NULL is an unquoted empty field, the empty string a quoted one
    assert '\n7,"name 7",,7.25' in "\n" + body and ',"",5.25' in body
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*")
                   if p.is_file())
    assert password not in result.stdout + result.stderr + logs


def _pg(dsn: str, *statements: str) -> list[Any]:
    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            out: list[Any] = []
            for sql in statements:
                out = [tuple(r) for r in await conn.fetch(sql)]
            return out
        finally:
            await conn.close()

    return anyio.run(go)


def test_s3_tsv_to_redshift_if_ready_sample(pg_database: str, s3_bucket: str,
                                            services_env: dict[str, str],
                                            tmp_path: Path) -> None:
    _pg(pg_database,
        "CREATE TABLE sales (id int PRIMARY KEY, item text, qty int)",
        "INSERT INTO sales VALUES (1, 'stale', 0), (9, 'kept', 9)",
        "CREATE TABLE returns (id int PRIMARY KEY, reason text)")
    s3 = _s3(services_env)
    s3.put_object(Bucket=s3_bucket, Key="in/sales.tsv",
                  Body=b"1\ttea\t3\n2\tcake, large\t5\n3\t\\N\t1\n")
    s3.put_object(Bucket=s3_bucket, Key="in/returns.tsv", Body=b"7\tbroken\n")
    parts = urlsplit(pg_database)
    params = [
        f"myRedshiftJdbcConnectStr=jdbc:postgresql://{parts.hostname}:{parts.port}"
        f"{parts.path}", f"myRedshiftDbName={parts.path.lstrip('/')}",
        f"myRedshiftUsername={parts.username or 'postgres'}", "*myRedshiftPassword=unused",
        "myRedshiftSecurityGrpIds=sg-local", f"myLogUri=file://{tmp_path}/logs",
        f"myInputTsvFilesS3Loc_1=s3://{s3_bucket}/in/sales.tsv", "myDestRedshiftTable_1=sales",
        f"myInputTsvFilesS3Loc_2=s3://{s3_bucket}/in/returns.tsv",
        "myDestRedshiftTable_2=returns",
    ]
    result = _run(["run", str(_conformance(S3_TSV_TO_REDSHIFT)), "--output", "json",
                   "--parameter-values", *params], services_env, tmp_path)
    assert result.returncode == 0, result.stderr
    statuses = {i["objectId"]: i["status"] for i in json.loads(result.stdout)["instances"]}
    assert statuses == {"PreconditionId_1": "FINISHED", "PreconditionId_2": "FINISHED",
                        "RedshiftLoadActivity_1": "FINISHED",
                        "RedshiftLoadActivity_2": "FINISHED"}
    # OVERWRITE_EXISTING: the row with key 1 is replaced, 9 is kept, 2 and 3 are new
    assert _pg(pg_database, "SELECT id, item, qty FROM sales ORDER BY id") == [
        (1, "tea", 3), (2, "cake, large", 5), (3, None, 1), (9, "kept", 9)]
    assert _pg(pg_database, "SELECT * FROM returns") == [(7, "broken")]


def test_s3_key_precondition_waits_for_the_file(pg_database: str, s3_bucket: str,
                                                services_env: dict[str, str],
                                                tmp_path: Path) -> None:
    """With one input missing, its load never starts (the S3KeyExists precondition times out
    only after preconditionTimeout, so the run is cut short by a window here) while the other
    load runs."""
    _pg(pg_database, "CREATE TABLE a (id int PRIMARY KEY, v text)",
        "CREATE TABLE b (id int PRIMARY KEY, v text)")
    definition = json.loads(_conformance(S3_TSV_TO_REDSHIFT).read_text())
    for obj in definition["objects"]:
        if obj.get("type") == "S3KeyExists":
            obj["preconditionTimeout"] = "2 seconds"
            obj["retryDelay"] = "1 seconds"
    variant = tmp_path / "variant.json"
    variant.write_text(json.dumps(definition))
    s3 = _s3(services_env)
    s3.put_object(Bucket=s3_bucket, Key="in/a.tsv", Body=b"1\tone\n")
    parts = urlsplit(pg_database)
    result = _run(["run", str(variant), "--output", "json", "--parameter-values",
                   f"myRedshiftJdbcConnectStr=jdbc:postgresql://{parts.hostname}:{parts.port}"
                   f"{parts.path}", f"myRedshiftDbName={parts.path.lstrip('/')}",
                   "myRedshiftUsername=postgres", "*myRedshiftPassword=unused",
                   "myRedshiftSecurityGrpIds=sg-local", f"myLogUri=file://{tmp_path}/logs",
                   f"myInputTsvFilesS3Loc_1=s3://{s3_bucket}/in/a.tsv",
                   "myDestRedshiftTable_1=a",
                   f"myInputTsvFilesS3Loc_2=s3://{s3_bucket}/in/missing.tsv",
                   "myDestRedshiftTable_2=b"], services_env, tmp_path)
    assert result.returncode == 1, result.stderr
    statuses = {i["objectId"]: i["status"] for i in json.loads(result.stdout)["instances"]}
    assert statuses["RedshiftLoadActivity_1"] == "FINISHED"
    assert statuses["PreconditionId_2"] == "FAILED"
    assert statuses["RedshiftLoadActivity_2"] == "CASCADE_FAILED"  # the sample sets CASCADE
    assert _pg(pg_database, "SELECT * FROM a") == [(1, "one")]
    assert _pg(pg_database, "SELECT count(*) FROM b") == [(0,)]
