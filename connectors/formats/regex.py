"""RegEx: each line is matched by ``inputRegEx``; its groups are the columns (read only).

The pattern must match at the start of the line (``re.match``); a line it does not match is a bad
record. A group that took no part in the match reads as NULL.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.base import TextFormat
from connectors.errors import ConfigError

from ._decoder import TextDecoder


class RegexDecoder(TextDecoder):
    def __init__(self, fmt: TextFormat, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)
        if not fmt.regex:
            raise ConfigError("the RegEx format needs inputRegEx")
        try:
            self._re = re.compile(fmt.regex)
        except re.error as exc:
            raise ConfigError(f"inputRegEx {fmt.regex!r} is not a valid pattern: {exc}") from None
        if self._re.groups == 0:
            raise ConfigError(f"inputRegEx {fmt.regex!r} has no groups to take columns from")
        if self.schema is not None and len(self.schema) != self._re.groups:
            raise ConfigError(f"inputRegEx has {self._re.groups} groups but "
                              f"{len(self.schema)} columns are declared")

    def _parse(self, text: str, first_line: int, tainted: bool) -> None:
        rsep = self.fmt.record_separator
        lines = text.split(rsep)
        if lines and lines[-1] == "":
            lines.pop()
        if self.schema is None:
            self._set_width(self._re.groups)
        match = self._re.match
        rows, row_lines = self._rows, self._row_lines
        for i, line in enumerate(lines):
            if line.endswith("\r") and rsep == "\n":
                line = line[:-1]
            if self._header_pending:
                self._header_pending = False
                continue
            if tainted and self._tainted(line):
                self._bad_encoding(line=first_line + i, raw=line)
                continue
            m = match(line)
            if m is None:
                self._bad("line does not match inputRegEx", line=first_line + i, raw=line)
                continue
            rows.append(m.groups())
            row_lines.append(first_line + i)
