"""The bundled example runs with no server and no configuration (only a private store and
data directory so the test leaves nothing behind), and its logs show what happened."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.cli_kit import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello" / "pipeline.json"


def test_hello_example_runs_and_resumes(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    data = f"file://{tmp_path}/data"
    result = cli("run", str(EXAMPLE), "--parameter-values", f"myDataDir={data}")
    assert result.stdout.splitlines()[-2].endswith(": 12 FINISHED")
    assert "headrace logs @Summarize_2024-01-03T00:00:00" in result.stdout
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert (tmp_path / "data" / "raw" / day / "sales.csv").read_text().startswith(
            f"{day},tea,3\n")
        report = tmp_path / "data" / "report" / day / "part-00000.tsv"
        assert report.read_text() == f"{day}\ttea\t3\n{day}\tcake\t5\n{day}\ttea\t3\n"
    pid = result.stdout.splitlines()[-2].split()[1].rstrip(":")
    logs = cli("logs", "@Summarize_2024-01-02T00:00:00", "--pipeline-id", pid,
               "--stream", "stdout").stdout
    assert logs == "3 sales, total 11\n"
    again = cli.json("run", str(EXAMPLE), "--parameter-values", f"myDataDir={data}")
    assert [i["attempts"] for i in again["instances"]] == [1] * 12  # nothing ran again
