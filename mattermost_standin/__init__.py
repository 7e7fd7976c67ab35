"""A stand-in for Mattermost's REST API v4, faithful where the project depends on it.

``StandIn`` serves the endpoints the project uses with the real server's rules,
status codes and error ids, calls slash command, button and dialog integrations
exactly as Mattermost does, and lets tests inspect what happened and inject faults.
"""

from mattermost_standin.errors import AppError
from mattermost_standin.server import StandIn

__all__ = ["AppError", "StandIn"]
