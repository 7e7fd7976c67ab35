"""``/api/v4/bots``: bot accounts. A bot is also a user (``is_bot``) that tokens authenticate."""

from __future__ import annotations

import copy

from fastapi.responses import Response

from mattermost_standin import permissions
from mattermost_standin.domain import users
from mattermost_standin.errors import invalid_body_param, permission_denied
from mattermost_standin.routing import Call, Router, json_response
from mattermost_standin.store import Record

router = Router()


def _may_read(call: Call, bot: Record) -> bool:
    own = bot["owner_id"] == call.user["id"]
    return permissions.has_system_permission(call.state, call.user, "read_bots" if own else "read_others_bots")


@router.post("/api/v4/bots")
async def create_bot(call: Call) -> Response:
    body = await call.body_object("bot")
    fields = {key: body.get(key, "") for key in ("username", "display_name", "description")}
    if not all(isinstance(v, str) for v in fields.values()) or not fields["username"]:
        raise invalid_body_param("bot")
    if not permissions.has_system_permission(call.state, call.user, "create_bot"):
        raise permission_denied(call.user["id"], "create_bot")
    bot = users.create_bot(
        call.store,
        username=str(fields["username"]),
        display_name=str(fields["display_name"]),
        description=str(fields["description"]),
        owner_id=call.user["id"],
    )
    return json_response(bot, 201)


@router.get("/api/v4/bots/{bot_user_id}")
async def get_bot(call: Call) -> Response:
    bot = users.get_bot(call.state, call.params["bot_user_id"])
    if not _may_read(call, bot):
        raise permission_denied(call.user["id"], "read_others_bots")
    return json_response(copy.deepcopy(bot))


@router.get("/api/v4/bots")
async def get_bots(call: Call) -> Response:
    readable = [copy.deepcopy(b) for b in call.state.bots.values() if _may_read(call, b)]
    return json_response(call.page(readable))
