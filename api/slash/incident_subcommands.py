"""The `/incident` subcommands that start and read incidents, and the order `/incident help`
lists every subcommand in (the command table's own run through `command_subcommands`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from api.slash import slash_dialogs as dialogs
from api.slash import slash_grammar
from api.slash import slash_replies as render
from api.slash.command_subcommands import handler_for
from api.slash.slash_context import asked, dialog_state, late_reply, open_dialog, read_here, request_key
from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, Registry, UsageError
from models.command_table import BY_SLASH
from models.common import SHORT_ID
from models.incident import IncidentCreate
from models.playbook import PlaybookSummary, summarize
from service import incident_lists, open_items, team_configuration
from service import incident_starts as incident_start
from service.errors import ServiceError
from service.incident_lists import IncidentFilter
from service.playbooks import get_playbook, usable_playbooks

# ---------------------------------------------------------------------------- playbooks


def resolve_playbook(options: list[PlaybookSummary], wanted: str) -> PlaybookSummary:
    by_id = [p for p in options if p.id == wanted]
    if by_id:
        return by_id[0]
    by_title = [p for p in options if p.title.casefold() == wanted.casefold()]
    if len(by_title) == 1:
        return by_title[0]
    if len(by_title) > 1:
        ids = ", ".join(f"`{p.id}`" for p in by_title)
        raise UsageError(f"Several playbooks are called {wanted!r}; name one by id: {ids}.")
    raise UsageError(
        f"You have no playbook called {wanted!r} in this team. See `/incident playbooks`; "
        'quote titles with spaces: "Database outage".'
    )


async def find_playbook(ctx: Context, wanted: str) -> PlaybookSummary:
    """By id or title among the caller's playbooks. Lists follow visibility a moment late, so
    an id not listed yet is read from its workflow directly."""
    options = await usable_playbooks(ctx.svc, ctx.actor, ctx.request.team_id)
    try:
        return resolve_playbook(options, wanted)
    except UsageError:
        if not SHORT_ID.match(wanted):
            raise
        try:
            return summarize(await get_playbook(ctx.svc, ctx.actor, wanted))
        except ServiceError:
            raise UsageError(f"You have no playbook {wanted!r} in this team. See `/incident playbooks`.") from None


# ---------------------------------------------------------------------------- subcommands


async def start(ctx: Context) -> SlashReply:
    words, rest = ctx.leading(1)
    if not words:
        state = dialog_state(ctx, "start", response_url=ctx.request.response_url)
        team_id = ctx.request.team_id
        choices, levels = await asyncio.gather(
            usable_playbooks(ctx.svc, ctx.actor, team_id), team_configuration.severity_levels(ctx.svc, team_id)
        )
        await open_dialog(ctx, dialogs.start_dialog(choices, state, levels))
        return ephemeral("")
    name = " ".join(rest.split())
    if not name:
        raise UsageError("Give the playbook and the incident's name.")
    playbook = await find_playbook(ctx, words[0])
    required = [spec.name for spec in playbook.fields if spec.required]
    if required:
        # Its required fields are asked for in the start dialog: this playbook's, the name filled in.
        if not ctx.request.trigger_id:
            raise UsageError(
                f"Playbook **{playbook.title}** needs fields to start ({', '.join(required)}): "
                "start it with `/incident start` and fill them in the dialog."
            )
        state = dialog_state(ctx, "start", response_url=ctx.request.response_url)
        levels = await team_configuration.severity_levels(ctx.svc, ctx.request.team_id)
        await open_dialog(ctx, dialogs.start_dialog([playbook], state, levels, name=name, blank=False))
        return ephemeral("")
    await incident_start.start_incident(
        ctx.svc,
        ctx.actor,
        IncidentCreate(team_id=ctx.request.team_id, name=name, playbook_id=playbook.id),
        response_url=ctx.request.response_url,
        request=request_key(ctx, "start"),
        late_reply=late_reply(ctx),
        asked=asked(ctx),
    )
    return ephemeral(
        f"Starting incident **{name}** from playbook **{playbook.title}**… the channel will appear shortly."
    )


async def info(ctx: Context) -> SlashReply:
    access = await read_here(ctx, "see an incident's details")
    return ephemeral(render.info(access.state, datetime.now(UTC)))


async def list_ongoing(ctx: Context) -> SlashReply:
    newest = await incident_lists.newest_incidents(
        ctx.svc, ctx.actor, ctx.request.team_id, IncidentFilter(), first=render.LIST_LENGTH
    )
    users = await ctx.svc.mattermost.get_users_by_ids({s.commander_id for s in newest.items})
    names = {u["id"]: u["username"] for u in users}
    return ephemeral(render.incident_list(newest.items, names, datetime.now(UTC), total=newest.total))


async def todo(ctx: Context) -> SlashReply:
    found = await open_items.open_items(ctx.svc, ctx.actor)
    return ephemeral(
        render.todo(
            found.items,
            datetime.now(UTC),
            mattermost_url=ctx.svc.settings.mattermost_browser_url,
            incomplete=found.incomplete,
        )
    )


async def retrospective(ctx: Context) -> SlashReply:
    access = await read_here(ctx, "see the retrospective")
    return ephemeral(render.retrospective(access.state, datetime.now(UTC)))


async def timeline(ctx: Context) -> SlashReply:
    access = await read_here(ctx, "see the timeline")
    return ephemeral(render.timeline(access.state))


# ---------------------------------------------------------------------------- registration

# The start and the reads, declared here. `/incident help` lists the command table's
# subcommands in the table's order, and each of these after the subcommand it names
# ("": first; "*": last).
READS: dict[str, tuple[Any, str, str, str, str]] = {
    # name: (handler, usage, summary, example, listed after)
    "start": (start, "start [<playbook> <name...>]",
              "Start an incident: without arguments, a dialog asks for the details",
              'start "Database outage" Primary DB down', ""),
    "info": (info, "info", "Status, commander, duration and every stage's checklist", "", "restart"),
    "list": (list_ongoing, "list", "Ongoing incidents in this team, newest first", "", "info"),
    "todo": (todo, "todo", "Your open items in every incident you can see, overdue first", "", "list"),
    "timeline": (timeline, "timeline", "Everything that happened, with times", "", "*"),
    "retrospective": (retrospective, "retrospective", "Where the retrospective stands, and its backstage link", "",
                      "unstar"),
}  # fmt: skip


def help_order() -> list[str]:
    """Every subcommand, as `/incident help` lists them."""
    order = list(BY_SLASH)
    for name, (*_, after) in READS.items():
        order.insert(0 if after == "" else len(order) if after == "*" else order.index(after) + 1, name)
    return order


def register(registry: Registry) -> None:
    for name in help_order():
        if name in READS:
            handler, usage, summary, example, _ = READS[name]
        else:
            spec = BY_SLASH[name]
            assert spec.slash is not None
            handler = handler_for(spec)
            usage, summary, example = slash_grammar.usage(spec.slash.grammar), spec.slash.summary, spec.slash.example
        registry.command(name, usage=usage, summary=summary, example=example)(handler)
