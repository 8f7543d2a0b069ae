"""What an EmrActivity ``step`` string asks for: split, then recognised.

A step is ``JAR,ARG1,ARG2,...`` (a ``\\,`` is a comma inside an argument). headrace recognises:

* the EMR DynamoDB tools (``emr-ddb-*.jar``, ``emr-dynamodb-tools-*.jar``) running
  ``org.apache.hadoop.dynamodb.tools.DynamoDbExport`` / ``DynamoDbImport`` (any letter case of
  ``Db``): ``PATH,TABLE[,RATIO[,SEGMENTS]]`` -> :class:`ToolsStep`;
* ``script-runner.jar`` running ``hive-script --run-hive-script ... --args -f SCRIPT -d NAME=VALUE
  ...``: the Hive scripts of the older DynamoDB console templates -> :class:`HiveScriptStep`;
* ``script-runner.jar`` running any other script -> :class:`ScriptStep`;
* ``command-runner.jar`` (``spark-submit``, or any program) -> :class:`CommandStep`;
* a ``.py`` or ``.jar`` application given by path -> :class:`ApplicationStep` (run with
  ``spark-submit``).

Anything else is :class:`UnknownStep`, refused at run time with the step in the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOOLS_JAR = re.compile(r"(?:^|/)(?:emr-ddb|emr-dynamodb-tools)[\w.-]*\.jar$", re.I)
_TOOLS_VERSION = re.compile(r"^(?:emr-ddb|emr-dynamodb-tools)-(\d+)\.", re.I)
_TOOLS_CLASS = re.compile(r"^(?:org\.apache\.hadoop\.dynamodb\.tools\.)?DynamoDb(Export|Import)$",
                          re.I)


def split_step(step: str) -> list[str]:
    """The comma-separated words of a step (``\\,`` keeps a comma in its word)."""
    words, current, i = [], [], 0
    while i < len(step):
        ch = step[i]
        if ch == "\\" and i + 1 < len(step) and step[i + 1] == ",":
            current.append(",")
            i += 2
            continue
        if ch == ",":
            words.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    words.append("".join(current).strip())
    return words


@dataclass(frozen=True)
class ToolsStep:
    """``DynamoDBExport`` or ``DynamoDBImport`` of the EMR DynamoDB tools."""

    operation: str  # "export" | "import"
    path: str
    table: str
    ratio: str | None
    jar: str
    #: the jar's major version (2 for emr-ddb-2.1.0.jar), None when its name has none
    version: int | None
    segments: str | None = None


@dataclass(frozen=True)
class HiveScriptStep:
    """A Hive script run by ``script-runner.jar``: its name and its ``-d`` variables."""

    script: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptStep:
    """``script-runner.jar,SCRIPT_URI,ARGS...``: a script (``s3://`` or local) run with its
    arguments, as EMR's script runner did on the master node."""

    script: str
    args: list[str]


@dataclass(frozen=True)
class CommandStep:
    """A program (``command-runner.jar``) or an application path to run, with its arguments."""

    argv: list[str]


@dataclass(frozen=True)
class ApplicationStep:
    """A Spark application given by path (``s3://...app.py``, ``file:///...app.jar``): for a
    jar, a first argument that is a Java class name is its main class (as ``hadoop jar``)."""

    app: str
    args: list[str]


@dataclass(frozen=True)
class UnknownStep:
    jar: str
    args: list[str]


Step = ToolsStep | HiveScriptStep | ScriptStep | CommandStep | ApplicationStep | UnknownStep


def _jar_name(jar: str) -> str:
    return jar.rstrip("/").rsplit("/", 1)[-1]


def _hive_step(args: list[str]) -> HiveScriptStep | None:
    if "--run-hive-script" not in args:
        return None
    rest = args[args.index("--args") + 1:] if "--args" in args else args
    script, variables = "", {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "-f" and i + 1 < len(rest):
            script = rest[i + 1]
            i += 2
            continue
        if word in ("-d", "--define", "--hivevar") and i + 1 < len(rest):
            name, _, value = rest[i + 1].partition("=")
            variables[name.strip()] = value
            i += 2
            continue
        i += 1
    return HiveScriptStep(script, variables) if script else None


def parse_step(step: str) -> Step:
    return parse_words(split_step(step))


def parse_words(words: list[str]) -> Step:
    """A step from its words: the jar, then its arguments."""
    jar, args = words[0], words[1:]
    name = _jar_name(jar)
    if _TOOLS_JAR.search(jar) and args and (m := _TOOLS_CLASS.match(args[0])):
        rest = args[1:] + [""] * 4
        version = _TOOLS_VERSION.search(name)
        return ToolsStep(m[1].lower(), rest[0], rest[1], rest[2] or None, jar,
                         int(version[1]) if version else None, rest[3] or None)
    if _TOOLS_JAR.search(jar):
        return UnknownStep(jar, args)  # the tools jar with a class that is not a copy
    if name.lower() == "script-runner.jar" and (hive := _hive_step(args)) is not None:
        return hive
    if name.lower() == "script-runner.jar" and args and "--run-hive-script" not in args:
        return ScriptStep(args[0], args[1:])
    if name.lower() == "command-runner.jar" and args:
        return CommandStep(args)
    if name.lower().endswith((".py", ".jar")) and name.lower() not in (
            "script-runner.jar", "command-runner.jar"):
        return ApplicationStep(jar, args)
    return UnknownStep(jar, args)
