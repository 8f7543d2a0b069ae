"""What the standard ``OTEL_*`` variables ask for, decided once from an environment mapping.

Only the variables of the OpenTelemetry specification are read. The SDK's exporters read the
rest themselves (endpoints, headers, timeouts, certificates, compression), and so do the SDK's
resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), sampler (``OTEL_TRACES_SAMPLER``,
``OTEL_TRACES_SAMPLER_ARG``), span limits and batch processor (``OTEL_BSP_*``).

Default when nothing is set: **off**. An exporter is used when it is named
(``OTEL_TRACES_EXPORTER=otlp|console``, ``OTEL_METRICS_EXPORTER=otlp|console``) or when an OTLP
endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, or the per-signal ``..._TRACES_ENDPOINT`` /
``..._METRICS_ENDPOINT``), which then implies ``otlp``. Exporting to the specification's default
``localhost:4318`` when nobody asked would only produce connection errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

KNOWN_EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class Signal:
    """One signal's choice: exporters (``otlp``/``console``) and the OTLP protocol."""

    name: str  # "traces" | "metrics"
    exporters: tuple[str, ...] = ()
    protocol: str = DEFAULT_PROTOCOL
    endpoint: str | None = None

    @property
    def on(self) -> bool:
        return bool(self.exporters)


@dataclass(frozen=True)
class TelemetryConfig:
    traces: Signal
    metrics: Signal
    disabled: bool = False
    #: problems with the variables, each a sentence naming the variable (logged as warnings)
    warnings: tuple[str, ...] = field(default=())

    @property
    def on(self) -> bool:
        return not self.disabled and (self.traces.on or self.metrics.on)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _signal(env: Mapping[str, str], name: str, warnings: list[str]) -> Signal:
    upper = name.upper()
    variable = f"OTEL_{upper}_EXPORTER"
    endpoint = (env.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None)
    raw = env.get(variable)
    if raw is None or not raw.strip():
        names = ["otlp"] if endpoint else []
    else:
        names = []
        for item in raw.split(","):
            item = item.strip().lower()
            if not item or item == "none":
                continue
            if item not in KNOWN_EXPORTERS:
                warnings.append(f"{variable}: unknown exporter {item!r} ignored (headrace "
                                f"knows {', '.join(KNOWN_EXPORTERS)})")
                continue
            if item not in names:
                names.append(item)
        if raw.strip().lower() == "none":
            names = []
    protocol_var = f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL"
    protocol = (env.get(protocol_var) or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or DEFAULT_PROTOCOL).strip().lower()
    if protocol not in PROTOCOLS:
        source = protocol_var if env.get(protocol_var) else "OTEL_EXPORTER_OTLP_PROTOCOL"
        warnings.append(f"{source}: protocol {protocol!r} is not supported; using "
                        f"{DEFAULT_PROTOCOL} (supported: {', '.join(PROTOCOLS)})")
        protocol = DEFAULT_PROTOCOL
    return Signal(name, tuple(names), protocol, endpoint)


def read_config(env: Mapping[str, str]) -> TelemetryConfig:
    """The telemetry ``env`` asks for (see the module docstring for the defaults)."""
    warnings: list[str] = []
    if _true(env.get("OTEL_SDK_DISABLED")):
        return TelemetryConfig(Signal("traces"), Signal("metrics"), disabled=True)
    traces = _signal(env, "traces", warnings)
    metrics = _signal(env, "metrics", warnings)
    return TelemetryConfig(traces, metrics, warnings=tuple(warnings))
