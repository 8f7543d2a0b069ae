"""Masked values encrypted at rest: the ``*`` fields and ``*`` parameter values of stored
definitions, when ``HEADRACE_SECRET_KEY_FILE`` names a key file.

The key file holds Fernet keys (``cryptography``'s authenticated encryption: AES-128-CBC with
an HMAC-SHA256, a timestamped token), one a line, newest first; blank lines and ``#`` comments
are ignored. New values are encrypted with the first key; a value is decrypted with whichever
key made it (``MultiFernet``), so rotating is: put the new key first, keep the old ones, run
``headrace encrypt-secrets`` (it re-encrypts everything with the newest key), then drop the old
keys. The key file must be owner-only: it is refused otherwise.

In the stored body an encrypted value is ``{"encrypted": "<token>"}`` in place of the value
(a string or a list of strings). Nothing else in a definition file is such an object (field
values are strings or ``{"ref": id}``), so the two never mix. The rest of the definition stays
readable in the store; only masked values are hidden.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import StoreError

KEY_FILE_VARIABLE = "HEADRACE_SECRET_KEY_FILE"
SEALED = "encrypted"

Value = Any
Transform = Callable[[Value], Value]


def is_sealed(value: Value) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED}


class Sealer:
    """Encrypts and decrypts the masked values of definition bodies with one key file."""

    def __init__(self, keys: list[bytes], source: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        self.source = source
        self._newest = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    def __repr__(self) -> str:
        return f"<Sealer {self.source}>"

    def seal_value(self, value: Value) -> Value:
        if is_sealed(value) or isinstance(value, dict):
            return value  # already sealed, or a reference
        return {SEALED: self._newest.encrypt(json.dumps(value).encode()).decode()}

    def unseal_value(self, value: Value, where: str) -> Value:
        from cryptography.fernet import InvalidToken

        if not is_sealed(value):
            return value
        try:
            return json.loads(self._all.decrypt(value[SEALED].encode()))
        except (InvalidToken, ValueError):
            raise StoreError(f"{where}: a masked value was encrypted with a key that is not "
                             f"in {self.source} (${KEY_FILE_VARIABLE}); add that key back, "
                             "after the newest") from None

    def is_current(self, value: Value) -> bool:
        """Sealed with the newest key (False: in clear, or sealed with an older key)."""
        from cryptography.fernet import InvalidToken

        if not is_sealed(value):
            return False
        try:
            self._newest.decrypt(value[SEALED].encode())
        except InvalidToken:
            return False
        return True


def masked_values(body: dict[str, Any], transform: Transform) -> dict[str, Any]:
    """A copy of ``body`` with ``transform`` applied to each masked value: ``*`` fields of
    objects (not references), values of ``*`` parameters, defaults of ``*`` parameters."""
    secret_ids = {str(p.get("id", "")) for p in body.get("parameters", [])}
    bases = {i.lstrip("*") for i in secret_ids if i.startswith("*")}
    out = dict(body)
    out["objects"] = [
        {key: (transform(value) if key.startswith("*") and not _is_ref(value) else value)
         for key, value in obj.items()}
        for obj in body.get("objects", [])]
    if "values" in body:
        out["values"] = {key: (transform(value) if key.startswith("*") or key in bases
                               else value)
                         for key, value in body["values"].items()}
    if "parameters" in body:
        out["parameters"] = [
            {**param, "default": transform(param["default"])}
            if str(param.get("id", "")).startswith("*") and "default" in param else param
            for param in body["parameters"]]
    return out


def _is_ref(value: Value) -> bool:
    return isinstance(value, dict) and "ref" in value


def each_masked(body: dict[str, Any]) -> list[Value]:
    """Every masked value of ``body``, in the order :func:`masked_values` visits them."""
    found: list[Value] = []

    def keep(value: Value) -> Value:
        found.append(value)
        return value

    masked_values(body, keep)
    return found


def has_sealed(body: dict[str, Any]) -> bool:
    return any(is_sealed(v) for v in each_masked(body))


def seal(body: dict[str, Any], sealer: Sealer | None) -> dict[str, Any]:
    """``body`` as the store keeps it: masked values encrypted when a key is configured."""
    return body if sealer is None else masked_values(body, sealer.seal_value)


def unseal(body: dict[str, Any], sealer: Sealer | None, where: str) -> dict[str, Any]:
    """``body`` as it was put: masked values decrypted. Encrypted values and no key (or not
    the key they were made with) are a :class:`StoreError` saying what to set."""
    if sealer is None:
        if has_sealed(body):
            raise StoreError(f"{where} holds encrypted masked values: set "
                             f"${KEY_FILE_VARIABLE} to the key file they were encrypted with")
        return body
    return masked_values(body, lambda v: sealer.unseal_value(v, where))


def load_sealer(env: dict[str, str] | None = None) -> Sealer | None:
    """The sealer for ``$HEADRACE_SECRET_KEY_FILE`` (None when it is unset or empty)."""
    path = (os.environ if env is None else env).get(KEY_FILE_VARIABLE, "").strip()
    if not path:
        return None
    return Sealer(read_key_file(Path(path).expanduser()), path)


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, newest first; refused unless owner-only and well formed (the
    messages name the file and the line, never a key)."""
    from cryptography.fernet import Fernet

    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise StoreError(f"${KEY_FILE_VARIABLE}: cannot read the key file {path}: "
                         f"{reason}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise StoreError(f"${KEY_FILE_VARIABLE}: the key file {path} is readable or writable "
                         f"by others (mode {stat.S_IMODE(info.st_mode):04o}): chmod 600 it")
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            Fernet(line.encode())
        except ValueError:
            raise StoreError(f"{path}, line {number}: not a key (a Fernet key is 32 bytes in "
                             "URL-safe base64, 44 characters)") from None
        keys.append(line.encode())
    if not keys:
        raise StoreError(f"${KEY_FILE_VARIABLE}: the key file {path} holds no key")
    return keys


def new_key() -> str:
    """A fresh key, as one line of a key file."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
