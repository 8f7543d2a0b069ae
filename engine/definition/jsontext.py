"""JSON text as the definition reader needs it: strict or lenient, every failure a
:class:`ParseError` with file, line and column, and nothing in the text able to raise anything
else (a 5,000-digit number, a 100,000-level nesting, a byte-order mark, a NUL).

Decisions where AWS is silent: a UTF-8 byte-order mark is skipped with a warning; JSON nested
deeper than :data:`MAX_JSON_DEPTH` levels is refused before it is parsed (Python's parser would
otherwise exhaust its stack); numbers are kept as the text they were written in
(:class:`JsonNumber`), so an integer of any length reads (Python refuses to convert one of more
than 4,300 digits) and ``1.50`` stays ``1.50``; a key repeated in one JSON object warns with
its line, and the last one wins (as Python's and the AWS CLI's JSON reading do).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable
from typing import Any

from engine.errors import ParseError, Problem, Report

#: JSON nesting deeper than this is refused (a definition needs 4 levels, a CloudFormation
#: template about 12).
MAX_JSON_DEPTH = 64

BOM = "\ufeff"


class JsonNumber(str):
    """A JSON number, kept as written. A ``str`` so every value of a definition stays text;
    its own type so the reader can warn that a string was expected."""

    __slots__ = ()


class LocatedDict(dict[str, Any]):
    """A JSON object with the line and column where it starts (from :func:`parse_located`)."""

    line: int | None = None
    column: int | None = None


def line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of character offset ``pos``."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def repair(text: str, source: str, report: Report) -> str:
    """Escape raw control characters inside strings and drop trailing commas (lenient mode),
    with a warning (line and column) for each repair."""
    out: list[str] = []
    in_string = False
    escaped = False
    n = len(text)
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ord(ch) < 0x20:
                line, col = line_col(text, i)
                report.warn(f"raw control character {ch!r} inside a string (accepted by "
                            "--lenient)", line=line, column=col, file=source)
                ch = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{ord(ch):04x}")
            out.append(ch)
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "]}":
                line, col = line_col(text, i)
                report.warn("trailing comma (accepted by --lenient)", line=line, column=col,
                            file=source)
            else:
                out.append(ch)
        else:
            out.append(ch)
    return "".join(out)


_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def too_deep(text: str) -> tuple[int, int] | None:
    """Line and column where brackets nest deeper than :data:`MAX_JSON_DEPTH`, if they do.
    Strings are skipped whole by the regular expression, so this is fast on large files."""
    depth = 0
    for m in _STRING_OR_BRACKET.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return line_col(text, m.start())
        elif ch in "]}":
            depth -= 1
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _prepare(text: str, source: str, lenient: bool, report: Report) -> str:
    if text.startswith(BOM):
        report.warn("the file starts with a UTF-8 byte-order mark, which JSON does not allow; "
                    "it is skipped", line=1, column=1, file=source)
        text = text[1:]
    if lenient:
        text = repair(text, source, report)
    deep = too_deep(text)
    if deep is not None:
        raise ParseError([Problem("error", f"JSON nested more than {MAX_JSON_DEPTH} levels "
                                  "deep (a definition needs four)", line=deep[0], column=deep[1],
                                  file=source)], report.warnings)
    return text


def _decode_error(exc: json.JSONDecodeError, text: str, source: str, lenient: bool,
                  report: Report) -> ParseError:
    hint = ""
    if not lenient and ("control character" in exc.msg or "Expecting property name" in exc.msg
                        or ("Expecting value" in exc.msg and exc.pos > 0)):
        hint = (" (not strict JSON; --lenient accepts raw newlines in strings and trailing "
                "commas)")
    if exc.pos < len(text) and text[exc.pos] == "\x00":
        hint = " (a NUL byte: this is not a text file)"
    return ParseError([Problem("error", f"{exc.msg}{hint}", line=exc.lineno, column=exc.colno,
                               file=source)], report.warnings)


def _refused_constant(exc: ValueError, text: str, source: str, report: Report) -> ParseError:
    match = re.search(r"(?<![\"\w])(NaN|-?Infinity)(?![\"\w])", text)
    line, column = line_col(text, match.start()) if match else (None, None)
    return ParseError([Problem("error", f"{exc} (numbers must be finite)", line=line,
                               column=column, file=source)], report.warnings)


def parse_json(text: str, source: str, *, lenient: bool = False,
               report: Report | None = None) -> Any:
    """Parse JSON; on failure raise :class:`ParseError` with file, line and column.

    Numbers come back as :class:`JsonNumber`; a repeated key is a warning with its line."""
    report = report if report is not None else Report()
    text = _prepare(text, source, lenient, report)
    repeated: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            repeated.append("x")
        return result

    try:
        data = json.loads(text, object_pairs_hook=pairs_hook, parse_int=JsonNumber,
                          parse_float=JsonNumber, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _decode_error(exc, text, source, lenient, report) from None
    except ValueError as exc:  # NaN, Infinity
        raise _refused_constant(exc, text, source, report) from None
    except RecursionError:  # bounded by too_deep; kept as a last guard
        raise ParseError([Problem("error", "JSON nested too deeply to read", file=source)],
                         report.warnings) from None
    if repeated:  # rare: parse again, slowly, to say where each repeated key is
        located_pairs(text, source, report)
    _check_surrogates(data, text, source, report)
    return data


def located_pairs(text: str, source: str, report: Report | None = None) -> Any:
    """Parse (already prepared) JSON with the pure-Python scanner, so every object knows where
    it starts: objects come back as :class:`LocatedDict`. Repeated keys are warned about with
    the line of their object."""
    report = report if report is not None else Report()

    def parse_object(s_and_end: tuple[str, int], strict: bool, scan_once: Callable[..., Any],
                     object_hook: Any, object_pairs_hook: Any,
                     memo: dict[str, str] | None = None) -> tuple[Any, int]:
        start = s_and_end[1] - 1
        line, column = line_col(s_and_end[0], start)

        def hook(pairs: list[tuple[str, Any]]) -> LocatedDict:
            result = LocatedDict()
            for key, value in pairs:
                if key in result:
                    report.warn(f"key {key!r} appears twice in the JSON object that starts "
                                "here; the last one is used", line=line, column=column,
                                file=source)
                result[key] = value
            result.line, result.column = line, column
            return result
        parsed: tuple[Any, int] = json.decoder.JSONObject(  # type: ignore[attr-defined]
            s_and_end, strict, scan_once, object_hook, hook, memo)
        return parsed

    decoder = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber,
                               parse_constant=_refuse_constant)
    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _decode_error(exc, text, source, False, report) from None
    except ValueError as exc:
        raise _refused_constant(exc, text, source, report) from None
    except RecursionError:
        raise ParseError([Problem("error", "JSON nested too deeply to read", file=source)],
                         report.warnings) from None


def parse_located(text: str, source: str, *, lenient: bool = False,
                  report: Report | None = None) -> Any:
    """Like :func:`parse_json`, with every object a :class:`LocatedDict` (for CloudFormation
    templates, whose findings point at the template's own lines)."""
    report = report if report is not None else Report()
    text = _prepare(text, source, lenient, report)
    data = located_pairs(text, source, report)
    _check_surrogates(data, text, source, report)
    return data


_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                             r"|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _check_surrogates(data: Any, text: str, source: str, report: Report) -> None:
    """An unpaired ``\\u`` surrogate escape is not a character: refused with its position."""
    if not has_surrogate(data):
        return
    m = _LONE_SURROGATE.search(text)
    line, column = line_col(text, m.start()) if m else (None, None)
    raise ParseError([Problem("error", "a \\u escape is an unpaired UTF-16 surrogate, which is "
                              "not a character", line=line, column=column, file=source)],
                     report.warnings)


_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


def has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE_CHAR.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
