"""Precondition checks. Importing this package registers them in ``PRECONDITIONS``."""

from engine.preconditions import checks as checks
