"""The fuzz harness of the definition reader: one input file through ``validate``, ``plan`` and
``eval`` (in process, through the real click commands), as the definition itself and as a
``--parameter-objects`` / ``--parameter-values-uri`` companion. The only outcomes allowed are
exit codes 0, 1 and 2 with clean output: any other exception, or the word ``Traceback``, is a
:class:`Crash`.

Inputs come from :func:`mutate`: a seed file (the conformance definitions, the CloudFormation
templates and the corpus of inputs found before) changed by a few of the edits that broke
readers: numbers of 5,000 digits, brackets nested 100,000 deep, byte-order marks, NUL bytes,
invalid UTF-8, repeated keys, YAML aliases that expand, values of every wrong JSON type. The
same mutation is used by the suite (hypothesis, a fast default), by ``scripts/fuzz`` (long,
coverage-guided with atheris where it is installed) and to replay the corpus.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from engine.cli import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = FIXTURES / "fuzz-corpus"
SEED_DIRS = (FIXTURES / "conformance", FIXTURES / "cloudformation", CORPUS)
WINDOW = ["--start", "2024-01-01T00:00:00", "--end", "2024-01-03T00:00:00"]


class Crash(AssertionError):
    """An input made a command fail other than with a clean finding."""


def seeds() -> list[bytes]:
    out = []
    for folder in SEED_DIRS:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix in (".json", ".yaml", ".yml", ".template",
                                                      ".bin"):
                    out.append(path.read_bytes())
    return out


# --- mutation --------------------------------------------------------------------------------

TOKENS: list[bytes] = [
    b"9" * 5000, b"-" + b"1" * 4301, b"1e99999", b"-0.0e-0", b"NaN", b"Infinity",
    b"[" * 3000, b"{\"a\":" * 200, b"]" * 50, b"}" * 50,
    b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\\u0000", b"\\ud800", b"\\udc00\\ud800",
    b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\r", b"\t", b"\x0b",
    b"\"id\": \"A\", \"id\": \"B\", ", b"{\"ref\": 1}", b"{\"ref\": \"\"}", b"{\"ref\": [\"x\"]}",
    b"null", b"true", b"[]", b"{}", b"[[]]", b"[null]", b"\"\"", b"\"x\"" * 3,
    b"\"" + b"x" * 20_000 + b"\"", b"\"#{" + b"(" * 500 + b"\"", b"\"#{format(", b"\"${x}\"",
    b"\"#{@scheduledStartTime}\"", b"\"99999999999 years\"", b"\"2024-02-30T00:00:00\"",
    b"\"*myP\"", b"\"@status\"", b"\"Default\"", b"\"type\"", b"\"parent\"",
    b"!Ref", b"!GetAtt a.b", b"!Sub '${AWS::Region}'", b"!If [C, a, b]", b"!Join",
    b"Fn::If", b"Fn::Select", b"&a [*a, *a, *a]", b"*a", b"&a", b"? [a]", b"- - - - -",
    b"\n" + b" " * 600 + b"x: 1", b"---\n", b"...", b"%YAML 1.1\n", b"!!binary",
    b"{\"Resources\": {}}", b"AWSTemplateFormatVersion: x\nResources:\n",
    b"\"Type\": \"AWS::DataPipeline::Pipeline\"", b"\"PipelineObjects\"",
    b"\"StringValue\"", b"\"RefValue\"", b"\"Fields\"",
]
WRONG_VALUES: list[Any] = [None, 0, -1, 1.5, True, False, [], {}, [[]], [None], {"ref": 5},
                           {"ref": ""}, {"ref": "x", "y": 1}, int("9" * 300), "", "\x00",
                           {"Ref": "Nope"}, {"Fn::Sub": ["${a}", 1]}, {"Fn::If": []}]


def _replace_a_value(data: bytes, rnd: random.Random) -> bytes | None:
    """Structure-aware: a JSON seed with one value (at a random path) replaced by a value of
    another JSON type; None when the seed is not JSON."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    holders: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            holders.extend((item, key) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            holders.extend((item, index) for index in range(len(item)))
            stack.extend(item)
    if not holders:
        return None
    holder, key = rnd.choice(holders)
    holder[key] = rnd.choice(WRONG_VALUES)
    try:
        return json.dumps(doc).encode()
    except (ValueError, RecursionError):
        return None


def mutate(seed: bytes, rnd: random.Random, edits: int | None = None) -> bytes:
    """``seed`` with a few random edits (see the module docstring)."""
    data = bytearray(seed)
    for _ in range(edits if edits is not None else rnd.randint(1, 4)):
        choice = rnd.random()
        pos = rnd.randint(0, len(data)) if data else 0
        if choice < 0.35:
            data[pos:pos] = rnd.choice(TOKENS)
        elif choice < 0.5:
            end = min(len(data), pos + rnd.randint(1, 40))
            data[pos:end] = rnd.choice(TOKENS)
        elif choice < 0.6 and data:
            data[min(pos, len(data) - 1)] = rnd.randrange(256)
        elif choice < 0.7:
            del data[pos:pos + rnd.randint(1, 200)]
        elif choice < 0.8:
            start = rnd.randint(0, len(data))
            data[pos:pos] = data[start:start + rnd.randint(1, 300)]
        else:
            replaced = _replace_a_value(bytes(data), rnd)
            if replaced is not None:
                data = bytearray(replaced)
    return bytes(data)


# --- one input through the commands ----------------------------------------------------------

_FOLDER = Path(tempfile.mkdtemp(prefix="headrace-fuzz-"))
_VALID = _FOLDER / "valid.json"
_VALID.write_text(json.dumps({"objects": [
    {"id": "Default", "scheduleType": "cron", "schedule": {"ref": "S"}, "workerGroup": "wg"},
    {"id": "S", "type": "Schedule", "period": "1 day", "startDateTime": "2024-01-01T00:00:00"},
    {"id": "A", "type": "ShellCommandActivity", "command": "echo #{myX}"}],
    "parameters": [{"id": "myX", "default": "1"}]}))


def commands(path: str) -> list[list[str]]:
    """The command lines one input file goes through."""
    return [
        ["validate", path, "--output", "json"],
        ["validate", path, "--lenient", "--strict"],
        ["plan", path, *WINDOW, "--output", "json", "--max-instances", "50"],
        ["eval", path, "--object", "A", "--at", "2024-01-01T00:00:00", "#{@scheduledStartTime}"],
        ["validate", str(_VALID), "--parameter-objects", path],
        ["plan", str(_VALID), *WINDOW, "--parameter-values-uri", path],
    ]


def run_one(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise Crash(f"{' '.join(args[:1])}: {type(result.exception).__name__}: "
                    f"{str(result.exception)[:300]}") from result.exception
    if result.exit_code not in (0, 1, 2):
        raise Crash(f"{args[0]}: exit code {result.exit_code}")
    if "Traceback" in result.output:
        raise Crash(f"{args[0]}: a traceback in the output")


def exercise(data: bytes, suffix: str = ".json") -> None:
    """Every command over ``data`` as a file; raises :class:`Crash` on anything unclean."""
    path = _FOLDER / f"input{suffix}"
    path.write_bytes(data)
    for args in commands(str(path)):
        run_one(args)
