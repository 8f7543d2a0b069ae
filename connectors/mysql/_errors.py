"""MySQL/MariaDB driver and socket errors as connector errors (transient or not, with the
failing row's number where the server names one).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import asyncmy
import asyncmy.errors
import pymysql.err

from connectors import errors

DRIVER_ERRORS = (pymysql.err.MySQLError, asyncmy.errors.MySQLError)
_UNREACHABLE = {2002, 2003, 2005}
_LOST = {2006, 2013, 2055, 1927, 1053}
_AUTH = {1045, 1044, 1698, 1251}
_NOT_FOUND = {1049, 1146, 1051}
_TRANSIENT = {1040, 1205, 1213, 1203}
_DATA = {1048, 1062, 1136, 1261, 1262, 1263, 1264, 1265, 1292, 1300, 1366, 1367, 1406, 1411,
         1416, 1451, 1452, 1690, 3140, 4025, 4078, 1918}
AT_ROW = re.compile(r"(?:\bat row|^row) (\d+)", re.IGNORECASE)  # "... at row 3", "Row 3 was ..."


def _code_and_text(exc: BaseException) -> tuple[int | None, str]:
    args: tuple[Any, ...] = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, str(exc)


def driver_error(exc: BaseException, where: str, operation: str, *, connecting: bool = False,
              row_base: int = 1) -> errors.ConnectorError | None:
    """The connector error for a driver or socket exception, or None when it is not one.

    ``row_base`` is the source row number of row 1 of the failing statement, so a server
    message "at row N" becomes the row's number in the whole input.
    """
    kw: dict[str, Any] = {"connector": where, "operation": operation}
    if isinstance(exc, DRIVER_ERRORS):
        code, text = _code_and_text(exc)
        label = f"{text} (error {code})" if code is not None else text
        if code in _UNREACHABLE or (connecting and code in _LOST):
            return errors.Unreachable(label, **kw)
        if code in _LOST:
            return errors.ConnectionLost(label, **kw)
        if code in _AUTH:
            return errors.AuthenticationFailed(
                f"access denied (error {code}); the credentials come from the URL or the "
                "data node's username/*password", **kw)
        if code in _NOT_FOUND:
            return errors.NotFoundError(label, **kw)
        if code in _TRANSIENT:
            return errors.TransientFault(label, **kw)
        if code in _DATA or isinstance(exc, pymysql.err.DataError | asyncmy.errors.DataError):
            m = AT_ROW.search(text)
            line = row_base + int(m.group(1)) - 1 if m else None
            return errors.BadDataError(label, line=line, **kw)
        if isinstance(exc, pymysql.err.InterfaceError | asyncmy.errors.InterfaceError):
            return errors.ConnectionLost(label, **kw)
        return errors.TerminalFault(label, **kw)
    if isinstance(exc, OSError | TimeoutError):
        cls = errors.Unreachable if connecting else errors.ConnectionLost
        return cls(f"{type(exc).__name__}: {exc}", **kw)
    return None


def map_errors(where: str, operation: str, *,
               connecting: bool = False) -> AbstractContextManager[None]:
    """Re-raise driver and socket errors as :mod:`connectors.errors` (cause kept)."""
    return errors.translated(driver_error, where, operation, connecting=connecting)
