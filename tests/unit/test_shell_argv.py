"""Plain commands run without bash; anything bash would interpret still goes through bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from engine.activities.process import shell_argv


@pytest.mark.parametrize("command", ["true", "ls -la /tmp", "sleep 0.1", "env A=1"])
def test_plain_commands_naming_a_program_skip_bash(command: str) -> None:
    argv = shell_argv(command, ["ignored"])
    assert argv[0] == shutil.which(command.split()[0])
    assert argv[1:] == command.split()[1:]


@pytest.mark.parametrize("command", [
    "echo $1", "cat a > b", "a && b", "FOO=1 env", "exit 3", "cd /tmp", "time sleep 1",
    "echo hi", "printf x", "grep 'a b' f", "ls *.csv", "no-such-program-here", "true; false",
])
def test_commands_bash_would_interpret_go_through_bash(command: str) -> None:
    argv = shell_argv(command, ["one", "two"])
    assert argv[1:] == ["-c", command, "headrace", "one", "two"]


def test_both_ways_give_the_same_result() -> None:
    for command in ("true", "false", "ls /"):
        direct = subprocess.run(shell_argv(command, []), capture_output=True, check=False)
        via_bash = subprocess.run(["bash", "-c", command], capture_output=True, check=False)
        assert (direct.returncode, direct.stdout) == (via_bash.returncode, via_bash.stdout)
