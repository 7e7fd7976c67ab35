"""``/api/v4/users``: users, their teams and channels, and personal access tokens."""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin import permissions, validation, views
from mattermost_standin.domain import channels, teams, users
from mattermost_standin.errors import AppError, invalid_body_param, permission_denied
from mattermost_standin.routing import Call, Router, json_response, status_ok
from mattermost_standin.store import Record

router = Router()


def _may_act_for(call: Call, target_id: str) -> bool:
    """``SessionHasPermissionToUserOrBot``: oneself, an admin, or the owner of a bot."""
    me = call.user
    if me["id"] == target_id or permissions.has_system_permission(call.state, me, "edit_other_users"):
        return True
    bot = call.state.bots.get(target_id)
    if bot is None:
        return False
    if bot["owner_id"] == me["id"]:
        return permissions.has_system_permission(call.state, me, "manage_bots")
    return permissions.has_system_permission(call.state, me, "manage_others_bots")


@router.get("/api/v4/users/{user_id}")
async def get_user(call: Call) -> Response:
    user = users.get_user(call.state, call.param_user_id())
    return json_response(views.user_for(call.state, user, call.user))


@router.get("/api/v4/users/username/{username}")
async def get_user_by_username(call: Call) -> Response:
    user = users.get_user_by_username(call.state, call.params["username"])
    return json_response(views.user_for(call.state, user, call.user))


@router.post("/api/v4/users/ids")
async def get_users_by_ids(call: Call) -> Response:
    ids = await call.body_strings("user_ids")
    found = [call.state.users[i] for i in dict.fromkeys(ids) if i in call.state.users]
    return json_response([views.user_for(call.state, u, call.user) for u in found])


@router.post("/api/v4/users/usernames")
async def get_users_by_usernames(call: Call) -> Response:
    names = {n.lower() for n in await call.body_strings("usernames")}
    found = [u for u in call.state.users.values() if u["username"] in names]
    return json_response([views.user_for(call.state, u, call.user) for u in found])


@router.post("/api/v4/users", authenticated=False)
async def create_user(call: Call) -> Response:
    """Open signup is off by default, so only an administrator's session may create users."""
    me = call.session_user
    if me is None or not permissions.has_system_permission(call.state, me, "create_user"):
        raise AppError(
            403,
            "api.user.create_user.no_open_server",
            "This server does not allow open signups. Please speak with your Administrator to receive an invitation.",
        )
    fields = await call.body_string_fields(
        "user", ("username", "email", "password", "first_name", "last_name", "nickname")
    )
    validation.check_password(fields.pop("password"))
    user = users.create_user(call.store, **fields)
    return json_response(views.user_for(call.state, user, me), 201)


@router.get("/api/v4/users")
async def list_users(call: Call) -> Response:
    state, me = call.state, call.user
    selected: list[Record] = sorted(state.users.values(), key=lambda u: str(u["username"]))
    team_id = call.request.query_params.get("in_team")
    if team_id:
        if not permissions.has_team_permission(state, me, team_id, "view_team"):
            raise permission_denied(me["id"], "view_team")
        selected = [u for u in selected if teams.team_member(state, team_id, u["id"]) is not None]
    channel_id = call.request.query_params.get("in_channel")
    if channel_id:
        channel = state.channels.get(channel_id)
        if channel is None or not permissions.has_channel_permission(state, me, channel, "read_channel"):
            raise permission_denied(me["id"], "read_channel")
        selected = [u for u in selected if channels.channel_member(state, channel_id, u["id"]) is not None]
    return json_response([views.user_for(state, u, me) for u in call.page(selected)])


@router.post("/api/v4/users/{user_id}/tokens")
async def create_access_token(call: Call) -> Response:
    state, me = call.state, call.user
    user_id = call.param_user_id()
    body = await call.body_object("token")
    description = body.get("description")
    if not isinstance(description, str) or not description:
        raise invalid_body_param("description")
    if not permissions.has_system_permission(state, me, "create_user_access_token"):
        raise permission_denied(me["id"], "create_user_access_token")
    if not _may_act_for(call, user_id):
        raise permission_denied(me["id"], "edit_other_users")
    token = users.create_access_token(call.store, user_id, description)
    return json_response(token, 201)


@router.get("/api/v4/users/{user_id}/tokens")
async def get_access_tokens_for_user(call: Call) -> Response:
    """Like the real server: the tokens' metadata, never the secret token values."""
    state, me = call.state, call.user
    user_id = call.param_user_id()
    if not permissions.has_system_permission(state, me, "read_user_access_token"):
        raise permission_denied(me["id"], "read_user_access_token")
    if not _may_act_for(call, user_id):
        raise permission_denied(me["id"], "edit_other_users")
    found = [
        {key: value for key, value in token.items() if key != "token"}
        for token in state.tokens.values()
        if token["user_id"] == user_id
    ]
    return json_response(call.page(found))


@router.post("/api/v4/users/tokens/revoke")
async def revoke_access_token(call: Call) -> Response:
    state, me = call.state, call.user
    body = await call.body_object("token_id")
    token_id = body.get("token_id")
    if not isinstance(token_id, str) or not token_id:
        raise invalid_body_param("token_id")
    token = users.get_access_token(state, token_id)
    if not permissions.has_system_permission(state, me, "revoke_user_access_token"):
        raise permission_denied(me["id"], "revoke_user_access_token")
    if not _may_act_for(call, token["user_id"]):
        raise permission_denied(me["id"], "edit_other_users")
    users.revoke_access_token(call.store, token_id)
    return status_ok()


@router.get("/api/v4/users/{user_id}/teams")
async def get_teams_for_user(call: Call) -> Response:
    state, me = call.state, call.user
    user_id = call.param_user_id()
    if user_id != me["id"] and not permissions.has_system_permission(state, me, "manage_system"):
        raise permission_denied(me["id"], "manage_system")
    joined = [t for t in state.teams.values() if teams.team_member(state, t["id"], user_id) is not None]
    return json_response([views.team_for(state, t, me) for t in joined])


@router.get("/api/v4/users/{user_id}/teams/{team_id}/channels")
async def get_channels_for_user(call: Call) -> Response:
    """The user's channels in the team and their direct message channels (of no team), as
    ``SqlChannelStore.GetChannels`` selects them."""
    state, me = call.state, call.user
    user_id, team_id = call.param_user_id(), call.params["team_id"]
    if user_id != me["id"] and not permissions.has_system_permission(state, me, "edit_other_users"):
        raise permission_denied(me["id"], "edit_other_users")
    if not permissions.has_team_permission(state, me, team_id, "view_team"):
        raise permission_denied(me["id"], "view_team")
    joined = [
        c
        for c in state.channels.values()
        if c["team_id"] in (team_id, "") and channels.channel_member(state, c["id"], user_id) is not None
    ]
    return json_response(joined)
