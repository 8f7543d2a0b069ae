"""A full disk under ``headrace run`` (RELIABILITY.md case 24): a CopyActivity writes a file
onto a 64 KiB tmpfs that holds the previous version of its output.

The attempt fails once, as terminal (no retry despite ``maximumRetries``), with the path and the
bytes written in its error; the previous version stays under the final name and no temp file is
left behind.
"""

from __future__ import annotations

from pathlib import Path

from connectors.local import TEMP_MARK
from tests.e2e.cli_kit import Cli, by_object, ref, write_definition


def test_disk_full_fails_the_attempt_once_and_keeps_the_previous_file(
        tiny_fs: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"".join(b'%d,"%s"\n' % (i, b"x" * 90) for i in range(2000)))
    final = tiny_fs / "out.csv"
    final.write_bytes(b"0,previous\n")
    definition = write_definition(
        tmp_path / "p.json",
        {"id": "In", "name": "In", "type": "S3DataNode", "filePath": f"file://{source}"},
        {"id": "Out", "name": "Out", "type": "S3DataNode", "filePath": f"file://{final}"},
        {"id": "Copy", "name": "Copy", "type": "CopyActivity", "input": ref("In"),
         "output": ref("Out"), "maximumRetries": "3", "retryDelay": "1 seconds"})
    cli = Cli(tmp_path)
    out = cli.run(definition, check=1)
    copy = by_object(out)["Copy"]
    assert copy["status"] == "FAILED" and copy["attempts"] == 1, copy  # terminal: no retry
    assert str(final) in copy["error"] and "bytes written" in copy["error"]
    assert "disk" in copy["error"].lower() or "space" in copy["error"].lower()
    assert final.read_bytes() == b"0,previous\n"
    assert [p.name for p in tiny_fs.iterdir() if TEMP_MARK in p.name] == []
