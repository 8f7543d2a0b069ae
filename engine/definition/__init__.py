"""Pipeline definitions: read (``reader``), inherit (``document``), check (``validate``).

:func:`load` is the one entry point the CLI and the runtime use.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from engine.definition.document import DEFAULT_ID, Definition
from engine.definition.reader import (
    RawDefinition,
    load_text,
    parse_value_args,
    read_definition,
    read_parameter_objects,
    read_parameter_values,
)
from engine.definition.validate import validate_definition
from engine.errors import ParseError, Problem, Report

__all__ = ["DEFAULT_ID", "Definition", "LoadOptions", "RawDefinition", "load", "load_text"]

#: AWS refuses a parameter-values file over 15 KB; headrace reads it with a warning.
AWS_MAX_VALUES_FILE_BYTES = 15 * 1024


@dataclass
class LoadOptions:
    """The parameter flags shared by validate, plan, eval and run (as the AWS CLI has them)."""

    parameter_objects: str | None = None
    parameter_values_uri: str | None = None
    parameter_values: list[str] = field(default_factory=list)
    lenient: bool = False


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
    raw = read_definition(text, source, lenient=options.lenient, report=report)
    params = None
    if options.parameter_objects:
        ptext, psource = load_text(options.parameter_objects)
        params = read_parameter_objects(ptext, psource, lenient=options.lenient, report=report)
    values = None
    if options.parameter_values_uri:
        vtext, vsource = load_text(options.parameter_values_uri)
        size = len(vtext.encode())
        if size > AWS_MAX_VALUES_FILE_BYTES:
            report.warn(f"{vsource} is {size:,} bytes: AWS accepts parameter-values files of at "
                        f"most {AWS_MAX_VALUES_FILE_BYTES:,} bytes (headrace reads it)")
        values = read_parameter_values(vtext, vsource, lenient=options.lenient, report=report)
    overrides = parse_value_args(options.parameter_values) if options.parameter_values else None
    definition = Definition.build(raw, report, params, values, overrides)
    validate_definition(definition, strict=strict, report=report, now=now)
    _scrub(report, definition)
    return definition, report


def _scrub(report: Report, definition: Definition) -> None:
    """Replace any secret value that found its way into a message (defence in depth)."""
    if not definition.secret_values():
        return
    report.errors[:] = [replace(p, message=definition.mask(p.message)) for p in report.errors]
    report.warnings[:] = [replace(p, message=definition.mask(p.message))
                          for p in report.warnings]
