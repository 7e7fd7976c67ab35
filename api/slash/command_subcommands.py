"""The `/incident` subcommands of the command table: one handler serves them all.

The words are read by the entry's grammar (`slash_grammar`), the incident is the one whose
channel the command was typed in, and the command goes through the service like any other
face's. What the workflow refuses reaches the person verbatim; a confirmation it asks for
opens a dialog naming what to confirm; someone outside the channel learns nothing from how
their arguments fare.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from api.slash import slash_dialogs as dialogs
from api.slash import slash_grammar
from api.slash.slash_context import (
    asked,
    dialog_state,
    incident_here,
    late_reply,
    open_dialog,
    read_here,
    request_key,
    wrong_channel,
)
from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, UsageError
from models.command_table import CommandSpec
from service import team_configuration
from service.command_runner import UnknownReference, run_command
from service.errors import ServiceError
from service.incident_access import IncidentLocation
from workflows.incident_messages import fields_listing


async def run_table_command(spec: CommandSpec, ctx: Context) -> SlashReply:
    slash = spec.slash
    assert slash is not None
    if not ctx.text.strip() and slash.when_empty == "show_commander":
        access = await read_here(ctx, slash.where)
        return ephemeral(f"The commander is {access.state.mention(access.state.commander_id)}.")
    if not ctx.text.strip() and slash.when_empty == "show_severity":
        access = await read_here(ctx, slash.where)
        severity = access.state.severity
        now = f"The severity is **{severity.name}**" if severity else "This incident has no severity yet"
        levels = await team_configuration.severity_levels(ctx.svc, access.state.team_id)
        lines = [f"- **{level.level} {level.name}**: {level.description}" for level in levels]
        intro = f"{now}. Set it with `/incident severity <level>`; the team's levels are:"
        return ephemeral("\n".join([intro, *lines]))
    if not ctx.text.strip() and slash.when_empty == "show_fields":
        access = await read_here(ctx, slash.where)
        listing = fields_listing(access.state)
        if not listing:
            return ephemeral("This incident has no fields: its playbook declares none.")
        intro = "Set a field with `/incident field <name> <value>` (`none` clears it). This incident's fields:"
        return ephemeral("\n".join([intro, *listing]))
    if not ctx.text.strip() and slash.when_empty == "dialog":
        location, _ = await incident_here(ctx, slash.where)
        kind = dialogs.COMMAND_DIALOGS[spec.name].kind
        state = dialog_state(ctx, kind, incident_id=location.incident_id, command=spec.name)
        await open_dialog(ctx, dialogs.command_dialog(spec.name, state))
        return ephemeral("")
    values = {**slash.preset, **slash_grammar.read(slash.grammar, ctx.text, slash.hint)}
    location, actor = await incident_here(ctx, slash.where)
    try:
        result = await run_command(
            ctx.svc,
            spec,
            ctx.actor,
            location.incident_id,
            values,
            request=request_key(ctx, spec.name),
            location=location,
            channel_id=location.channel_id,
            late_reply=late_reply(ctx),
            asked=asked(ctx),
        )
    except UnknownReference as unknown:
        # A cached "not a member" may be older than their joining (the reporter, just after
        # the start): on this error path only, Mattermost is asked again.
        outside = actor.is_channel_member is False and not actor.is_system_admin
        if outside and not await ctx.svc.facts.recheck_channel_membership(location.channel_id, actor.user_id):
            raise wrong_channel(slash.where) from None
        raise UsageError(unknown.message) from None
    except ServiceError as error:
        if error.code == "confirmation_required" and slash.confirm is not None:
            return await _confirm(ctx, spec, values, error, location)
        # An incident the caller may not see is no incident for them; an outage is said as it is.
        if error.status == 404 and not error.fields:
            raise wrong_channel(slash.where) from None
        raise
    return ephemeral(result.message)


async def _confirm(
    ctx: Context, spec: CommandSpec, values: dict[str, Any], refusal: ServiceError, location: IncidentLocation
) -> SlashReply:
    """The workflow asks for a yes: a dialog that resends the command confirmed."""
    confirm = spec.slash.confirm if spec.slash else None
    if confirm is not None and not ctx.request.trigger_id and confirm.without_dialog:
        return ephemeral(f"{refusal.message} {confirm.without_dialog}")
    await open_dialog(
        ctx, dialogs.confirmation(ctx.svc, spec, values, refusal, user_id=ctx.actor.user_id, place=location)
    )
    return ephemeral("")


def handler_for(spec: CommandSpec) -> Callable[[Context], Awaitable[SlashReply]]:
    return partial(run_table_command, spec)
