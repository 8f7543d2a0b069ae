"""Arize Phoenix, the OTLP trace backend: HTTP (UI, REST, OTLP/HTTP) on 127.0.0.1:16006 and
OTLP/gRPC on 127.0.0.1:14317 (bound to loopback by phoenix_loopback.py)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from tests.services import process
from tests.services.base import Service, ServiceError
from tests.services.config import HOST, PHOENIX_GRPC_PORT, PHOENIX_HTTP_PORT, services_dir

LAUNCHER = Path(__file__).with_name("phoenix_loopback.py")


def phoenix_python() -> Path:
    return services_dir() / "phoenix-venv" / "bin" / "python"


class Phoenix(Service):
    key = "otel"
    title = "Arize Phoenix (OTLP)"
    port = PHOENIX_HTTP_PORT
    marker = "phoenix_loopback"
    start_timeout = 120.0  # ~10 s warm; the first start also migrates its database

    @property
    def url(self) -> str:
        return f"http://{HOST}:{PHOENIX_HTTP_PORT}"

    def env(self) -> dict[str, str]:
        return {
            "HEADRACE_TEST_PHOENIX_URL": self.url,
            "HEADRACE_TEST_OTLP_HTTP_ENDPOINT": self.url,
            "HEADRACE_TEST_OTLP_GRPC_ENDPOINT": f"http://{HOST}:{PHOENIX_GRPC_PORT}",
        }

    def prepare(self) -> None:
        (self.dir / "work").mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str], Path | None]:
        python = phoenix_python()
        if not python.exists():
            raise ServiceError(f"Phoenix venv missing at {python.parent.parent}; "
                               "run scripts/install-test-deps")
        settings = {
            "PHOENIX_HOST": HOST,
            "PHOENIX_PORT": str(PHOENIX_HTTP_PORT),
            "PHOENIX_GRPC_PORT": str(PHOENIX_GRPC_PORT),
            "PHOENIX_WORKING_DIR": str(self.dir / "work"),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        # -I: isolated, so this folder (whose modules would shadow Phoenix's) is not on sys.path.
        return [str(python), "-I", str(LAUNCHER), "serve"], settings, self.dir

    def inherited_env(self) -> dict[str, str]:
        # Phoenix has its own venv; it must not see the project's or the tests' OTel settings.
        return {name: value for name, value in os.environ.items()
                if not name.startswith(("OTEL_", "PYTHON", "VIRTUAL_ENV"))}

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                healthy = response.status == 200
        except (OSError, urllib.error.URLError):
            return False
        return healthy and process.port_open(PHOENIX_GRPC_PORT)
