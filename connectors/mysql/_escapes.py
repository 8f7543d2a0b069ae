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
chunk without a backslash is passed on as it is. A raw CR before a line break is part of the
break (a file written with CRLF line ends), as headrace's TSV reader and PostgreSQL's COPY take
it; LOAD DATA would keep it in the last value, so it is dropped here.
"""

from __future__ import annotations

import re

#: A backslash before one of the sequences the two read differently, or before a raw CR (an
#: escaped CR, which must not be taken for half a CRLF). It is a real sequence only if the
#: backslash is not itself escaped (an even run of backslashes before it): checked per match.
_CANDIDATE = re.compile(rb"\\([fvZ\r]|[0-7]{1,3}|x[0-9A-Fa-f]{0,2})")

#: Bytes LOAD DATA must see escaped when they are data (the rest may go raw).
_LOAD_DATA_NAMED = {0x5C: b"\\\\", 0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r", 0x00: b"\\0"}


class EscapeTranslator:
    """Feed TSV/Custom chunks cut anywhere; get back the same records in LOAD DATA's escapes.

    ``separators`` are the format's column and record separators: a decoded byte equal to one
    of them is written escaped (``\\|``), so it stays data. Only the differing sequences cost
    Python work; the rest of a chunk is copied by the regex engine and ``bytes.replace``.
    """

    def __init__(self, separators: str) -> None:
        self._separators = frozenset(separators.encode("utf-8"))
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        return self._translate(self._carry + chunk if self._carry else chunk, final=False)

    def finish(self) -> bytes:
        """What was held back at the end (a sequence that can no longer grow)."""
        tail, self._carry = self._carry, b""
        return self._translate(tail, final=True) if tail else b""

    def _translate(self, data: bytes, *, final: bool) -> bytes:
        self._carry = b""
        held = b""
        if not final and data.endswith(b"\r"):  # maybe the CR of a CRLF the next chunk ends
            held, data = b"\r", data[:-1]
        if b"\\" not in data:
            self._carry = held
            return data.replace(b"\r\n", b"\n")
        end = len(data)
        if not final and (end - len(data.rstrip(b"\\"))) % 2:
            end -= 1  # a lone backslash: its character is in the next chunk
        if _CANDIDATE.search(data, 0, end) is None:  # the common case (\N, \t, \\): one scan
            self._carry = data[end:] + held
            return data[:end].replace(b"\r\n", b"\n")
        out: list[bytes] = []
        last = 0
        for match in _CANDIDATE.finditer(data, 0, end):
            at = match.start()
            run = at
            while run > 0 and data[run - 1] == 0x5C:
                run -= 1
            if (at - run) % 2:
                continue  # the backslash is the second of an escaped pair: plain text follows
            body = match.group(1)
            if not final and match.end() == len(data) and _may_grow(body):
                end = at  # the next chunk may continue this sequence
                break
            out.append(data[last:at].replace(b"\r\n", b"\n"))
            out.append(self._rewrite(body))
            last = match.end()
        out.append(data[last:end].replace(b"\r\n", b"\n"))
        self._carry = data[end:] + held
        return b"".join(out)

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
        return b"\\" + body  # an escaped CR: data, as both read it

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

