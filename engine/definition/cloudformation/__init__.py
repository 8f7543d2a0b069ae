"""CloudFormation templates read as definitions: the ``AWS::DataPipeline::Pipeline`` resource
of a JSON or YAML template (short-form tags included) becomes the definition, with its
intrinsic functions resolved and every finding at the template's own line.

``yaml_source`` reads YAML with positions and CloudFormation's tags, ``intrinsics`` computes
``Ref``/``Fn::*``, ``template`` picks the pipeline resource and turns it into the API wire
format that :mod:`engine.definition.reader` reads.
"""

from __future__ import annotations

from typing import Any

from engine.definition.cloudformation.template import (
    PIPELINE_TYPE,
    TemplatePipeline,
    is_template,
    pipeline_resources,
    read_template,
)
from engine.definition.cloudformation.yaml_source import parse_yaml, yaml_lines
from engine.definition.jsontext import parse_located

__all__ = ["PIPELINE_TYPE", "TemplatePipeline", "is_template", "parse_json_template",
           "parse_yaml", "pipeline_resources", "read_template", "yaml_lines"]


def parse_json_template(text: str, source: str, *, lenient: bool = False) -> Any:
    """A JSON template with the position of every object (its findings name template lines);
    its warnings were given when it was first parsed."""
    from engine.errors import Report

    return parse_located(text, source, lenient=lenient, report=Report())
