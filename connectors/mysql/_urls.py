"""The package's URL constructors, which :mod:`connectors.urls` calls by scheme."""

from __future__ import annotations

from connectors.base import EndpointOptions

from ._endpoint import MySqlEndpoint
from ._sink import MySqlSink
from ._source import MySqlSource


def source_from_url(url: str, options: EndpointOptions) -> MySqlSource:
    """``mysql://user:pw@host:port/db?table=t`` (or ``options.query``) as a Source."""
    return MySqlSource(MySqlEndpoint.from_url(url, options))


def sink_from_url(url: str, options: EndpointOptions) -> MySqlSink:
    """``mysql://user:pw@host:port/db?table=t`` as a Sink (``options.create``)."""
    return MySqlSink(MySqlEndpoint.from_url(url, options))
