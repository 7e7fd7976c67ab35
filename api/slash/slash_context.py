"""What every `/incident` subcommand acting on an incident shares: finding the incident it
was typed in, its request key, and the dialogs it opens.

No read comes before a command: the channel says which incident it is, the workflow
refuses a command whose channel is not its own (or that the actor may not see), and a
refusal reaches the person verbatim. A resent request (same `trigger_id`) is applied once:
the key is scoped to the person and the subcommand (`service.idempotency`).
"""

from __future__ import annotations

from typing import Any

from api.slash import slash_dialogs as dialogs
from api.slash.slash_registry import Context
from models.common import Actor
from models.incident_commands import RequestKey
from models.pending_commands import LateReply
from service import incident_access as incidents
from service.errors import ServiceError
from service.idempotency import new_key, scoped
from service.incident_access import IncidentLocation


def wrong_channel(what: str) -> ServiceError:
    return ServiceError(400, "wrong_channel", f"You can only {what} from within the incident's channel.")


async def incident_here(ctx: Context, what: str) -> tuple[IncidentLocation, Actor]:
    """The incident whose channel the command was typed in, and the actor's facts for it.

    No read of the incident: the channel says which incident it is (as the incident recorded
    it), and the workflow refuses a command whose channel is not its own (or that the actor
    may not see)."""
    request = ctx.request
    incident_id = await incidents.incident_id_for_channel(ctx.svc, request.channel_id)
    if incident_id is None:
        raise wrong_channel(what)
    place = IncidentLocation(incident_id=incident_id, team_id=request.team_id, channel_id=request.channel_id)
    return place, await incidents.actor_at(ctx.svc, ctx.actor, place)


def request_key(ctx: Context, action: str) -> RequestKey:
    return scoped(ctx.actor.user_id, f"slash:{action}", ctx.request.trigger_id or new_key(), ctx.text)


def late_reply(ctx: Context) -> LateReply:
    """Where a pending command's outcome is told: the command's own reply, a moment later."""
    return LateReply(response_url=ctx.request.response_url)


def asked(ctx: Context) -> str:
    """The command as the person typed it, to name it in a late reply."""
    text = " ".join(ctx.request.text.split())
    return f"`/incident {text if len(text) <= 80 else text[:80] + '…'}`"


async def open_dialog(ctx: Context, dialog: dict[str, Any]) -> None:
    if not ctx.request.trigger_id:
        raise ServiceError(400, "no_trigger", "This command needs a dialog, and Mattermost sent no trigger id.")
    await ctx.svc.mattermost.open_dialog(
        trigger_id=ctx.request.trigger_id, url=dialogs.dialog_url(ctx.svc), dialog=dialog
    )


def dialog_state(ctx: Context, kind: str, **fields: Any) -> str:
    request = ctx.request
    return dialogs.sign_state(
        ctx.svc,
        kind=kind,
        user_id=ctx.actor.user_id,
        team_id=request.team_id,
        channel_id=request.channel_id,
        **fields,
    )


async def read_here(ctx: Context, what: str) -> incidents.IncidentAccess:
    place, _ = await incident_here(ctx, what)
    try:
        return await incidents.load(ctx.svc, ctx.actor, place.incident_id, channel_id=ctx.request.channel_id)
    except ServiceError as error:
        if error.status != 404:
            raise
        raise wrong_channel(what) from None
