"""The engine's errors, in the one hierarchy of :mod:`connectors.errors`.

Every error headrace raises on purpose derives from :class:`HeadraceError`, which lives in the
connectors (the lowest layer: connectors never import the engine) with its two families,
:class:`TransientError` (a retry may help) and :class:`TerminalError`. The engine's errors are
terminal, except :class:`RunError`, whose family is decided where it is raised (an attempt can
fail either way). Messages are written for the user: they name where the problem is (file and
line, object id and field, instance and attempt) and what would be valid, and they never
contain a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from connectors.errors import HeadraceError, TerminalError, TransientError

__all__ = [
    "DefinitionError", "ExpressionError", "ExpressionEvalError", "ExpressionSyntaxError",
    "HeadraceError", "NotFound", "ParseError", "PlanError", "Problem", "Report", "RunError",
    "ScheduleError", "Severity", "StoreError", "TerminalError", "TransientError", "UsageError",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding about a definition: where it is and what is wrong."""

    severity: Severity
    message: str
    object_id: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None
    #: the file the finding is in (the definition, a parameter-objects or a values file);
    #: ``--parameter-values`` when it is about a value given on the command line
    file: str | None = None

    def where(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(self.file)
        if self.object_id is not None:
            parts.append(f"object {self.object_id!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        if self.line is not None:
            loc = f"line {self.line}"
            if self.column is not None:
                loc += f", column {self.column}"
            parts.append(loc)
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{self.severity}: {where}: {self.message}" if where else (
            f"{self.severity}: {self.message}"
        )

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "file": self.file,
            "id": self.object_id,
            "field": self.field,
            "message": self.message,
        }
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out


class UsageError(TerminalError):
    """A command was called with arguments that do not fit (exit code 2)."""


class DefinitionError(TerminalError):
    """A definition was refused: it holds one or more errors (each a :class:`Problem`)."""

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        super().__init__("\n".join(str(p) for p in problems))


class ParseError(DefinitionError):
    """The definition file is not valid JSON (or not of a known shape); has line and column."""


class ExpressionError(TerminalError):
    """A ``#{...}`` expression could not be parsed or evaluated.

    ``position`` is the 0-based character offset in the field's text where the problem starts;
    the definition layer adds ``object_id`` and ``field`` when it knows them.
    """

    def __init__(
        self,
        message: str,
        position: int | None = None,
        *,
        object_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.position = position
        self.object_id = object_id
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.object_id is not None:
            parts.append(f"object {self.object_id!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        if self.position is not None:
            parts.append(f"character {self.position}")
        where = ", ".join(parts)
        return f"{where}: {self.message}" if where else self.message

    def located(self, object_id: str | None, field: str | None) -> ExpressionError:
        """Return a copy of this error that names its object and field."""
        err = type(self)(self.message, self.position, object_id=object_id, field=field)
        err.__cause__ = self.__cause__
        return err


class ExpressionSyntaxError(ExpressionError):
    """The text inside ``#{...}`` is not a valid expression."""


class ExpressionEvalError(ExpressionError):
    """A valid expression failed at evaluation: unknown name, wrong argument type, bad value."""


class RuntimeOnlyField(ExpressionEvalError):
    """An expression reads a field only a running instance has (``@attemptCount``,
    ``@actualStartTime``, ``node.errorMessage``...) where no instance runs: ``plan`` keeps such
    an expression as written, ``eval`` says so."""

    def __init__(self, name: str, position: int | None = None, **where: str | None) -> None:
        self.name = name
        super().__init__(f"{name!r} is known only at run time", position, **where)

    def located(self, object_id: str | None, field: str | None) -> ExpressionError:
        return RuntimeOnlyField(self.name, self.position, object_id=object_id, field=field)


class ScheduleError(TerminalError):
    """A schedule, period or timestamp is malformed or out of range."""


class PlanError(TerminalError):
    """Instances could not be planned for the requested window (for example a missing value)."""


class StoreError(TerminalError):
    """The state store refused an operation (unknown pipeline, bad state transition)."""


class NotFound(StoreError):
    """A pipeline, object or instance named by the user does not exist in the store."""


class RunError(HeadraceError):
    """An attempt failed; the message names pipeline, object, attempt and root cause.

    ``transient`` (set where it is raised) tells the attempt runner whether retrying can help:
    the one error of the engine whose family is not its class's.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        self.transient = transient
        super().__init__(message)


@dataclass
class Report:
    """Errors and warnings collected while reading or validating a definition."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, message: str, object_id: str | None = None, field: str | None = None,
              line: int | None = None, column: int | None = None, *,
              file: str | None = None) -> None:
        self.errors.append(Problem("error", message, object_id, field, line, column, file))

    def warn(self, message: str, object_id: str | None = None, field: str | None = None,
             line: int | None = None, column: int | None = None, *,
             file: str | None = None) -> None:
        self.warnings.append(Problem("warning", message, object_id, field, line, column, file))

    def extend(self, other: Report) -> None:
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)

    @property
    def ok(self) -> bool:
        return not self.errors
