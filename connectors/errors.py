"""Errors raised by connectors.

Library exceptions (botocore, asyncpg, aiomysql, OSError) are translated into these at the
connector boundary, keeping the original as ``__cause__``; nothing above the connectors needs to
know the driver's exception types. Whether to retry is a property of the class (``transient``),
never a string match. Messages name the connector and the operation and never hold a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio


class ConnectorError(Exception):
    """Base of connector errors. ``transient`` says whether a retry can help."""

    transient: bool = False

    def __init__(self, message: str, *, connector: str | None = None,
                 operation: str | None = None) -> None:
        self.connector = connector
        self.operation = operation
        self.message = message
        prefix = ": ".join(p for p in (connector, operation) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TransientError(ConnectorError):
    """A fault that may pass: lost connection, throttling, a truncated read, a 5xx."""

    transient = True


class ConnectionLost(TransientError):
    """The connection to the server broke in the middle of an operation."""


class Throttled(TransientError):
    """The service asked us to slow down (503 SlowDown, ProvisionedThroughputExceeded)."""


class Unreachable(TransientError):
    """The server could not be reached at all (connection refused, DNS failure, timeout)."""


class TerminalError(ConnectorError):
    """A fault that a retry will not fix."""


class AuthenticationFailed(TerminalError):
    """Credentials are missing or wrong; the message names the sources that were tried."""


class NotFoundError(TerminalError):
    """The bucket, key, table or database named does not exist."""


class BadDataError(TerminalError):
    """A record could not be read or written: malformed, mistyped, wrong column count.

    ``location`` names the file (or object) and ``line``/``column`` where it was found.
    """

    def __init__(self, message: str, *, connector: str | None = None,
                 operation: str | None = None, location: str | None = None,
                 line: int | None = None, column: int | None = None) -> None:
        self.location = location
        self.line = line
        self.column = column
        where = []
        if location:
            where.append(location)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full, connector=connector, operation=operation)


class DiskFull(TerminalError):
    """The local disk ran out of space (ENOSPC) while writing."""


class ConfigError(TerminalError):
    """A connector was configured wrongly (bad URL, unknown format option)."""


def connect_stage(operation: str) -> str:
    """What an error while connecting names: the connect, and what it was for."""
    return operation if operation == "connect" else f"connect for {operation}"


@contextmanager
def translated(mapper: Callable[..., ConnectorError | None], where: str, operation: str, *,
               connecting: bool = False) -> Iterator[None]:
    """Re-raise what ``mapper(exc, where, operation, connecting=...)`` maps (a driver's or a
    socket's error) as that connector error, cause kept; anything it does not map as it is."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        mapped = mapper(exc, where, operation, connecting=connecting)
        if mapped is None:
            raise
        raise mapped from exc


def root_cause(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error that caused a task group to fail (a copy, parallel parts), out of its group.

    A stage that failed because its neighbour went away (a closed stream) is a consequence, not
    the cause, so other errors win over ``anyio.BrokenResourceError``/``ClosedResourceError``.
    """
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    consequences = (anyio.BrokenResourceError, anyio.ClosedResourceError)
    for exc in leaves:
        if not isinstance(exc, consequences):
            return exc
    return leaves[0] if leaves else group


@contextmanager
def single_failure() -> Iterator[None]:
    """Around a task group: re-raise its failure as the one error that caused it
    (:func:`root_cause`), with that error's own ``__cause__`` (the driver's exception) kept."""
    try:
        yield
    except BaseExceptionGroup as group:
        cause = root_cause(group)
        raise cause from cause.__cause__
