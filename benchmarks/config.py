"""Where the benchmark servers, tools, caches and names are (one place, no magic elsewhere)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"
PEERS_VENV = CACHE / "peers-venv"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
HEADRACE = str(VENV_BIN / "headrace")

HOST = "127.0.0.1"
PG_PORT = 55432
MYSQL_PORT = 53306
S3_PORT = 18333
#: SeaweedFS's master (its admin API: volume vacuum), from tests/services/seaweedfs.py.
S3_MASTER_PORT = 19333
DYNAMODB_PORT = 14567
S3_ENDPOINT = f"http://{HOST}:{S3_PORT}"
DYNAMODB_ENDPOINT = f"http://{HOST}:{DYNAMODB_PORT}"
S3_KEY, S3_SECRET, REGION = "anchorsaccess", "anchorssecret", "us-east-1"

PG_DB = "postgres"
MYSQL_DB = "bench"
BUCKET = "bench"
SERVICES = "pg,mysql,s3,dynamodb"


def pg_url(table: str) -> str:
    return f"postgresql://postgres@{HOST}:{PG_PORT}/{PG_DB}?table={table}"


def mysql_url(table: str) -> str:
    return f"mysql://root@{HOST}:{MYSQL_PORT}/{MYSQL_DB}?table={table}"


def s3_url(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def tool(name: str, *extra: Path) -> str:
    """Absolute path of a command-line tool, or a clear error naming how to install it."""
    for folder in (*extra, VENV_BIN):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        raise SystemExit(f"benchmarks: {name} not found; run benchmarks/install "
                         "(and scripts/install-test-deps)")
    return found


def sling_binary() -> str | None:
    """The binary the sling-linux-amd64 wheel ships (runs offline), when installed."""
    hits = sorted(PEERS_VENV.glob("lib/python3*/site-packages/sling_linux_amd64/bin/sling*"))
    return str(hits[0]) if hits else None


def peers_python() -> str | None:
    python = PEERS_VENV / "bin" / "python"
    return str(python) if python.exists() else None


@dataclass(frozen=True)
class Env:
    """The environment every child process gets: loopback endpoints and fixed credentials, so
    no AWS SDK or tool ever probes the cloud metadata address."""

    values: dict[str, str]

    @classmethod
    def build(cls) -> Env:
        env = dict(os.environ)
        env.update({
            "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_S3": S3_ENDPOINT, "AWS_ENDPOINT_URL_DYNAMODB": DYNAMODB_ENDPOINT,
            "S3_ENDPOINT_URL": S3_ENDPOINT,  # s5cmd
            "PGHOST": HOST, "PGPORT": str(PG_PORT), "PGUSER": "postgres", "PGDATABASE": PG_DB,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true",
            "DLT_PIPELINES_DIR": str(CACHE / "dlt"), "SLING_DISABLE_TELEMETRY": "true",
            "SLING_HOME_DIR": str(CACHE / "sling-home"),
            "PYTHONPATH": str(ROOT),
        })
        return cls(env)
