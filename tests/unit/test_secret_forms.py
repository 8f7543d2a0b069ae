"""The written forms behind secrets at rest: ``env:``/``file:`` references, named connections in
URLs, and which values of a stored definition are encrypted (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors.errors import ConfigError
from connectors.sql import (
    connection_dsn,
    connection_passwords,
    named_host,
    parse_sql_url,
    resolve_secret,
    secret_reference,
)
from engine.errors import StoreError
from engine.store.sealing import Sealer, each_masked, is_sealed, read_key_file, seal, unseal


@pytest.mark.parametrize("text, kind, target", [
    ("env:PG_PASSWORD", "env", "PG_PASSWORD"),
    ("env:_x1", "env", "_x1"),
    ("file:/run/secrets/pg", "file", "/run/secrets/pg"),
    ("file:///run/secrets/pg", "file", "///run/secrets/pg"),
])
def test_references_are_exact_forms(text: str, kind: str, target: str) -> None:
    ref = secret_reference(text)
    assert ref is not None and (ref.kind, ref.target) == (kind, target)


@pytest.mark.parametrize("literal", [
    "env:", "env:1ABC", "env:A B", "env:A-B", " env:A", "ENV:A", "file:relative/path",
    "file:", "hunter2", "env:A\n",
])
def test_anything_else_is_the_secret_itself(literal: str) -> None:
    assert secret_reference(literal) is None
    assert resolve_secret(literal, {}) == literal


def test_a_variable_is_read_once_deep_and_may_be_empty() -> None:
    env = {"A": "env:B", "B": "never read", "EMPTY": ""}
    assert resolve_secret("env:A", env) == "env:B"  # a value is never a reference again
    assert resolve_secret("env:EMPTY", env) == ""
    with pytest.raises(ConfigError, match="environment variable NOPE is not set"):
        resolve_secret("env:NOPE", env)


def test_a_file_loses_one_line_break_only(tmp_path: Path) -> None:
    for written, read in (("s3cret\n", "s3cret"), ("s3cret\r\n", "s3cret"),
                          ("s3cret\n\n", "s3cret\n"), (" s3cret ", " s3cret ")):
        path = tmp_path / "secret"
        path.write_text(written, newline="")
        assert resolve_secret(f"file:{path}") == read
    with pytest.raises(ConfigError) as missing:
        resolve_secret(f"file:{tmp_path}/absent")
    assert str(tmp_path / "absent") in str(missing.value)


def test_named_hosts_and_what_a_url_may_add(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADRACE_CONN_WH", "postgresql://loader:p%40ss@db.example:6432/dw"
                                           "?sslmode=disable")
    monkeypatch.setenv("HEADRACE_CONNECTIONS_FILE", os.devnull)
    assert named_host("postgresql://@wh/other?table=t") == "wh"
    assert named_host("jdbc:postgresql://@wh") == "wh"
    assert named_host("postgresql://u@wh/db") is None
    url = parse_sql_url("postgres://@WH/other?table=s.t")
    assert (url.host, url.port, url.user, url.password, url.database) == (
        "db.example", 6432, "loader", "p@ss", "other")
    assert url.params == {"sslmode": "disable", "table": "s.t"}
    assert parse_sql_url("jdbc:redshift://@wh").redshift
    assert connection_passwords("postgresql://@wh/db") == ["p@ss"]
    assert connection_passwords("postgresql://u:x@h/db") == []  # not a named one
    assert connection_dsn("postgresql://@wh/db") == \
        "postgresql://loader:p%40ss@db.example:6432/db?sslmode=disable"
    for wrong, says in (("mysql://@wh", "is a postgresql connection"),
                        ("postgresql://@wh:5432/db", "gives the host and port"),
                        ("postgresql://@wh/db?password=x", "may not"),
                        ("s3://@wh/key", "S3 and DynamoDB"),
                        ("postgresql://@nobody/db", "no connection named 'nobody'")):
        with pytest.raises(ConfigError, match=says) as refused:
            parse_sql_url(wrong)
        assert "p@ss" not in str(refused.value) and "p%40ss" not in str(refused.value)


BODY = {
    "objects": [{"id": "Db", "username": "u", "*password": "pw", "*ref": {"ref": "X"}},
                {"id": "Multi", "*tokens": ["a", "b"]}],
    "parameters": [{"id": "*myPw", "type": "String", "default": "dflt"},
                   {"id": "myPlain", "type": "String", "default": "plain"}],
    "values": {"*myPw": "given", "myPlain": "seen"},
}


def test_every_masked_value_is_sealed_and_nothing_else() -> None:
    sealer = Sealer([Fernet.generate_key()], "key")
    sealed = seal(BODY, sealer)
    assert [is_sealed(v) for v in each_masked(sealed)] == [True, True, True, True]
    assert sealed["objects"][0]["username"] == "u"
    assert sealed["objects"][0]["*ref"] == {"ref": "X"}  # a reference is no secret
    assert sealed["parameters"][1]["default"] == "plain" and sealed["values"]["myPlain"] == "seen"
    assert "given" not in str(sealed) and "dflt" not in str(sealed)
    assert unseal(sealed, sealer, "here") == BODY
    with pytest.raises(StoreError, match="HEADRACE_SECRET_KEY_FILE"):
        unseal(sealed, None, "pipeline p version 1")
    other = Sealer([Fernet.generate_key()], "/etc/other.key")
    with pytest.raises(StoreError, match=r"not in /etc/other\.key"):
        unseal(sealed, other, "pipeline p version 1")


def test_key_files_are_checked_before_use(tmp_path: Path) -> None:
    path = tmp_path / "key"
    key = Fernet.generate_key().decode()
    path.write_text(f"# newest first\n\n{key}  # made today\n")
    path.chmod(0o600)
    assert read_key_file(path) == [key.encode()]
    path.chmod(0o640)
    with pytest.raises(StoreError, match="chmod 600"):
        read_key_file(path)
    path.chmod(0o600)
    path.write_text(f"{key}\nnot-a-key\n")
    with pytest.raises(StoreError, match="line 2: not a key") as bad:
        read_key_file(path)
    assert key not in str(bad.value)
    path.write_text("# nothing\n")
    with pytest.raises(StoreError, match="holds no key"):
        read_key_file(path)
