"""``python -m engine.cli`` is ``headrace``."""

from engine.cli import main

main()
