"""Validation of schedules: Schedule objects (period, start, end, occurrences, with parameter
values when they are expressions), schedule types across the pipeline, and the
cascade-with-backfill warning."""

from __future__ import annotations

from datetime import datetime

from engine.definition.document import DEFAULT_ID
from engine.definition.findings import Findings
from engine.definition.graph import field_owner
from engine.definition.reader import Ref
from engine.definition.scope import EvalContext, ObjectScope, evaluate_text
from engine.errors import ExpressionEvalError, ExpressionSyntaxError, ScheduleError
from engine.schedule import parse_period, parse_timestamp

MIN_SCHEDULE_SECONDS = 15 * 60
MAX_SCHEDULE_SECONDS = 3 * 366 * 86400
START_AT_VALUES = ("FIRST_ACTIVATION_DATE_TIME", "ONDEMAND_ACTIVATION_TIME")


def check_schedule(object_id: str, ctx: Findings) -> None:
    """Period, start, end and occurrences, evaluated with parameter values when they are
    expressions (a template whose values are missing gets a warning)."""
    values: dict[str, str | None] = {}
    for name in ("period", "startDateTime", "startAt", "endDateTime", "occurrences"):
        # each field is checked on its own: a bad period does not hide a bad start or end
        values[name], _ = _schedule_value(object_id, name, ctx)
    period_text = values["period"]
    if period_text is not None and period_text.strip().upper() != "ONDEMAND_PERIOD":
        try:
            period = parse_period(period_text)
        except ScheduleError as exc:
            ctx.error(f"{exc}", object_id, "period")
        else:
            if period.min_seconds < MIN_SCHEDULE_SECONDS:
                ctx.error(f"period {period_text!r} is shorter than the minimum scheduling "
                          "interval of 15 minutes", object_id, "period")
            if period.min_seconds > MAX_SCHEDULE_SECONDS:
                ctx.error(f"period {period_text!r} is longer than the maximum of 3 years",
                          object_id, "period")
    start = None
    if values["startDateTime"] is not None:
        try:
            start = parse_timestamp(values["startDateTime"])
        except ScheduleError as exc:
            ctx.error(str(exc), object_id, "startDateTime")
    if values["startAt"] is not None and values["startAt"].strip().upper() not in START_AT_VALUES:
        ctx.error(f"startAt {values['startAt']!r} is not one of {', '.join(START_AT_VALUES)}",
                  object_id, "startAt")
    if values["endDateTime"] is not None:
        try:
            end = parse_timestamp(values["endDateTime"])
        except ScheduleError as exc:
            ctx.error(str(exc), object_id, "endDateTime")
        else:
            if start is not None and end <= start:
                ctx.error(f"endDateTime {values['endDateTime']} is not after startDateTime "
                          f"{values['startDateTime']}", object_id, "endDateTime")
    if values["occurrences"] is not None:
        try:
            occurrences = int(values["occurrences"].strip())
        except ValueError:
            ctx.error(f"occurrences {values['occurrences']!r} is not a whole number", object_id,
                      "occurrences")
        else:
            if occurrences < 1:
                ctx.error("occurrences must be at least 1", object_id, "occurrences")


def _schedule_value(object_id: str, name: str, ctx: Findings) -> tuple[str | None, bool]:
    values = ctx.definition.field(object_id, name)
    if not values or isinstance(values[0], Ref):
        return None, True
    text = values[0]
    if "#{" not in text:
        return text, True
    try:
        result = evaluate_text(text, ObjectScope(EvalContext(ctx.definition), object_id))
    except ExpressionSyntaxError:
        return None, False  # reported by the expression check
    except (ExpressionEvalError, KeyError) as exc:
        ctx.template_problem(f"cannot be checked until its values are given: {exc}",
                             object_id, name)
        return None, False
    if isinstance(result, list):
        ctx.error("must be a single value, the expression gives a list", object_id, name)
        return None, False
    return str(result), True


def check_schedule_types(ctx: Findings) -> None:
    definition = ctx.definition
    default_type = definition.schedule_type_text
    for obj in definition:
        own = obj.fields.get("scheduleType")
        if own and isinstance(own[0], str) and own[0].strip().lower() == "ondemand" and (
                obj.id != DEFAULT_ID):
            ctx.error("scheduleType ondemand can only be set on the Default object",
                      obj.id, "scheduleType")
    ondemand = isinstance(default_type, str) and default_type.strip().lower() == "ondemand"
    for oid in definition.of_category("activity", "datanode"):
        fields = definition.effective(oid)
        st = fields.get("scheduleType")
        own_type = st[0].strip().lower() if st and isinstance(st[0], str) else None
        if ondemand:
            if own_type not in (None, "ondemand"):
                ctx.error("an ondemand pipeline cannot mix in other schedule types", oid,
                          "scheduleType")
            if "schedule" in fields:
                owner = field_owner(definition, oid, "schedule")
                ctx.warn("an ondemand pipeline runs once per activation; its 'schedule' is not "
                         "used", owner, "schedule")
            continue
        if "schedule" not in fields:
            ctx.error("a scheduled pipeline needs a 'schedule' on every activity and data node "
                      "(set it on Default to apply it to all)", oid, "schedule")


def check_cascade_backfill(ctx: Findings) -> None:
    """AWS's save-time warning: cascade combined with a schedule that starts in the past."""
    definition = ctx.definition
    for oid in definition.of_category("activity", "datanode"):
        mode = definition.first(oid, "failureAndRerunMode")
        if not (isinstance(mode, str) and mode.strip().lower() == "cascade"):
            continue
        for sid in definition.refs(oid, "schedule")[:1]:
            start = _quiet_timestamp(sid, "startDateTime", ctx)
            if start is None or start >= ctx.now:
                continue
            owner = field_owner(definition, oid, "failureAndRerunMode")
            ctx.warn(f"'failureAndRerunMode' is 'cascade' and schedule {sid!r} starts at "
                     f"{start:%Y-%m-%dT%H:%M:%S}, in the past: activating now creates a backfill "
                     "of every interval since then, and a failure can rapidly cascade through "
                     "many instances", owner, "failureAndRerunMode")


def _quiet_timestamp(object_id: str, name: str, ctx: Findings) -> datetime | None:
    """A timestamp field, evaluated with parameter values; None when it cannot be read (its
    problems are reported by the schedule check)."""
    values = ctx.definition.field(object_id, name)
    if not values or isinstance(values[0], Ref):
        return None
    text = values[0]
    try:
        if "#{" in text:
            result = evaluate_text(text, ObjectScope(EvalContext(ctx.definition), object_id))
            if not isinstance(result, str):
                return None
            text = result
        return parse_timestamp(text)
    except (ExpressionSyntaxError, ExpressionEvalError, KeyError, ScheduleError):
        return None
