"""Parsing of database URLs and data-node connection fields, and SQL text helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.base import CSV, TSV, EndpointOptions, TextFormat
from connectors.errors import ConfigError
from connectors.mysql import (
    MySqlEndpoint,
    encode_rows,
    line_select,
    load_data_options,
    supports,
)
from connectors.postgres import (
    PostgresEndpoint,
    PostgresSink,
    PostgresSource,
    pg_coercer,
    pg_column_fits,
)
from connectors.sql import (
    convert_placeholders,
    from_fields,
    parse_datetime,
    parse_sql_url,
    quote_qualified,
    split_qualified,
    split_statements,
    truthy,
)


def test_postgres_url_with_table_and_password() -> None:
    u = parse_sql_url("postgresql://alice:s%40cret@127.0.0.1:55432/sales?table=public.t")
    assert (u.dialect, u.host, u.port, u.database) == ("postgresql", "127.0.0.1", 55432, "sales")
    assert (u.user, u.password, u.table) == ("alice", "s@cret", "public.t")
    assert not u.redshift


def test_describe_and_repr_never_show_the_password() -> None:
    u = parse_sql_url("postgresql://alice:hunter2@db.local/sales?password=hunter3&table=t")
    assert u.password == "hunter3"
    for text in (u.describe(), repr(u)):
        assert "hunter" not in text
    assert u.describe() == "postgresql://alice@db.local:5432/sales?table=t"


@pytest.mark.parametrize(("url", "dialect", "port", "redshift"), [
    ("jdbc:postgresql://h:5433/db", "postgresql", 5433, False),
    ("jdbc:postgresql://h/db", "postgresql", 5432, False),
    ("jdbc:redshift://cluster.example:5439/dev", "postgresql", 5439, True),
    ("jdbc:redshift://cluster.example/dev", "postgresql", 5439, True),
    ("jdbc:mysql://h:3306/db", "mysql", 3306, False),
    ("jdbc:mysql://h/db", "mysql", 3306, False),
    ("mysql://root@127.0.0.1:53306/db?table=t", "mysql", 53306, False),
    ("mariadb://root@h/db", "mysql", 3306, False),
    ("postgres://u@h/db", "postgresql", 5432, False),
])
def test_schemes_and_default_ports(url: str, dialect: str, port: int, redshift: bool) -> None:
    u = parse_sql_url(url)
    assert (u.dialect, u.port, u.redshift) == (dialect, port, redshift)


def test_jdbc_properties_give_credentials() -> None:
    u = parse_sql_url("jdbc:mysql://h:3306/db?user=bob&password=pw1&useSSL=false")
    assert (u.user, u.password) == ("bob", "pw1")
    assert u.params == {"useSSL": "false"}
    assert "pw1" not in u.describe()


def test_data_node_fields_override_url_parts() -> None:
    u = from_fields("jdbc:postgresql://h:5432/olddb", username="etl", password="pw",
                    database_name="newdb")
    assert (u.user, u.password, u.database) == ("etl", "pw", "newdb")
    same = from_fields("jdbc:mysql://h/db")
    assert (same.user, same.password, same.database) == (None, None, "db")


def test_ipv6_host() -> None:
    u = parse_sql_url("postgresql://u@[::1]:55432/db")
    assert u.host == "::1"
    assert u.describe() == "postgresql://u@[::1]:55432/db"


@pytest.mark.parametrize("url", [
    "http://h/db", "h:5432/db", "jdbc:oracle:thin:@h:1521:db", "postgresql:///db",
    "postgresql://u:pw@h:notaport/db",
])
def test_bad_urls_are_config_errors_without_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sql_url(url)
    assert "pw@" not in str(info.value)


def test_bad_url_error_redacts_password_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        parse_sql_url("ftp://h/db?user=a&password=topsecret")
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(("name", "dialect", "parts"), [
    ("t", "postgresql", ["t"]),
    ("Public.MyTable", "postgresql", ["public", "mytable"]),
    ('"Public"."My Table"', "postgresql", ["Public", "My Table"]),
    ('"a.b".c', "postgresql", ["a.b", "c"]),
    ('"we""ird"', "postgresql", ['we"ird']),
    ("MyTable", "mysql", ["MyTable"]),
    ("`db`.`a``b`", "mysql", ["db", "a`b"]),
    ("t; DROP TABLE x", "postgresql", ["t; DROP TABLE x"]),
])
def test_split_qualified(name: str, dialect: str, parts: list[str]) -> None:
    assert split_qualified(name, dialect) == parts  # type: ignore[arg-type]


def test_quote_qualified_makes_injection_inert() -> None:
    assert quote_qualified('t"; DROP TABLE x; --', "postgresql") == '"t""; DROP TABLE x; --"'
    assert quote_qualified("t`; DROP TABLE x", "mysql") == "`t``; DROP TABLE x`"
    assert quote_qualified("t", "postgresql", schema="Sales") == '"sales"."t"'


@pytest.mark.parametrize("name", ["", "a..b", '"open', "a.b.c.d"])
def test_bad_table_names(name: str) -> None:
    with pytest.raises(ConfigError):
        split_qualified(name, "postgresql")


def test_placeholders_skip_literals_and_comments() -> None:
    sql = "INSERT INTO t VALUES (?, '?', \"?\", ?) -- why?\n/* ? */ ON CONFLICT DO NOTHING"
    pg, n = convert_placeholders(sql, "postgresql")
    assert n == 2
    assert pg == ("INSERT INTO t VALUES ($1, '?', \"?\", $2) -- why?\n/* ? */ "
                  "ON CONFLICT DO NOTHING")
    my, n = convert_placeholders("SELECT ?, 'a%?', `c?` LIKE '50%'", "mysql")
    assert n == 1
    assert my == "SELECT %s, 'a%%?', `c?` LIKE '50%%'"


def test_placeholders_pg_dollar_quotes() -> None:
    sql, n = convert_placeholders("SELECT $$ ? $$, $tag$?$tag$, ?", "postgresql")
    assert (sql, n) == ("SELECT $$ ? $$, $tag$?$tag$, $1", 1)


def test_mysql_backslash_escapes_in_strings() -> None:
    sql, n = convert_placeholders("SELECT 'it\\'s ?', ?", "mysql")
    assert (sql, n) == ("SELECT 'it\\'s ?', %s", 1)


def test_split_statements() -> None:
    script = """
    CREATE TABLE a (x text DEFAULT ';');  -- a comment; with semicolon
    INSERT INTO a VALUES (?);
    /* only a comment */ ;
    DO $$ BEGIN PERFORM 1; END $$;
    """
    stmts = split_statements(script, "postgresql")
    assert stmts == [
        "CREATE TABLE a (x text DEFAULT ';')",
        "-- a comment; with semicolon\n    INSERT INTO a VALUES (?)",
        "DO $$ BEGIN PERFORM 1; END $$",
    ]


# --- endpoints, formats and value helpers (no server needed) ----------------------------------



def test_endpoints_from_data_node_fields_hide_the_password() -> None:
    pg = PostgresEndpoint.from_fields("jdbc:redshift://rs.local:5439/dev", "etl", "s3cr3t!",
                                      table="Sales.Orders", select_query=None)
    assert pg.redshift and pg.port == 5439 and pg.user == "etl"
    assert pg.quoted_table() == '"sales"."orders"'
    assert "s3cr3t" not in pg.describe() and "s3cr3t" not in repr(pg)
    my = MySqlEndpoint.from_fields("jdbc:mysql://db.local/shop", "app", "pw9",
                                   table="orders", schema_name="shop2")
    assert my.quoted_table() == "`shop2`.`orders`"
    assert "pw9" not in my.describe() and "pw9" not in repr(my)
    with pytest.raises(ConfigError):
        MySqlEndpoint.from_fields("jdbc:postgresql://h/db")


def test_url_options_reach_the_endpoint() -> None:
    ep = PostgresEndpoint.from_url("postgresql://u:pw@h/db", EndpointOptions(
        query="SELECT 1", create=True))
    assert (ep.select_query, ep.create, ep.table) == ("SELECT 1", True, None)
    assert PostgresSource(ep).describe.endswith("(query)")
    with pytest.raises(ConfigError):
        PostgresSink(ep)  # a sink needs a table or an insertQuery


def test_which_formats_each_end_speaks() -> None:
    pg_src = PostgresSource(PostgresEndpoint.from_url("postgresql://h/db?table=t"))
    pg_sink = PostgresSink(PostgresEndpoint.from_url("postgresql://h/db?table=t"))
    for fmt in (CSV, TSV, CSV.replace(column_separator=";", null="\\N", header=True)):
        assert pg_src.can_produce(fmt) and pg_sink.can_consume(fmt)
    assert not pg_src.can_produce(TextFormat(kind="jsonl"))
    assert not pg_src.can_produce(CSV.replace(column_separator="::"))
    assert not pg_src.can_produce(CSV.replace(encoding="utf-16"))
    assert pg_sink.can_consume(CSV.replace(record_separator="\r\n"))
    assert supports(CSV) and supports(TSV) and supports(CSV.replace(column_separator="::"))
    assert not supports(CSV.replace(quote=None))
    assert load_data_options(TSV) is not None
    assert load_data_options(CSV.replace(null="NULL")) is not None
    assert load_data_options(CSV) is None  # NULL as an empty field: rows lane


def test_server_built_line_sql_quotes_and_escapes() -> None:
    sql = line_select([("a", "number"), ("we`ird", "text")], CSV, "SELECT * FROM `t`")
    assert "q.`we``ird`" in sql and "REPLACE(q.`we``ird`, '\"', '\"\"')" in sql
    assert sql.endswith("FROM (SELECT * FROM `t`) AS q")
    tsv = line_select([("a", "text")], TSV, "SELECT 1 AS a")
    assert "_utf8mb4 X'5c4e'" in tsv  # \N as a hex literal, whatever the sql_mode


def test_encode_rows_for_load_data() -> None:
    rows = [(1, "a\tb\\c\nd", None, True, Decimal("1.50"), b"\x00\xff",
             datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))), date(2024, 5, 6)),
            (2, "", None, False, None, None, None, None)]
    assert encode_rows(rows) == (
        b"1\ta\\tb\\\\c\\nd\t\\N\t1\t1.50\t\\\\x00ff\t2024-01-01 00:00:00\t2024-05-06\n"
        b"2\t\t\\N\t0\t\\N\t\\N\t\\N\t\\N\n")


def test_value_helpers() -> None:
    assert parse_datetime("2024-01-02 03:04:05+00") == datetime(2024, 1, 2, 3, 4, 5,
                                                                tzinfo=UTC)
    assert parse_datetime("2024-01-02T03:04:05Z").tzinfo is not None
    assert parse_datetime("2024-01-02 03:04:05").tzinfo is None
    to_int = pg_coercer("int8")
    assert to_int is not None and to_int(" 42 ") == 42 and to_int(None) is None
    with pytest.raises(ValueError):
        to_int("4.5")
    to_tz = pg_coercer("timestamptz")
    assert to_tz is not None and to_tz(datetime(2024, 1, 1)).tzinfo is UTC
    to_bool = pg_coercer("bool")
    assert to_bool is not None and to_bool("t") is True and to_bool("0") is False
    assert pg_column_fits("int4", [1, None, 3]) and not pg_column_fits("int4", [1, "2"])
    assert not pg_column_fits("timestamptz", [datetime(2024, 1, 1)])
    assert pg_column_fits("timestamptz", [datetime(2024, 1, 1, tzinfo=UTC), None])
    assert [truthy(v) for v in (None, 0, 1, "f", "false", "", "yes", b"1", True)] == [
        False, False, True, False, False, False, True, True, True]
