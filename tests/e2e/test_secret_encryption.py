"""Masked values encrypted at rest with ``HEADRACE_SECRET_KEY_FILE`` (issue 10, "Secrets at
rest"): the store file searched for the password with and without a key, a copy to MariaDB
run by ``headrace engine`` from the encrypted store, key rotation and ``encrypt-secrets``, the
PostgreSQL store too. All through the CLI in subprocesses."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from cryptography.fernet import Fernet

from tests.e2e.cli_kit import Cli, ref, stop, wait_for
from tests.e2e.test_faults_pipeline import my_sql, mysql_user

__all__ = ["mysql_user"]  # the fixture, used by name

pytestmark = pytest.mark.anyio


class KeyCli(Cli):
    """The CLI with ``HEADRACE_SECRET_KEY_FILE`` set to ``key_file`` (None: unset)."""

    def __init__(self, root: Path, key_file: Path | None = None, store: str | None = None):
        super().__init__(root)
        self.key_file = key_file
        self.store_url = store

    @property
    def store(self) -> str:
        return self.store_url or super().store

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("HEADRACE_SECRET_KEY_FILE", None)
        if self.key_file is not None:
            env["HEADRACE_SECRET_KEY_FILE"] = str(self.key_file)
        return env


def key_file(path: Path, *keys: bytes) -> Path:
    path.write_text("# newest first\n" + "".join(k.decode() + "\n" for k in keys))
    os.chmod(path, 0o600)
    return path


def definition(path: Path, *, password: str, param_value: str, param_default: str,
               connection: str = "jdbc:mysql://127.0.0.1:1/db", user: str = "u") -> Path:
    """A MariaDB load (file -> table ``t``) whose password is the masked parameter
    ``*myPassword`` (value ``param_value``), with a second database holding ``password`` as
    written and a masked parameter whose default is ``param_default``."""
    source = path.with_name("in.csv")
    source.write_text("".join(f"{i},name {i}\n" for i in range(100)))
    body = {
        "objects": [
            {"id": "Default", "name": "Default", "scheduleType": "ondemand"},
            {"id": "MyDb", "name": "MyDb", "type": "JdbcDatabase", "connectionString":
             connection, "jdbcDriverClass": "com.mysql.jdbc.Driver", "username": user,
             "*password": "#{*myPassword}"},
            {"id": "Other", "name": "Other", "type": "JdbcDatabase", "connectionString":
             "jdbc:postgresql://127.0.0.1:1/db", "username": "u", "*password": password,
             "databaseName": "#{*myWithDefault}"},
            {"id": "In", "name": "In", "type": "S3DataNode", "filePath": f"file://{source}"},
            {"id": "Out", "name": "Out", "type": "SqlDataNode", "database": ref("MyDb"),
             "table": "t"},
            {"id": "Load", "name": "Load", "type": "CopyActivity", "input": ref("In"),
             "output": ref("Out"), "maximumRetries": "0"},
        ],
        "parameters": [{"id": "*myPassword", "type": "String"},
                       {"id": "*myWithDefault", "type": "String", "default": param_default}],
        "values": {"*myPassword": param_value},
    }
    path.write_text(json.dumps(body, indent=2))
    return path


def store_bytes(root: Path) -> bytes:
    """The SQLite store as it is on disk: the file and its WAL."""
    state = root / "state"
    return b"".join(p.read_bytes() for p in state.glob("store.db*") if p.is_file())


def put(cli: Cli, path: Path, unique: str = "p1") -> str:
    pipeline_id = cli.json("create-pipeline", "--name", unique, "--unique-id",
                           unique)["pipelineId"]
    cli("put-pipeline-definition", "--pipeline-id", pipeline_id, "--pipeline-definition",
        f"file://{path}")
    return str(pipeline_id)


def three_secrets() -> dict[str, str]:
    return {name: f"{name}-{secrets.token_hex(10)}" for name in ("password", "value",
                                                                   "default")}


def test_without_a_key_the_masked_values_are_in_the_store_file_in_clear(
        tmp_path: Path) -> None:
    """What the README says: no key, the definition is kept as put (in an owner-only file)."""
    found = three_secrets()
    path = definition(tmp_path / "p.json", password=found["password"],
                      param_value=found["value"], param_default=found["default"])
    cli = KeyCli(tmp_path)
    pipeline_id = put(cli, path)
    on_disk = store_bytes(tmp_path)
    assert all(secret.encode() in on_disk for secret in found.values())
    shown = cli("get-pipeline-definition", "--pipeline-id", pipeline_id).stdout
    assert not any(secret in shown for secret in found.values()) and "****" in shown


def test_with_a_key_no_masked_value_reaches_the_store_file(tmp_path: Path) -> None:
    found = three_secrets()
    path = definition(tmp_path / "p.json", password=found["password"],
                      param_value=found["value"], param_default=found["default"])
    cli = KeyCli(tmp_path, key_file(tmp_path / "key", Fernet.generate_key()))
    pipeline_id = put(cli, path)
    cli("activate-pipeline", "--pipeline-id", pipeline_id)  # reads the definition back
    on_disk = store_bytes(tmp_path)
    assert [s for s in found.values() if s.encode() in on_disk] == []
    assert b'"encrypted"' in on_disk and b"jdbc:postgresql://127.0.0.1:1/db" in on_disk
    stored = cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id)
    other = next(o for o in stored["objects"] if o["id"] == "Other")
    assert other["*password"] == "****"  # decrypted, then masked as without a key
    # without the key, the store refuses to show what it cannot decrypt
    no_key = KeyCli(tmp_path)
    refused = no_key.json("get-pipeline-definition", "--pipeline-id", pipeline_id, check=2)
    assert "HEADRACE_SECRET_KEY_FILE" in refused["error"]["message"]
    # a key file others can read is refused, naming it (never a key)
    loose = tmp_path / "key"
    os.chmod(loose, 0o644)
    result = cli("list-pipelines", check=2)
    assert str(loose) in result.stderr and "chmod 600" in result.stderr


async def test_the_engine_loads_mariadb_with_the_password_it_decrypts(
        mysql_database: str, mysql_user: tuple[str, str], tmp_path: Path) -> None:
    """The definition the engine runs comes from the store: the password MariaDB accepts is
    the one decrypted there."""
    user, password = mysql_user
    my_sql(mysql_database, "CREATE TABLE t (id bigint, name text)")
    parts = urlsplit(mysql_database)
    path = definition(tmp_path / "p.json", password="unused-elsewhere", param_value=password,
                      param_default="unused-default",
                      connection=f"jdbc:mysql://127.0.0.1:{parts.port}{parts.path}", user=user)
    cli = KeyCli(tmp_path, key_file(tmp_path / "key", Fernet.generate_key()))
    pipeline_id = put(cli, path)
    assert password.encode() not in store_bytes(tmp_path)
    cli("activate-pipeline", "--pipeline-id", pipeline_id)
    engine = cli.spawn("engine")
    try:
        wait_for(lambda: _load_status(cli, pipeline_id) in ("FINISHED", "FAILED"), 90,
                 "the engine to run Load")
    finally:
        out, err = stop(engine)
    assert _load_status(cli, pipeline_id) == "FINISHED", err[-2000:]
    assert my_sql(mysql_database, "SELECT COUNT(*) FROM t") == [(100,)]
    assert password not in out + err


def _load_status(cli: Cli, pipeline_id: str) -> str | None:
    runs = cli.json("list-runs", "--pipeline-id", pipeline_id)
    rows: list[dict[str, Any]] = runs["runs"] if isinstance(runs, dict) else runs
    return next((r["status"] for r in rows if r.get("objectId", r.get("name")) == "Load"),
                None)


def test_rotation_old_values_stay_readable_and_encrypt_secrets_moves_them(
        tmp_path: Path) -> None:
    found = three_secrets()
    path = definition(tmp_path / "p.json", password=found["password"],
                      param_value=found["value"], param_default=found["default"])
    old, new = Fernet.generate_key(), Fernet.generate_key()
    keys = tmp_path / "key"
    cli = KeyCli(tmp_path, key_file(keys, old))
    pipeline_id = put(cli, path)
    before = cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id)
    key_file(keys, new, old)  # the new key first, the old one kept
    assert cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id) == before
    moved = cli.json("encrypt-secrets")
    assert moved == {"definitionsEncrypted": 1, "definitions": 1}
    assert cli.json("encrypt-secrets") == {"definitionsEncrypted": 0, "definitions": 1}
    key_file(keys, new)  # the old key gone: everything is readable with the new one
    assert cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id) == before
    key_file(keys, old)  # the old key alone cannot read what the new one made
    refused = cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id, check=2)
    assert "not in" in refused["error"]["message"] and str(keys) in refused["error"]["message"]
    on_disk = store_bytes(tmp_path)
    assert [s for s in found.values() if s.encode() in on_disk] == []


def test_encrypt_secrets_encrypts_what_was_stored_in_clear(tmp_path: Path) -> None:
    found = three_secrets()
    path = definition(tmp_path / "p.json", password=found["password"],
                      param_value=found["value"], param_default=found["default"])
    pipeline_id = put(KeyCli(tmp_path), path)
    assert found["password"].encode() in store_bytes(tmp_path)
    cli = KeyCli(tmp_path, key_file(tmp_path / "key", Fernet.generate_key()))
    assert cli.json("encrypt-secrets") == {"definitionsEncrypted": 1, "definitions": 1}
    on_disk = store_bytes(tmp_path)  # the rows rewritten, and the old bytes gone
    assert [s for s in found.values() if s.encode() in on_disk] == []
    stored = cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id)
    assert stored["values"]["*myPassword"] == "****"


async def test_the_postgresql_store_keeps_masked_values_encrypted(
        pg_database: str, tmp_path: Path) -> None:
    found = three_secrets()
    path = definition(tmp_path / "p.json", password=found["password"],
                      param_value=found["value"], param_default=found["default"])
    cli = KeyCli(tmp_path, key_file(tmp_path / "key", Fernet.generate_key()),
                 store=pg_database)
    pipeline_id = put(cli, path)
    conn = await asyncpg.connect(pg_database)
    try:
        body = await conn.fetchval("SELECT body FROM hr_definitions WHERE pipeline_id = $1",
                                   pipeline_id)
    finally:
        await conn.close()
    assert [s for s in found.values() if s in body] == []
    assert '"encrypted"' in body
    stored = cli.json("get-pipeline-definition", "--pipeline-id", pipeline_id)
    assert [o["*password"] for o in stored["objects"] if o["id"] == "Other"] == ["****"]
