"""Streaming gzip both ways (zlib in C; several concatenated members read as one stream)."""

from __future__ import annotations

import zlib

from connectors.errors import BadDataError

GZIP_WBITS = 31


class Gunzip:
    """Feed gzip bytes, get the decompressed bytes; ``finish`` refuses a truncated stream."""

    def __init__(self, *, location: str) -> None:
        self.location = location
        self._d = zlib.decompressobj(GZIP_WBITS)
        self._seen = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._seen = True
            try:
                out.append(self._d.decompress(data))
            except zlib.error as exc:
                raise BadDataError(f"not valid gzip data ({exc})", location=self.location) from None
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = zlib.decompressobj(GZIP_WBITS)
            self._seen = False
        return b"".join(out)

    def finish(self) -> bytes:
        tail = self._d.flush()
        if self._seen and not self._d.eof:
            raise BadDataError("the gzip stream is truncated", location=self.location)
        return tail


class Gzip:
    """Feed bytes, get gzip bytes; ``finish`` writes the trailer."""

    def __init__(self, level: int = 6) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)

    def feed(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def finish(self) -> bytes:
        return self._c.flush()
