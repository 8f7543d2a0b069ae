"""CSV headers and a format per end (issue 11, "what users of the peers expect"): ``copy
hdr.csv out.jsonl`` used to make the header a data row keyed ``col1..colN``, and ``--format``
applies to both ends, so ``copy in.csv out.txt --format tsv`` wrote CSV in silence.
``--header``, ``--from-format``/``--to-format`` (``--format`` kept for both), a warning when
``--format`` contradicts an end's name, and ``"header": "true"`` on a definition's CSV/TSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, ref, write_definition

DATA = "name,qty\ntea,3\ncake,5\n"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "hdr.csv").write_text(DATA)
    return Cli(tmp_path)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_header_names_the_columns(cli: Cli, tmp_path: Path) -> None:
    cli("copy", "hdr.csv", "out.jsonl", "--header")
    assert [json.loads(x) for x in lines(tmp_path / "out.jsonl")] == [
        {"name": "tea", "qty": "3"}, {"name": "cake", "qty": "5"}]
    cli("copy", "hdr.csv", "plain.jsonl")  # --no-header, the default: every line is data
    assert json.loads(lines(tmp_path / "plain.jsonl")[0]) == {"col1": "name", "col2": "qty"}
    cli("copy", "out.jsonl", "again.tsv", "--header")  # and written from the columns
    assert lines(tmp_path / "again.tsv") == ["name\tqty", "tea\t3", "cake\t5"]


def test_a_format_per_end(cli: Cli, tmp_path: Path) -> None:
    converted = cli("copy", "hdr.csv", "out.txt", "--to-format", "tsv")
    assert lines(tmp_path / "out.txt") == ["name\tqty", "tea\t3", "cake\t5"]
    assert "warning" not in converted.stderr
    both = cli("copy", "hdr.csv", "same.txt", "--format", "tsv")  # both ends: no conversion
    assert (tmp_path / "same.txt").read_text() == DATA
    assert both.stderr.strip() == (
        "headrace copy: warning: hdr.csv is read as tsv (--format applies to both ends), "
        "not as the csv its name says; to convert, give --to-format tsv instead")
    cli("copy", "hdr.csv", "rows.data", "--format", "csv", "--to-format", "jsonl", "--header")
    assert json.loads(lines(tmp_path / "rows.data")[1]) == {"name": "cake", "qty": "5"}


def test_a_definitions_csv_and_tsv_take_header(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text(DATA)
    (tmp_path / "in" / "b.csv").write_text("name,qty\ntoast,1\n")  # its header is skipped too
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "In", "name": "In", "type": "S3DataNode", "directoryPath": str(tmp_path / "in"),
         "dataFormat": ref("WithHeader")},
        {"id": "WithHeader", "name": "WithHeader", "type": "CSV", "header": "true"},
        {"id": "Out", "name": "Out", "type": "S3DataNode",
         "filePath": str(tmp_path / "out.tsv"), "dataFormat": ref("Report")},
        {"id": "Report", "name": "Report", "type": "TSV", "header": "true"},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "workerGroup": "local"})
    out = cli.run(definition)
    assert [i["status"] for i in out["instances"]] == ["FINISHED"]
    assert lines(tmp_path / "out.tsv") == ["name\tqty", "tea\t3", "cake\t5", "toast\t1"]
    bad = definition.read_text().replace('"header": "true"', '"header": "yes"', 1)
    (tmp_path / "bad.json").write_text(bad)
    refused = cli.json("validate", str(tmp_path / "bad.json"), check=1)
    assert [(e["id"], e["field"]) for e in refused["errors"]] == [("WithHeader", "header")]
