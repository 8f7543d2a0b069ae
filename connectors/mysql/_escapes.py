"""headrace TSV (PostgreSQL's text format) made readable by ``LOAD DATA ... ESCAPED BY '\\'``.

The two escape languages agree on ``\\\\ \\t \\n \\r \\b``, on ``\\N`` (NULL as a whole field,
the letter N inside one) and on "any other escaped character stands for itself". They differ on
five sequences, which LOAD DATA would otherwise read as something else, silently:

=========  ===============================  ==========================
sequence   PostgreSQL text (headrace TSV)   LOAD DATA
=========  ===============================  ==========================
``\\f``    form feed (0x0C)                 the letter ``f``
``\\v``    vertical tab (0x0B)              the letter ``v``
``\\Z``    the letter ``Z``                 Ctrl-Z (0x1A)
``\\NNN``  the byte with that octal code    ``\\0`` NUL, then the digits
``\\xHH``  the byte with that hex code      the letter ``x``, then the digits
=========  ===============================  ==========================

(PostgreSQL's ``COPY TO`` writes ``\\f`` and ``\\v`` for those two characters, so every
PostgreSQL -> MySQL copy of them went through here.) This pass rewrites those five into bytes
LOAD DATA reads as PostgreSQL meant them; everything else goes through byte for byte, and a
chunk without a backslash is passed on as it is.
"""

from __future__ import annotations

import re

#: One escape sequence: octal, hex, or the one character after the backslash.
_SEQUENCE = re.compile(rb"\\([0-7]{1,3}|x[0-9A-Fa-f]{0,2}|.)", re.S)

#: Bytes LOAD DATA must see escaped when they are data (the rest may go raw).
_LOAD_DATA_NAMED = {0x5C: b"\\\\", 0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r", 0x00: b"\\0"}


class EscapeTranslator:
    """Feed TSV/Custom chunks cut anywhere; get back the same records in LOAD DATA's escapes.

    ``separators`` are the format's column and record separators: a decoded byte equal to one
    of them is written escaped (``\\|``), so it stays data.
    """

    def __init__(self, separators: str) -> None:
        self._separators = frozenset(separators.encode("utf-8"))
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if b"\\" not in data:
            return data
        out: list[bytes] = []
        last = 0
        end = len(data)
        for match in _SEQUENCE.finditer(data):
            body = match.group(1)
            if match.end() == len(data) and _may_grow(body):
                end = match.start()  # the next chunk may continue this sequence
                break
            out.append(data[last:match.start()])
            out.append(self._rewrite(body))
            last = match.end()
        else:
            if data.endswith(b"\\") and last < len(data):
                end = len(data) - 1  # a backslash whose character is in the next chunk
        out.append(data[last:end])
        self._carry = data[end:]
        return b"".join(out)

    def finish(self) -> bytes:
        """What was held back at the end (a sequence that can no longer grow)."""
        tail, self._carry = self._carry, b""
        if not tail:
            return b""
        match = _SEQUENCE.fullmatch(tail)
        if match is None:
            return tail  # a lone trailing backslash: LOAD DATA sees what PostgreSQL would refuse
        return self._rewrite(match.group(1))

    def _rewrite(self, body: bytes) -> bytes:
        first = body[:1]
        if first in b"01234567":
            return self._byte(int(body, 8) & 0xFF)
        if first == b"x":
            return self._byte(int(body[1:], 16)) if len(body) > 1 else b"x"
        if body == b"f":
            return b"\x0c"
        if body == b"v":
            return b"\x0b"
        if body == b"Z":
            return b"Z"
        return b"\\" + body

    def _byte(self, value: int) -> bytes:
        named = _LOAD_DATA_NAMED.get(value)
        if named is not None:
            return named
        if value in self._separators:
            return b"\\" + bytes((value,))
        return bytes((value,))


def _may_grow(body: bytes) -> bool:
    """True for a sequence that more bytes could extend (``\\1`` -> ``\\123``, ``\\x`` ->
    ``\\x4f``)."""
    if body[:1] == b"x":
        return len(body) < 3
    return body[:1] in b"01234567" and len(body) < 3

