"""A DynamoDB table as a definition or a URL names it, and what DescribeTable says of it.

:class:`DynamoDBTable` (a ``DynamoDBDataNode``'s fields, validated), ``dynamodb://`` URL
parsing, :class:`TableInfo` (key schema, provisioned capacity) and the two precondition checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import Column
from connectors.errors import ConfigError, NotFoundError

from ._wire import BOTO_ERRORS, call, map_error, open_client

SCHEME = "dynamodb"

Percent = Annotated[float, Field(ge=0.1, le=1.0)]


_NODE_FIELDS = {"tableName": "table_name", "region": "region",
                "readThroughputPercent": "read_throughput_percent",
                "writeThroughputPercent": "write_throughput_percent"}


class DynamoDBTable(BaseModel):
    """A DynamoDB table as a definition's ``DynamoDBDataNode`` describes it.

    ``read_throughput_percent`` / ``write_throughput_percent`` (0.1-1.0) cap a copy's use of the
    table's provisioned capacity; unset means no cap. ``columns`` (from the node's data format)
    name the attributes a rows consumer gets, in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    region: str | None = Field(default=None, min_length=1)
    read_throughput_percent: Percent | None = None
    write_throughput_percent: Percent | None = None
    columns: tuple[Column, ...] = ()

    @classmethod
    def from_node(cls, fields: Mapping[str, Any],
                  columns: Sequence[Column] = ()) -> DynamoDBTable:
        """From a ``DynamoDBDataNode``'s fields (``tableName``, ``region``,
        ``readThroughputPercent``, ``writeThroughputPercent``); a bad value raises
        :class:`ConfigError` naming the definition's field."""
        values = {attr: fields[name] for name, attr in _NODE_FIELDS.items()
                  if fields.get(name) not in (None, "")}
        try:
            return cls(**values, columns=tuple(columns))
        except ValidationError as exc:
            names = {attr: name for name, attr in _NODE_FIELDS.items()}
            problems = "; ".join(
                f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(problems, connector=SCHEME) from None

    @property
    def url(self) -> str:
        return f"{SCHEME}://{self.table_name}" + (f"?region={self.region}" if self.region else "")


_URL_PARAMS = {
    "region": "region",
    "read_throughput_percent": "read_throughput_percent",
    "readThroughputPercent": "read_throughput_percent",
    "write_throughput_percent": "write_throughput_percent",
    "writeThroughputPercent": "write_throughput_percent",
}


def parse_url(url: str) -> DynamoDBTable:
    """``dynamodb://table[?region=..&read_throughput_percent=..&write_throughput_percent=..]``."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigError(f"not a {SCHEME}:// URL: {url!r}", connector=SCHEME)
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"{url!r}: a DynamoDB URL is dynamodb://TABLE[?region=...]",
                          connector=SCHEME)
    fields: dict[str, Any] = {"table_name": parts.netloc}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _URL_PARAMS:
            raise ConfigError(f"{url!r}: unknown parameter {name!r} (known: "
                              f"{', '.join(sorted(set(_URL_PARAMS.values())))})",
                              connector=SCHEME)
        fields[_URL_PARAMS[name]] = value
    try:
        return DynamoDBTable(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"{url!r}: {problems}", connector=SCHEME) from None


@dataclass(frozen=True)
class TableInfo:
    """What DescribeTable says that a copy needs."""

    name: str
    status: str
    key_names: tuple[str, ...]
    key_types: dict[str, str]  # key attribute -> S, N or B
    read_units: float | None   # None: on-demand
    write_units: float | None
    #: DescribeTable's ``ItemCount``: refreshed by DynamoDB about every six hours, so an
    #: estimate. None when the reply has none or says 0: a new table reports 0 until the first
    #: refresh whatever it holds (dynalite always does), and an empty one needs no total.
    item_count: int | None = None


def table_info(reply: dict[str, Any]) -> TableInfo:
    """The :class:`TableInfo` in a DescribeTable reply."""
    table = reply.get("Table", {})
    on_demand = table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    provisioned = table.get("ProvisionedThroughput", {})
    keys = sorted(table.get("KeySchema", []), key=lambda k: k.get("KeyType") != "HASH")
    return TableInfo(
        name=table.get("TableName", ""),
        status=table.get("TableStatus", "ACTIVE"),
        key_names=tuple(k["AttributeName"] for k in keys),
        key_types={a["AttributeName"]: a["AttributeType"]
                   for a in table.get("AttributeDefinitions", [])
                   if a.get("AttributeName") in {k["AttributeName"] for k in keys}},
        read_units=None if on_demand else provisioned.get("ReadCapacityUnits") or None,
        write_units=None if on_demand else provisioned.get("WriteCapacityUnits") or None,
        item_count=_item_count(table.get("ItemCount")),
    )


def _item_count(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


async def describe_table(client: Any, table: str, describe: str) -> TableInfo:
    """DescribeTable, mapped: a missing table raises :class:`NotFoundError`."""
    try:
        reply = await call(client, "DescribeTable", {"TableName": table}, {"TableName": table})
    except BOTO_ERRORS as exc:
        raise map_error(exc, connector=describe, operation="DescribeTable",
                        subject=f"table {table!r}") from exc
    return table_info(reply)


async def table_exists(table: str, region: str | None = None) -> bool:
    """True when ``table`` exists and is usable (ACTIVE or UPDATING); for DynamoDBTableExists."""
    describe = f"{SCHEME}://{table}"
    async with open_client(region, max_connections=2, describe=describe) as client:
        try:
            info = await describe_table(client, table, describe)
        except NotFoundError:
            return False
    return info.status in ("ACTIVE", "UPDATING")


async def table_has_data(table: str, region: str | None = None) -> bool:
    """True when ``table`` holds at least one item (False if it is missing); DynamoDBDataExists.

    Scans for one item rather than trusting DescribeTable's ItemCount, which lags by hours.
    """
    describe = f"{SCHEME}://{table}"
    payload: dict[str, Any] = {"TableName": table, "Limit": 1, "Select": "COUNT"}
    async with open_client(region, max_connections=2, describe=describe) as client:
        for _ in range(100):  # with no filter the first page answers; bound it regardless
            try:
                reply = await call(client, "Scan", payload, {"TableName": table})
            except BOTO_ERRORS as exc:
                error = map_error(exc, connector=describe, operation="Scan",
                                  subject=f"table {table!r}")
                if isinstance(error, NotFoundError):
                    return False
                raise error from exc
            if reply.get("Count", 0) > 0:
                return True
            if "LastEvaluatedKey" not in reply:
                return False
            payload["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
    return False
