"""No input file reaches a traceback (issue 10 item 3): the corpus of inputs that broke the
reader (tests/fixtures/fuzz-corpus/, grown by ``scripts/fuzz``) replayed through validate, plan
and eval; a fast hypothesis run of the same mutations the long fuzz uses; and every field of
every type given a value of every wrong JSON type. Each input must end in a finding (exit 1 or
2) or be accepted, never in another exception."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definition import LoadOptions, load
from engine.definition.types import TYPES
from engine.errors import ParseError
from tests.fuzz.harness import CORPUS, WRONG_VALUES, exercise, mutate, seeds

SEEDS = seeds()
#: the suite's default is fast; HEADRACE_FUZZ_EXAMPLES raises it
EXAMPLES = int(os.environ.get("HEADRACE_FUZZ_EXAMPLES", "40"))


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_the_corpus_gives_findings_not_tracebacks(path: Path) -> None:
    exercise(path.read_bytes(), path.suffix if path.suffix in (".yaml", ".yml") else ".json")


def test_the_corpus_inputs_are_refused_where_they_are_wrong() -> None:
    """What each kind of hostile input gives: a finding with the file and the position."""
    def refusal(name: str) -> Any:
        with pytest.raises(ParseError) as info:
            load(str(CORPUS / name))
        [problem] = info.value.problems
        assert problem.file == str(CORPUS / name) and problem.line is not None
        return problem

    assert "nested more than 64 levels" in refusal("json-nested-100000-deep.json").message
    assert "nested more than 64 levels" in refusal("yaml-nested-100000-deep.yaml").message
    assert "more than 2,000,000 values" in refusal("yaml-alias-bomb.yaml").message
    assert "alias that contains itself" in refusal("yaml-alias-to-itself.yaml").message
    assert "UTF-16" in refusal("utf16-text.json").message
    bad = refusal("invalid-utf8.json")
    assert "not UTF-8" in bad.message and (bad.line, bad.column) == (1, 32)
    assert "unpaired UTF-16 surrogate" in refusal("lone-surrogate-escape.json").message
    _, report = load(str(CORPUS / "json-integer-of-5000-digits.json"))
    assert any("far too large (5,000 digits)" in p.message and p.field == "maximumRetries"
               for p in report.errors)
    _, report = load(str(CORPUS / "utf8-bom.json"))
    assert report.ok and "byte-order mark" in report.warnings[0].message
    _, report = load(str(CORPUS / "nul-in-a-value.json"))
    assert any("NUL character" in p.message and p.field == "command" for p in report.errors)
    _, report = load(str(CORPUS / "repeated-keys.json"))
    assert sorted((w.column, w.message.split("'")[1]) for w in report.warnings
                  if "appears twice" in w.message and w.line == 1) == [
        (1, "objects"), (14, "command"), (14, "id")]
    assert [p.message for p in report.errors] == ["the definition has no objects"]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(0, len(SEEDS) - 1), st.integers(0, 2**32 - 1))
def test_mutated_real_files_give_findings_not_tracebacks(which: int, seed: int) -> None:
    exercise(mutate(SEEDS[which], random.Random(seed)))


def _document(type_name: str, field: str, value: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": "X", "type": type_name, field: value}
    return {"objects": [
        {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "w"},
        {"id": "S", "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00"},
        obj if type_name != "Schedule" else {**obj, "id": "S"}]}


def test_every_field_of_every_type_takes_every_wrong_json_type() -> None:
    shared_done: set[str] = set()
    for type_name, spec in TYPES.items():
        for field in spec.all_fields:
            if field in shared_done and field not in spec.fields:
                continue
            shared_done.add(field)
            for value in WRONG_VALUES:
                text = json.dumps(_document(type_name, field, value))
                for strict in (False, True):
                    _, report = load("<fuzz>", LoadOptions(), strict=strict, text=text)
                    oid = "S" if type_name == "Schedule" else "X"
                    # not a string: always a finding on that object (the field, or a rule it
                    # breaks once the value is dropped)
                    assert any(p.object_id == oid and p.file == "<fuzz>"
                               for p in [*report.errors, *report.warnings]), (type_name,
                                                                                field, value)


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_run_reads_the_corpus_without_a_traceback(path: Path, tmp_path: Path) -> None:
    """``run`` reads a definition as plan does; --max-instances 1 keeps a valid input from
    running a backfill here (a window of more instances is refused, cleanly)."""
    from click.testing import CliRunner

    from engine.cli import cli

    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(cli, ["run", str(path), "--store", store, "--max-instances",
                                      "1", "--end", "2024-01-01T00:00:00"])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output
