"""The native DynamoDB baselines and the test-data loader, on plain boto3 (no headrace code).

``scan TABLE``  one-segment Scan, one DynamoDB-export line (``{"Item": {...}}``) per item on
                stdout (the wire JSON as is, the cheapest form a native tool can write);
``load TABLE``  sequential BatchWriteItem (25 items a call, unprocessed items resent) of the
                export lines or plain JSON-lines items on stdin;
``create TABLE`` / ``drop TABLE``  an on-demand table keyed by ``id`` (N);
``generate N``  N export lines of benchmark items on stdout (``generate-plain N``: plain JSON).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer


def _client() -> Any:
    return boto3.client("dynamodb")


def scan(table: str) -> int:
    client = _client()
    out = sys.stdout
    kwargs: dict[str, Any] = {"TableName": table}
    count = 0
    while True:
        page = client.scan(**kwargs)
        out.write("".join(json.dumps({"Item": item}, ensure_ascii=False) + "\n"
                          for item in page["Items"]))
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _typed(line: str, serializer: TypeSerializer) -> dict[str, Any]:
    obj = json.loads(line, parse_float=Decimal)
    if "Item" in obj and isinstance(obj["Item"], dict):
        return obj["Item"]
    return {k: serializer.serialize(v) for k, v in obj.items()}


def load(table: str) -> int:
    client = _client()
    serializer = TypeSerializer()
    batch: list[dict[str, Any]] = []
    count = 0

    def flush() -> None:
        pending = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        delay = 0.05
        while pending:
            reply = client.batch_write_item(RequestItems=pending)
            pending = reply.get("UnprocessedItems") or {}
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        batch.clear()

    for line in sys.stdin:
        if line.strip():
            batch.append(_typed(line, serializer))
            count += 1
            if len(batch) == 25:
                flush()
    if batch:
        flush()
    return count


def create(table: str) -> None:
    client = _client()
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    client.get_waiter("table_exists").wait(TableName=table)


def drop(table: str) -> None:
    client = _client()
    try:
        client.delete_table(TableName=table)
    except client.exceptions.ResourceNotFoundException:
        return
    client.get_waiter("table_not_exists").wait(TableName=table)


def generate(n: int, plain: bool = False) -> None:
    """Items shaped like the SQL table's rows (about 190 bytes each), as export lines or (with
    ``plain``) as plain JSON objects."""
    out = sys.stdout
    for i in range(1, n + 1):
        digest = hashlib.md5(str(i).encode()).hexdigest()
        item = {"id": {"N": str(i)},
                "ts": {"S": f"2024-01-01T00:00:00Z+{i}s"},
                "name": {"S": f"name-{digest[:8]}-{i:07d}"},
                "amount": {"N": f"{(i * 7919) % 10_000_000 / 100:.2f}"},
                "flag": {"BOOL": i % 3 == 0},
                "payload": {"S": f"row {i}, \"quoted\", café {digest}{digest}"}}
        if plain:
            line = {"id": i, "ts": item["ts"]["S"], "name": item["name"]["S"],
                    "amount": float(item["amount"]["N"]), "flag": i % 3 == 0,
                    "payload": item["payload"]["S"]}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            out.write(json.dumps({"Item": item}, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    action, arg = argv
    if action == "scan":
        print(f"scanned {scan(arg)} items", file=sys.stderr)
    elif action == "load":
        print(f"loaded {load(arg)} items", file=sys.stderr)
    elif action == "create":
        create(arg)
    elif action == "drop":
        drop(arg)
    elif action == "generate":
        generate(int(arg))
    elif action == "generate-plain":
        generate(int(arg), plain=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
