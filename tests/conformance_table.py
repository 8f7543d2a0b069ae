"""The conformance table of docs/compatibility.md ("The conformance definitions"), read by the
tests: each real file's source, the flags it is validated with, its verdict, the objects and
fields of its errors and the kinds of its warnings."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"
CONFORMANCE = Path(__file__).resolve().parent / "fixtures" / "conformance"


@dataclass(frozen=True)
class Verdict:
    """One row of the conformance table in docs/compatibility.md."""

    name: str
    repository: str
    path: str
    commit: str
    flags: tuple[str, ...]
    verdict: str
    errors: frozenset[str]
    warnings: frozenset[str]


def _cells(text: str) -> set[str]:
    return set() if text.strip() == "—" else {c.strip() for c in text.split(", ")}


def verdicts() -> dict[str, Verdict]:
    section = DOC.read_text().split("## The conformance definitions")[1].split("\n## ")[0]
    out = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        source = re.fullmatch(r"(\S+) : `([^`]+)` @ `([0-9a-f]{12})`", cells[1])
        assert source, line
        flags = tuple(shlex.split(cells[2].strip("`"))) if cells[2] != "—" else ()
        name = cells[0].strip("`")
        out[name] = Verdict(name, source[1], source[2], source[3], flags, cells[3],
                            frozenset(_cells(cells[4])), frozenset(_cells(cells[5])))
    return out



def cli_flags(flags: tuple[str, ...]) -> list[str]:
    """A row's flags for the console script (companion files named by their path)."""
    out = []
    for index, flag in enumerate(flags):
        previous = flags[index - 1] if index else ""
        if previous in ("--parameter-objects", "--parameter-values-uri"):
            flag = str(CONFORMANCE / flag)
        out.append(flag)
    return out
