"""Help text shared by the commands: the examples at the end of each ``--help``."""

from __future__ import annotations


def examples(*lines: str) -> str:
    """A command's epilog: its examples, each line shown as written (click keeps a paragraph
    that starts with ``\\b`` unwrapped). A line starting with ``#`` is a comment."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
