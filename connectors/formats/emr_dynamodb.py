"""The item lines of the Amazon EMR DynamoDB tools' backups (``emr-dynamodb-connector``).

AWS Data Pipeline's "Export DynamoDB table to S3" template ran
``org.apache.hadoop.dynamodb.tools.DynamoDBExport`` from the ``emr-ddb`` /
``emr-dynamodb-tools`` jar; its twin ran ``DynamoDBImport``. The tools write one item per line as
the JSON that Gson makes of the Java SDK's ``AttributeValue``: the type keys are the SDK v1
*field names*, not the wire's type names::

    {"id":{"n":"7"},"name":{"s":"Ann"},"tags":{"sS":["a","b"]},"gone":{"nULL":true}}

    wire  S  N  B  SS  NS  BS  M  L  NULL                   BOOL
    line  s  n  b  sS  nS  bS  m  l  nULL (or nULLValue)    bOOL

Binary values are base64 text, numbers stay strings, maps and lists nest the same shape. Which
spelling of the null key a version wrote (:data:`NULL_KEYS`) depends on the SDK it was built
with: ``nULL`` for the SDK of 2014 (the ``emr-ddb-2.x`` jars) and for the SDK v2 releases (5.0
onwards), ``nULLValue`` for the SDK 1.11 releases (4.x). The Hive export scripts of the older
templates (``exportDynamoDBTableToS3``) wrote a Hive ``map<string,string>`` line instead:
``name ^C value-json ^B name ^C value-json`` (``\\x03`` between a name and its value, ``\\x02``
between attributes), the values in the same lowercase JSON.

Reading accepts every variant: either line shape, any letter case of a type key, ``nULL`` and
``nULLValue``, and the wire's own ``{"S": ...}`` spelling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from .dynamodb_items import ConversionError, Item

#: How a version of the tools spelled the null type key.
NullKey = Literal["nULL", "nULLValue"]
NULL_KEYS: tuple[NullKey, ...] = ("nULL", "nULLValue")

#: Hive's default separators of a ``map<string,string>`` column: between entries (^B) and
#: between a key and its value (^C).
HIVE_ENTRY_SEP = "\x02"
HIVE_KEY_SEP = "\x03"

_TO_LINE = {"S": "s", "N": "n", "B": "b", "SS": "sS", "NS": "nS", "BS": "bS", "M": "m",
            "L": "l", "BOOL": "bOOL"}
#: Any letter case of a type key -> the wire's type name.
_FROM_LINE = {"s": "S", "n": "N", "b": "B", "ss": "SS", "ns": "NS", "bs": "BS", "m": "M",
              "l": "L", "bool": "BOOL", "null": "NULL", "nullvalue": "NULL"}


def _line_value(av: Mapping[str, Any], null_key: NullKey) -> dict[str, Any]:
    if not isinstance(av, Mapping) or len(av) != 1:
        raise ConversionError(f"an attribute value is one {{type: value}} pair, got {av!r:.60}")
    ((kind, payload),) = av.items()
    if kind == "NULL":
        return {null_key: True}
    if kind == "M":
        return {"m": {name: _line_value(v, null_key) for name, v in payload.items()}}
    if kind == "L":
        return {"l": [_line_value(v, null_key) for v in payload]}
    key = _TO_LINE.get(kind)
    if key is None:
        raise ConversionError(f"unknown attribute type {kind!r}")
    return {key: payload}


def tools_item(item: Item, null_key: NullKey = "nULL") -> dict[str, Any]:
    """A wire item as the tools' JSON object (type keys as the SDK's field names)."""
    out: dict[str, Any] = {}
    for name, av in item.items():
        try:
            out[name] = _line_value(av, null_key)
        except ConversionError as exc:
            raise exc.at(name) from None
    return out


def tools_line(item: Item, null_key: NullKey = "nULL") -> str:
    """One line of a ``DynamoDBExport`` data file (without its newline)."""
    return json.dumps(tools_item(item, null_key), ensure_ascii=False, separators=(",", ":"))


def hive_line(item: Item, null_key: NullKey = "nULL") -> str:
    """One line of the Hive export scripts' ``map<string,string>`` files."""
    return HIVE_ENTRY_SEP.join(
        name + HIVE_KEY_SEP + json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        for name, value in tools_item(item, null_key).items())


def _wire_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConversionError(f"an attribute value is a JSON object, got {value!r:.60}")
    present = [(k, v) for k, v in value.items() if v is not None]
    if len(present) != 1:
        raise ConversionError(f"an attribute value has one type key, got {value!r:.80}")
    ((key, payload),) = present
    kind = _FROM_LINE.get(key.lower())
    if kind is None:
        raise ConversionError(f"unknown attribute type key {key!r}")
    if kind == "NULL":
        return {"NULL": True}
    if kind == "BOOL":
        if not isinstance(payload, bool):
            raise ConversionError("a bOOL value must be true or false")
        return {"BOOL": payload}
    if kind == "M":
        if not isinstance(payload, Mapping):
            raise ConversionError("an m value must be an object")
        return {"M": wire_item(payload)}
    if kind == "L":
        if not isinstance(payload, list):
            raise ConversionError("an l value must be a list")
        out = []
        for i, v in enumerate(payload):
            try:
                out.append(_wire_value(v))
            except ConversionError as exc:
                raise exc.at(f"[{i}]") from None
        return {"L": out}
    if kind in ("SS", "NS", "BS"):
        if not isinstance(payload, list) or not all(isinstance(v, str) for v in payload):
            raise ConversionError(f"a {key} value must be a list of strings")
        return {kind: payload}
    if not isinstance(payload, str):
        raise ConversionError(f"a {key} value must be a string")
    return {kind: payload}


def wire_item(obj: Mapping[str, Any]) -> Item:
    """The wire item of one line's JSON object (any spelling of the type keys)."""
    item: Item = {}
    for name, value in obj.items():
        try:
            item[name] = _wire_value(value)
        except ConversionError as exc:
            raise exc.at(name) from None
    return item


def parse_line(line: str) -> Item | None:
    """The wire item of one backup line in any published variant; None for a blank line.

    Raises :class:`ConversionError` (``ValueError``) for a line that is neither shape.
    """
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ConversionError(f"not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ConversionError("a backup line is a JSON object")
        return wire_item(obj)
    item: Item = {}
    for entry in text.split(HIVE_ENTRY_SEP):
        name, sep, value = entry.partition(HIVE_KEY_SEP)
        if not sep:
            raise ConversionError(f"a Hive map entry without its ^C separator: {entry[:60]!r}")
        try:
            item[name] = _wire_value(json.loads(value))
        except ValueError as exc:
            reason = exc.reason if isinstance(exc, ConversionError) else f"not JSON: {exc}"
            raise ConversionError(reason, name) from None
    return item


# -- the manifest -----------------------------------------------------------------------------

MANIFEST_NAME = "manifest"
SUCCESS_NAME = "_SUCCESS"
MANIFEST_VERSION = 3
#: Items per data file: the tools' mapper starts a new file after this many.
ITEMS_PER_FILE = 100_000


def manifest_text(urls: list[str]) -> str:
    """The manifest ``DynamoDBExport`` writes beside its data files (format version 3)."""
    head = json.dumps({"name": "DynamoDB-export", "version": MANIFEST_VERSION},
                      separators=(",", ":"))[:-1]
    entries = ",\n".join(json.dumps({"url": u, "mandatory": True}, separators=(",", ":"))
                         for u in urls)
    return f"{head},\n\"entries\": [\n{entries}\n]}}"


def manifest_entries(text: str) -> list[tuple[str, bool]]:
    """``(url, mandatory)`` of each entry of a tools manifest; ``ValueError`` if it is not one
    (or not version 3, the only version the published importers read)."""
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("a manifest is a JSON object")
    version = obj.get("version")
    if version != MANIFEST_VERSION:
        raise ValueError(f"unknown manifest version {version!r} (DynamoDBImport reads "
                         f"version {MANIFEST_VERSION})")
    entries = obj.get("entries", [])
    if not isinstance(entries, list):
        raise ValueError("'entries' is not a list")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ValueError(f"a manifest entry without a url: {entry!r:.80}")
        out.append((entry["url"], bool(entry.get("mandatory", True))))
    return out
