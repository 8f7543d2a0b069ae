"""What the SQL sources (PostgreSQL, MySQL) share: reading a table or a ``selectQuery``."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from connectors.base import TextFormat
from connectors.errors import ConfigError


class SqlOrigin(Protocol):
    """The fields of a SQL endpoint a source's shared logic reads."""

    @property
    def table(self) -> str | None: ...
    @property
    def select_query(self) -> str | None: ...
    def describe(self) -> str: ...
    def quoted_table(self) -> str: ...


E = TypeVar("E", bound=SqlOrigin)


class SqlSource(Generic[E]):
    """Base of a source that reads a table or a ``selectQuery``."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True
    #: The product named in configuration errors ("PostgreSQL", "MySQL").
    product = "SQL"

    def __init__(self, endpoint: E) -> None:
        if not endpoint.table and not endpoint.select_query:
            raise ConfigError(f"a {self.product} source needs a table (?table=...) or a query",
                              connector=endpoint.describe())
        self.endpoint = endpoint
        self.describe = endpoint.describe()

    @property
    def native_format(self) -> TextFormat | None:
        return None

    def _query(self) -> str:
        return self.endpoint.select_query or f"SELECT * FROM {self.endpoint.quoted_table()}"
