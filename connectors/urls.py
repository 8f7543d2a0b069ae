"""URL -> connector: ``open_source(url, options)`` and ``open_sink(url, options)``.

The scheme picks the module (imported only when used); each module exposes
``source_from_url(url, options)`` and ``sink_from_url(url, options)``. A URL without a scheme is
a local path. :func:`redact_url` strips the password from a URL for messages and logs.
"""

from __future__ import annotations

import importlib
import re
from urllib.parse import unquote, urlsplit

from connectors.base import EndpointOptions, Sink, Source
from connectors.errors import ConfigError

#: scheme -> module implementing it.
SCHEMES: dict[str, str] = {
    "file": "connectors.local",
    "s3": "connectors.s3",
    "postgresql": "connectors.postgres",
    "postgres": "connectors.postgres",
    "mysql": "connectors.mysql",
    "mariadb": "connectors.mysql",
    "redshift": "connectors.postgres",
    "dynamodb": "connectors.dynamodb",
}

#: ``jdbc:`` is a prefix before the real scheme (``jdbc:mysql://host/db``), as
#: :mod:`connectors.sql` reads it.
_SCHEME_RE = re.compile(r"^(?:jdbc:)?([A-Za-z][A-Za-z0-9+.-]*)://", re.IGNORECASE)
_JDBC = "jdbc:"


def scheme_of(url: str) -> str:
    """The URL's scheme, ``file`` for a plain path (``C:\\`` style drive letters included).

    For ``jdbc:mysql://...`` it is the scheme after ``jdbc:`` (``mysql``)."""
    m = _SCHEME_RE.match(url)
    return m.group(1).lower() if m else "file"


def _split_jdbc(url: str) -> tuple[str, str]:
    """(``"jdbc:"`` or ``""``, the rest of ``url``)."""
    if url[:len(_JDBC)].lower() == _JDBC:
        return url[:len(_JDBC)], url[len(_JDBC):]
    return "", url


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db``, and a ``password=``
    query parameter (JDBC style) -> ``password=***``; other text unchanged. Works on the text
    (no URL parser), so a URL too malformed to parse is masked as well."""
    text = url
    head, sep, rest = text.partition("://")
    if sep:
        netloc, slash, tail = rest.partition("/")
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
        text = f"{head}://{netloc}{slash}{tail}"
    base, qmark, query = text.partition("?")
    if qmark and _query_password(query) is not None:
        text = base + "?" + "&".join(
            f"{k}=***" if k.lower() == "password" else pair
            for pair in query.split("&") for k in [pair.partition("=")[0]])
    return text


def _query_password(query: str) -> str | None:
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if eq and key.lower() == "password" and value:
            return value
    return None


def url_passwords(url: str) -> list[str]:
    """Every password ``url`` carries, as written and percent-decoded."""
    _, rest = _split_jdbc(url)
    try:
        parts = urlsplit(rest)
        found = [parts.password or "", _query_password(parts.query) or ""]
    except ValueError:
        return []
    return sorted({form for p in found if p for form in (p, unquote(p))}, key=len,
                  reverse=True)


def redact_text(text: str, *urls: str) -> str:
    """Replace every password found in ``urls`` wherever it appears in ``text``."""
    for url in urls:
        passwords = url_passwords(url)
        if passwords:
            text = text.replace(url, redact_url(url))
        for password in passwords:
            text = text.replace(password, "***")
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
