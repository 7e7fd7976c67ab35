"""Interactive messages: post action buttons and interactive dialogs."""

from __future__ import annotations

import json

from fastapi.responses import Response

from mattermost_standin import errors, integrations
from mattermost_standin.domain import posts
from mattermost_standin.routes import access
from mattermost_standin.routing import Call, Router, json_response, status_ok

router = Router()


@router.post("/api/v4/posts/{post_id}/actions/{action_id}")
async def do_post_action(call: Call) -> Response:
    """What a client calls when its user clicks a button; the body (``selected_option``) is optional."""
    post = posts.get_post(call.state, call.params["post_id"])
    channel = call.state.channels[post["channel_id"]]
    access.require_permission(call, channel, "read_channel", errors.post_not_found(post["id"]))
    raw = await call.request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}  # the server logs an undecodable body and goes on without a selection
    selected = body.get("selected_option", "") if isinstance(body, dict) else ""
    answer = await integrations.do_post_action(
        call.context, call.user, post, call.params["action_id"], selected if isinstance(selected, str) else ""
    )
    return json_response(answer)


@router.post("/api/v4/actions/dialogs/open", authenticated=False)
async def open_dialog(call: Call) -> Response:
    """No session needed: the trigger id authenticates the request, as on the real server."""
    integrations.open_dialog(call.context, await call.body_object("dialog"))
    return status_ok()


@router.post("/api/v4/actions/dialogs/submit")
async def submit_dialog(call: Call) -> Response:
    answer = await integrations.submit_dialog(call.context, call.user, await call.body_object("dialog"))
    return json_response(answer)
