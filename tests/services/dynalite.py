"""dynalite (DynamoDB, in memory) on 127.0.0.1:14567 with instant table state changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.services import aws
from tests.services.base import Service, ServiceError
from tests.services.config import DYNAMODB_PORT, HOST, REPO_ROOT

NODE_DIR = REPO_ROOT / "tests" / "services" / "node"


class Dynalite(Service):
    key = "dynamodb"
    title = "dynalite (DynamoDB)"
    port = DYNAMODB_PORT
    marker = "dynalite"
    start_timeout = 30.0

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{DYNAMODB_PORT}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_DYNAMODB": self.endpoint}

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        script = NODE_DIR / "node_modules" / ".bin" / "dynalite"
        if not script.exists():
            raise ServiceError("dynalite not installed (npm ci in tests/services/node); "
                               "run scripts/install-test-deps")
        argv = [str(script), "--host", HOST, "--port", str(DYNAMODB_PORT),
                "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        return argv, {}, NODE_DIR

    def ready(self) -> bool:
        if self._client is None:
            self._client = aws.client("dynamodb", self.endpoint)
        try:
            self._client.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            return False
        return True
