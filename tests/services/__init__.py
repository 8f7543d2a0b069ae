"""The real servers tests and benchmarks use, on 127.0.0.1, installed by scripts/install-test-deps.

    python -m tests.services up|down|env [--only pg,mysql,s3,dynamodb,sns,otel]

In Python: ``up(only)`` returns an ``UpResult`` (env, launched, reused), ``down(only)`` stops
what we started, ``environment(only)`` is the env that points at the servers.
"""

from tests.services.base import ServiceError
from tests.services.orchestrate import KEYS, UpResult, down, environment, render, up

__all__ = ["KEYS", "ServiceError", "UpResult", "down", "environment", "render", "up"]
