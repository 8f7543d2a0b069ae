"""``headrace copy`` imports only what its path uses (issue 17, start-up): a budget in modules,
not seconds. Each case runs the real CLI in a subprocess under ``-X importtime`` (one line per
module imported, the first time it is) and checks what the copy pulled in: a PostgreSQL ->
file copy loads no AWS SDK, no MySQL driver and no OpenTelemetry SDK or exporter (telemetry is
off unless an ``OTEL_*`` variable asks for it), and no path loads the engine's store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.cli_kit import HEADRACE

#: never needed by ``headrace copy`` without telemetry configured
ANY_PATH = ("opentelemetry.sdk", "opentelemetry.exporter", "grpc", "engine.store",
            "engine.runtime", "sqlite3", "tqdm")
AWS = ("botocore", "aiobotocore", "boto3", "aiohttp", "connectors.aws", "connectors.s3")
POSTGRES = ("asyncpg", "connectors.postgres")
MYSQL = ("asyncmy", "aiomysql", "connectors.mysql")

#: Budgets: modules loaded by the whole process (interpreter start-up included), measured at
#: 259 (file), 392 (PostgreSQL), 453 (MySQL: asyncmy and aiomysql) and 622 (S3), with ~10%
#: headroom. A change that pulls a package into every copy shows up here before it shows in
#: the benchmarks.
BUDGET = {"file": 300, "postgresql": 440, "mysql": 500, "s3": 700}


def imported_modules(*args: str, env: dict[str, str] | None = None,
                     cwd: Path | None = None) -> set[str]:
    """Every module the ``headrace`` CLI imports running ``args`` (which must succeed)."""
    script = Path(HEADRACE).read_text()
    assert "engine.cli" in script, f"{HEADRACE} is not headrace's console script"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "engine.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    assert names, "no -X importtime output"
    return names


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def _no_otel_env() -> dict[str, str]:
    return {k: "" for k in os.environ if k.startswith("OTEL_")}


def check(modules: set[str], forbidden: tuple[str, ...], budget: int) -> None:
    assert loaded(modules, forbidden) == []
    print(f"{len(modules)} modules (budget {budget})")
    assert len(modules) <= budget, f"{len(modules)} modules, budget {budget}"


def test_file_to_file_loads_no_driver_sdk_or_store(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("1,a\n2,b\n")
    modules = imported_modules("copy", "in.csv", "out.csv", cwd=tmp_path, env=_no_otel_env())
    assert (tmp_path / "out.csv").read_text() == "1,a\n2,b\n"
    assert "connectors.local" in modules
    check(modules, ANY_PATH + AWS + POSTGRES + MYSQL + ("pydantic",), BUDGET["file"])


@pytest.fixture
def pg_table(pg_database: str) -> str:
    import anyio
    import asyncpg

    async def make() -> None:
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            await conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        finally:
            await conn.close()

    anyio.run(make)
    return f"{pg_database}?table=t"


def test_postgres_to_file_loads_no_aws_sdk(pg_table: str, tmp_path: Path) -> None:
    modules = imported_modules("copy", pg_table, "out.csv", cwd=tmp_path, env=_no_otel_env())
    assert sorted((tmp_path / "out.csv").read_text().splitlines()) == ["1,a", "2,b"]
    assert "asyncpg" in modules
    check(modules, ANY_PATH + AWS + MYSQL, BUDGET["postgresql"])


def test_mysql_to_file_loads_no_aws_sdk(mysql_database: str, tmp_path: Path) -> None:
    import pymysql  # the test's own driver, as the mysql_database fixture's

    parts = urlsplit(mysql_database)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=parts.username or "root", database=parts.path.lstrip("/"),
                           autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            cur.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    finally:
        conn.close()
    modules = imported_modules("copy", f"{mysql_database}?table=t", "out.csv", cwd=tmp_path,
                               env=_no_otel_env())
    out = (tmp_path / "out.csv").read_text().replace('"', "")  # MySQL quotes every text
    assert sorted(out.splitlines()) == ["1,a", "2,b"]
    assert "asyncmy" in modules
    check(modules, ANY_PATH + AWS + POSTGRES, BUDGET["mysql"])


def test_s3_to_file_loads_no_database_driver(s3_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("1,a\n")
    imported_modules("copy", "in.csv", f"s3://{s3_bucket}/in.csv", cwd=tmp_path)
    modules = imported_modules("copy", f"s3://{s3_bucket}/in.csv", "out.csv", cwd=tmp_path,
                               env=_no_otel_env())
    assert (tmp_path / "out.csv").read_text() == "1,a\n"
    check(modules, ANY_PATH + POSTGRES + MYSQL, BUDGET["s3"])


def test_telemetry_asked_for_loads_the_sdk(tmp_path: Path) -> None:
    """The other side of the budget: with an exporter asked for, the SDK is there (the
    lazy import did not switch telemetry off)."""
    (tmp_path / "in.csv").write_text("1,a\n")
    env = {**_no_otel_env(), "OTEL_TRACES_EXPORTER": "console"}
    modules = imported_modules("copy", "in.csv", "out.csv", cwd=tmp_path, env=env)
    assert "opentelemetry.sdk.trace" in modules
