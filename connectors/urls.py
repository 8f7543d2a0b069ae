"""URL -> connector: ``open_source(url, options)`` and ``open_sink(url, options)``.

The scheme picks the module (imported only when used); each module exposes
``source_from_url(url, options)`` and ``sink_from_url(url, options)``. A URL without a scheme is
a local path. :func:`redact_url` strips the password from a URL for messages and logs.
"""

from __future__ import annotations

import importlib
import re
from urllib.parse import urlsplit, urlunsplit

from connectors.base import EndpointOptions, Sink, Source
from connectors.errors import ConfigError

#: scheme -> module implementing it.
SCHEMES: dict[str, str] = {
    "file": "connectors.local",
    "s3": "connectors.s3",
    "postgresql": "connectors.postgres",
    "postgres": "connectors.postgres",
    "mysql": "connectors.mysql",
    "dynamodb": "connectors.dynamodb",
}

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(url: str) -> str:
    """The URL's scheme, ``file`` for a plain path (``C:\\`` style drive letters included)."""
    m = _SCHEME_RE.match(url)
    return m.group(1).lower() if m else "file"


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db``; other text unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def redact_text(text: str, *urls: str) -> str:
    """Replace every password found in ``urls`` wherever it appears in ``text``."""
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            text = text.replace(url, redact_url(url)).replace(password, "***")
    return text


def _module(url: str):  # type: ignore[no-untyped-def]
    scheme = scheme_of(url)
    name = SCHEMES.get(scheme)
    if name is None:
        raise ConfigError(f"{redact_url(url)}: unknown scheme {scheme!r}; known: "
                          f"{', '.join(sorted(SCHEMES))} (or a plain path)")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise ConfigError(f"{redact_url(url)}: the {scheme} connector is not available "
                          "in this build") from None


def open_source(url: str, options: EndpointOptions | None = None) -> Source:
    """The Source for ``url`` (file path, ``file://``, ``s3://``, ``postgresql://``, ...)."""
    source: Source = _module(url).source_from_url(url, options or EndpointOptions())
    return source


def open_sink(url: str, options: EndpointOptions | None = None) -> Sink:
    """The Sink for ``url``."""
    sink: Sink = _module(url).sink_from_url(url, options or EndpointOptions())
    return sink
