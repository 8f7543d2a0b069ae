"""Small SQL text helpers shared by the PostgreSQL and MySQL connectors.

* identifier quoting (table names are always quoted, so a name can never inject SQL);
* ``?`` placeholders (as Data Pipeline's ``insertQuery`` and ``scriptArgument`` use them)
  rewritten to the driver's style, skipping string literals, quoted identifiers and comments;
* splitting a script into statements at top-level semicolons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal

from connectors.errors import ConfigError

Dialect = Literal["postgresql", "mysql"]

_PLAIN_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_qualified(name: str, dialect: Dialect) -> list[str]:
    """Split ``schema.table`` into its parts, honouring quotes (``"a.b".c``, ```a.b`.c``).

    Unquoted parts are taken as the server would read them unquoted: PostgreSQL folds plain
    identifiers to lower case; MySQL keeps them. Quoted parts are taken literally.
    """
    quote_char = '"' if dialect == "postgresql" else "`"
    parts: list[str] = []
    i, n = 0, len(name)
    while True:
        if i < n and name[i] == quote_char:
            buf = []
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(f"unbalanced quote in table name {name!r}")
                if name[i] == quote_char:
                    if i + 1 < n and name[i + 1] == quote_char:
                        buf.append(quote_char)
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(name[i])
                i += 1
            parts.append("".join(buf))
        else:
            end = name.find(".", i)
            end = n if end < 0 else end
            raw = name[i:end].strip()
            if dialect == "postgresql" and _PLAIN_IDENT.match(raw):
                raw = raw.lower()
            parts.append(raw)
            i = end
        if i >= n:
            break
        if name[i] != ".":
            raise ConfigError(f"unexpected {name[i]!r} after a quoted part in table name {name!r}")
        i += 1
    if not parts or any(p == "" for p in parts) or len(parts) > 3:
        raise ConfigError(f"not a valid table name: {name!r}")
    return parts


def quote_ident(part: str, dialect: Dialect) -> str:
    """One identifier quoted for ``dialect``."""
    if "\x00" in part:
        raise ConfigError(f"identifier contains a NUL character: {part!r}")
    if dialect == "postgresql":
        return '"' + part.replace('"', '""') + '"'
    return "`" + part.replace("`", "``") + "`"


def quote_qualified(name: str, dialect: Dialect, schema: str | None = None) -> str:
    """``name`` (optionally ``schema.name``) as a fully quoted identifier."""
    parts = split_qualified(name, dialect)
    if schema and len(parts) == 1:
        parts = [*split_qualified(schema, dialect), *parts]
    return ".".join(quote_ident(p, dialect) for p in parts)


def _scan(sql: str, dialect: Dialect) -> Iterator[tuple[int, int, bool]]:
    """Yield ``(start, end, is_code)`` spans of ``sql``: code vs literals/comments."""
    i, n, start = 0, len(sql), 0
    while i < n:
        ch = sql[i]
        end = -1
        if ch in "'\"`" and not (ch == "`" and dialect == "postgresql"):
            j = i + 1
            while j < n:
                if dialect == "mysql" and ch != "`" and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
        elif sql.startswith("--", i) or (ch == "#" and dialect == "mysql"):
            nl = sql.find("\n", i)
            end = n if nl < 0 else nl + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif ch == "$" and dialect == "postgresql" and (i == 0 or not (
                sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                close = sql.find(m.group(0), m.end())
                end = n if close < 0 else close + len(m.group(0))
        if end >= 0:
            if start < i:
                yield start, i, True
            yield i, end, False
            i = start = end
        else:
            i += 1
    if start < n:
        yield start, n, True


def convert_placeholders(sql: str, dialect: Dialect) -> tuple[str, int]:
    """Rewrite ``?`` placeholders to ``$1, $2...`` (PostgreSQL) or ``%s`` (MySQL).

    Returns the new text and the number of placeholders. For MySQL every literal ``%`` is
    doubled, because the driver formats the whole statement with ``%`` when arguments are given.
    """
    out: list[str] = []
    count = 0
    for start, end, is_code in _scan(sql, dialect):
        piece = sql[start:end]
        if dialect == "mysql":
            piece = piece.replace("%", "%%")
        if is_code:
            chunks = piece.split("?")
            rebuilt = [chunks[0]]
            for chunk in chunks[1:]:
                count += 1
                rebuilt.append(f"${count}" if dialect == "postgresql" else "%s")
                rebuilt.append(chunk)
            piece = "".join(rebuilt)
        out.append(piece)
    return "".join(out), count


def split_statements(script: str, dialect: Dialect) -> list[str]:
    """Split a script at top-level ``;`` (not inside literals or comments); drop empty ones."""
    statements: list[str] = []
    current: list[str] = []
    for start, end, is_code in _scan(script, dialect):
        piece = script[start:end]
        if not is_code:
            current.append(piece)
            continue
        chunks = piece.split(";")
        current.append(chunks[0])
        for chunk in chunks[1:]:
            statements.append("".join(current))
            current = [chunk]
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s, dialect)]


def _has_code(statement: str, dialect: Dialect) -> bool:
    """True when ``statement`` holds more than whitespace and comments."""
    for start, end, is_code in _scan(statement, dialect):
        piece = statement[start:end]
        if is_code and piece.strip():
            return True
        if not is_code and not (piece.startswith(("--", "/*", "#"))):
            return True
    return False


def script_statements(script: str, dialect: Dialect, args: Sequence[object], *,
                      connector: str) -> list[tuple[str, int]]:
    """A SqlActivity script as (statement with the dialect's placeholders, how many ``?`` it
    had), checked to use exactly as many ``?`` as ``args`` holds values."""
    converted = [convert_placeholders(s, dialect) for s in split_statements(script, dialect)]
    wanted = sum(n for _, n in converted)
    if wanted != len(args):
        raise ConfigError(f"the script has {wanted} '?' placeholders but {len(args)} "
                          "scriptArgument values were given", connector=connector,
                          operation="script")
    return converted
