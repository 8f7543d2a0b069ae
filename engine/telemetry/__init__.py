"""OpenTelemetry for headrace: traces and metrics of every run, configured by the standard
``OTEL_*`` variables (off when none asks for an exporter).

- :mod:`~engine.telemetry.config`: what the variables ask for.
- :mod:`~engine.telemetry.command`: telemetry around one CLI command (no SDK import when off).
- :mod:`~engine.telemetry.setup`: providers, exporters, the bounded flush at exit.
- :mod:`~engine.telemetry.export`: exporters that scrub secrets and report failure once.
- :mod:`~engine.telemetry.redact`: the secrets scrubbed from every exported span.
- :mod:`~engine.telemetry.spans`: the spans of a pipeline run (instance, attempt, activity...).
- :mod:`~engine.telemetry.metrics`: counters and histograms.

The data plane's spans (copy stages, AWS, PostgreSQL and MySQL calls) are made in
:mod:`connectors.tracing` with the OpenTelemetry API alone.

The names below are imported on first use (PEP 562), so importing one light module of this
package (``config``, ``redact``, ``command``) does not load the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.telemetry.command import command_telemetry
from engine.telemetry.config import TelemetryConfig, read_config
from engine.telemetry.redact import add_secrets

if TYPE_CHECKING:
    from engine.telemetry.setup import Telemetry, build, configure
    from engine.telemetry.spans import PipelineTelemetry, propagation_env

#: name -> module, for the names imported on first use
_LAZY = {"Telemetry": "engine.telemetry.setup", "build": "engine.telemetry.setup",
         "configure": "engine.telemetry.setup", "PipelineTelemetry": "engine.telemetry.spans",
         "propagation_env": "engine.telemetry.spans"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["PipelineTelemetry", "Telemetry", "TelemetryConfig", "add_secrets", "build",
           "command_telemetry", "configure", "propagation_env", "read_config"]
