"""Named connections (issue 11, "Named connections"): ``HEADRACE_CONN_<NAME>`` variables and
the owner-only connections file with ``env:``/``file:`` passwords, used by ``headrace copy``
(``--source-conn``/``--dest-conn`` and ``scheme://@name/...``), by a definition's
``connectionString`` and by ``--store``, against the real PostgreSQL and MariaDB; the password
absent from every output, spans included."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.cli_kit import Cli, ref
from tests.e2e.test_faults_pipeline import my_sql, mysql_user, pg_sql

__all__ = ["mysql_user"]  # the fixture, used by name

pytestmark = pytest.mark.anyio

ROWS = 300


class ConnCli(Cli):
    """The CLI with its own connections file and extra variables."""

    def __init__(self, root: Path, **extra: str) -> None:
        super().__init__(root)
        self.extra = extra

    @property
    def connections(self) -> Path:
        return self.root / "connections.toml"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env().items() if not k.startswith("HEADRACE_CONN_")}
        return {**env, "HEADRACE_CONNECTIONS_FILE": str(self.connections), **self.extra}


@pytest.fixture
async def ends(pg_database: str, mysql_database: str,
               mysql_user: tuple[str, str], tmp_path: Path) -> tuple[ConnCli, str, str]:
    """PostgreSQL ``src`` with ROWS rows, MariaDB ``t`` empty; the connections ``pgwh`` (a
    variable) and ``shop`` (the file, its password from a variable); returns the CLI, the
    MariaDB DSN and the password."""
    await pg_sql(pg_database, "CREATE TABLE src (id bigint, name text)")
    await pg_sql(pg_database, f"INSERT INTO src SELECT i, 'n' || i FROM generate_series(1, "
                              f"{ROWS}) i")
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    user, password = mysql_user
    my = urlsplit(mysql_database)
    cli = ConnCli(tmp_path, HEADRACE_CONN_PGWH=pg_database, SHOP_PASSWORD=password,
                  OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    cli.connections.write_text(
        "# the shop's MariaDB\n"
        "[shop]\n"
        f'url = "mysql://{user}@127.0.0.1:{my.port}{my.path}"\n'
        'password = "env:SHOP_PASSWORD"\n')
    os.chmod(cli.connections, 0o600)
    return cli, mysql_database, password


def ids(dsn: str, table: str = "t") -> list[int]:
    return sorted(r[0] for r in my_sql(dsn, f"SELECT id FROM {table}"))


async def test_copy_between_named_connections_never_shows_the_password(
        ends: tuple[ConnCli, str, str]) -> None:
    cli, my_dsn, password = ends
    result = cli("copy", "--source-conn", "pgwh", "src", "--dest-conn", "shop", "t",
                 "--output", "json")
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary["rows"] == ROWS
    assert '"name": "copy"' in result.stdout + result.stderr  # the spans were printed
    assert ids(my_dsn) == list(range(1, ROWS + 1))
    # the URL form, the database taken from the connection; a query through --source-conn
    out = cli.root / "out.csv"
    text = cli("copy", "mysql://@SHOP?table=t", str(out))  # names match whatever the case
    assert len(out.read_text().splitlines()) == ROWS
    queried = cli("copy", "--source-conn", "shop", "-", "--query",
                  "SELECT id FROM t WHERE id <= 10", str(cli.root / "q.csv"))
    assert (cli.root / "q.csv").read_text().split() == [str(i) for i in range(1, 11)]
    # a failure that reaches the server: still no password
    failed = cli("copy", "--source-conn", "pgwh", "src", "--dest-conn", "shop", "missing",
                 check=1)
    assert "missing" in failed.stderr
    for printed in (result, text, queried, failed):
        assert password not in printed.stdout + printed.stderr


def test_what_is_refused_is_named_without_the_password(tmp_path: Path) -> None:
    cli = ConnCli(tmp_path, HEADRACE_CONN_PGWH="postgresql://postgres@127.0.0.1:1/db")
    secret = "pw-in-the-file-0123456789"
    cli.connections.write_text(f'[shop]\nurl = "mysql://u@127.0.0.1:1/db"\n'
                               f'password = "{secret}"\n')
    os.chmod(cli.connections, 0o640)
    loose = cli("copy", "--source-conn", "shop", "t", "out.csv", check=2)
    assert str(cli.connections) in loose.stderr and "chmod 600" in loose.stderr
    os.chmod(cli.connections, 0o600)
    unknown = cli("copy", "postgresql://@nowhere/db?table=t", "out.csv", check=2)
    assert "no connection named 'nowhere'" in unknown.stderr
    assert "HEADRACE_CONN_NOWHERE" in unknown.stderr and str(cli.connections) in unknown.stderr
    wrong = cli("copy", "mysql://@pgwh?table=t", "out.csv", check=2)
    assert "is a postgresql connection" in wrong.stderr
    as_json = cli.json("copy", "--dest-conn", "nowhere", "in.csv", "t", check=2)
    assert "no connection named 'nowhere'" in as_json["error"]["message"]
    no_table = cli("copy", "in.csv", "--dest-conn", "shop", "-", check=2)
    assert "is a table" in no_table.stderr
    cli.connections.write_text('[shop]\nurl = "mysql://u@127.0.0.1:1/db"\n'
                               'password = "env:HR_TEST_UNSET_VARIABLE"\n')
    missing = cli("copy", "--source-conn", "shop", "t", "out.csv", check=2)
    assert "HR_TEST_UNSET_VARIABLE is not set" in missing.stderr
    for result in (loose, unknown, wrong, no_table, missing):
        assert secret not in result.stdout + result.stderr


async def test_a_definition_and_the_store_use_named_connections(
        ends: tuple[ConnCli, str, str]) -> None:
    cli, my_dsn, password = ends
    source = cli.root / "in.csv"
    source.write_text("".join(f"{i},n{i}\n" for i in range(1, ROWS + 1)))
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand"},
        # no username, no *password: the connection gives them (a headrace extension)
        {"id": "Shop", "name": "Shop", "type": "JdbcDatabase",
         "connectionString": "jdbc:mysql://@shop", "jdbcDriverClass": "com.mysql.jdbc.Driver"},
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": f"file://{source}"},
        {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("Shop"),
         "table": "t"},
        {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "w", "maximumRetries": "0"}]}
    definition = cli.root / "p.json"
    definition.write_text(json.dumps(body))
    report = cli.json("validate", str(definition))
    assert report["errors"] == [] and report["readyToRun"] is True
    # the store on PostgreSQL through a named connection too
    store = cli("run", str(definition), "--store", "postgresql://@pgwh")
    assert ids(my_dsn) == list(range(1, ROWS + 1))
    listed = cli.json("list-pipelines", "--store", "postgresql://@pgwh")
    assert len(listed["pipelineIdList"]) == 1
    runs = cli.json("list-runs", "--pipeline-id", listed["pipelineIdList"][0]["id"],
                    "--store", "postgresql://@pgwh")
    assert {r["status"] for r in runs["runs"]} == {"FINISHED"}
    assert password not in store.stdout + store.stderr
    # an unknown connection: validate says run will refuse, naming object and field
    body["objects"][1]["connectionString"] = "jdbc:mysql://@nowhere/db"
    definition.write_text(json.dumps(body))
    report = cli.json("validate", str(definition))
    assert report["readyToRun"] is False
    [problem] = [p for p in report["runErrors"] if p["field"] == "connectionString"]
    assert problem["id"] == "Shop" and "no connection named 'nowhere'" in problem["message"]
    run = cli("run", str(definition), "--output", "json", check=2)
    assert "nowhere" in run.stdout
