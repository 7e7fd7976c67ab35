"""``/hooks/commands/{id}``: a slash command's ``response_url``, outside ``/api/v4`` and
without a session, like on the real server; the hook id is the credential."""

from __future__ import annotations

from fastapi.responses import PlainTextResponse, Response

from mattermost_standin import integrations
from mattermost_standin.routing import Call, Router

router = Router()


@router.post("/hooks/commands/{hook_id}", authenticated=False)
async def command_response_url(call: Call) -> Response:
    integrations.reply_to_response_url(
        call.context,
        call.params["hook_id"],
        call.request.headers.get("content-type", ""),
        await call.request.body(),
    )
    return PlainTextResponse("ok")
