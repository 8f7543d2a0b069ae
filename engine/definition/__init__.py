"""Pipeline definitions: read (``reader``), inherit (``document``), check (``validate``).

:func:`load` is the one entry point the CLI and the runtime use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from engine.definition.document import DEFAULT_ID, Definition
from engine.definition.parameters import FLAG
from engine.definition.raw import RawValues
from engine.definition.reader import (
    RawDefinition,
    TemplateOptions,
    load_text,
    parse_value_args,
    read_definition,
    read_parameter_objects,
    read_parameter_values,
)
from engine.definition.validate import validate_definition
from engine.errors import ParseError, Problem, Report

__all__ = ["DEFAULT_ID", "FLAG", "Definition", "LoadOptions", "RawDefinition", "load",
           "load_text", "parse_template_args"]

#: AWS refuses a parameter-values file over 15 KB; headrace reads it with a warning.
AWS_MAX_VALUES_FILE_BYTES = 15 * 1024


@dataclass
class LoadOptions:
    """The parameter flags shared by validate, plan, eval and run (as the AWS CLI has them)."""

    parameter_objects: str | None = None
    parameter_values_uri: str | None = None
    parameter_values: list[str] = field(default_factory=list)
    lenient: bool = False
    #: a CloudFormation template's pipeline resource (``--resource LOGICAL_ID``)
    resource: str | None = None
    #: ``--template-parameters KEY=VALUE``: template parameters, other resources' names,
    #: ``Fn::GetAtt`` (``LogicalId.Attribute``), ``Fn::ImportValue`` exports, pseudo parameters
    template_parameters: list[str] = field(default_factory=list)
    #: ``--strict``: a field the type does not have is an error, not a warning
    strict_fields: bool = False


def parse_template_args(pairs: list[str]) -> dict[str, str]:
    """``--template-parameters KEY=VALUE ...``: the last of a repeated key wins."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ParseError([Problem("error", "--template-parameters expects KEY=VALUE, got "
                                      f"{pair!r}")])
        out[key] = value
    return out


def load(location: str, options: LoadOptions | None = None, *, strict: bool = False,
         text: str | None = None, now: datetime | None = None) -> tuple[Definition, Report]:
    """Read, combine and validate a definition.

    Raises :class:`ParseError` when a file cannot be read or parsed; otherwise returns the
    definition and the validation report (which may hold errors: the caller decides). ``now``
    (default: the current time) decides which schedules start in the past (backfill warnings).
    Secret values never appear in the report's messages.
    """
    options = options or LoadOptions()
    report = Report()
    if options.parameter_values_uri and options.parameter_values:
        raise ParseError([Problem("error", "--parameter-values and --parameter-values-uri "
                                  "cannot be used together")])
    if text is None:
        text, source = load_text(location)
    else:
        source = location
    template = TemplateOptions(options.resource, parse_template_args(options.template_parameters))
    raw = read_definition(text, source, lenient=options.lenient, report=report,
                          template=template)
    if raw.kind != "CloudFormation template" and (options.resource or template.parameters):
        report.warn("--resource and --template-parameters are for CloudFormation templates; "
                    f"this file is a {raw.kind}: they are ignored", file=source)
    params = None
    if options.parameter_objects:
        ptext, psource = load_text(options.parameter_objects)
        params = read_parameter_objects(ptext, psource, lenient=options.lenient, report=report)
    values = None
    if options.parameter_values_uri:
        vtext, vsource = load_text(options.parameter_values_uri)
        size = len(vtext.encode())
        if size > AWS_MAX_VALUES_FILE_BYTES:
            report.warn(f"{size:,} bytes: AWS accepts parameter-values files of at most "
                        f"{AWS_MAX_VALUES_FILE_BYTES:,} bytes (headrace reads it)", file=vsource)
        read, lines = read_parameter_values(vtext, vsource, lenient=options.lenient,
                                            report=report)
        values = RawValues(read, lines, vsource)
    overrides = parse_value_args(options.parameter_values) if options.parameter_values else None
    definition = Definition.build(raw, report, params, values, overrides)
    validate_definition(definition, strict=strict, report=report, now=now,
                        strict_fields=options.strict_fields)
    _name_files(report, source)
    _scrub(report, definition)
    return definition, report


def _name_files(report: Report, source: str) -> None:
    """Every finding names its file: those that name none are the definition's."""
    report.errors[:] = [p if p.file else replace(p, file=source) for p in report.errors]
    report.warnings[:] = [p if p.file else replace(p, file=source) for p in report.warnings]


def _scrub(report: Report, definition: Definition) -> None:
    """Replace any secret value that found its way into a message (defence in depth)."""
    secrets = sorted(definition.secret_values(), key=len, reverse=True)
    if not secrets:
        return
    report.errors[:] = [replace(p, message=definition.mask(p.message, secrets))
                        for p in report.errors]
    report.warnings[:] = [replace(p, message=definition.mask(p.message, secrets))
                          for p in report.warnings]
