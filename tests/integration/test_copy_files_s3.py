"""Copies between local files and S3 through urls.open_source/open_sink, in both lanes."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import CSV, JSONL, EndpointOptions
from connectors.copy import copy
from connectors.urls import open_sink, open_source

pytestmark = pytest.mark.anyio


async def test_directory_to_prefix_to_directory(s3_bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"day-{i}.csv").write_bytes(b"".join(b"%d,%d\n" % (i, j) for j in range(100)))
    prefix = f"s3://{s3_bucket}/export/"
    up = await copy(open_source(f"file://{src}"), open_sink(prefix))
    assert (up.lane, up.rows) == ("bytes", 300)
    out = tmp_path / "out"
    down = await copy(open_source(prefix), open_sink(f"{out}/"))
    assert down.rows == 300
    parts = sorted(out.iterdir())
    assert [p.name for p in parts] == ["part-00000.csv"]
    expected = b"".join((src / f"day-{i}.csv").read_bytes() for i in range(3))
    assert parts[0].read_bytes() == expected


async def test_csv_file_to_jsonl_object_to_csv_file(s3_bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_bytes(b'id,name,note\n1,Ann,""\n2,"Bob, Jr.",\n3,"multi\nline",x\n')
    csv_with_header = EndpointOptions(format=CSV.replace(header=True))
    url = f"s3://{s3_bucket}/people.jsonl"
    result = await copy(open_source(str(src), csv_with_header), open_sink(url))
    assert (result.lane, result.rows) == ("rows", 3)
    back = tmp_path / "back.csv"
    await copy(open_source(url, EndpointOptions(format=JSONL)), open_sink(str(back),
                                                                          csv_with_header))
    assert back.read_bytes() == src.read_bytes()
