"""DynamoDB JSON lines: ``{"Item": {"id": {"N": "1"}, ...}}`` per line, as DynamoDB's export
writes them.

The typed-value conversions are :mod:`.dynamodb_items`' (one implementation for the
connector and this format): ``N`` reads as ``int`` when integral, else ``Decimal``; ``B`` is
base64 -> ``bytes``; ``SS``/``NS``/``BS`` stay Python sets (and are written back as sets);
``M``/``L`` become dicts/lists. A line may also hold the bare attribute map without the
``Item`` wrapper. Writing: NULL columns are left out (DynamoDB items are sparse), so a missing
attribute and NULL read back the same.
"""

from __future__ import annotations

from typing import Any

from .dynamodb_items import item_to_dict, row_to_item
from .jsonl import JsonLinesDecoder, JsonLinesEncoder


class DynamoDbJsonDecoder(JsonLinesDecoder):
    def _values(self, obj: dict[str, Any]) -> dict[str, Any]:
        item = obj.get("Item", obj) if len(obj) == 1 else obj
        if not isinstance(item, dict):
            raise ValueError("'Item' is not an object")
        return item_to_dict(item)


class DynamoDbJsonEncoder(JsonLinesEncoder):
    def _record(self, names: tuple[str, ...], row: tuple[Any, ...]) -> Any:
        return {"Item": row_to_item(names, row)}
