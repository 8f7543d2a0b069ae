"""The one error hierarchy of headrace, and the errors raised by connectors.

::

    HeadraceError                      transient = False
    ├── TransientError                 transient = True: a retry may help
    │   └── ConnectionLost, Throttled, Unreachable, TransientFault, TimedOut (connector errors)
    └── TerminalError                  a retry will not help
        ├── AuthenticationFailed, NotFoundError, BadDataError, DiskFull,
        │   ConfigError, TerminalFault                                      (connector errors)
        └── the engine's: DefinitionError, ExpressionError, ScheduleError, PlanError,
            StoreError, UsageError (``engine.errors``)
    ConnectorError (HeadraceError): the base every connector error also has (connector, operation)

The base lives here, at the lowest layer, so that connectors never import the engine.
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


class HeadraceError(Exception):
    """Base of every error headrace raises on purpose, in the connectors and in the engine.

    ``transient`` says whether trying again can help; it belongs to the class (its family
    below), never to a reading of the message. The engine's errors (``engine.errors``) derive
    from these too.
    """

    transient: bool = False


class TransientError(HeadraceError):
    """Family of the faults that may pass: a retry can help (lost connection, throttling,
    a server too busy or restarting)."""

    transient = True


class TerminalError(HeadraceError):
    """Family of the faults a retry will not fix (bad input, missing table, refused
    credentials, a definition that cannot run)."""

    transient = False


class ConnectorError(HeadraceError):
    """Base of the errors a connector raises; names the connector (its display name, never a
    secret) and the operation. Every concrete one below is also in a family."""

    def __init__(self, message: str, *, connector: str | None = None,
                 operation: str | None = None) -> None:
        self.connector = connector
        self.operation = operation
        self.message = message
        prefix = ": ".join(p for p in (connector, operation) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConnectionLost(ConnectorError, TransientError):
    """The connection to the server broke in the middle of an operation."""


class Throttled(ConnectorError, TransientError):
    """The service asked us to slow down (503 SlowDown, ProvisionedThroughputExceeded)."""


class Unreachable(ConnectorError, TransientError):
    """The server could not be reached at all (connection refused, DNS failure, timeout)."""


class TransientFault(ConnectorError, TransientError):
    """The server failed the operation for a reason that may pass: busy (too many connections,
    a 5xx), a deadlock or serialization failure, an object that changed while read."""


class TimedOut(ConnectorError, TransientError):
    """The server (or the link to it) was silent for longer than a configured timeout.

    ``phase`` is what was being waited for (``connect``, ``greeting``, ``auth``, ``session``,
    ``read``, ``write``, ``commit``), ``seconds`` how long, ``setting`` the endpoint setting
    that bounds it (``connect_timeout``, ``read_timeout``), so the message says what to raise;
    ``subject`` (the object, the endpoint) goes before it.
    """

    def __init__(self, *, phase: str, seconds: float, setting: str,
                 connector: str | None = None, operation: str | None = None,
                 subject: str | None = None) -> None:
        self.phase = phase
        self.seconds = seconds
        self.setting = setting
        text = (f"timed out in phase {phase}: no answer from the server for {seconds:g} s "
                f"({setting}={seconds:g})")
        super().__init__(f"{subject}: {text}" if subject else text,
                         connector=connector, operation=operation)


class AuthenticationFailed(ConnectorError, TerminalError):
    """Credentials are missing or wrong; the message names the sources that were tried."""


class NotFoundError(ConnectorError, TerminalError):
    """The bucket, key, table or database named does not exist."""


class BadDataError(ConnectorError, TerminalError):
    """A record could not be read or written: malformed, mistyped, wrong column count.

    ``location`` names the file (or object) and ``line``/``column`` where it was found.
    """

    def __init__(self, message: str, *, connector: str | None = None,
                 operation: str | None = None, location: str | None = None,
                 line: int | None = None, column: int | str | None = None) -> None:
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


class DiskFull(ConnectorError, TerminalError):
    """The local disk ran out of space (ENOSPC) while writing."""


class ConfigError(ConnectorError, TerminalError):
    """A connector was configured wrongly (bad URL, unknown format option)."""


class TerminalFault(ConnectorError, TerminalError):
    """The server or the system refused the operation for a reason a retry will not change
    (an SQL error, a 4xx, an I/O error on a local file)."""


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
    except HeadraceError:
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
