"""``headrace validate``, ``plan`` and ``eval``: the definition layer on the command line.

Exit codes: 0 success (warnings allowed); 1 the definition is invalid, or the plan or the
evaluation failed; 2 a usage error (a bad flag or timestamp, a file that cannot be read, both
``--parameter-values`` and ``--parameter-values-uri``). Every refusal is one line per problem,
never a traceback, and no secret value reaches the output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import click

from engine.cli.help import examples
from engine.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandFailed,
    emit,
    output_option,
)
from engine.definition import Definition, LoadOptions, load, parse_template_args
from engine.definition.reader import is_missing_file, parse_value_args
from engine.definition.scope import EvalContext, ObjectScope, evaluate_text, render
from engine.definition.validate import node_referrers, suggest_or_list
from engine.errors import (
    DefinitionError,
    ExpressionError,
    ParseError,
    PlanError,
    Problem,
    Report,
    ScheduleError,
)
from engine.plan import DEFAULT_MAX_INSTANCES, Plan, plan, resolve_fields, schedule_spec
from engine.schedule import format_timestamp, parse_timestamp

#: A plan that fails in many instances reports this many distinct problems, then a count.
MAX_PROBLEM_LINES = 20


def parameter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The parameter flags of ``aws datapipeline put-pipeline-definition``, plus --lenient,
    --strict and the CloudFormation template flags."""
    func = click.option("--strict", "strict_fields", is_flag=True,
                        help="A field the object's type does not have is an error (by default "
                             "a warning: the service ran such definitions).")(func)
    func = click.option("--template-parameters", "template_parameters", multiple=True,
                        metavar="KEY=VALUE",
                        help="For a CloudFormation template: values of its parameters, of "
                             "other resources (keyed by logical id), Fn::GetAtt "
                             "(LogicalId.Attribute), Fn::ImportValue (export name) and pseudo "
                             "parameters (AWS::Region...). Several may follow one flag.")(func)
    func = click.option("--resource", metavar="LOGICAL_ID",
                        help="For a CloudFormation template with several "
                             "AWS::DataPipeline::Pipeline resources: the one to read.")(func)
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
    """The parameter flags as :class:`LoadOptions`; flag misuse is a click usage error."""
    options = LoadOptions(
        parameter_objects=kwargs.get("parameter_objects"),
        parameter_values_uri=kwargs.get("parameter_values_uri"),
        parameter_values=list(kwargs.get("parameter_values") or ()),
        lenient=bool(kwargs.get("lenient")),
        resource=kwargs.get("resource"),
        template_parameters=list(kwargs.get("template_parameters") or ()),
        strict_fields=bool(kwargs.get("strict_fields")),
    )
    if options.parameter_values and options.parameter_values_uri:
        raise click.UsageError("--parameter-values and --parameter-values-uri cannot be used "
                               "together (as in the AWS CLI)")
    try:
        parse_value_args(options.parameter_values)
    except ParseError as exc:
        raise click.BadParameter(exc.problems[0].message,
                                 param_hint="--parameter-values") from None
    try:
        parse_template_args(options.template_parameters)
    except ParseError as exc:
        raise click.BadParameter(exc.problems[0].message,
                                 param_hint="--template-parameters") from None
    return options


def timestamp(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ScheduleError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def window(start: str | None, end: str | None, start_flag: str = "--start",
           end_flag: str = "--end") -> tuple[datetime | None, datetime | None]:
    """The two ends of a window; an end not after its start is a usage error (exit 2), the
    same on every command that takes one."""
    start_ts, end_ts = timestamp(start, start_flag), timestamp(end, end_flag)
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise click.BadParameter(
            f"{format_timestamp(end_ts)} is not after {start_flag} "
            f"{format_timestamp(start_ts)} (swapped?)", param_hint=end_flag)
    return start_ts, end_ts


def print_problems(problems: list[Problem], stream: Any = None) -> None:
    stream = stream or sys.stderr
    for problem in problems:
        click.echo(str(problem), file=stream)


def problem_json(problem: Problem) -> dict[str, object]:
    """``{"file", "id", "field", "message"}``, plus ``line`` (and ``column``) where they are
    known. ``file`` is the file the finding is in (``--parameter-values`` for the flag)."""
    out: dict[str, object] = {"file": problem.file, "id": problem.object_id,
                              "field": problem.field, "message": problem.message}
    if problem.line is not None:
        out["line"] = problem.line
        if problem.column is not None:
            out["column"] = problem.column
    return out


def load_or_exit(definition: str, kwargs: dict[str, Any], *, strict: bool,
                 output: str = "text", exit_code: int = EXIT_USAGE) -> tuple[Definition, Report]:
    """Load a definition for a command that needs it to be valid. A refused definition exits
    with ``exit_code``; a file that cannot be read exits 2 (usage)."""
    options = load_options(kwargs)
    try:
        loaded, report = load(definition, options, strict=strict)
    except ParseError as exc:
        code = EXIT_USAGE if is_missing_file(exc) else exit_code
        _emit_refusal(exc.problems, exc.warnings, output, code)
        sys.exit(code)
    if report.errors:
        _emit_refusal(report.errors, report.warnings, output, exit_code)
        sys.exit(exit_code)
    return loaded, report


def _emit_refusal(errors: list[Problem], warnings: list[Problem], output: str,
                  exit_code: int) -> None:
    message = f"definition refused: {len(errors)} error(s)"
    if output == "json":
        click.echo(json.dumps({"valid": False, "errors": [problem_json(p) for p in errors],
                               "warnings": [problem_json(p) for p in warnings],
                               "error": {"message": message, "exitCode": exit_code,
                                         "kind": "failed"}}, indent=2))
    else:
        print_problems(warnings + errors)
        click.echo(message, err=True)


def _fail(message: str, loaded: Definition | None = None, code: int = EXIT_FAILED) -> NoReturn:
    """Refuse with ``message`` (secrets scrubbed): ``error:`` lines, or JSON under
    ``--output json``."""
    raise CommandFailed(loaded.mask(message) if loaded is not None else message, code)


# --- validate ---------------------------------------------------------------------------------

@click.command(epilog=examples(
    'headrace validate pipeline.json',
    'headrace validate pipeline.json --parameter-values myBucket=s3://data myDays=1 myDays=2',
    'headrace validate pipeline.json --parameter-values-uri values.json --strict --output json',
    'headrace validate stack.yaml --resource Nightly --template-parameters Env=prod',
))
@click.argument("definition")
@parameter_options
@output_option
def validate(definition: str, output: str, **kwargs: Any) -> None:
    """Check a definition like PutPipelineDefinition: exit 0 valid, 1 invalid, 2 usage.

    Unresolved #{myX} references and required parameters without a value are warnings here
    (a template validates before its values exist); plan, eval and run refuse them, and the
    last line says so: "not ready to run", with the values run needs (in JSON: readyToRun,
    runErrors, needsValues)."""
    options = load_options(kwargs)
    try:
        loaded, report = load(definition, options)
    except ParseError as exc:
        _report(output, exc.problems, exc.warnings)
        sys.exit(EXIT_USAGE if is_missing_file(exc) else EXIT_FAILED)
    if not report.ok:
        _report(output, report.errors, report.warnings)
        sys.exit(EXIT_FAILED)
    _, as_run = load(definition, options, strict=True)
    _report(output, report.errors, report.warnings, run_errors=as_run.errors,
            needs=_needs_values(loaded) if as_run.errors else [])
    sys.exit(EXIT_OK)


def _needs_values(definition: Definition) -> list[str]:
    """Ids of the required parameters that have no value (what ``run`` asks for)."""
    params = definition.parameters
    return sorted(d.id for d in params.decls.values()
                  if not d.optional and params.raw_value(d.id) is None)


def _report(output: str, errors: list[Problem], warnings: list[Problem], *,
            run_errors: list[Problem] | None = None, needs: list[str] | None = None) -> None:
    if output == "json":
        body: dict[str, Any] = {"valid": not errors,
                                "errors": [problem_json(p) for p in errors],
                                "warnings": [problem_json(p) for p in warnings]}
        if run_errors is not None:
            body.update({"readyToRun": not run_errors,
                         "runErrors": [problem_json(p) for p in run_errors],
                         "needsValues": needs or []})
        click.echo(json.dumps(body, indent=2))
        return
    print_problems(errors + warnings, sys.stdout)
    if errors:
        click.echo(f"invalid: {len(errors)} error(s), {len(warnings)} warning(s)")
        return
    click.echo(f"valid ({len(warnings)} warning(s))")
    if run_errors:
        line = (f"not ready to run: run refuses it with {len(run_errors)} error(s) (warnings "
                "above, errors when run)")
        if needs:
            flags = " ".join(f"{n}=VALUE" for n in needs)
            line += (f"; it needs a value for {', '.join(needs)}: --parameter-values {flags} "
                     "(or --parameter-values-uri FILE)")
        click.echo(line)


# --- plan -------------------------------------------------------------------------------------

@click.command("plan", epilog=examples(
    'headrace plan pipeline.json --start 2024-01-01T00:00:00 --end 2024-01-02T00:00:00',
    'headrace plan pipeline.json --start 2024-01-01T00:00:00 --end 2024-01-08T00:00:00 \\',
    '    --parameter-values-uri values.json --output json',
))
@click.argument("definition")
@parameter_options
@click.option("--start", required=True, metavar="TS", help="Window start, YYYY-MM-DDTHH:MM:SS.")
@click.option("--end", required=True, metavar="TS", help="Window end (exclusive).")
@click.option("--activation-time", metavar="TS",
              help="Stands in for FIRST_ACTIVATION_DATE_TIME and ondemand activation "
                   "(default: --start).")
@click.option("--max-instances", type=click.IntRange(min=1), default=DEFAULT_MAX_INSTANCES,
              show_default=True,
              help="Refuse a window (a backfill) that holds more instances than this.")
@click.option("--pipeline-id", default="df-local", show_default=True)
@output_option
def plan_cmd(definition: str, start: str, end: str, activation_time: str | None,
             max_instances: int, pipeline_id: str, output: str, **kwargs: Any) -> None:
    """List the instances whose @scheduledStartTime is in [--start, --end), with their fields
    resolved (secrets shown as ****), sorted by (scheduledStartTime, objectId)."""
    start_ts, end_ts = window(start, end)
    activation = timestamp(activation_time, "--activation-time") or start_ts
    assert start_ts is not None and end_ts is not None
    loaded, _ = load_or_exit(definition, kwargs, strict=True, output=output,
                             exit_code=EXIT_FAILED)
    try:
        planned = plan(loaded, start_ts, end_ts, activation=activation,
                       pipeline_id=pipeline_id, max_instances=max_instances)
        rows = plan_rows(loaded, planned)
    except (PlanError, DefinitionError) as exc:
        _fail(str(exc), loaded)
    if output == "json":  # masked again as a whole: defence in depth for secrets
        click.echo(loaded.mask(json.dumps({"instances": rows}, indent=2)))
        return
    if not rows:
        click.echo("no instances in the window")
    for row in rows:
        click.echo(f"{row['scheduledStartTime']}  {row['objectId']:<32} {row['type']:<24} "
                   f"eligible {row['eligibleAt']}")
    click.echo(f"{len(rows)} instance(s)")


def plan_rows(definition: Definition, planned: Plan) -> list[dict[str, Any]]:
    """The ``instances`` of ``plan --output json``: resolved, masked and type-checked fields.

    Raises :class:`PlanError` (one line per problem) when a field cannot be evaluated or its
    value is not of the field's kind."""
    from engine.definition.model import typed_fields  # pydantic models: only plan needs them

    by_id = planned.by_id()
    rows = []
    problems: dict[str, list[str]] = {}
    for inst in planned.instances:
        node_scope = None
        if inst.node is not None:
            node = by_id[inst.node]
            node_scope = ObjectScope(EvalContext(definition), node.object_id,
                                     node.runtime(planned.pipeline_id))
        errors: list[str] = []
        fields = resolve_fields(definition, inst.object_id, inst.runtime(planned.pipeline_id),
                                node_scope, errors=errors, placeholders=True)
        if not errors and inst.type:
            try:
                typed_fields(inst.type, fields, object_id=inst.object_id)
            except PlanError as exc:
                errors.extend(str(exc).splitlines())
        for error in errors:
            problems.setdefault(error, []).append(inst.id)
        rows.append({
            "objectId": inst.object_id,
            "type": inst.type,
            "scheduledStartTime": format_timestamp(inst.scheduled_start),
            "scheduledEndTime": format_timestamp(inst.scheduled_end),
            "eligibleAt": format_timestamp(inst.eligible_at),
            "fields": fields,
        })
    if problems:
        lines = []
        for message, instances in list(problems.items())[:MAX_PROBLEM_LINES]:
            more = f" and {len(instances) - 1} more" if len(instances) > 1 else ""
            lines.append(f"{message} (instance {instances[0]}{more})")
        if len(problems) > MAX_PROBLEM_LINES:
            lines.append(f"... and {len(problems) - MAX_PROBLEM_LINES} more problems")
        raise PlanError("\n".join(lines))
    return rows


# --- eval -------------------------------------------------------------------------------------

@click.command("eval", epilog=examples(
    'headrace eval pipeline.json --object Copy --at 2024-01-01T00:00:00 \\',
    '    "#{format(@scheduledStartTime,\'YYYY-MM-dd\')}"',
    "headrace eval pipeline.json --object Copy --at 2024-01-01T00:00:00 '#{output.directoryPath}'",
))
@click.argument("definition")
@click.argument("expression")
@parameter_options
@click.option("--object", "object_id", required=True, help="Evaluate as this object would.")
@click.option("--at", "at", required=True, metavar="TS",
              help="The instance's @scheduledStartTime.")
@click.option("--pipeline-id", default="df-local", show_default=True)
@output_option
def eval_cmd(definition: str, expression: str, object_id: str, at: str, pipeline_id: str,
             output: str, **kwargs: Any) -> None:
    """Evaluate a string holding #{...} like EvaluateExpression: as the instance of --object
    whose @scheduledStartTime is --at would. Prints the value (a list as JSON); exit 1 on an
    error. A value that read a secret prints as ****.

    The instance's times, @id, @pipelineId, @componentParent and @sphere are known here;
    fields only a running attempt has (@attemptCount, @status, @actualStartTime,
    node.errorMessage...) are refused as "known only at run time" (plan keeps them as
    written)."""
    start = timestamp(at, "--at")
    assert start is not None
    loaded, _ = load_or_exit(definition, kwargs, strict=True, output=output,
                             exit_code=EXIT_FAILED)
    if object_id not in loaded:
        _fail(f"no object {object_id!r}{suggest_or_list(object_id, loaded.objects, 'objects')}")
    runtime = _instance_runtime(loaded, object_id, start, pipeline_id)
    node = None
    referrers = node_referrers(loaded, object_id)
    if referrers:  # an action or a precondition: node is (the first) object that uses it
        node = ObjectScope(EvalContext(loaded), referrers[0],
                           _instance_runtime(loaded, referrers[0], start, pipeline_id))
    ctx = EvalContext(loaded, runtime_placeholders=True)
    try:
        value = evaluate_text(expression, ObjectScope(ctx, object_id, runtime, node))
    except ExpressionError as exc:
        _fail(f"{exc}", loaded)
    except KeyError as exc:
        _fail(f"unknown name {exc.args[0]!r}", loaded)
    if ctx.runtime_only:
        _fail(_runtime_only_message(ctx.runtime_only))
    shown: str | list[str] = "****" if ctx.secret_used else (
        [render(v) for v in value] if isinstance(value, list) else render(value))
    if output == "json":
        emit(output, {"objectId": object_id, "scheduledStartTime": format_timestamp(start),
                      "value": shown, "secret": ctx.secret_used}, "")
    else:
        click.echo(json.dumps(shown) if isinstance(shown, list) else shown)


def _runtime_only_message(names: list[str]) -> str:
    listed = ", ".join(repr(n) for n in names)
    return (f"{listed} {'is' if len(names) == 1 else 'are'} known only at run time (set by "
            "the running attempt); plan shows such expressions as written")


def _instance_runtime(definition: Definition, object_id: str, start: datetime,
                      pipeline_id: str) -> dict[str, object]:
    end = start
    schedules = definition.refs(object_id, "schedule")
    try:
        if schedules:
            end = schedule_spec(definition, schedules[0]).period.after(start)
    except (PlanError, ScheduleError):
        end = start
    return {"@scheduledStartTime": start, "@scheduledEndTime": end,
            "@pipelineId": pipeline_id, "@id": f"@{object_id}_{format_timestamp(start)}",
            "@sphere": "INSTANCE", "@componentParent": object_id}


COMMANDS = [validate, plan_cmd, eval_cmd]
