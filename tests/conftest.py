"""Shared fixtures: AWS sandbox env for every test, loopback servers started lazily once per
session, and a fresh database / bucket per test.

Servers: when the test command (scripts/test) started them, their env vars are already set and
used as they are; otherwise the first fixture that needs a server starts it in-process, and the
session stops what it started (set HEADRACE_TEST_KEEP_SERVICES=1 to leave them running).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pymysql
import pytest

from tests import services
from tests.services import aws
from tests.services.config import aws_env, common_env
from tests.services.postgres import bin_dir as pg_bin_dir

_TESTS_DIR = Path(__file__).resolve().parent
_FOLDER_MARKERS = {"integration": "integration", "e2e": "e2e"}


def pytest_configure(config: pytest.Config) -> None:
    # Before any fixture (even session-scoped ones) can build an SDK client.
    os.environ.update(_sandbox_env())
    for name in _SANDBOX_UNSET:
        os.environ.pop(name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = item.path.resolve().relative_to(_TESTS_DIR).parts[0]
        except (ValueError, IndexError):
            continue
        if folder in _FOLDER_MARKERS:
            item.add_marker(_FOLDER_MARKERS[folder])


# --- environment every test gets ----------------------------------------------------------------

_SANDBOX_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                  "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")


def _sandbox_env() -> dict[str, str]:
    """Test credentials and region, and no shared AWS config files from the user's home."""
    # AWS_ENDPOINT_URL: a client for a service whose loopback server is not configured talks
    # to the discard port on loopback (refused at once), never to the real AWS endpoints.
    return {**aws_env(), "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach the cloud metadata address or a real AWS account, even if it edits env."""
    for name, value in _sandbox_env().items():
        monkeypatch.setenv(name, value)
    for name in _SANDBOX_UNSET:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


# --- lazily started servers ---------------------------------------------------------------------


def _own_vars(key: str) -> list[str]:
    """The env vars that belong to one server (not the shared credentials and tool paths)."""
    shared = common_env()
    return [name for name in services.environment([key]) if name not in shared]


class LoopbackServers:
    """Starts each server at most once per session; a failed start fails every test needing it."""

    def __init__(self) -> None:
        self.env: dict[str, str] = common_env()
        self.launched: list[str] = []
        self._ready: set[str] = set()
        self._failed: dict[str, str] = {}

    def require(self, *keys: str) -> dict[str, str]:
        missing = [key for key in keys if key not in self._ready]
        for key in missing:
            if key in self._failed:
                pytest.fail(self._failed[key], pytrace=False)
        to_start = []
        for key in missing:
            names = _own_vars(key)
            if all(name in os.environ for name in names):  # started by the test command
                self.env.update({name: os.environ[name] for name in names})
                self._ready.add(key)
            else:
                to_start.append(key)
        if to_start:
            try:
                result = services.up(to_start)
            except services.ServiceError as error:
                message = f"could not start test servers {','.join(to_start)}:\n{error}"
                self._failed.update(dict.fromkeys(to_start, message))
                pytest.fail(message, pytrace=False)
            self.launched.extend(result.launched)
            self.env.update(result.env)
            self._ready.update(to_start)
        return self.env

    def stop(self) -> None:
        if self.launched and os.environ.get("HEADRACE_TEST_KEEP_SERVICES") != "1":
            services.down(self.launched)


@pytest.fixture(scope="session")
def _loopback_servers() -> Iterator[LoopbackServers]:
    servers = LoopbackServers()
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def services_env(_loopback_servers: LoopbackServers) -> dict[str, str]:
    """Every HEADRACE_TEST_* / AWS_* variable, with all servers running (for subprocesses)."""
    return dict(_loopback_servers.require(*services.KEYS))


def _server_value(name: str, service: str, variable: str) -> Any:
    """A session fixture ``name``: ``variable`` of ``service``, started if need be."""

    @pytest.fixture(scope="session", name=name)
    def value(_loopback_servers: LoopbackServers) -> str:
        return _loopback_servers.require(service)[variable]

    return value


pg_dsn = _server_value("pg_dsn", "pg", "HEADRACE_TEST_PG_DSN")
mysql_dsn = _server_value("mysql_dsn", "mysql", "HEADRACE_TEST_MYSQL_DSN")
s3_endpoint = _server_value("s3_endpoint", "s3", "AWS_ENDPOINT_URL_S3")
dynamodb_endpoint = _server_value("dynamodb_endpoint", "dynamodb", "AWS_ENDPOINT_URL_DYNAMODB")
sns_endpoint = _server_value("sns_endpoint", "sns", "AWS_ENDPOINT_URL_SNS")
phoenix_url = _server_value("phoenix_url", "otel", "HEADRACE_TEST_PHOENIX_URL")
otlp_http_endpoint = _server_value("otlp_http_endpoint", "otel",
                                   "HEADRACE_TEST_OTLP_HTTP_ENDPOINT")
otlp_grpc_endpoint = _server_value("otlp_grpc_endpoint", "otel",
                                   "HEADRACE_TEST_OTLP_GRPC_ENDPOINT")


# --- fresh resources per test -------------------------------------------------------------------


def _unique_name(request: pytest.FixtureRequest, *, max_len: int, sep: str) -> str:
    """t<sep><test name><sep><random>: lowercase, safe as a database or bucket name."""
    stem = re.sub(r"[^a-z0-9]+", sep, request.node.name.lower()).strip(sep)
    suffix = secrets.token_hex(4)
    stem = stem[: max_len - len(suffix) - 4].strip(sep)
    return f"t{sep}{stem}{sep}{suffix}" if stem else f"t{sep}{suffix}"


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _psql(dsn: str, sql: str) -> None:
    result = subprocess.run(
        [str(pg_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {result.stderr.strip()}")


@pytest.fixture
def pg_database(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh empty PostgreSQL database for this test; yields its DSN, drops it afterwards."""
    name = _unique_name(request, max_len=63, sep="_")
    _psql(pg_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(pg_dsn, name)
    finally:
        _psql(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_connect(dsn: str) -> Any:
    parts = urlsplit(dsn)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
        user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
        autocommit=True, connect_timeout=5, read_timeout=60, write_timeout=60,
    )


@pytest.fixture
def mysql_database(mysql_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh empty MariaDB database (utf8mb4) for this test; yields its DSN, drops it after."""
    name = _unique_name(request, max_len=64, sep="_")
    connection = _mysql_connect(mysql_dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield _with_database(mysql_dsn, name)
        with connection.cursor() as cursor:
            # Connections a test leaked would hold metadata locks and stall the DROP.
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST "
                           "WHERE DB = %s AND ID <> CONNECTION_ID()", (name,))
            for (thread_id,) in cursor.fetchall():
                with contextlib.suppress(pymysql.err.OperationalError):  # it may have ended
                    cursor.execute(f"KILL {int(thread_id)}")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        connection.close()


def _empty_and_delete_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket name for this test; emptied (multipart uploads aborted) and deleted after."""
    name = _unique_name(request, max_len=63, sep="-")
    client = aws.client("s3", s3_endpoint)
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        try:
            _empty_and_delete_bucket(client, name)
        finally:
            client.close()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real filesystem that runs out of space."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
