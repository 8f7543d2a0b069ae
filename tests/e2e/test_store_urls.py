"""Stores and the log hint (issue 11, defect 7): a mistyped ``--store`` is refused by the
commands that read one, naming the path, instead of silently making folders and an empty store;
``sqlite:`` URLs are read as SQLAlchemy reads them (three slashes relative, four absolute), with
a hint when the other reading names a store that exists; the run's log hint names the folder
the logs went to (``pipelineLogUri``), not the store's default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli_kit import Cli, shell, write_definition


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.parametrize("command", [
    ["list-pipelines"], ["describe-pipelines", "--pipeline-ids", "df-x"],
    ["list-runs", "--pipeline-id", "df-x"], ["logs", "@A", "--pipeline-id", "df-x"],
    ["set-status", "--pipeline-id", "df-x", "--object-ids", "@A", "--status", "RERUN"],
    ["get-pipeline-definition", "--pipeline-id", "df-x"]])
def test_a_mistyped_store_is_refused_and_nothing_is_made(cli: Cli, tmp_path: Path,
                                                         command: list[str]) -> None:
    typo = tmp_path / "stat" / "store.db"
    body = cli.json(*command, "--store", f"sqlite:///{typo}", check=2)
    assert body["error"]["message"].startswith(f"no store at {typo} (sqlite:///{typo}): ")
    assert "a mistyped --store or $HEADRACE_STORE?" in body["error"]["message"]
    assert not (tmp_path / "stat").exists()


def test_sqlite_urls_read_as_sqlalchemy_reads_them(cli: Cli, tmp_path: Path) -> None:
    definition = write_definition(tmp_path / "p.json", shell("A", "true"))
    made = cli("run", str(definition), "--store", "sqlite:///relative.db")
    assert (tmp_path / "relative.db").is_file()  # beside the working directory, not at /
    assert not Path("/relative.db").exists()
    assert made.stderr.startswith("headrace: a new store at relative.db (sqlite:///relative.db)")
    again = cli("run", str(definition), "--store", "sqlite:///relative.db")
    assert "a new store" not in again.stderr
    absolute = tmp_path / "abs" / "store.db"
    cli("run", str(definition), "--store", f"sqlite:///{absolute}")  # four slashes
    assert absolute.is_file()
    [listed] = cli.json("list-pipelines", "--store", f"sqlite:///{absolute}")[
        "pipelineIdList"]
    # three slashes and the absolute path's text: relative to here, and a hint
    relative = str(absolute).lstrip("/")
    hint = cli.json("list-pipelines", "--store", f"sqlite:///{relative}", check=2)
    assert hint["error"]["message"].endswith(
        f"a store exists at {absolute}: sqlite:///{relative} is a relative path, "
        f"sqlite:///{absolute} the absolute one")
    for ambiguous in ("sqlite://x.db", "sqlite:x.db"):
        refused = cli.json("list-pipelines", "--store", ambiguous, check=2)
        assert "sqlite:///relative/path.db or sqlite:////absolute/path.db" in refused[
            "error"]["message"]
    assert listed["id"].startswith("df-")


def test_the_log_hint_names_the_pipeline_log_uri(cli: Cli, tmp_path: Path) -> None:
    logs = tmp_path / "my-logs"
    definition = write_definition(tmp_path / "p.json", shell("A", "echo hi"),
                                  pipelineLogUri=f"file://{logs}")
    hint = cli("run", str(definition)).stdout.splitlines()[-1]
    assert hint.endswith(f"(all under {logs})"), hint
    assert list(logs.glob("df-*/A/@A_2024-01-01T00:00:00/*/stdout"))
