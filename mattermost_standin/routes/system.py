"""``/api/v4/system/ping``: the health check load balancers and clients poll, no session needed."""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin.routing import Call, Router, json_response

router = Router()


@router.get("/api/v4/system/ping", authenticated=False)
async def ping(call: Call) -> Response:
    return json_response({"status": "OK"})
