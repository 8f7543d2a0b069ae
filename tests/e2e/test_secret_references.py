"""Masked values from the environment or a file (issue 10, "Secrets at rest"): ``env:NAME`` and
``file:/path`` in a ``*password`` (written there or through a masked parameter), a real copy
PostgreSQL -> MariaDB run by ``headrace run``, and the secrets absent from everything the run
prints (its spans included), the store and the logs."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from engine.runtime.runner import derived_pipeline_id
from tests.e2e.cli_kit import Cli, by_object, ref, shell, write_definition
from tests.e2e.test_faults_pipeline import files_holding, my_sql, mysql_user, pg_sql

__all__ = ["mysql_user"]  # the fixture, used by name

pytestmark = pytest.mark.anyio

ROWS = 500
MY_VARIABLE = "HR_TEST_MY_PASSWORD"


class EnvCli(Cli):
    """The CLI with extra environment variables (the secrets' variables, the span exporter)."""

    def __init__(self, root: Path, **extra: str) -> None:
        super().__init__(root)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


def pg_to_mysql(path: Path, pg_dsn: str, my_dsn: str, my_user: str, *, pg_password: str,
                my_password_value: str) -> Path:
    """PostgreSQL table ``src`` -> CopyActivity -> MariaDB table ``t``; the PostgreSQL
    password as written in ``*password``, MariaDB's through the masked parameter
    ``*myPassword`` whose value is ``my_password_value``."""
    pg, my = urlsplit(pg_dsn), urlsplit(my_dsn)
    body = {
        "objects": [
            {"id": "Default", "name": "Default", "scheduleType": "ondemand"},
            {"id": "PgDb", "name": "PgDb", "type": "JdbcDatabase",
             "connectionString": f"jdbc:postgresql://127.0.0.1:{pg.port}{pg.path}",
             "jdbcDriverClass": "org.postgresql.Driver", "username": pg.username or "postgres",
             "*password": pg_password},
            {"id": "MyDb", "name": "MyDb", "type": "JdbcDatabase",
             "connectionString": f"jdbc:mysql://127.0.0.1:{my.port}{my.path}",
             "jdbcDriverClass": "com.mysql.jdbc.Driver", "username": my_user,
             "*password": "#{*myPassword}"},
            {"id": "Src", "name": "Src", "type": "SqlDataNode", "database": ref("PgDb"),
             "table": "src"},
            {"id": "Dst", "name": "Dst", "type": "SqlDataNode", "database": ref("MyDb"),
             "table": "t"},
            {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("Src"),
             "output": ref("Dst"), "maximumRetries": "0"},
        ],
        "parameters": [{"id": "*myPassword", "type": "String"}],
        "values": {"*myPassword": my_password_value},
    }
    path.write_text(json.dumps(body, indent=2))
    return path


@pytest.fixture
async def tables(pg_database: str, mysql_database: str) -> tuple[str, str]:
    await pg_sql(pg_database, "CREATE TABLE src (id bigint, name text)")
    await pg_sql(pg_database, f"INSERT INTO src SELECT i, 'name ' || i "
                              f"FROM generate_series(1, {ROWS}) i")
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    return pg_database, mysql_database


def everything_printed(cli: Cli, pipeline_id: str, definition: Path,
                       results: list[Any]) -> str:
    """The run's own output and every view of it a user can ask for afterwards."""
    views = [
        cli("get-pipeline-definition", "--pipeline-id", pipeline_id),
        cli("describe-objects", "--pipeline-id", pipeline_id, "--object-ids", "MyDb", "PgDb",
            "Load", "--output", "json"),
        cli("list-runs", "--pipeline-id", pipeline_id, "--output", "json"),
        cli("plan", str(definition), "--start", "2024-01-01T00:00:00", "--end",
            "2024-01-02T00:00:00", "--output", "json"),
        cli("validate", str(definition), "--output", "json"),
    ]
    return "\n".join(r.stdout + r.stderr for r in [*results, *views])


async def test_passwords_from_a_variable_and_a_file_copy_postgres_to_mariadb_unseen(
        tables: tuple[str, str], mysql_user: tuple[str, str], tmp_path: Path) -> None:
    pg_dsn, my_dsn = tables
    user, my_password = mysql_user
    pg_secret = f"pg-{secrets.token_hex(12)}"
    secret_file = tmp_path / "secrets" / "pg"
    secret_file.parent.mkdir()
    secret_file.write_text(pg_secret + "\n")  # as `echo` writes it: one line break, dropped
    definition = pg_to_mysql(tmp_path / "p.json", pg_dsn, my_dsn, user,
                             pg_password=f"file:{secret_file}",
                             my_password_value=f"env:{MY_VARIABLE}")
    cli = EnvCli(tmp_path, **{MY_VARIABLE: my_password, "OTEL_TRACES_EXPORTER": "console",
                              "OTEL_METRICS_EXPORTER": "none"})
    run = cli("run", str(definition))  # spans printed by the console exporter
    spans = run.stdout + run.stderr
    assert '"name": "copy"' in spans, spans[-3000:]  # the spans are in what is searched
    assert "Load" in run.stdout and "1 FINISHED" in run.stdout
    assert sorted(r[0] for r in my_sql(my_dsn, "SELECT id FROM t")) == list(range(1, ROWS + 1))
    printed = everything_printed(cli, derived_pipeline_id(definition), definition, [run])
    for secret in (my_password, pg_secret):
        assert secret not in printed
        assert files_holding(tmp_path, secret, besides=("pg",)) == []  # store, WAL, logs
    store = (tmp_path / "state" / "store.db").read_bytes()
    assert f"env:{MY_VARIABLE}".encode() in store  # what is kept: the reference, not the secret


async def test_a_wrong_secret_from_the_variable_is_what_the_server_refuses(
        tables: tuple[str, str], mysql_user: tuple[str, str], tmp_path: Path) -> None:
    pg_dsn, my_dsn = tables
    user, _ = mysql_user
    wrong = f"wrong-{secrets.token_hex(8)}"
    definition = pg_to_mysql(tmp_path / "p.json", pg_dsn, my_dsn, user,
                             pg_password="unused", my_password_value=f"env:{MY_VARIABLE}")
    cli = EnvCli(tmp_path, **{MY_VARIABLE: wrong})
    result = cli("run", str(definition), "--output", "json", check=1)
    load = by_object(json.loads(result.stdout))["Load"]
    assert load["status"] == "FAILED"
    assert "1045" in load["error"] or "denied" in load["error"].lower(), load["error"]
    assert wrong not in result.stdout + result.stderr
    assert my_sql(my_dsn, "SELECT COUNT(*) FROM t") == [(0,)]


def test_a_missing_variable_or_file_is_a_finding_naming_object_and_field(
        tmp_path: Path) -> None:
    definition = pg_to_mysql(
        tmp_path / "p.json", "postgresql://postgres@127.0.0.1:1/db",
        "mysql://root@127.0.0.1:1/db", "u", pg_password=f"file:{tmp_path}/absent",
        my_password_value="env:HR_TEST_SURELY_UNSET")
    cli = Cli(tmp_path)
    report = cli.json("validate", str(definition))
    assert report["valid"] is True and report["readyToRun"] is False  # a template, not ready
    found = {(p["id"], p["field"]): p["message"] for p in report["runErrors"]}
    # the masked parameter's value, where it is given; the field, on its object
    assert "HR_TEST_SURELY_UNSET is not set" in found[("*myPassword", "value")]
    assert f"cannot read the file {tmp_path}/absent" in found[("PgDb", "*password")]
    run = cli("run", str(definition), check=2)  # refused before anything runs
    assert "object '*myPassword', field 'value'" in run.stderr
    assert "object 'PgDb', field '*password'" in run.stderr
    assert "HR_TEST_SURELY_UNSET" in run.stderr
    assert not (tmp_path / "state" / "logs").exists()


def test_a_masked_parameter_read_by_a_command_is_the_secret_it_names(tmp_path: Path) -> None:
    """A reference is read wherever its masked value is: here ``#{*myToken}`` in a command."""
    token = f"tok-{secrets.token_hex(12)}"
    out = tmp_path / "seen" / "token"
    out.parent.mkdir()
    definition = write_definition(
        tmp_path / "p.json", shell("Use", f'printf %s "#{{*myToken}}" > {out}'))
    body = json.loads(definition.read_text())
    body["parameters"] = [{"id": "*myToken", "type": "String", "default": "env:HR_TEST_TOKEN"}]
    definition.write_text(json.dumps(body))
    cli = EnvCli(tmp_path, HR_TEST_TOKEN=token)
    result = cli("run", str(definition), "--output", "json")
    assert out.read_text() == token
    assert token not in result.stdout + result.stderr
    assert files_holding(tmp_path, token, besides=("token",)) == []  # store, logs, events
    plan = cli("plan", str(definition), "--start", "2024-01-01T00:00:00", "--end",
               "2024-01-01T00:15:00", "--output", "json")
    assert token not in plan.stdout and "****" in plan.stdout
