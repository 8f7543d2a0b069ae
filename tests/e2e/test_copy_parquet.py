"""Parquet from the command line and in definitions (issue 18): ``--format parquet`` and a
``.parquet`` name, ``--parquet-compression``, and ``ParquetDataFormat`` on an S3DataNode,
validated like every field. The files are read back with pyarrow, not the connectors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.cli_kit import Cli, ref, write_definition

DATA = "name,qty\ntea,3\ncake,\n"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "hdr.csv").write_text(DATA)
    return Cli(tmp_path)


def test_copy_to_and_from_parquet(cli: Cli, tmp_path: Path) -> None:
    out = cli.json("copy", "hdr.csv", "out.parquet", "--header", "--parquet-compression",
                   "snappy")
    assert out["rows"] == 2
    file = pq.ParquetFile(tmp_path / "out.parquet")
    assert file.read().to_pylist() == [{"name": "tea", "qty": "3"},
                                       {"name": "cake", "qty": None}]
    assert file.metadata.row_group(0).column(0).compression == "SNAPPY"
    cli("copy", "out.parquet", "back.csv", "--header")
    assert (tmp_path / "back.csv").read_text() == DATA
    cli("copy", "hdr.csv", "dir/", "--header", "--to-format", "parquet")
    assert pq.read_table(tmp_path / "dir" / "part-00000.parquet").num_rows == 2


def test_parquet_compression_needs_a_parquet_dest(cli: Cli) -> None:
    refused = cli("copy", "hdr.csv", "out.csv", "--parquet-compression", "zstd", check=2)
    assert "--parquet-compression applies to a Parquet DEST" in refused.stderr


def test_a_definitions_parquet_data_format(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": str(tmp_path / "hdr.csv"),
         "dataFormat": ref("WithHeader")},
        {"id": "WithHeader", "name": "WithHeader", "type": "CSV", "header": "true"},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "directoryPath": str(tmp_path / "lake"), "dataFormat": ref("Lake")},
        {"id": "Lake", "name": "Lake", "type": "ParquetDataFormat", "compression": "none"},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "local"})
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED"]
    file = pq.ParquetFile(tmp_path / "lake" / "part-00000.parquet")
    assert file.read().column("name").to_pylist() == ["tea", "cake"]
    assert file.metadata.row_group(0).column(0).compression == "UNCOMPRESSED"

    bad = json.loads(definition.read_text())
    for obj in bad["objects"]:
        if obj["id"] == "Lake":
            obj["compression"] = "gzip"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = cli.json("validate", str(tmp_path / "bad.json"), check=1)
    assert [(e["id"], e["field"]) for e in refused["errors"]] == [("Lake", "compression")]
