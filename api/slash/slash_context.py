"""What every `/incident` subcommand acting on an incident shares: finding the incident it
was typed in, the facts it names, and sending one command.

No read comes before a command: the channel's name says which incident it is, the
workflow refuses a command whose channel is not its own (or that the actor may not see),
and a refusal reaches the person verbatim. A resent request (same `trigger_id`) is
applied once: the key is scoped to the person and the subcommand (`api.idempotency`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from api.slash import slash_arguments as arguments
from api.slash import slash_dialogs as dialogs
from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, UsageError
from mattermost_client.gateway import MattermostFailure
from models.common import Actor, ChannelFact, UserFact
from models.incident_commands import CommandResult, IncidentCommand, RequestKey
from service import incident_access as incidents
from service.errors import ServiceError
from service.idempotency import scoped
from service.incident_access import IncidentLocation


def wrong_channel(what: str) -> ServiceError:
    return ServiceError(400, "wrong_channel", f"You can only {what} from within the incident's channel.")


async def incident_here(ctx: Context, what: str) -> tuple[IncidentLocation, Actor]:
    """The incident whose channel the command was typed in, and the actor's facts for it.

    No read: the channel's name says which incident it is, and the workflow refuses a
    command whose channel is not its own (or that the actor may not see)."""
    request = ctx.request
    incident_id = await incidents.incident_id_for_channel(ctx.svc, request.channel_id, request.channel_name)
    if incident_id is None:
        raise wrong_channel(what)
    place = IncidentLocation(incident_id=incident_id, team_id=request.team_id, channel_id=request.channel_id)
    return place, await incidents.actor_at(ctx.svc, ctx.actor, place)


def request_key(ctx: Context, action: str) -> RequestKey | None:
    return scoped(ctx.actor.user_id, f"slash:{action}", ctx.request.trigger_id or None, ctx.text)


Build = Callable[[Actor, RequestKey | None], IncidentCommand | Awaitable[IncidentCommand]]


async def send(ctx: Context, what: str, update: Any, build: Build) -> CommandResult:
    """Where the command was typed first, then the facts it names (`build` may look people
    up), then one update."""
    place, actor = await incident_here(ctx, what)
    try:
        built = build(actor, request_key(ctx, update.__name__))
        if inspect.isawaitable(built):
            built = await built
    except UsageError:
        # Someone outside the channel learns nothing from how their arguments fare here. A
        # cached "not a member" may be older than their joining (the reporter, just after
        # the start): on this error path only, Mattermost is asked again.
        outside = actor.is_channel_member is False and not actor.is_system_admin
        if outside and not await ctx.svc.facts.recheck_channel_membership(place.channel_id, actor.user_id):
            raise wrong_channel(what) from None
        raise
    command = built.model_copy(update={"channel_id": place.channel_id})
    try:
        return await incidents.send(ctx.svc, place, update, command)
    except ServiceError as error:
        # An incident the caller may not see is no incident for them; an outage is said as it is.
        if error.status == 404 and not error.fields:
            raise wrong_channel(what) from None
        raise


async def run(ctx: Context, what: str, update: Any, build: Build) -> SlashReply:
    return ephemeral((await send(ctx, what, update, build)).message)


async def user_facts(ctx: Context, mentions: list[str]) -> list[UserFact]:
    facts = []
    for mention in mentions:
        name = arguments.username(mention)
        user = await ctx.svc.facts.user_by_username(name)
        if user is None:
            raise UsageError(f"There is no user @{name}.")
        facts.append(
            await ctx.svc.facts.user_fact(user, team_id=ctx.request.team_id, channel_id=ctx.request.channel_id)
        )
    return facts


async def open_dialog(ctx: Context, dialog: dict[str, Any]) -> None:
    if not ctx.request.trigger_id:
        raise ServiceError(400, "no_trigger", "This command needs a dialog, and Mattermost sent no trigger id.")
    await ctx.svc.mattermost.open_dialog(
        trigger_id=ctx.request.trigger_id, url=dialogs.dialog_url(ctx.svc), dialog=dialog
    )


def dialog_state(ctx: Context, kind: dialogs.DialogKind, **fields: Any) -> str:
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


async def channel_fact(ctx: Context, actor: Actor, mention: str) -> ChannelFact:
    name = arguments.channel_name(mention)
    try:
        channel = await ctx.svc.mattermost.get_channel_by_name(ctx.request.team_id, name)
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        # The bot looks the channel up, and a private channel does not exist for it until it joins.
        bot = await ctx.svc.mattermost.bot_user()
        raise UsageError(
            f"There is no channel ~{name} that you can see in this team. "
            f"For a private channel, add @{bot['username']} to it first."
        ) from None
    visible = await ctx.svc.facts.visible_channel(actor, channel["id"])
    if visible is None:
        raise UsageError(f"There is no channel ~{name} that you can see in this team.")
    return await ctx.svc.facts.channel_fact(actor, visible)
