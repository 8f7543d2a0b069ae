"""An instance's scalar fields as the runtime reads them: text, whole numbers, periods.

Each field is evaluated in the context of the instance (``#{@scheduledStartTime}`` and the
other runtime fields), when it is read: an instance actor, an attempt and a precondition poll
read what they need, when they need it. A value that does not evaluate or parse raises a
:class:`~engine.errors.RunError` naming the object and the field (not retried: the definition
has to change).
"""

from __future__ import annotations

from engine.definition.reader import Ref
from engine.definition.scope import render
from engine.errors import RunError, ScheduleError
from engine.runtime.context import PipelineRuntime
from engine.schedule import Period, parse_period
from engine.store.records import InstanceRecord


def field_text(rt: PipelineRuntime, rec: InstanceRecord, name: str) -> str | None:
    """An evaluated scalar field of ``rec``'s object (None when unset or a reference)."""
    values = rt.definition.field(rec.object_id, name)
    if not values or isinstance(values[0], Ref):
        return None
    text = values[0]
    if "#{" not in text:
        return text
    return render(rt.scope(rec).lookup(name))


def field_int(rt: PipelineRuntime, rec: InstanceRecord, name: str,
              default: int | None) -> int | None:
    text = field_text(rt, rec, name)
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise RunError(f"object {rec.object_id!r}, field {name!r}: {text!r} is not a "
                       "whole number", transient=False) from None


def field_period(rt: PipelineRuntime, rec: InstanceRecord, name: str) -> Period | None:
    text = field_text(rt, rec, name)
    if text is None:
        return None
    try:
        return parse_period(text)
    except ScheduleError as exc:
        raise RunError(f"object {rec.object_id!r}, field {name!r}: {exc}",
                       transient=False) from None


def worker_group(rt: PipelineRuntime, rec: InstanceRecord) -> str | None:
    """``workerGroup`` if set, else the id of the ``runsOn`` resource."""
    group = field_text(rt, rec, "workerGroup")
    if group:
        return group.strip()
    values = rt.definition.field(rec.object_id, "runsOn")
    return values[0].id if values and isinstance(values[0], Ref) else None


def cascades(rt: PipelineRuntime, rec: InstanceRecord) -> bool:
    """``failureAndRerunMode: cascade``."""
    text = field_text(rt, rec, "failureAndRerunMode")
    return text is not None and text.strip().lower() == "cascade"
