"""What the SQL connectors (PostgreSQL, MySQL) share: the fields of their endpoints, the base
of their sources (a table or a ``selectQuery``) and sinks (a table or an ``insertQuery``:
configuration surface, the statement that makes a missing target table), which target column
each input field goes to, and taking row batches off a stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar

from anyio import EndOfStream
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import (
    MAX_PARTITIONS,
    EndpointOptions,
    RowBatch,
    RowsIn,
    Schema,
    TextFormat,
    VerifyCheck,
)
from connectors.errors import BadDataError, ConfigError, NotFoundError
from connectors.timeouts import CONNECT_TIMEOUT, READ_TIMEOUT, Timeouts, settings_in

from ._insert import insert_target
from ._text import Dialect, quote_ident
from ._url import SqlUrl, from_fields, parse_sql_url

#: Bytes gathered from the server before one chunk is sent on (capped by the copy's chunk size).
MAX_CHUNK = 1024 * 1024
#: Rows per fetch from a server-side cursor, and per RowBatch: big enough to amortise the
#: per-batch cost, small enough to keep a batch a few MB.
ROWS_PER_BATCH = 5000


class SqlEndpointFields(BaseModel):
    """The fields every SQL endpoint has and how one is made from a URL; a subclass adds its
    own fields, its default ``port``, :meth:`table_parts` and :meth:`describe`."""

    model_config = ConfigDict(frozen=True)

    #: The wire protocol the endpoint speaks (Redshift speaks PostgreSQL's).
    dialect: ClassVar[Dialect]
    #: The product named in errors ("PostgreSQL", "MySQL").
    product: ClassVar[str]
    #: The JDBC driver's names for the timeouts, with their unit (seconds per unit), read from
    #: a ``jdbc:`` URL's query or the database's ``jdbcProperties`` as well.
    jdbc_timeouts: ClassVar[dict[str, tuple[str, float]]] = {}

    host: str
    port: int
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    table: str | None = None
    schema_name: str | None = None
    select_query: str | None = None
    insert_query: str | None = None
    create_table_sql: str | None = None
    create: bool = False
    chunk_size: int = MAX_CHUNK
    #: Seconds (None: no bound of the connector's own); see :mod:`connectors.timeouts`.
    connect_timeout: float | None = CONNECT_TIMEOUT
    read_timeout: float | None = READ_TIMEOUT

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(connect=self.connect_timeout, read=self.read_timeout)
    #: Read a table as this many key (or page) ranges at once, in one snapshot (headrace's
    #: ``--partitions`` / CopyActivity ``partitions``); 1 reads one stream.
    partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)

    def for_statements(self) -> Self:
        """This endpoint for running a script's statements or a check's query, which may keep
        the server busy and silent for minutes: ``read_timeout`` only where the endpoint sets
        it (the attempt's ``attemptTimeout`` bounds the rest); ``connect_timeout`` as ever."""
        if "read_timeout" in self.model_fields_set:
            return self
        return self.model_copy(update={"read_timeout": None})

    @field_validator("select_query")
    @classmethod
    def _one_statement(cls, query: str | None) -> str | None:
        """A query is wrapped as a subquery (COPY (...), SELECT ... FROM (...)): no ';'."""
        if query is None:
            return None
        query = query.strip().rstrip(";").strip()
        return query or None

    @classmethod
    def from_sql_url(cls, url: SqlUrl, **fields: Any) -> Self:
        """From a parsed URL of this dialect; ``fields`` set the others (and win)."""
        if url.dialect != cls.dialect:
            raise ConfigError(f"not a {cls.product} URL: {url.describe()}", connector=cls.dialect)
        given = settings_in(url.params, aliases=cls.jdbc_timeouts, where=url.describe())
        timeouts = {f"{which}_timeout": seconds for which, seconds in given.items()}
        return cls(host=url.host, port=url.port, database=url.database, user=url.user,
                   password=SecretStr(url.password) if url.password is not None else None,
                   **{**cls._fields_of_url(url), "table": url.table, **timeouts, **fields})

    @classmethod
    def _fields_of_url(cls, url: SqlUrl) -> dict[str, Any]:
        """What else a URL of this dialect sets (its own parameters)."""
        return {}

    @classmethod
    def from_url(cls, url: str, options: EndpointOptions | None = None) -> Self:
        """From a URL (``?table=`` and the dialect's parameters) and a copy's options."""
        opts = options or EndpointOptions()
        return cls.from_sql_url(parse_sql_url(url), select_query=opts.query, create=opts.create,
                                chunk_size=min(opts.chunk_size, MAX_CHUNK),
                                partitions=opts.partitions)

    def table_parts(self) -> tuple[str | None, str]:
        """(database or schema, table), unquoted, as the server names them."""
        raise NotImplementedError

    def quoted_table(self) -> str:
        """The table as quoted identifiers (never a way to inject SQL)."""
        container, name = self.table_parts()
        quoted = quote_ident(name, self.dialect)
        return f"{quote_ident(container, self.dialect)}.{quoted}" if container else quoted

    @classmethod
    def from_fields(cls, connection_string: str, username: str | None = None,
                    password: str | None = None, database_name: str | None = None,
                    **fields: Any) -> Self:
        """From a data node's or database object's fields (``connectionString``,
        ``username``...)."""
        return cls.from_sql_url(from_fields(connection_string, username, password,
                                            database_name), **fields)

    def _describe(self, scheme: str) -> str:
        """``scheme://user@host:port/db`` and the table or ``(query)``, without the password."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"{scheme}://{user}{host}:{self.port}/{self.database or ''}"
        if self.table:
            where += f"?table={self.table}"
        elif self.select_query:
            where += " (query)"
        return where


class SqlEndpoint(Protocol):
    """The fields of a SQL endpoint the shared source and sink logic reads."""

    #: The product named in errors ("PostgreSQL", "MySQL").
    product: ClassVar[str]

    @property
    def dialect(self) -> Dialect: ...
    @property
    def table(self) -> str | None: ...
    @property
    def select_query(self) -> str | None: ...
    @property
    def insert_query(self) -> str | None: ...
    @property
    def create_table_sql(self) -> str | None: ...
    @property
    def create(self) -> bool: ...
    def describe(self) -> str: ...
    def quoted_table(self) -> str: ...
    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Self: ...


E = TypeVar("E", bound=SqlEndpoint)


class SqlSource(Generic[E]):
    """Base of a source that reads a table or a ``selectQuery``."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True
    #: Its CSV is the database's text of each column (the bytes lane into Parquet).
    typed_csv = True

    def __init__(self, endpoint: E) -> None:
        if not endpoint.table and not endpoint.select_query:
            raise ConfigError(f"a {endpoint.product} source needs a table (?table=...) or a query",
                              connector=endpoint.describe())
        self.endpoint = endpoint
        self.describe = endpoint.describe()
        #: A condition on the rows read (an incremental copy's ``column > watermark``).
        self.where: str | None = None

    @property
    def native_format(self) -> TextFormat | None:
        return None

    def restrict(self, where: str | None) -> None:
        """Read only the rows where ``where`` holds (SQL made by the caller from quoted
        names and literals; see :mod:`connectors.sql._incremental`). A ``selectQuery`` is
        read as a derived table, the condition on its result's columns."""
        self.where = where

    def _query(self) -> str:
        query = self.endpoint.select_query
        if self.where is None:
            return query or f"SELECT * FROM {self.endpoint.quoted_table()}"
        if query:
            body = query.strip().rstrip(";").rstrip()
            return f"SELECT * FROM ({body}\n) AS headrace_increment WHERE {self.where}"
        return f"SELECT * FROM {self.endpoint.quoted_table()} WHERE {self.where}"


class SqlSink(Generic[E]):
    """Base of a sink that loads into a table or through an ``insertQuery``."""

    #: Reports the rows it moves (the copy need not scan the bytes for them).
    counts_rows = True

    def __init__(self, endpoint: E) -> None:
        if not endpoint.table and not endpoint.insert_query:
            raise ConfigError(f"a {endpoint.product} sink needs a table (?table=...) or an "
                              "insertQuery", connector=endpoint.describe())
        self.endpoint = endpoint
        self.describe = endpoint.describe()
        self.source_schema: Schema | None = None
        #: Set by ``--verify``: called with the rows the load wrote, before commit.
        self.verify_check: VerifyCheck | None = None
        #: ``--key`` of an incremental copy: rows replace the target's rows with their key
        #: (upsert) instead of being appended.
        self.merge_keys: tuple[str, ...] = ()
        #: An incremental copy's (copy key, state maker): the state is written in the
        #: load's transaction (the ``headrace_checkpoints`` row), after the last row.
        self.watermark: tuple[str, Callable[[], str]] | None = None

    def commit_watermark(self, key: str, state: Callable[[], str]) -> None:
        self.watermark = (key, state)

    verify_kind: Literal["rows", "bytes"] = "rows"

    def verify_with(self, check: VerifyCheck) -> None:
        """Verify the load before committing (see :class:`~connectors.base.VerifiesLoad`).
        Loads under a checkpoint key that go in resumable batches cannot be verified as a
        whole inside one transaction; they refuse instead. An insertQuery other than the
        plain ``INSERT INTO t (cols) VALUES (?, ...)`` is refused here, before any load
        (:mod:`._insert`)."""
        if self.endpoint.insert_query:
            insert_target(self.endpoint.insert_query, self.endpoint.dialect)
        self.verify_check = check

    def written_table(self) -> tuple[E | None, tuple[str, ...] | None]:
        """The endpoint of the table the load writes (None: not known), and for a plain
        insertQuery the columns its input fields go to, in order (``--verify`` reads them
        back; ``schema`` describes them)."""
        ep = self.endpoint
        if not ep.insert_query:
            return (ep if ep.table else None), None
        try:
            target = insert_target(ep.insert_query, ep.dialect)
        except ConfigError:
            return None, None
        return ep.model_copy(update={"table": target.table, "insert_query": None}), \
            target.columns

    def expect_schema(self, schema: Schema | None) -> None:
        """The source's columns, used to create the table when ``create`` is set."""
        self.source_schema = schema

    @property
    def needs_source_schema(self) -> bool:
        """Only a sink that may create its table from the source's columns needs them."""
        ep = self.endpoint
        return bool(ep.table and ep.create and not ep.create_table_sql)

    @property
    def native_format(self) -> TextFormat | None:
        return None

    def create_statement(self, hint: Schema | None,
                         ddl: Callable[[str, Schema], str]) -> str:
        """The statement that makes the missing target table: ``createTableSql``, or one made
        by ``ddl`` from the source's columns (``hint``) when ``create`` is set."""
        ep = self.endpoint
        if ep.create_table_sql:
            return ep.create_table_sql
        if ep.create:
            if hint is None or not len(hint):
                raise ConfigError("cannot create the table: the source's columns are unknown",
                                  connector=self.describe, operation="create table")
            return ddl(ep.quoted_table(), hint)
        raise NotFoundError(f"table {ep.table} does not exist (give createTableSql, or "
                            "--create to make it from the source's columns)",
                            connector=self.describe, operation="load")


def is_utf8(fmt: TextFormat) -> bool:
    """True when ``fmt`` is UTF-8 text under any spelling (``UTF-8``, ``utf8mb4``...): the
    only encoding the servers are asked to read or write."""
    return fmt.encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8mb4")


async def next_batch(inp: RowsIn) -> RowBatch | None:
    """The next batch of ``inp``, or None at end-of-stream."""
    try:
        return await inp.receive()
    except EndOfStream:
        return None


def first_line(batch: RowBatch, rows_before: int) -> int:
    """The source line number of ``batch``'s first row (counted on when the batch has none)."""
    return batch.first_line if batch.first_line is not None else rows_before + 1


def target_columns(names: Sequence[str], target: Sequence[str]) -> list[str]:
    """The target column each input field goes to.

    By name when every input name is a target column; by position when the input has no
    names, or names the table does not have (``col1``... of a headerless CSV) but exactly as
    many fields as the table has columns.
    """
    if names and all(n in target for n in names):
        return list(names)
    if not names or len(names) == len(target):
        return list(target)
    missing = [n for n in names if n not in target]
    raise BadDataError(f"input columns {missing} are not in the target table (its columns: "
                       f"{list(target)}), and the input has {len(names)} fields for "
                       f"{len(target)} columns, so they cannot be matched by position")


def aligned_schema(names: Sequence[str], target: Schema) -> Schema:
    """The target's columns in the order the input's fields go to them (:func:`target_columns`):
    what a verify reads back, and the types the source's side reads its values as."""
    by_name = {c.name: c for c in target.columns}
    return Schema(tuple(by_name[n] for n in target_columns(names, target.names)))
