"""PostgreSQL driver and socket errors as connector errors (transient or not, with COPY's
line and column where the server names them).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import asyncpg

from connectors import errors

COPY_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")


def _driver_error(exc: BaseException, where: str, operation: str, *,
                  connecting: bool = False) -> errors.ConnectorError | None:
    """The connector error for a driver or socket exception, or None when it is not one."""
    kw: dict[str, Any] = {"connector": where, "operation": operation}
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        # client-side errors (a link closed under the driver) carry no server message
        text = f"{exc.message or str(exc) or type(exc).__name__} (SQLSTATE {state})"
        if state in ("28P01", "28000"):
            return errors.AuthenticationFailed(
                f"authentication failed (SQLSTATE {state}); the credentials come from the URL "
                "or the database object's username/*password", **kw)
        if state in ("42P01", "3D000", "3F000"):
            return errors.NotFoundError(text, **kw)
        if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
            return (errors.Unreachable if connecting else errors.ConnectionLost)(text, **kw)
        if state in ("53300", "40001", "40P01", "55P03", "53200"):
            return errors.TransientFault(text, **kw)
        if state[:2] in ("22", "23"):
            line = column = None
            m = COPY_CONTEXT.search(getattr(exc, "context", None) or "")
            if m:
                line = int(m.group(1))
                column = m.group(2)
            column = column or getattr(exc, "column_name", None)
            detail = f", column {column}" if column else ""
            err = errors.BadDataError(f"{exc.message} (SQLSTATE {state}{detail})",
                               line=line, **kw)
            err.sqlstate = state  # type: ignore[attr-defined]
            return err
        err2 = errors.TerminalFault(text, **kw)
        err2.sqlstate = state  # type: ignore[attr-defined]
        return err2
    if isinstance(exc, asyncpg.exceptions.DataError):  # client-side encoding of a value
        return errors.BadDataError(str(exc), **kw)
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError) or (
            isinstance(exc, asyncpg.exceptions.InterfaceError)
            and "connection is closed" in str(exc)):
        return errors.ConnectionLost(str(exc), **kw)
    if isinstance(exc, (OSError, TimeoutError)):
        cls = errors.Unreachable if connecting else errors.ConnectionLost
        return cls(f"{type(exc).__name__}: {exc}", **kw)
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return errors.TerminalFault(str(exc), **kw)
    return None


def map_errors(where: str, operation: str, *,
               connecting: bool = False) -> AbstractContextManager[None]:
    """Re-raise driver and socket errors as :mod:`connectors.errors` (cause kept)."""
    return errors.translated(_driver_error, where, operation, connecting=connecting)
