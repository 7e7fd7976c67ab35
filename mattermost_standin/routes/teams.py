"""``/api/v4/teams``: teams and team membership."""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin import permissions, views
from mattermost_standin.domain import teams
from mattermost_standin.errors import invalid_body_param, invalid_param, permission_denied
from mattermost_standin.routing import Call, Router, json_response
from mattermost_standin.store import Record

router = Router()


def _visible_team(call: Call, team: Record) -> Record:
    """``getTeam``: open teams with open invites are public, others need ``view_team``."""
    me = call.user
    is_public = team["allow_open_invite"] and team["type"] == "O"
    if not is_public and not permissions.has_team_permission(call.state, me, team["id"], "view_team"):
        raise permission_denied(me["id"], "view_team")
    return views.team_for(call.state, team, me)


@router.post("/api/v4/teams")
async def create_team(call: Call) -> Response:
    """The creator joins the new team as its admin (``CreateTeamWithUser``)."""
    state, me = call.state, call.user
    body = await call.body_object("team")
    fields = {key: body.get(key, "") for key in ("name", "display_name", "type")}
    for key, value in fields.items():
        if not isinstance(value, str):
            raise invalid_body_param("team", f"{key} must be a string")
    if not permissions.has_system_permission(state, me, "create_team"):
        raise permission_denied(me["id"], "create_team")
    team = teams.create_team(call.store, name=fields["name"], display_name=fields["display_name"], type=fields["type"])
    teams.add_team_member(call.store, team["id"], me["id"], admin=True)
    return json_response(views.team_for(state, team, me), 201)


@router.get("/api/v4/teams/{team_id}")
async def get_team(call: Call) -> Response:
    return json_response(_visible_team(call, teams.get_team(call.state, call.params["team_id"])))


@router.get("/api/v4/teams/name/{team_name}")
async def get_team_by_name(call: Call) -> Response:
    return json_response(_visible_team(call, teams.get_team_by_name(call.state, call.params["team_name"])))


@router.get("/api/v4/teams/{team_id}/members")
async def get_team_members(call: Call) -> Response:
    state, me, team_id = call.state, call.user, call.params["team_id"]
    if not permissions.has_team_permission(state, me, team_id, "view_team"):
        raise permission_denied(me["id"], "view_team")
    teams.get_team(state, team_id)
    members = [m for m in state.team_members[team_id].values() if not m["delete_at"]]
    return json_response(call.page(members))


@router.post("/api/v4/teams/{team_id}/members")
async def add_team_member(call: Call) -> Response:
    """Joining oneself needs an open team (or ``add_user_to_team``); adding others needs
    ``add_user_to_team``."""
    state, me, team_id = call.state, call.user, call.params["team_id"]
    body = await call.body_object("team_member")
    user_id = body.get("user_id")
    if body.get("team_id", team_id) != team_id:
        raise invalid_param("team_id")
    if not isinstance(user_id, str) or not user_id:
        raise invalid_body_param("user_id")
    team = teams.get_team(state, team_id)
    may_add = permissions.has_team_permission(state, me, team_id, "add_user_to_team")
    self_join = (
        user_id == me["id"]
        and team["type"] == "O"
        and team["allow_open_invite"]
        and permissions.has_system_permission(state, me, "join_public_teams")
    )
    if not may_add and not self_join:
        raise permission_denied(me["id"], "add_user_to_team")
    return json_response(teams.add_team_member(call.store, team_id, user_id), 201)


@router.get("/api/v4/teams/{team_id}/members/{user_id}")
async def get_team_member(call: Call) -> Response:
    state, me, team_id = call.state, call.user, call.params["team_id"]
    if not permissions.has_team_permission(state, me, team_id, "view_team"):
        raise permission_denied(me["id"], "view_team")
    return json_response(teams.get_team_member(state, team_id, call.param_user_id()))
