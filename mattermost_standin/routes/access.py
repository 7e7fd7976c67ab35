"""Channel access shared by the channel, post and command routes.

A private channel the user cannot see does not exist for them: reads answer 404
rather than 403, so its existence does not leak. A channel they can see but may
not use answers Mattermost's 403 ``api.context.permissions.app_error``.
"""

from __future__ import annotations

from mattermost_standin import errors, permissions
from mattermost_standin.domain import channels
from mattermost_standin.errors import AppError
from mattermost_standin.routing import Call
from mattermost_standin.store import Record


def _hidden(call: Call, channel: Record) -> bool:
    return channel["type"] == "P" and not permissions.can_see_private_channel(call.state, call.user, channel)


def require_readable(call: Call, channel: Record, not_found: AppError | None = None) -> None:
    """The channel's content is readable by the session's user (``SessionHasPermissionToReadChannel``)."""
    if permissions.can_read_channel(call.state, call.user, channel):
        return
    if _hidden(call, channel):
        raise not_found or errors.channel_not_found(channel["id"])
    raise errors.permission_denied(call.user["id"], "read_channel")


def require_permission(call: Call, channel: Record, permission: str, not_found: AppError | None = None) -> None:
    """The session's user holds ``permission`` in the channel (``SessionHasPermissionToChannel``)."""
    if permissions.has_channel_permission(call.state, call.user, channel, permission):
        return
    if _hidden(call, channel):
        raise not_found or errors.channel_not_found(channel["id"])
    raise errors.permission_denied(call.user["id"], permission)


def readable_channel(call: Call, channel_id: str) -> Record:
    channel = channels.get_channel(call.state, channel_id)
    require_readable(call, channel)
    return channel
