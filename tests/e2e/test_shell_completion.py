"""Shell completion as the README documents it: the script for each shell, and completions of
commands and options from the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEADRACE = str(Path(sys.executable).with_name("headrace"))


def complete(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEADRACE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, check=False)


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F"),
                                               ("zsh", "#compdef headrace"),
                                               ("fish", "complete --no-files")])
def test_each_shell_gets_its_script(shell: str, marker: str) -> None:
    result = complete({"_HEADRACE_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0 and marker in result.stdout


def test_commands_and_options_complete() -> None:
    commands = complete({"_HEADRACE_COMPLETE": "bash_complete",
                         "COMP_WORDS": "headrace list-r", "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["plain,list-runs"]
    options = complete({"_HEADRACE_COMPLETE": "bash_complete",
                        "COMP_WORDS": "headrace run --with", "COMP_CWORD": "2"})
    assert options.stdout.split() == ["plain,--with-upstream"]
