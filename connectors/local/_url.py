"""Where a local end is: ``file:///abs/path``, ``file://relative`` or a plain path."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


def path_from_url(url: str) -> str:
    """``file:///a/b`` -> ``/a/b``; ``file://rel/x`` -> ``rel/x``; a plain path stays as is."""
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != "localhost":
            return unquote(parts.netloc + parts.path)
        return unquote(parts.path)
    return url
