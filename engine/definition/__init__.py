"""Pipeline definitions: read (``reader``), inherit (``document``), check (``validate``).

:func:`load` is the one entry point the CLI and the runtime use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class LoadOptions:
    """The parameter flags shared by validate, plan, eval and run (as the AWS CLI has them)."""

    parameter_objects: str | None = None
    parameter_values_uri: str | None = None
    parameter_values: list[str] = field(default_factory=list)
    lenient: bool = False


def load(location: str, options: LoadOptions | None = None, *, strict: bool = False,
         text: str | None = None) -> tuple[Definition, Report]:
    """Read, combine and validate a definition.

    Raises :class:`ParseError` when a file cannot be read or parsed; otherwise returns the
    definition and the validation report (which may hold errors: the caller decides).
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
        values = read_parameter_values(vtext, vsource, lenient=options.lenient, report=report)
    overrides = parse_value_args(options.parameter_values) if options.parameter_values else None
    definition = Definition.build(raw, report, params, values, overrides)
    validate_definition(definition, strict=strict, report=report)
    return definition, report
