"""moto server on 127.0.0.1:15000, used for SNS (no signature check; state in memory)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tests.services.base import Service, ServiceError
from tests.services.config import HOST, SNS_PORT, find_tool


class Moto(Service):
    key = "sns"
    title = "moto (SNS)"
    port = SNS_PORT
    marker = "moto_server"
    start_timeout = 30.0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{SNS_PORT}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_SNS": self.endpoint}

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        moto_server = find_tool("moto_server")
        if moto_server is None:
            raise ServiceError("moto_server not found (pip package moto[server]); "
                               "run scripts/install-test-deps")
        return [moto_server, "-H", HOST, "-p", str(SNS_PORT)], {}, self.dir

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False
