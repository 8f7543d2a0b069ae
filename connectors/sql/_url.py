"""Where a SQL database is: URLs and data-node fields parsed into one :class:`SqlUrl`.

Accepted spellings:

* ``postgresql://user:pw@host:5432/db?table=public.t`` (also ``postgres://``),
  ``mysql://root@127.0.0.1:3306/db?table=t`` (also ``mariadb://``);
* JDBC URLs from definitions: ``jdbc:postgresql://host:5432/db``, ``jdbc:redshift://host:5439/db``
  (spoken to with the PostgreSQL protocol), ``jdbc:mysql://host:3306/db``,
  ``jdbc:mariadb://host/db``; their ``user``/``password`` properties are honoured;
* data-node style fields: ``connectionString`` + ``username`` + ``*password`` + ``databaseName``
  (:func:`from_fields`).

The password is kept out of ``repr`` and :meth:`SqlUrl.describe`, so error messages, logs and
spans built from a :class:`SqlUrl` never show it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from connectors.errors import ConfigError
from connectors.urls import redact_url

from ._connections import find_connection, named_host, split_named, tail_parts
from ._text import Dialect

_SCHEMES: dict[str, tuple[Dialect, int, bool]] = {
    # scheme -> (wire protocol, default port, is Redshift)
    "postgresql": ("postgresql", 5432, False),
    "postgres": ("postgresql", 5432, False),
    "redshift": ("postgresql", 5439, True),
    "mysql": ("mysql", 3306, False),
    "mariadb": ("mysql", 3306, False),
}

#: URL query parameters that describe the connection, not the data (never echoed back).
_CREDENTIAL_PARAMS = frozenset({"user", "password", "username"})


@dataclass(frozen=True)
class SqlUrl:
    """A parsed database location. ``params`` holds the remaining query parameters."""

    dialect: Dialect
    host: str
    port: int
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: dict[str, str] = field(default_factory=dict)
    redshift: bool = False

    @property
    def table(self) -> str | None:
        return self.params.get("table")

    def replace(self, **changes: object) -> SqlUrl:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        """A display form without the password (safe for errors, logs and spans)."""
        scheme = "redshift" if self.redshift else self.dialect
        user = f"{quote(self.user, safe='')}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        db = f"/{self.database}" if self.database else ""
        query = "&".join(f"{k}={v}" for k, v in self.params.items()
                         if k not in _CREDENTIAL_PARAMS)
        return f"{scheme}://{user}{host}:{self.port}{db}" + (f"?{query}" if query else "")


def parse_sql_url(url: str) -> SqlUrl:
    """Parse a ``postgresql://``, ``mysql://`` or ``jdbc:...`` URL; one that names a connection
    in place of its host (``postgresql://@warehouse/db``) takes it from there.

    Raises :class:`ConfigError` (without echoing a password) when the URL is not one of those.
    """
    text = url.strip()
    if named_host(text) is not None:
        return _from_connection(text)
    return _parse_plain(text)


def _from_connection(url: str) -> SqlUrl:
    """``scheme://@name/db?x=y``: the connection ``name``, with the database and parameters
    the URL gives."""
    _, scheme, name, tail = split_named(url)
    shown = f"{scheme}://@{name}"
    wanted = _SCHEMES.get(scheme.lower())
    if wanted is None:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ConfigError(f"{shown}: named connections are for databases ({known}); S3 and "
                          "DynamoDB take their endpoint and credentials from the AWS "
                          "configuration (AWS_PROFILE, AWS_ENDPOINT_URL_S3...)", connector="sql")
    connection = find_connection(name)
    about = f"connection {name!r} ({connection.origin})"
    if named_host(connection.url) is not None:
        raise ConfigError(f"{about}: its url names another connection", connector="sql")
    try:
        base = _parse_plain(connection.url)
    except ConfigError as exc:
        raise ConfigError(f"{about}: {exc.message}", connector="sql") from None
    if base.dialect != wanted[0]:
        raise ConfigError(f"{shown}: {about} is a {base.dialect} connection, not {scheme}",
                          connector=base.dialect)
    database, query = tail_parts(tail)
    given = dict(parse_qsl(query, keep_blank_values=True))
    if _CREDENTIAL_PARAMS & set(given):
        raise ConfigError(f"{shown}: the connection gives the user and password; the URL may "
                          "not", connector=base.dialect)
    return base.replace(
        database=database or base.database, params={**base.params, **given},
        user=connection.user or base.user,
        password=connection.password if connection.password is not None else base.password,
        redshift=base.redshift or wanted[2])


def connection_passwords(url: str) -> list[str]:
    """The password of the named connection ``url`` uses (none when it names none, or when it
    cannot be resolved): what messages and spans must never show."""
    if named_host(url.strip()) is None:
        return []
    try:
        password = parse_sql_url(url).password
    except ConfigError:
        return []
    return [password] if password else []


def connection_dsn(url: str) -> str:
    """``url`` itself, or for one that names a connection the full URL it stands for,
    password included: for a driver, never for display."""
    if named_host(url.strip()) is None:
        return url
    parsed = parse_sql_url(url)
    scheme = "redshift" if parsed.redshift else parsed.dialect
    user = quote(parsed.user or "", safe="")
    secret = f":{quote(parsed.password, safe='')}" if parsed.password is not None else ""
    userinfo = f"{user}{secret}@" if user or secret else ""
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    db = f"/{quote(parsed.database, safe='')}" if parsed.database else ""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                     for k, v in parsed.params.items())
    return f"{scheme}://{userinfo}{host}:{parsed.port}{db}" + (f"?{query}" if query else "")


def _parse_plain(text: str) -> SqlUrl:
    shown = redact_url(text)
    jdbc = text.lower().startswith("jdbc:")
    if jdbc:
        text = text[len("jdbc:"):]
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ConfigError(f"not a database URL (expected one of {known} or jdbc:...): "
                          f"{shown!r}", connector="sql")
    dialect, default_port, redshift = _SCHEMES[scheme.lower()]
    try:
        parts = urlsplit(text)
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError(f"malformed database URL {shown!r}: {exc}",
                          connector=dialect) from None
    host = parts.hostname
    if not host:
        raise ConfigError(f"database URL has no host: {shown!r}", connector=dialect)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    user = params.pop("user", None) or params.pop("username", None) or user
    password = params.pop("password", None) or password
    database = unquote(parts.path.lstrip("/")) or None
    if database and "/" in database:
        raise ConfigError(f"database name may not contain '/': {shown!r}",
                          connector=dialect)
    return SqlUrl(dialect=dialect, host=host, port=port, database=database, user=user,
                  password=password, params=params, redshift=redshift)


def from_fields(connection_string: str, username: str | None = None,
                password: str | None = None, database_name: str | None = None) -> SqlUrl:
    """Build a :class:`SqlUrl` from a database object's fields.

    ``username``/``password``/``database_name`` given separately win over the ones in the URL.
    """
    parsed = parse_sql_url(connection_string)
    changes: dict[str, object] = {}
    if username:
        changes["user"] = username
    if password is not None:
        changes["password"] = password
    if database_name:
        changes["database"] = database_name
    return parsed.replace(**changes) if changes else parsed


#: Driver properties a database object's ``jdbcProperties`` may set that headrace honours: the
#: timeouts (their unit is the dialect's JDBC driver's; see the endpoints' ``jdbc_timeouts``).
TIMEOUT_PROPERTIES = frozenset({"connectTimeout", "socketTimeout", "loginTimeout",
                                "connect_timeout", "read_timeout"})


def with_properties(connection_string: str, properties: Iterable[str]) -> str:
    """``connection_string`` with the timeout properties among ``properties`` (``key=value``
    entries, as ``jdbcProperties`` holds them) added to its query, unless it sets them itself.
    Other properties are left to the JDBC world (headrace has no use for them)."""
    _, _, query = connection_string.partition("?")
    present = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    extra = {}
    for entry in properties:
        key, sep, value = entry.partition("=")
        key = key.strip()
        if sep and key in TIMEOUT_PROPERTIES and key not in present:
            extra[key] = value.strip()
    if not extra:
        return connection_string
    joiner = "&" if "?" in connection_string else "?"
    return connection_string + joiner + urlencode(extra)
