"""``/_standin/``: the stand-in's own inspection and fault controls, for ``curl`` during development.

Not part of Mattermost's API: no session, no faults, not in the request log.
"""

from __future__ import annotations

from fastapi.responses import Response

from mattermost_standin import inspection
from mattermost_standin.errors import invalid_body_param
from mattermost_standin.faults import Fault
from mattermost_standin.routing import Call, Router, json_response, status_ok

router = Router()


@router.get("/_standin/state", authenticated=False)
async def state_summary(call: Call) -> Response:
    return json_response(inspection.summary(call.state, call.context.faults))


@router.get("/_standin/channels/{channel_id}/posts", authenticated=False)
async def channel_posts(call: Call) -> Response:
    return json_response(inspection.channel_posts(call.state, call.params["channel_id"]))


@router.get("/_standin/ephemeral", authenticated=False)
async def ephemeral_posts(call: Call) -> Response:
    query = call.request.query_params
    return json_response(inspection.ephemeral_posts(call.state, query.get("user_id"), query.get("channel_id")))


@router.get("/_standin/dialogs", authenticated=False)
async def dialogs(call: Call) -> Response:
    return json_response(inspection.dialogs(call.state, call.request.query_params.get("user_id")))


@router.post("/_standin/faults", authenticated=False)
async def add_fault(call: Call) -> Response:
    """Body: ``{method, path, ...}`` with any of ``FaultOptions``, as ``StandIn.add_fault`` takes them."""
    body = await call.body_object("fault")
    try:
        fault = Fault(**body)
    except (TypeError, ValueError) as exc:
        raise invalid_body_param("fault", str(exc)) from None
    call.context.faults.add(fault)
    return json_response(fault.as_dict(), 201)


@router.delete("/_standin/faults", authenticated=False)
async def clear_faults(call: Call) -> Response:
    call.context.faults.clear()
    return status_ok()
