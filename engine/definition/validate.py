"""Validation of a definition, like ``PutPipelineDefinition`` and a little stricter.

Every finding is a :class:`~engine.errors.Problem` naming the object id and field, and saying
what would be valid. ``strict`` is for plan, run and activation: a ``#{myX}`` that resolves to
nothing and a required parameter without a value are errors there, warnings in ``validate`` (so
a template validates before its values exist).

Limits (reference section 1.5): the non-adjustable ones are errors (fields per object, bytes per
field and object, retries per task, schedule period), the adjustable ones warnings (objects per
pipeline, active instances per object, parameters per definition). Headrace runs on the user's
machines, so delays and timeouts below AWS's minimums are warnings; the 15-minute schedule
period stays an error.

Decisions where AWS is silent:

* Fields AWS requires but headrace does not need (``role`` on SnsAlarm and the service-run
  preconditions, ``role``/``resourceRole`` on Ec2Resource, ``jdbcDriverClass``, ``runsOn`` or
  ``workerGroup`` on activities) are warnings when missing.
* A field the type does not have is a warning with a did-you-mean (the service ran such files:
  ``maxActiveInstances`` on a Schedule is in one of AWS's own samples), an error with
  ``--strict``; a reference it holds must still exist. Errors are kept for what cannot run.
* ``"type": "Default"`` on the Default object is accepted silently (CloudFormation's examples
  carry it); configuration objects (EmrConfiguration, Property, ShellScriptConfig, the EBS
  objects) get no warning of their own: they are never run.
* A value of the wrong kind that holds a ``${...}`` placeholder of another templating tool is a
  warning in ``validate`` (the tool fills it before upload) and an error when strict.
* ``#{node.x}`` in an action or precondition must resolve on every object that uses it.
* The cascade-with-backfill warning is given when a schedule with ``failureAndRerunMode``
  cascade starts before ``now`` (AWS warns for a backfill; its 1-day block is not reproduced).
* An ondemand pipeline's ``schedule`` fields are ignored with a warning.
"""

from __future__ import annotations

from datetime import UTC, datetime

from engine.definition.check_expressions import check_expression
from engine.definition.check_incremental import check_incremental
from engine.definition.check_locations import check_locations
from engine.definition.check_schedules import (
    check_cascade_backfill,
    check_schedule,
    check_schedule_types,
)
from engine.definition.check_secrets import (
    CREDENTIAL_FIELDS,
    check_secret_references,
    secret_problem,
    uses_named_connection,
)
from engine.definition.document import DEFAULT_ID, Definition
from engine.definition.expressions import parse_template
from engine.definition.findings import Findings, shown, suggest, suggest_or_list
from engine.definition.graph import dependency_graph, find_cycle, node_referrers
from engine.definition.reader import FieldValue, RawDefinition, Ref
from engine.definition.types import (
    ALL_FIELD_NAMES,
    PIG_REFUSAL,
    TYPES,
    FieldSpec,
    TypeSpec,
    category_of,
    is_user_field,
    ref_allows,
)
from engine.errors import ExpressionSyntaxError, Report, ScheduleError
from engine.schedule import parse_period, parse_timestamp, short

__all__ = ["dependency_graph", "find_cycle", "node_referrers", "suggest", "suggest_or_list",
           "validate_definition"]

MAX_FIELDS_PER_OBJECT = 50
MAX_FIELD_BYTES = 10_240
MAX_OBJECT_BYTES = 15_360
MAX_NAME_BYTES = 256
MAX_OBJECTS = 100
MAX_PARAMETERS = 50
MAX_RETRIES = 5
MAX_ACTIVE_INSTANCES = 5
_KIND_BY_NAME: dict[str, FieldSpec] = {}
for _spec in TYPES.values():
    for _name, _fs in _spec.all_fields.items():
        _KIND_BY_NAME.setdefault(_name, _fs)


def validate_definition(definition: Definition, *, strict: bool = False,
                        report: Report | None = None, now: datetime | None = None,
                        strict_fields: bool = False) -> Report:
    """Check a whole definition; returns the report (errors and warnings).

    ``now`` (default: the current time) decides which schedules start in the past, for the
    cascade-with-backfill warning; ``strict_fields`` (``--strict``) makes a field the type does
    not have an error instead of a warning."""
    report = report if report is not None else Report()
    ctx = Findings(definition, report, strict, set(), now or datetime.now(UTC), strict_fields)
    _check_raw(definition.raw, ctx)
    for obj in definition:
        _check_object(obj.id, ctx)
    check_schedule_types(ctx)
    check_cascade_backfill(ctx)
    _check_cycles(ctx)
    definition.parameters.check_values(report, missing_is_error=strict)
    definition.parameters.check_secret_references(report, secret_problem,
                                                  missing_is_error=strict)
    _check_unread_values(ctx)
    if len(definition.parameters.decls) > MAX_PARAMETERS:
        ctx.warn(f"{len(definition.parameters.decls)} parameters: AWS allows {MAX_PARAMETERS} "
                 "per definition", None, None)
    return report


def _check_unread_values(ctx: Findings) -> None:
    """A value for an id that no parameter declares and no expression reads does nothing: most
    often a typo of a declared id (``myDataDr``), whose default is then used in silence. A
    warning with a did-you-mean (the service accepted such values; an undeclared id that an
    expression does read is a String, as AWS's samples use it)."""
    params = ctx.definition.parameters
    undeclared = [key for key in params.values if params.decl(key) is None]
    if not undeclared:
        return
    read = _names_read(ctx.definition)
    declared = [d.id for d in params.decls.values()]
    for key in undeclared:
        if key in read or key.lstrip("*") in read or f"*{key}" in read:
            continue
        file, line = params.origins.get(key, (None, None))
        hint = suggest(key, declared) or (
            f" (declared: {', '.join(repr(d) for d in sorted(declared)[:8])})" if declared
            else " (the definition declares no parameters)")
        ctx.report.warn(f"a value for {key!r}, which no parameter declares and no expression "
                        f"reads: it is not used{hint}", key, "value", line=line,
                        file=file or ctx.definition.raw.source)


def _names_read(definition: Definition) -> set[str]:
    """The first name of every ``#{...}`` path in the definition's fields and parameter
    values (``#{myX}``, ``#{myX.y}`` -> ``myX``)."""
    texts: list[str] = []
    for obj in definition.raw.objects:
        for field_values in obj.fields.values():
            texts.extend(v for v in field_values if isinstance(v, str) and "#{" in v)
    for given in definition.parameters.values.values():
        texts.extend(v for v in given if "#{" in v)
    for decl in definition.parameters.decls.values():
        texts.extend(v for v in decl.default or () if "#{" in v)
    names: set[str] = set()
    for text in texts:
        try:
            names.update(r.path[0] for r in parse_template(text).references())
        except (ExpressionSyntaxError, RecursionError):
            continue  # reported by the expression checks
    return names


# --- file-level ------------------------------------------------------------------------------

def _check_raw(raw: RawDefinition, ctx: Findings) -> None:
    seen: set[str] = set()
    for obj in raw.objects:
        if obj.id in seen:
            ctx.error("two objects have this id (ids must be unique)", obj.id, "id")
        seen.add(obj.id)
    if len(raw.objects) > MAX_OBJECTS:
        ctx.warn(f"{len(raw.objects)} objects: AWS allows {MAX_OBJECTS} per pipeline by default "
                 "(an adjustable limit; headrace has none)", None, None)
    if not raw.objects:
        ctx.error("the definition has no objects", None, None)


# --- one object ------------------------------------------------------------------------------

def _check_object(object_id: str, ctx: Findings) -> None:
    definition = ctx.definition
    obj = definition.objects[object_id]
    _check_limits(object_id, ctx)
    type_name = obj.type
    effective_type = definition.type_of(object_id)
    spec = TYPES.get(effective_type or "")
    default_named = object_id == DEFAULT_ID and type_name == DEFAULT_ID
    if type_name is not None and type_name not in TYPES and not default_named:
        ctx.error(f"unknown type {type_name!r}{suggest(type_name, TYPES)}; known types: "
                  f"{', '.join(sorted(TYPES))}", object_id, "type")
    if object_id == DEFAULT_ID and type_name is not None and not default_named:
        ctx.warn("the Default object should not have a type", object_id, "type")
    _check_parent(object_id, ctx)
    for name, values in obj.fields.items():
        _check_own_field(object_id, spec, name, values, ctx)
    if spec is not None:
        _check_type_rules(object_id, spec, ctx)
    for name, values in definition.effective(object_id).items():
        for value in values:
            if isinstance(value, str) and "#{" in value:
                check_expression(object_id, name, value, ctx)
    check_locations(object_id, ctx)
    check_incremental(object_id, ctx)
    check_secret_references(object_id, ctx)


def _check_limits(object_id: str, ctx: Findings) -> None:
    obj = ctx.definition.objects[object_id]
    if len(object_id.encode()) > MAX_NAME_BYTES:
        ctx.error(f"id is longer than {MAX_NAME_BYTES} bytes", object_id, "id")
    if len(obj.fields) > MAX_FIELDS_PER_OBJECT:
        ctx.error(f"{len(obj.fields)} fields: an object may have at most "
                  f"{MAX_FIELDS_PER_OBJECT}", object_id, None)
    total = len(object_id.encode()) + len(obj.name.encode())
    for name, values in obj.fields.items():
        if len(name.encode()) > MAX_NAME_BYTES:
            ctx.error(f"field name is longer than {MAX_NAME_BYTES} bytes", object_id, name[:40])
        for value in values:
            size = len(str(value.id if isinstance(value, Ref) else value).encode())
            total += size + len(name.encode())
            if size > MAX_FIELD_BYTES:
                ctx.error(f"value is {size} bytes: a field may hold at most {MAX_FIELD_BYTES} "
                          "bytes (put long scripts in a file and use scriptUri)", object_id, name)
            elif isinstance(value, str) and not value.strip() and name != "myComment":
                ctx.warn("empty value (AWS refuses to save an empty string field)",
                         object_id, name)
    if total > MAX_OBJECT_BYTES:
        ctx.error(f"object is {total} bytes: AWS allows {MAX_OBJECT_BYTES} per object, field "
                  "names included", object_id, None)


def _check_parent(object_id: str, ctx: Findings) -> None:
    """A parent chain that loops is an error on every object whose chain runs into the loop.
    Chains known to end are remembered, so a long chain is walked once, not once per object."""
    definition = ctx.definition
    ends = ctx.chains_that_end
    seen = [object_id]
    on_path = {object_id}
    current = object_id
    while current not in ends:
        parents = definition.objects[current].fields.get("parent", [])
        target = parents[0] if parents else None
        if not isinstance(target, Ref) or target.id not in definition:
            break  # no parent, a wrong kind or a missing reference (reported elsewhere)
        if target.id in on_path:
            cycle = " -> ".join([*seen, target.id])
            ctx.error(f"parent chain is a cycle: {cycle}", object_id, "parent")
            return
        seen.append(target.id)
        on_path.add(target.id)
        current = target.id
    ends.update(seen)


def _check_own_field(object_id: str, spec: TypeSpec | None, name: str,
                     values: list[FieldValue], ctx: Findings) -> None:
    if name.startswith("@"):
        ctx.error(f"{name!r} is a runtime field set by the engine; it cannot be written",
                  object_id, name)
        return
    base = name[1:] if name.startswith("*") else name
    if is_user_field(base):
        for value in values:
            if isinstance(value, Ref):
                _check_ref_target(object_id, name, value, FieldSpec("ref"), ctx)
        return
    if spec is not None and spec.runs != "ignore":
        fs = spec.all_fields.get(name)
        if fs is None:
            hint = suggest(name, spec.all_fields)
            if base.startswith("my") or base.startswith("My"):
                hint = (" (user fields start with 'my' followed by an upper-case letter or "
                        "'_', e.g. 'myComment')")
            ctx.unknown_field(f"{spec.name} has no field {name!r}{hint}", object_id, name)
            _check_refs_exist(object_id, name, values, ctx)
            return
    else:
        fs = (spec.all_fields.get(name) if spec is not None else None) or _KIND_BY_NAME.get(name)
        if fs is None:
            if spec is not None:  # an ignored type (Ec2Resource): AWS knows more fields
                ctx.warn(f"{spec.name} field {name!r} is not known to headrace and is ignored",
                         object_id, name)
                return
            ctx.unknown_field(f"unknown field {name!r}{suggest(name, ALL_FIELD_NAMES)} (user "
                              "fields start with 'my', e.g. 'myComment')", object_id, name)
            _check_refs_exist(object_id, name, values, ctx)
            return
    _check_values(object_id, name, fs, values, ctx)


def _check_refs_exist(object_id: str, name: str, values: list[FieldValue],
                      ctx: Findings) -> None:
    """A field headrace does not know may still refer to an object: that one must exist."""
    for value in values:
        if isinstance(value, Ref):
            _check_ref_target(object_id, name, value, FieldSpec("ref"), ctx)


def _check_values(object_id: str, name: str, fs: FieldSpec, values: list[FieldValue],
                  ctx: Findings) -> None:
    if len(values) > 1 and not fs.multi:
        ctx.error(f"{name!r} takes one value, got {len(values)}", object_id, name)
    for value in values:
        if fs.kind == "ref":
            if not isinstance(value, Ref):
                ctx.error(f"{name!r} must be a reference, {{\"ref\": \"<object id>\"}}, got the "
                          f"string {shown(name, value)}", object_id, name)
            else:
                _check_ref_target(object_id, name, value, fs, ctx)
            continue
        if isinstance(value, Ref):
            if fs.kind not in ("any",):
                ctx.error(f"{name!r} takes a {_kind_text(fs)}, not a reference", object_id, name)
            continue
        if "#{" in value:
            continue  # checked when evaluated (plan and run)
        problem = _kind_problem(fs, value)
        if problem and "${" in value:
            ctx.template_problem(f"{name!r}: {shown(name, value)} holds a ${{...}} placeholder "
                                 "of another templating tool; it must become a "
                                 f"{_kind_text(fs)} before the pipeline runs", object_id, name)
            continue
        if problem:
            severity, message = problem
            if severity == "error":
                ctx.error(f"{name!r}: {message}", object_id, name)
            else:
                ctx.warn(f"{name!r}: {message}", object_id, name)


def _kind_text(fs: FieldSpec) -> str:
    return {"string": "string", "int": "whole number", "float": "number", "bool": "\"true\" or "
            "\"false\"", "period": "period such as \"15 minutes\"", "datetime":
            "timestamp YYYY-MM-DDTHH:MM:SS", "enum": "one of " + ", ".join(fs.values),
            "ref": "reference", "any": "value"}[fs.kind]


def _kind_problem(fs: FieldSpec, value: str) -> tuple[str, str] | None:
    text = value.strip()
    if fs.kind == "int":
        if len(text.lstrip("+-")) > 18 and text.lstrip("+-").isdigit():
            return "error", f"{short(value)} is far too large ({len(text):,} digits)"
        try:
            number = int(text)
        except ValueError:
            return "error", f"{short(value)} is not a whole number"
        if fs.maximum is not None and number > fs.maximum:
            return "error", f"{number} is above the maximum of {fs.maximum}"
        if fs.minimum is not None and number < fs.minimum:
            return "error", f"{number} is below the minimum of {fs.minimum:g}"
    elif fs.kind == "float":
        try:
            number_f = float(text)
        except ValueError:
            return "error", f"{short(value)} is not a number"
        if fs.minimum is not None and number_f < fs.minimum:
            return "error", f"{number_f:g} is below the minimum of {fs.minimum:g}"
    elif fs.kind == "bool":
        if text.lower() not in ("true", "false"):
            return "error", f"{short(value)} is not \"true\" or \"false\""
    elif fs.kind == "enum":
        if text.lower() not in {v.lower() for v in fs.values}:
            return "error", (f"{short(value)} is not one of {', '.join(fs.values)}"
                             f"{suggest(text, fs.values)}")
    elif fs.kind == "period":
        try:
            period = parse_period(text)
        except ScheduleError as exc:
            return "error", str(exc)
        if fs.aws_min_seconds is not None and period.min_seconds < fs.aws_min_seconds:
            return "warning", (f"{short(value)} is below AWS's minimum of "
                               f"{fs.aws_min_seconds // 60} minutes (allowed in headrace)")
    elif fs.kind == "datetime":
        try:
            parse_timestamp(text)
        except ScheduleError as exc:
            return "error", str(exc)
    return None


def _check_ref_target(object_id: str, name: str, value: Ref, fs: FieldSpec, ctx: Findings) -> None:
    definition = ctx.definition
    if value.id not in definition:
        allowed = [oid for oid in definition.objects
                   if oid != object_id and (name == "parent" or ref_allows(
                       fs, definition.type_of(oid)))]
        what = "objects it can refer to" if fs.targets else "objects"
        hint = suggest(value.id, definition.objects) or suggest_or_list(value.id, allowed, what)
        ctx.error(f"{name!r} refers to {value.id!r}, which does not exist{hint}",
                  object_id, name)
        return
    target_type = definition.type_of(value.id)
    if name != "parent" and not ref_allows(fs, target_type):
        ctx.error(f"{name!r} refers to {value.id!r} of type {target_type or '(untyped)'}; it "
                  f"must refer to a {' or '.join(fs.targets)}", object_id, name)


# --- type rules ------------------------------------------------------------------------------

def _check_type_rules(object_id: str, spec: TypeSpec, ctx: Findings) -> None:
    definition = ctx.definition
    fields = definition.effective(object_id)
    if definition.objects[object_id].type is None:
        return  # an untyped object inheriting a type: checked as its children are
    unresolved = {f for o, f in definition.raw.unresolved if o == object_id}
    if unresolved:  # a template's value that is missing is reported as such, not as absent
        fields = {**fields, **{f: [""] for f in unresolved if f not in fields}}
    named = uses_named_connection(fields)
    for name in spec.required:
        if name not in fields and not (named and name in CREDENTIAL_FIELDS):
            ctx.error(f"{spec.name} requires {name!r}", object_id, name)
    for name in spec.aws_only_required:
        if name not in fields:
            ctx.warn(f"AWS requires {name!r} on {spec.name}; headrace does not use it",
                     object_id, name)
    for group in spec.one_of:
        present = [g for g in group if g in fields]
        if not present:
            ctx.error(f"{spec.name} needs one of {', '.join(repr(g) for g in group)}",
                      object_id, group[0])
        elif len(present) > 1:
            ctx.error(f"{spec.name} takes only one of {', '.join(repr(g) for g in group)}, "
                      f"got {', '.join(repr(p) for p in present)}", object_id, present[1])
    for group in spec.at_most_one:
        present = [g for g in group if g in fields]
        if len(present) > 1:
            ctx.error(f"{spec.name} cannot have both {present[0]!r} and {present[1]!r}",
                      object_id, present[1])
    if spec.runs == "read" and spec.category == "resource":
        ctx.warn(f"{spec.name} is read and validated, but its fields are ignored: headrace "
                 "does not launch Amazon EMR; the EmrActivity steps that run on it run "
                 "natively (the DynamoDB tools, the template Hive scripts) or on Apache Spark "
                 "(spark-submit, local unless --spark-master says where)", object_id, "type")
    elif spec.name == "PigActivity":
        ctx.warn(f"PigActivity is read and validated, but running it will fail: {PIG_REFUSAL}",
                 object_id, "type")
    elif spec.runs == "read" and spec.category == "activity":
        ctx.warn(f"{spec.name} is read and validated, but headrace does not run it (it needs "
                 "Amazon EMR); running this object will fail", object_id, "type")
    if spec.runs == "ignore" and spec.category == "resource":
        set_fields = sorted(k for k in definition.objects[object_id].fields
                            if k not in ("type", "parent", "schedule") and not is_user_field(k))
        if set_fields:
            ctx.warn(f"{spec.name} fields are ignored ({', '.join(set_fields)}): headrace runs "
                     "the work in its own engine or worker processes", object_id, None)
    if spec.category == "activity" and "runsOn" not in fields and "workerGroup" not in fields:
        ctx.warn("AWS requires 'runsOn' or 'workerGroup' on an activity; headrace runs it in "
                 "this engine", object_id, "runsOn")
    if spec.category in ("activity", "datanode", "resource", "precondition"):
        _check_timing_fields(object_id, fields, ctx)
    if spec.name == "Schedule":
        check_schedule(object_id, ctx)
    if spec.name == "CopyActivity":
        _check_copy(object_id, ctx)
    if spec.name == "ShellCommandActivity":
        _check_staging(object_id, ctx)
    if spec.name == "DynamoDBDataNode":
        for pre in definition.refs(object_id, "precondition"):
            if definition.type_of(pre) == "Exists":
                ctx.error("DynamoDBDataNode does not support the Exists precondition (use "
                          "DynamoDBTableExists or DynamoDBDataExists)", object_id,
                          "precondition")


def _check_timing_fields(object_id: str, fields: dict[str, list[FieldValue]],
                         ctx: Findings) -> None:
    value = fields.get("maxActiveInstances")
    if value and isinstance(value[0], str) and value[0].strip().isdigit() and (
            len(value[0].strip()) > 9 or int(value[0]) > MAX_ACTIVE_INSTANCES):
        ctx.warn(f"maxActiveInstances {value[0][:20]} is above AWS's default limit of "
                 f"{MAX_ACTIVE_INSTANCES} (adjustable; headrace allows it)", object_id,
                 "maxActiveInstances")


def _check_copy(object_id: str, ctx: Findings) -> None:
    definition = ctx.definition
    if definition.first(object_id, "partitions") is not None:
        ctx.warn("'partitions' is a headrace extension (AWS Data Pipeline has no such field; "
                 "remove it before putting this definition on AWS); it applies to SQL table "
                 "inputs", object_id, "partitions")
    allowed = {"S3DataNode", "SqlDataNode", "MySqlDataNode", "RedshiftDataNode"}
    for name in ("input", "output"):
        refs = definition.refs(object_id, name)
        if len(refs) > 1:
            ctx.error(f"CopyActivity takes one {name}, got {len(refs)}", object_id, name)
        for target in refs:
            t = definition.type_of(target)
            if t == "DynamoDBDataNode":
                ctx.warn(f"a DynamoDBDataNode as CopyActivity {name} is a headrace extension "
                         "(AWS allowed S3 and SQL data nodes)", object_id, name)
            elif t is not None and t not in allowed and category_of(t) == "datanode":
                ctx.error(f"CopyActivity cannot use a {t} as {name}", object_id, name)


def _check_staging(object_id: str, ctx: Findings) -> None:
    definition = ctx.definition
    stage = definition.first(object_id, "stage")
    if not (isinstance(stage, str) and stage.strip().lower() == "true"):
        return
    for out in definition.refs(object_id, "output"):
        if definition.type_of(out) == "S3DataNode" and not definition.field(out,
                                                                             "directoryPath"):
            ctx.error(f"staging an output needs a directoryPath on {out!r} (it has a filePath)",
                      object_id, "output")


def _check_cycles(ctx: Findings) -> None:
    cycle = find_cycle(dependency_graph(ctx.definition))
    if cycle:
        ctx.error(f"dependency cycle: {' -> '.join(cycle)} (each waits for the next, through "
                  "dependsOn, input and output)", cycle[0], "dependsOn")
