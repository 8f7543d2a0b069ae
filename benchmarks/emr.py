"""``python -m benchmarks.emr``: the EMR family's two costs, each against its baseline, measured
in the same run on the same servers, alternating (the order flips every round).

* ``ddb-export``: an EmrActivity running the EMR DynamoDB tools' ``DynamoDbExport`` (native:
  the tools' layout, manifest and ``_SUCCESS``) of the table of ``--items`` items (200,000)
  against the plain copy path: a CopyActivity from the same DynamoDBDataNode to an S3DataNode
  (DynamoDB JSON lines). Both through ``headrace run``; ratio = plain seconds / export seconds
  (above 1: the export is faster).
* ``hive``: a HiveActivity over ``--rows`` CSV rows (1,000,000) on S3 (``${input1}`` staged in,
  ``${output1}`` uploaded) against the same query run directly by ``spark-sql`` on a local copy
  of the file, with the same master and driver memory; ratio = spark-sql seconds / headrace
  seconds (below 1: what headrace's staging, metastore and engine cost).

Peak RSS is the measured process's and its descendants' (``wait4``), so it includes the JVM.
Servers are started as ``python -m benchmarks`` does; the DynamoDB items are the suite's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import config, data
from benchmarks.measure import Measurement, run

WORK = config.CACHE / "emr"
QUERY = "SELECT kind, SUM(amount) AS total, COUNT(*) AS n FROM {table} GROUP BY kind"
SPARK_CONF = {"spark.driver.memory": "1g", "spark.ui.enabled": "false",
              "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
              "spark.sql.shuffle.partitions": "8"}


def _log(message: str) -> None:
    print(f"[emr] {message}", file=sys.stderr, flush=True)


def _definition(name: str, objects: list[dict[str, Any]]) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    body = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand",
         "failureAndRerunMode": "CASCADE", "role": "r", "resourceRole": "r"},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster"}, *objects]}
    path = WORK / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def _headrace_run(definition: Path, env: dict[str, str], tag: str) -> Measurement:
    store = WORK / f"store-{tag}-{time.time_ns()}.db"
    m = run([config.HEADRACE, "run", str(definition), "--output", "json", "--store",
             f"sqlite:///{store}"], env, timeout=3600)
    report = json.loads(m.stdout)
    statuses = {i["status"] for i in report["instances"]}
    if statuses != {"FINISHED"}:
        raise RuntimeError(f"{definition.name}: {report['instances']}")
    return m


def ddb_export(items: int, env: dict[str, str], runs: int) -> dict[str, Any]:
    data.ensure_items(items, env)
    table = data.items_table(items)
    jar = "s3://dynamodb-emr-us-east-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar"
    pairs = []
    for round_no in range(runs):
        export = _definition("ddb-export", [{
            "id": "Export", "name": "Export", "type": "EmrActivity", "runsOn": {"ref": "Cluster"},
            "step": f"{jar},org.apache.hadoop.dynamodb.tools.DynamoDbExport,"
                    f"{config.s3_url(f'emr/export-{round_no}')},{table}"}])
        plain = _definition("ddb-plain", [
            {"id": "Table", "name": "Table", "type": "DynamoDBDataNode", "tableName": table},
            {"id": "Fmt", "name": "Fmt", "type": "DynamoDBDataFormat"},
            {"id": "Out", "name": "Out", "type": "S3DataNode", "dataFormat": {"ref": "Fmt"},
             "directoryPath": config.s3_url(f"emr/plain-{round_no}/")},
            {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": {"ref": "Table"},
             "output": {"ref": "Out"}}])
        order = [("export", export), ("plain", plain)]
        if round_no % 2:
            order.reverse()
        got: dict[str, Measurement] = {}
        for name, definition in order:
            _log(f"ddb-export round {round_no + 1}: {name}")
            got[name] = _headrace_run(definition, env, name)
        pairs.append(got)
    return _summary("DynamoDB export (EMR tools format) vs CopyActivity", items, "items",
                    pairs, contender="export", baseline="plain")


def _csv(rows: int) -> Path:
    path = config.CACHE / f"emr-hive-{rows}.csv"
    if not path.exists():
        _log(f"writing {rows:,} CSV rows")
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            for i in range(rows):
                f.write(f"{i},k{i % 17},{(i % 1000) * 0.25}\n")
        tmp.rename(path)
    return path


def _spark_sql() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-sql")


def hive(rows: int, env: dict[str, str], runs: int) -> dict[str, Any]:
    csv = _csv(rows)
    key = f"emr/hive-in-{rows}/data.csv"
    if not data.s3_exists(env, key):
        data.s5cmd(env, "cp", str(csv), config.s3_url(key))
    master = f"local[{max(1, min(8, os.cpu_count() or 1))}]"
    pairs = []
    for round_no in range(runs):
        out = WORK / f"spark-sql-out-{round_no}"
        subprocess.run(["rm", "-rf", str(out), str(WORK / "spark-sql-warehouse")], check=True)
        script = (f"CREATE TEMPORARY VIEW sales (id BIGINT, kind STRING, amount DOUBLE) "
                  f"USING csv "
                  f"OPTIONS (path '{csv}'); "
                  f"INSERT OVERWRITE DIRECTORY '{out}' USING csv "
                  f"{QUERY.format(table='sales')};")
        native = [_spark_sql(), "--master", master]
        for k, v in {**SPARK_CONF,
                     "spark.sql.warehouse.dir": (WORK / "spark-sql-warehouse").as_uri()}.items():
            native += ["--conf", f"{k}={v}"]
        native += ["-e", script]
        definition = _definition("hive", [
            {"id": "SalesFormat", "name": "SalesFormat", "type": "CSV",
             "column": ["id BIGINT", "kind STRING", "amount DOUBLE"]},
            {"id": "TotalsFormat", "name": "TotalsFormat", "type": "CSV",
             "column": ["kind STRING", "total DOUBLE", "n BIGINT"]},
            {"id": "Sales", "name": "Sales", "type": "S3DataNode",
             "dataFormat": {"ref": "SalesFormat"},
             "directoryPath": config.s3_url(f"emr/hive-in-{rows}")},
            {"id": "Totals", "name": "Totals", "type": "S3DataNode",
             "dataFormat": {"ref": "TotalsFormat"},
             "directoryPath": config.s3_url(f"emr/hive-out-{round_no}")},
            {"id": "Hive", "name": "Hive", "type": "HiveActivity", "runsOn": {"ref": "Cluster"},
             "input": {"ref": "Sales"}, "output": {"ref": "Totals"},
             "hiveScript": f"INSERT OVERWRITE TABLE ${{output1}} "
                           f"{QUERY.format(table='${input1}')};"}])
        order = ["headrace", "spark-sql"]
        if round_no % 2:
            order.reverse()
        got: dict[str, Measurement] = {}
        for name in order:
            _log(f"hive round {round_no + 1}: {name}")
            got[name] = (_headrace_run(definition, env, "hive") if name == "headrace"
                         else run(native, env, timeout=3600, cwd=str(WORK)))
        pairs.append(got)
    return _summary("HiveActivity (S3 staged) vs spark-sql on a local file", rows, "rows",
                    pairs, contender="headrace", baseline="spark-sql")


def _summary(title: str, size: int, unit: str, pairs: list[dict[str, Measurement]], *,
             contender: str, baseline: str) -> dict[str, Any]:
    ratios = [p[baseline].seconds / p[contender].seconds for p in pairs]
    return {
        "path": title, unit: size, "runs": len(pairs),
        f"{contender}_seconds": [round(p[contender].seconds, 2) for p in pairs],
        f"{baseline}_seconds": [round(p[baseline].seconds, 2) for p in pairs],
        "ratio": round(statistics.median(ratios), 3),
        f"{contender}_peak_rss_mb": round(max(p[contender].peak_rss_mb for p in pairs), 1),
        f"{baseline}_peak_rss_mb": round(max(p[baseline].peak_rss_mb for p in pairs), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="ddb-export,hive")
    args = parser.parse_args(argv)
    env = config.Env.build().values
    config.CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([config.PYTHON, "-m", "tests.services", "up", "--only", "s3,dynamodb"],
                   env=env, check=True)
    data.ensure_base(env)
    results = []
    only = set(args.only.split(","))
    if "ddb-export" in only:
        results.append(ddb_export(args.items, env, args.runs))
    if "hive" in only:
        results.append(hive(args.rows, env, args.runs))
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
