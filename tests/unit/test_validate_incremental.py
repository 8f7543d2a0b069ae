"""Validation of the incremental-copy fields (headrace extensions) on a CopyActivity and on the
SQL data node that is its input: every finding names the object and the field."""

from __future__ import annotations

from typing import Any

from tests.unit.test_validate import check, errors, s3, warnings

DB = {"id": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://h/db",
      "jdbcDriverClass": "org.postgresql.Driver", "username": "u", "*password": "p"}


def node(oid: str = "In", **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "SqlDataNode", "database": {"ref": "Db"}, "table": "t",
            **fields}


def copy(oid: str = "Copy", **fields: Any) -> dict[str, Any]:
    return {"id": oid, "type": "CopyActivity", "input": {"ref": "In"},
            "output": {"ref": "Out"}, **fields}


def test_the_fields_are_known_on_the_activity_and_the_sql_nodes() -> None:
    for objects in ((copy(incrementalColumn="ts", incrementalKey=["id", "k"],
                          lookback="5m"), node()),
                    (copy(), node(incrementalColumn="ts", incrementalKey="id",
                                  lookback="5 minutes")),
                    (copy(), node(type="MySqlDataNode", incrementalColumn="ts",
                                  selectQuery="SELECT * FROM t", lookback="2d"))):
        report = check(*objects, DB, s3("Out"))
        assert report.errors == [] and report.warnings == [], report


def test_a_bad_lookback_is_named_by_object_and_field() -> None:
    found = errors(check(copy(incrementalColumn="ts", lookback="soon"), node(), DB,
                         s3("Out")))
    assert "'soon' is not a period (30s, 5m, 1h, 2d" in found[("Copy", "lookback")]
    found = errors(check(copy(), node(incrementalColumn="ts", lookback="5 fortnights"), DB,
                         s3("Out")))
    assert "unknown unit 'fortnights'" in found[("In", "lookback")]
    # an expression is checked when it has a value, at run time
    assert check(copy(incrementalColumn="ts", lookback="#{myLookback}"), node(), DB,
                 s3("Out"), parameters=[{"id": "myLookback", "type": "String",
                                         "default": "5m"}]).errors == []


def test_a_key_or_lookback_without_a_column_on_the_same_object() -> None:
    found = errors(check(copy(incrementalKey="id"), node(incrementalColumn="ts"), DB,
                         s3("Out")))
    assert "'incrementalKey' goes with 'incrementalColumn' on the same object" in \
        found[("Copy", "incrementalKey")]
    found = errors(check(copy(), node(lookback="5m"), DB, s3("Out")))
    assert "'lookback' goes with 'incrementalColumn'" in found[("In", "lookback")]
    found = errors(check(copy(incrementalColumn=" "), node(), DB, s3("Out")))
    assert "'incrementalColumn' is empty" in found[("Copy", "incrementalColumn")]


def test_which_set_wins_and_where_a_node_is_not_read() -> None:
    found = warnings(check(copy(incrementalColumn="ts"), node(incrementalColumn="other"),
                           DB, s3("Out")))
    assert "'Copy' sets 'incrementalColumn' too: the activity's incremental fields are " \
        "used, this node's are ignored" in found[("In", "incrementalColumn")]
    found = warnings(check(copy(input={"ref": "Src"}, output={"ref": "In"}),
                           node(incrementalColumn="ts"), s3("Src"), DB))
    assert "read only when the node is a CopyActivity's input" in \
        found[("In", "incrementalColumn")]
    # not an incremental field of other types: an unknown field there, as before
    assert ("Out", "incrementalColumn") in warnings(check(
        copy(), node(), DB, s3("Out", incrementalColumn="ts")))
