"""The package's URL constructors, which :mod:`connectors.urls` calls by scheme."""

from __future__ import annotations

from connectors.base import EndpointOptions

from ._endpoint import PostgresEndpoint
from ._sink import PostgresSink
from ._source import PostgresSource


def source_from_url(url: str, options: EndpointOptions) -> PostgresSource:
    """``postgresql://user:pw@host:port/db?table=schema.t`` (or ``options.query``) as a Source."""
    return PostgresSource(PostgresEndpoint.from_url(url, options))


def sink_from_url(url: str, options: EndpointOptions) -> PostgresSink:
    """``postgresql://user:pw@host:port/db?table=schema.t`` as a Sink (``options.create``)."""
    return PostgresSink(PostgresEndpoint.from_url(url, options))
