"""``headrace validate``, ``plan`` and ``eval``: the definition layer on the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from engine.definition import Definition, LoadOptions, load
from engine.definition.scope import EvalContext, ObjectScope, render
from engine.errors import (
    DefinitionError,
    ExpressionError,
    ParseError,
    PlanError,
    Problem,
    Report,
    ScheduleError,
)
from engine.plan import plan, schedule_spec
from engine.schedule import format_timestamp, parse_timestamp

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parameter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The parameter flags of ``aws datapipeline put-pipeline-definition``, plus --lenient."""
    func = click.option("--lenient", is_flag=True,
                        help="Accept raw newlines in strings and trailing commas (with a "
                             "warning for each).")(func)
    func = click.option("--parameter-values", "parameter_values", multiple=True,
                        metavar="ID=VALUE",
                        help="Parameter values; repeat an id for an array. Several may follow "
                             "one flag, as in the AWS CLI.")(func)
    func = click.option("--parameter-values-uri", metavar="FILE",
                        help="A values file: {\"values\": {...}}.")(func)
    func = click.option("--parameter-objects", metavar="FILE",
                        help="A parameter-objects file; replaces the definition's own.")(func)
    return func


def load_options(kwargs: dict[str, Any]) -> LoadOptions:
    return LoadOptions(
        parameter_objects=kwargs.get("parameter_objects"),
        parameter_values_uri=kwargs.get("parameter_values_uri"),
        parameter_values=list(kwargs.get("parameter_values") or ()),
        lenient=bool(kwargs.get("lenient")),
    )


def timestamp(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ScheduleError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def print_problems(problems: list[Problem], stream: Any = None) -> None:
    stream = stream or sys.stderr
    for problem in problems:
        click.echo(str(problem), file=stream)


def load_or_exit(definition: str, kwargs: dict[str, Any], *, strict: bool,
                 output: str = "text") -> tuple[Definition, Report]:
    """Load a definition for a command that needs it to be valid; exit 2 when it is not."""
    try:
        loaded, report = load(definition, load_options(kwargs), strict=strict)
    except ParseError as exc:
        _emit_refusal(exc.problems, exc.warnings, output)
        sys.exit(EXIT_USAGE)
    if report.errors:
        _emit_refusal(report.errors, report.warnings, output)
        sys.exit(EXIT_USAGE)
    return loaded, report


def _emit_refusal(errors: list[Problem], warnings: list[Problem], output: str) -> None:
    if output == "json":
        click.echo(json.dumps({"valid": False, "errors": [p.as_json() for p in errors],
                               "warnings": [p.as_json() for p in warnings]}, indent=2))
    else:
        print_problems(warnings + errors)
        click.echo(f"definition refused: {len(errors)} error(s)", err=True)


@click.command()
@click.argument("definition")
@parameter_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(definition: str, output: str, **kwargs: Any) -> None:
    """Check a definition like PutPipelineDefinition: exit 0 valid, 1 invalid, 2 usage."""
    try:
        _, report = load(definition, load_options(kwargs))
    except ParseError as exc:
        errors, warnings = exc.problems, exc.warnings
        not_found = any("file not found" in p.message or "cannot read" in p.message
                        for p in errors)
        _report(output, errors, warnings)
        sys.exit(EXIT_USAGE if not_found else EXIT_FAILED)
    _report(output, report.errors, report.warnings)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


def _report(output: str, errors: list[Problem], warnings: list[Problem]) -> None:
    if output == "json":
        click.echo(json.dumps({"valid": not errors,
                               "errors": [p.as_json() for p in errors],
                               "warnings": [p.as_json() for p in warnings]}, indent=2))
        return
    print_problems(errors + warnings, sys.stdout)
    if errors:
        click.echo(f"invalid: {len(errors)} error(s), {len(warnings)} warning(s)")
    else:
        click.echo(f"valid ({len(warnings)} warning(s))")


@click.command("plan")
@click.argument("definition")
@parameter_options
@click.option("--start", required=True, metavar="TS", help="Window start, YYYY-MM-DDTHH:MM:SS.")
@click.option("--end", required=True, metavar="TS", help="Window end (exclusive).")
@click.option("--activation-time", metavar="TS",
              help="Stands in for FIRST_ACTIVATION_DATE_TIME and ondemand activation "
                   "(default: --start).")
@click.option("--pipeline-id", default="df-local", show_default=True)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plan_cmd(definition: str, start: str, end: str, activation_time: str | None,
             pipeline_id: str, output: str, **kwargs: Any) -> None:
    """List the instances a window would run, with their fields resolved."""
    from engine.plan import resolve_fields

    start_ts = timestamp(start, "--start")
    end_ts = timestamp(end, "--end")
    activation = timestamp(activation_time, "--activation-time") or start_ts
    assert start_ts is not None and end_ts is not None
    if end_ts <= start_ts:
        raise click.BadParameter("--end must be after --start", param_hint="--end")
    loaded, _ = load_or_exit(definition, kwargs, strict=True, output=output)
    try:
        planned = plan(loaded, start_ts, end_ts, activation=activation, pipeline_id=pipeline_id)
        rows = []
        for inst in planned.instances:
            node_scope = None
            if inst.node is not None:
                node = planned.by_id()[inst.node]
                node_scope = ObjectScope(EvalContext(loaded), node.object_id,
                                         node.runtime(pipeline_id))
            fields = resolve_fields(loaded, inst.object_id, inst.runtime(pipeline_id),
                                    node_scope)
            rows.append({
                "objectId": inst.object_id,
                "instanceId": inst.id,
                "type": inst.type,
                "scheduledStartTime": format_timestamp(inst.scheduled_start),
                "scheduledEndTime": format_timestamp(inst.scheduled_end),
                "eligibleAt": format_timestamp(inst.eligible_at),
                "dependsOn": inst.depends_on,
                "fields": fields,
            })
    except (PlanError, DefinitionError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if output == "json":
        click.echo(json.dumps({"instances": rows}, indent=2))
        return
    if not rows:
        click.echo("no instances in the window")
    for row in rows:
        click.echo(f"{row['scheduledStartTime']}  {row['objectId']:<32} {row['type']:<24} "
                   f"eligible {row['eligibleAt']}")
    click.echo(f"{len(rows)} instance(s)")


@click.command("eval")
@click.argument("definition")
@click.argument("expression")
@parameter_options
@click.option("--object", "object_id", required=True, help="Evaluate as this object would.")
@click.option("--at", "at", required=True, metavar="TS",
              help="The instance's @scheduledStartTime.")
@click.option("--pipeline-id", default="df-local", show_default=True)
def eval_cmd(definition: str, expression: str, object_id: str, at: str, pipeline_id: str,
             **kwargs: Any) -> None:
    """Evaluate a string holding #{...} like EvaluateExpression; print the value."""
    start = timestamp(at, "--at")
    assert start is not None
    loaded, _ = load_or_exit(definition, kwargs, strict=False)
    if object_id not in loaded:
        from engine.definition.validate import suggest

        click.echo(f"error: no object {object_id!r}{suggest(object_id, loaded.objects)}",
                   err=True)
        sys.exit(EXIT_FAILED)
    end = start
    schedules = loaded.refs(object_id, "schedule")
    try:
        if schedules:
            end = schedule_spec(loaded, schedules[0]).period.after(start)
    except PlanError:
        end = start
    runtime = {"@scheduledStartTime": start, "@scheduledEndTime": end,
               "@pipelineId": pipeline_id, "@id": f"@{object_id}_{format_timestamp(start)}"}
    from engine.definition.expressions import parse_template

    ctx = EvalContext(loaded)
    try:
        value = parse_template(expression).evaluate(ObjectScope(ctx, object_id, runtime))
    except ExpressionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    except KeyError as exc:
        click.echo(f"error: unknown name {exc.args[0]!r}", err=True)
        sys.exit(EXIT_FAILED)
    if ctx.secret_used:
        click.echo("****")
    elif isinstance(value, list):
        click.echo(json.dumps([render(v) for v in value]))
    else:
        click.echo(render(value))


COMMANDS = [validate, plan_cmd, eval_cmd]
