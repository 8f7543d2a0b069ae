"""Synchronous botocore clients for readiness probes and fixtures, always on loopback."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.config import Config

from tests.services.config import REGION, S3_ACCESS_KEY, S3_SECRET_KEY

_PROBE_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})


def client(service: str, endpoint: str, *, secret: str = S3_SECRET_KEY) -> Any:
    """A botocore client for ``service`` at ``endpoint`` with explicit credentials.

    Explicit keys and region mean botocore never walks its credential chain, so it never
    contacts the instance-metadata address.
    """
    session = botocore.session.get_session()
    return session.create_client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=secret,
        config=_PROBE_CONFIG,
    )
