"""Named connections: a database URL given a name, so passwords stay out of URLs, command lines
and definitions.

A name is defined by, first found:

* ``HEADRACE_CONN_<NAME>``: the variable holds the URL (``NAME`` upper-cased, ``-`` as ``_``);
* the connections file, ``$HEADRACE_CONNECTIONS_FILE`` or
  ``$XDG_CONFIG_HOME/headrace/connections.toml`` (``~/.config/headrace/connections.toml``),
  one table per name::

      [warehouse]
      url = "postgresql://loader@db.internal:5432/dw"
      password = "env:DW_PASSWORD"        # or "file:/run/secrets/dw", or the password itself

  ``url`` is required; ``user`` and ``password`` are optional and win over the URL's. The file
  must be owner-only (``chmod 600``): it is refused otherwise, as ssh refuses a private key
  others can read, because it may hold passwords and says where data goes.

A URL uses a name in place of its host: ``postgresql://@warehouse/other_db?table=t``,
``mysql://@shop?table=orders``, ``jdbc:postgresql://@warehouse/dw`` in a ``connectionString``.
The connection gives the host, port, user and password; the URL may choose the database (else
the connection's) and add parameters (its own win). Its scheme must speak the connection's
protocol (``postgres``/``postgresql``/``redshift``, or ``mysql``/``mariadb``). Messages name the
connection and where it was looked for, never its password.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from connectors.errors import ConfigError

from ._secrets import resolve_secret

FILE_VARIABLE = "HEADRACE_CONNECTIONS_FILE"
PREFIX = "HEADRACE_CONN_"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KEYS = frozenset({"url", "user", "password"})


@dataclass(frozen=True)
class Connection:
    """A named connection: its URL, and the user and password that win over the URL's."""

    name: str
    url: str = field(repr=False)
    #: where it was defined (the variable, or the file), for messages
    origin: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


def named_host(url: str) -> str | None:
    """The connection name ``url`` uses (``scheme://@name/...``), or None."""
    text = url[len("jdbc:"):] if url[:5].lower() == "jdbc:" else url
    _, sep, rest = text.partition("://")
    if not sep or not rest.startswith("@"):
        return None
    name = re.split(r"[/?#:]", rest[1:], maxsplit=1)[0]
    return name


def variable_for(name: str) -> str:
    return PREFIX + name.upper().replace("-", "_")


def connections_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    given = env.get(FILE_VARIABLE)
    if given:
        return Path(given).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "headrace" / "connections.toml"


def find_connection(name: str, env: Mapping[str, str] | None = None) -> Connection:
    """The connection ``name``: ``HEADRACE_CONN_<NAME>``, else the connections file.

    Raises :class:`ConfigError` naming where it looked."""
    env = os.environ if env is None else env
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{name!r} is not a connection name (letters, digits, '_' and '-', "
                          "starting with a letter)")
    variable = variable_for(name)
    url = env.get(variable)
    if url:
        return Connection(name, url.strip(), f"${variable}")
    path = connections_file(env)
    tables = _read_file(path)
    table = tables.get(_key_in(tables, name) or "")
    if table is None:
        raise ConfigError(f"no connection named {name!r}: neither ${variable} nor a "
                          f"[{name}] table in {path}"
                          + ("" if path.exists() else " (which does not exist)"))
    return _connection(name, table, path, env)


def _key_in(tables: dict[str, object], name: str) -> str | None:
    """The file's table for ``name``: names match whatever their case."""
    return next((key for key in tables if key.lower() == name.lower()), None)


def _read_file(path: Path) -> dict[str, object]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the connections file {path}: {exc.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    # a regular file's mode says who else can read it (/dev/null, a way to say "none", not)
    if stat.S_ISREG(info.st_mode) and mode & 0o077:
        raise ConfigError(f"the connections file {path} can be read or written by others "
                          f"(mode {mode:04o}): chmod 600 it (it may hold passwords, and says "
                          "where data goes)")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the connections file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # the parser's message names the line and column, never the text there
        raise ConfigError(f"{path}: not TOML: {exc}") from None


def _connection(name: str, table: object, path: Path, env: Mapping[str, str]) -> Connection:
    where = f"{path}, connection [{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name!r} is not a table ([{name}] with url = ...)")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: password, "
                          "url, user)")
    values: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string")
        values[key] = value
    if "url" not in values:
        raise ConfigError(f"{where}: no url")
    password = values.get("password")
    if password is not None:
        try:
            password = resolve_secret(password, env)
        except ConfigError as exc:
            raise ConfigError(f"{where}: password: {exc.message}") from None
    return Connection(name, values["url"], str(path), values.get("user"), password)


def split_named(url: str) -> tuple[str, str, str, str]:
    """(``jdbc:`` or ``""``, scheme, name, the rest after the name: ``/db?x=y``) of a URL that
    uses a named connection."""
    jdbc = url[:5] if url[:5].lower() == "jdbc:" else ""
    text = url[len(jdbc):]
    scheme, _, rest = text.partition("://")
    name = named_host(url) or ""
    tail = rest[1 + len(name):]
    if tail.startswith(":"):
        raise ConfigError(f"{scheme}://@{name}: a named connection gives the host and port; "
                          "the URL may give the database and parameters only")
    return jdbc, scheme, name, tail


def tail_parts(tail: str) -> tuple[str | None, str]:
    """(database or None, query string) of the ``/db?x=y`` after a connection's name."""
    parts = urlsplit("x://h" + tail)
    database = unquote(parts.path.lstrip("/")) or None
    return database, parts.query
