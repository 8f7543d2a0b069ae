"""Parsing of database URLs and data-node connection fields, and SQL text helpers."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError
from connectors.sqltext import (
    convert_placeholders,
    quote_qualified,
    split_qualified,
    split_statements,
)
from connectors.sqlurl import from_fields, parse_sql_url


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
