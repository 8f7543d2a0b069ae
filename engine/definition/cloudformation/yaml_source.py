"""YAML text read with the position of every mapping and sequence, CloudFormation's short-form
tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) turned into their long form (``{"Ref": ...}``,
``{"Fn::Sub": ...}``), and every failure a :class:`ParseError` with line and column.

PyYAML composes the node graph (its C parser, libyaml, when installed) and this module walks
it: scalars stay the text they were written in (``1.50`` stays ``1.50``, ``2024-01-01T00:00:00``
is not turned into a datetime, ``010`` is not octal 8), ``~``/``null``/empty are None. Anchors
and aliases are followed, with a budget of nodes so an alias bomb is refused, and nesting is
bounded before PyYAML is called, so no input reaches a recursion limit.
"""

from __future__ import annotations

import re
from typing import Any

import yaml  # type: ignore[import-untyped]
from yaml.nodes import (  # type: ignore[import-untyped]
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
)

from engine.definition.jsontext import MAX_JSON_DEPTH, LocatedDict, line_col
from engine.errors import ParseError, Problem, Report

#: Deepest nesting read (a CloudFormation template needs about 12 levels).
MAX_DEPTH = MAX_JSON_DEPTH
#: Most nodes one document may expand to, aliases included (a 10 MiB template has far fewer).
MAX_NODES = 2_000_000
#: Lines indented (or dashed) deeper than this are refused before parsing: they could only be
#: nesting deeper than :data:`MAX_DEPTH`.
MAX_INDENT = 512

_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocatedList(list[Any]):
    """A YAML sequence with the line and column where it starts."""

    line: int | None = None
    column: int | None = None


def _located(value: LocatedDict | LocatedList, node: Node) -> Any:
    value.line, value.column = node.start_mark.line + 1, node.start_mark.column + 1
    return value


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where the text nests too deeply to be read safely (flow brackets, or indentation)."""
    depth = 0
    quote: str | None = None
    for pos, ch in enumerate(text):
        if quote is not None:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'" and (pos == 0 or text[pos - 1] in " \t\n[{,:"):
            quote = ch
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line_col(text, pos)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "\n":
            quote = None
    for match in re.finditer(rf"^[ \t\-?:]{{{MAX_INDENT + 1},}}", text, re.MULTILINE):
        return line_col(text, match.start())
    return None


def _error(message: str, mark: Any, source: str, report: Report) -> ParseError:
    line = column = None
    if mark is not None:
        line, column = mark.line + 1, mark.column + 1
    return ParseError([Problem("error", message, line=line, column=column, file=source)],
                      report.warnings)


def parse_yaml(text: str, source: str, report: Report) -> Any:
    """The YAML document as located data (see the module docstring)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    deep = _too_deep(text)
    if deep is not None:
        raise ParseError([Problem("error", f"YAML nested more than {MAX_DEPTH} levels deep",
                                  line=deep[0], column=deep[1], file=source)], report.warnings)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        what = exc.problem or exc.context or "not valid YAML"
        raise _error(f"not valid YAML (nor JSON): {what}", exc.problem_mark or exc.context_mark,
                     source, report) from None
    except yaml.reader.ReaderError as exc:
        line, column = line_col(text, exc.position)
        raise ParseError([Problem("error", f"not valid YAML (nor JSON): character "
                                  f"{exc.character!r} is not allowed in YAML text",
                                  line=line, column=column, file=source)],
                         report.warnings) from None
    except yaml.YAMLError as exc:
        raise ParseError([Problem("error", f"not valid YAML (nor JSON): {exc}", file=source)],
                         report.warnings) from None
    except RecursionError:
        raise ParseError([Problem("error", "YAML nested too deeply to read", file=source)],
                         report.warnings) from None
    if node is None:
        return None
    return _Walk(source, report).value(node, 0)


class _Walk:
    def __init__(self, source: str, report: Report) -> None:
        self.source, self.report, self.budget = source, report, MAX_NODES

    def value(self, node: Node, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _error(f"the YAML expands to more than {MAX_NODES:,} values (aliases that "
                         "repeat each other)", node.start_mark, self.source, self.report)
        if depth > MAX_DEPTH:
            raise _error(f"YAML nested more than {MAX_DEPTH} levels deep (or an alias that "
                         "contains itself)", node.start_mark, self.source, self.report)
        if isinstance(node, ScalarNode):
            value: Any = None if node.tag == _NULL else node.value
        elif isinstance(node, SequenceNode):
            value = _located(LocatedList(self.value(n, depth + 1) for n in node.value), node)
        elif isinstance(node, MappingNode):
            value = self.mapping(node, depth)
        else:  # pragma: no cover - PyYAML has no other kind of node
            raise _error("unknown YAML node", node.start_mark, self.source, self.report)
        tag = node.tag or ""
        if tag.startswith("!") and not tag.startswith("!!") and len(tag) > 1:
            name = tag[1:]
            key = name if name in ("Ref", "Condition") else f"Fn::{name}"
            if isinstance(node, ScalarNode) and value is None:
                value = ""
            return _located(LocatedDict({key: value}), node)
        return value

    def mapping(self, node: MappingNode, depth: int) -> LocatedDict:
        out: LocatedDict = _located(LocatedDict(), node)
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _error("a mapping key must be a plain value, not a list or a mapping",
                             key_node.start_mark, self.source, self.report)
            key = key_node.value
            if key in out:
                mark = key_node.start_mark
                self.report.warn(f"key {key!r} appears twice in one mapping; the last one is "
                                 "used", line=mark.line + 1, column=mark.column + 1,
                                 file=self.source)
            out[key] = self.value(value_node, depth + 1)
        return out


def yaml_lines(data: Any) -> dict[str, int]:
    """Line of each ``id`` of a YAML definition's objects and parameters."""
    lines: dict[str, int] = {}
    if not isinstance(data, dict):
        return lines
    for key in ("objects", "pipelineObjects", "parameters", "parameterObjects"):
        items = data.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, LocatedDict) and isinstance(item.get("id"), str) and (
                    item.line is not None):
                lines.setdefault(item["id"], item.line)
    return lines
