"""``/api/v4/commands``: registering custom slash commands, listing and executing them."""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin import integrations, permissions, views
from mattermost_standin.domain import commands
from mattermost_standin.errors import AppError, invalid_body_param, permission_denied
from mattermost_standin.routing import Call, Router, json_response
from mattermost_standin.validation import is_valid_id

router = Router()


@router.post("/api/v4/commands")
async def create_command(call: Call) -> Response:
    """Needs ``manage_own_slash_commands`` in the team; registering on someone else's behalf
    also needs ``manage_others_slash_commands``."""
    state, me = call.state, call.user
    body = await call.body_object("command")
    team_id, creator_id = body.get("team_id", ""), body.get("creator_id") or me["id"]
    if not isinstance(team_id, str) or not isinstance(creator_id, str):
        raise invalid_body_param("command")
    if not permissions.has_team_permission(state, me, team_id, "manage_own_slash_commands"):
        raise permission_denied(me["id"], "manage_own_slash_commands")
    if creator_id != me["id"] and not permissions.has_team_permission(
        state, me, team_id, "manage_others_slash_commands"
    ):
        raise permission_denied(me["id"], "manage_others_slash_commands")
    command = commands.register_command(call.store, team_id=team_id, creator_id=creator_id, fields=body)
    return json_response(command, 201)


@router.get("/api/v4/commands")
async def list_commands(call: Call) -> Response:
    """Those who manage commands get the team's custom commands (their own, or all with
    ``manage_others_slash_commands``); others get the autocomplete ones, sanitized.
    Built-in commands are not modelled."""
    state, me = call.state, call.user
    team_id = call.request.query_params.get("team_id", "")
    if not team_id:
        raise invalid_body_param("team_id")
    if not permissions.has_team_permission(state, me, team_id, "view_team"):
        raise permission_denied(me["id"], "view_team")
    team_commands = commands.team_commands(state, team_id)
    if not permissions.has_team_permission(state, me, team_id, "manage_own_slash_commands"):
        listed = [views.command_for(c, sanitized=True) for c in team_commands if c["auto_complete"]]
        return json_response(listed)
    if not permissions.has_team_permission(state, me, team_id, "manage_others_slash_commands"):
        team_commands = [c for c in team_commands if c["creator_id"] == me["id"]]
    return json_response([views.command_for(c, sanitized=False) for c in team_commands])


@router.post("/api/v4/commands/execute")
async def execute_command(call: Call) -> Response:
    """Runs as the session's user, who must be able to post in the channel (be a member).
    The team is the channel's, whatever the body says."""
    body = await call.body_object("command_args")
    command, channel_id, root_id = (
        body.get("command", ""),
        body.get("channel_id", ""),
        body.get("root_id", ""),
    )
    if not isinstance(command, str) or not isinstance(root_id, str):
        raise invalid_body_param("command_args")
    if len(command) <= 1 or not command.startswith("/") or not is_valid_id(channel_id):
        raise AppError(400, "api.command.execute_command.start.app_error", "No command trigger found.")
    channel = call.state.channels.get(channel_id)
    if channel is None or not permissions.has_channel_permission(call.state, call.user, channel, "create_post"):
        raise permission_denied(call.user["id"], "create_post")
    reply = await integrations.execute_command(call.context, call.user, channel, command, root_id)
    return json_response(reply)
