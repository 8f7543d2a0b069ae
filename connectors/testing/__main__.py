"""``python -m connectors.testing HOST:PORT [...]``: the TCP fault proxy, for manual tests."""

from ._tcp import main

main()
