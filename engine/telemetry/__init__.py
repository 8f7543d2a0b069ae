"""OpenTelemetry for headrace: traces and metrics of every run, configured by the standard
``OTEL_*`` variables (off when none asks for an exporter).

- :mod:`~engine.telemetry.config`: what the variables ask for.
- :mod:`~engine.telemetry.setup`: providers, exporters, the bounded flush at exit.
- :mod:`~engine.telemetry.export`: exporters that scrub secrets and report failure once.
- :mod:`~engine.telemetry.redact`: the secrets scrubbed from every exported span.
- :mod:`~engine.telemetry.spans`: the spans of a pipeline run (instance, attempt, activity...).
- :mod:`~engine.telemetry.metrics`: counters and histograms.

The data plane's spans (copy stages, AWS, PostgreSQL and MySQL calls) are made in
:mod:`connectors.tracing` with the OpenTelemetry API alone.
"""

from engine.telemetry.config import TelemetryConfig, read_config
from engine.telemetry.redact import add_secrets
from engine.telemetry.setup import Telemetry, build, command_telemetry, configure
from engine.telemetry.spans import PipelineTelemetry, propagation_env

__all__ = ["PipelineTelemetry", "Telemetry", "TelemetryConfig", "add_secrets", "build",
           "command_telemetry", "configure", "propagation_env", "read_config"]
