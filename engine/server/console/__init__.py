"""The web console (issue 16), served by ``headrace serve`` under ``/console/`` on the API's
port: pipelines, a pipeline's graph and instance grid, instances with their attempts, logs
and traces, definitions, and the actions, through the same service layer as the CLI and API.
"""

from engine.server.console.app import console_app
from engine.server.console.state import BASE, Console, ConsoleOptions

__all__ = ["BASE", "Console", "ConsoleOptions", "console_app"]
