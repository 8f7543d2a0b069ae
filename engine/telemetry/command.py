"""Telemetry around one CLI command, imported without the OpenTelemetry SDK.

Most commands run with telemetry off (no ``OTEL_*`` variable asks for it); then nothing of
the SDK, its exporters or their HTTP/gRPC stacks is imported (``headrace copy`` reaches its
first byte sooner: the import-graph budget in ``tests/unit/test_copy_imports.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.telemetry.config import read_config

if TYPE_CHECKING:
    from engine.telemetry.setup import Telemetry


@contextmanager
def command_telemetry() -> Iterator[Telemetry | None]:
    """Telemetry for one CLI command: configured on entry, flushed on exit (also when the
    command exits through ``sys.exit`` or an error). Off (and the SDK not imported) unless
    the environment asks for an exporter or its variables need a warning."""
    config = read_config(os.environ)
    if not config.on and not config.warnings:
        yield None
        return
    from engine.telemetry.setup import command_telemetry as configured

    with configured() as telemetry:
        yield telemetry
