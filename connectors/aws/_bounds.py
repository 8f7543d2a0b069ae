"""The timeouts and the endpoint of the AWS client the running task uses, for what happens
outside botocore's call (and so outside its timeout handling): a body read that timed out, a
request body the server stopped taking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from connectors.timeouts import Timeouts
from connectors.timeouts import sending as sending_body


@dataclass(frozen=True)
class ClientBounds:
    timeouts: Timeouts
    #: The endpoint as shown in errors: its URL (no query), or "AWS" for the service's own.
    endpoint: str


_DEFAULT = ClientBounds(Timeouts(), "AWS")
_CURRENT: ContextVar[ClientBounds | None] = ContextVar("headrace_aws_client", default=None)


def current() -> ClientBounds:
    return _CURRENT.get() or _DEFAULT


@contextmanager
def using(bounds: ClientBounds) -> Iterator[None]:
    """Inside, :func:`current` is ``bounds`` (set around the life of a client)."""
    token = _CURRENT.set(bounds)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextmanager
def sending(body: object, connector: str, operation: str, target: str) -> Iterator[None]:
    """:func:`connectors.timeouts.sending` with the running client's timeouts; its error names
    ``target`` and the endpoint."""
    bounds = current()
    with sending_body(body, bounds.timeouts, connector=connector, operation=operation,
                      subject=f"{target} (endpoint {bounds.endpoint})"):
        yield
