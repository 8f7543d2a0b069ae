"""What the service layer refuses, named so the CLI and the API can each answer in their way
(an exit code and a line; an AWS error shape)."""

from __future__ import annotations

from engine.errors import HeadraceError, NotFound


class InvalidRequest(HeadraceError):
    """The request does not fit: a bad argument, or a state that does not allow it."""


class PipelineNotFound(NotFound):
    """No pipeline of that id exists (and none did)."""


class PipelineDeleted(NotFound):
    """The pipeline existed and was deleted."""


class ObjectNotFound(NotFound):
    """The pipeline has no component, instance or attempt of that id."""


class TaskNotFound(NotFound):
    """No task of that id is held (never handed out, ended, or its lease lapsed)."""
