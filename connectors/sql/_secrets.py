"""Secrets kept out of definitions and connection files: ``env:NAME`` and ``file:/path``.

A masked field (``*password``), a masked parameter's value and a named connection's
``password`` may be a reference instead of the secret itself:

* ``env:PG_PASSWORD``: the value of that environment variable (set, even to empty);
* ``file:/run/secrets/pg``: the content of that file, an absolute path, without one trailing
  line break (``\\n`` or ``\\r\\n``: what ``echo`` and secret mounts leave).

The grammar is strict: ``env:`` followed by a variable name and nothing else (letters, digits
and ``_``, not starting with a digit), or ``file:`` followed by an absolute path. Anything else
is a literal secret. A literal password that happens to read exactly so is the only
collision, and it never passes unnoticed: the variable or file is looked up, validation says
when it is missing, and when it exists the database refuses the login. Such a password is given
through a reference (lookups are one level deep: a variable's value or a file's content is
taken as it is, never read as a reference again).

The messages here name the variable or the file, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.errors import ConfigError

_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
_FILE = re.compile(r"file:(/.*)", re.DOTALL)
#: a secret file bigger than this is surely not a secret (a mistyped path to a data file)
MAX_SECRET_FILE = 64 * 1024


@dataclass(frozen=True)
class SecretReference:
    """``env:NAME`` (kind ``env``) or ``file:/path`` (kind ``file``)."""

    kind: str
    target: str

    def describe(self) -> str:
        """``environment variable PG_PASSWORD`` or ``file /run/secrets/pg``."""
        return (f"environment variable {self.target}" if self.kind == "env"
                else f"file {self.target}")


def secret_reference(value: str) -> SecretReference | None:
    """The reference ``value`` is, or None when it is a literal secret."""
    match = _ENV.fullmatch(value)
    if match:
        return SecretReference("env", match.group(1))
    match = _FILE.fullmatch(value)
    if match:
        return SecretReference("file", match.group(1))
    return None


def resolve_secret(value: str, env: Mapping[str, str] | None = None) -> str:
    """The secret ``value`` stands for: a reference's variable or file, else ``value``.

    Raises :class:`ConfigError` naming the variable or file (never a value) when it cannot be
    read."""
    ref = secret_reference(value)
    if ref is None:
        return value
    if ref.kind == "env":
        found = (os.environ if env is None else env).get(ref.target)
        if found is None:
            raise ConfigError(f"the {ref.describe()} is not set")
        return found
    try:
        with open(ref.target, "rb") as f:
            data = f.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {ref.describe()}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_SECRET_FILE:
        raise ConfigError(f"the {ref.describe()} is over {MAX_SECRET_FILE // 1024} KiB: "
                          "not a secret file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the {ref.describe()} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def secret_problem(value: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why ``value``'s reference cannot be resolved here (None: it can, or it is literal)."""
    try:
        resolve_secret(value, env)
    except ConfigError as exc:
        return exc.message
    return None
