"""A Hive script's text -> the statements Spark SQL runs, one at a time.

Variables are replaced as Hive's ``-d NAME=VALUE`` did: ``${NAME}`` and ``${hivevar:NAME}``
(the ``scriptVariable`` values, and ``input1``... / ``output1``... naming the tables made from
the data nodes); an unknown ``${...}`` is left as written. Statements are split on ``;``
outside quotes and backticks; ``--`` comments are dropped (also outside quotes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\$\{(?:hivevar:)?([A-Za-z_][A-Za-z0-9_.]*)\}")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        return variables.get(m[1], m[0])

    return _VARIABLE.sub(one, text)


def script_variables(values: list[str]) -> dict[str, str]:
    """``scriptVariable`` values (``NAME=VALUE``) as a mapping; ``ValueError`` naming a bad one."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"scriptVariable {value!r} is not NAME=VALUE")
        out[name.strip()] = rest
    return out


def split_statements(text: str) -> list[str]:
    """The statements of a script (without their ``;``), comments removed, blanks dropped."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            current.append(ch)
        elif ch == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]
