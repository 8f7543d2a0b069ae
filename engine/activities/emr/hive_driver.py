"""The Spark application behind HiveActivity and HiveCopyActivity (run by ``spark-submit``).

It is given one JSON file: ``{"tables": [DDL...], "statements": [SQL...]}``. It opens a
SparkSession with Hive support (the metastore and warehouse are configured by the caller with
``--conf``), creates the tables, then runs the statements in order. A statement that returns
rows (a query, ``SHOW``, ``DESCRIBE``) prints them to stdout, tab-separated, as the Hive CLI
did. The first failing statement ends the application with exit code 1 and the statement's
number in the message. Only the standard library and PySpark are used here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_ROWS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "FROM", "TABLE")
#: Rows a query prints at most.
PRINT_LIMIT = 10_000


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    spark = SparkSession.builder.appName(spec.get("name", "headrace-hive")) \
        .enableHiveSupport().getOrCreate()
    try:
        for number, ddl in enumerate(spec["tables"], start=1):
            try:
                spark.sql(ddl)
            except Exception as exc:
                print(f"headrace: creating table {number} failed: {exc}\n{ddl}", file=sys.stderr)
                return 1
        for number, statement in enumerate(spec["statements"], start=1):
            try:
                frame = spark.sql(statement)
                if statement.lstrip("( \n\t").split(None, 1)[0].upper() in _ROWS:
                    for row in frame.limit(PRINT_LIMIT).toLocalIterator():
                        print("\t".join(_cell(v) for v in row))
            except Exception as exc:
                print(f"headrace: statement {number} failed: {exc}\n{statement}",
                      file=sys.stderr)
                return 1
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
