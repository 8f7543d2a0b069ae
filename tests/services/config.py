"""Fixed ports, credentials and paths of the loopback test servers, and the env they publish."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HOST = "127.0.0.1"

PG_PORT = 55432
MYSQL_PORT = 53306
S3_PORT = 18333
SNS_PORT = 15000
DYNAMODB_PORT = 14567
PHOENIX_HTTP_PORT = 16006
PHOENIX_GRPC_PORT = 14317

# The one SeaweedFS identity. Its signatures are checked; dynalite and moto accept any key.
S3_ACCESS_KEY = "anchorsaccess"
S3_SECRET_KEY = "anchorssecret"
REGION = "us-east-1"

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def services_dir() -> Path:
    """Where server data, logs and pidfiles live (gitignored); HEADRACE_SERVICES_DIR overrides."""
    override = os.environ.get("HEADRACE_SERVICES_DIR")
    return Path(override).resolve() if override else REPO_ROOT / ".services"


def find_tool(name: str, *extra_dirs: Path) -> str | None:
    """Absolute path of an executable: the given dirs first, then the venv, PATH and sbin dirs."""
    for folder in (*extra_dirs, VENV_BIN):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=search)


def aws_env() -> dict[str, str]:
    """Credentials and region for every AWS SDK or tool, so none probes the metadata address."""
    return {
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def common_env() -> dict[str, str]:
    """Variables every test run gets, whichever servers it uses."""
    env = aws_env()
    env["HEADRACE_TEST_SERVICES_DIR"] = str(services_dir())
    tools = {
        "HEADRACE_TEST_S5CMD": find_tool("s5cmd"),
        "HEADRACE_TEST_PSQL": find_tool("psql"),
        "HEADRACE_TEST_MARIADB": find_tool("mariadb"),
    }
    env.update({key: path for key, path in tools.items() if path})
    return env
