"""The `/incident` subcommands that start, read and drive incidents, one function each,
and the table that registers every subcommand (checklist ones in `checklist_commands`).

Each parses its arguments (`arguments`), gathers the facts a command needs and sends
one command through `incident_context`; the incident's workflow decides, and its
refusal reaches the user verbatim.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.slash import slash_arguments as arguments
from api.slash import slash_dialogs as dialogs
from api.slash import slash_replies as render
from api.slash.checklist_subcommands import assign, check, checkadd, checkremove, stage
from api.slash.slash_context import (
    channel_fact,
    dialog_state,
    incident_here,
    open_dialog,
    read_here,
    request_key,
    run,
    send,
    user_facts,
    wrong_channel,
)
from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, Registry, UsageError
from models.common import SHORT_ID, Actor
from models.incident import UpdateStatus
from models.incident_commands import (
    Announce,
    ChangeCommander,
    EndIncident,
    InviteMembers,
    PostStatusUpdate,
    RequestKey,
    SetReminder,
    StatusUpdateFields,
)
from models.playbook import PlaybookSummary, summarize
from service import incident_lists
from service import incident_starts as incident_start
from service.errors import ServiceError
from service.incident_lists import IncidentFilter
from service.pagination import MAX_PER_PAGE, PageParams
from service.playbooks import get_playbook, list_playbooks
from workflows.incident_workflow import IncidentWorkflow

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
    options = await usable_playbooks(ctx)
    try:
        return resolve_playbook(options, wanted)
    except UsageError:
        if not SHORT_ID.match(wanted):
            raise
        try:
            return summarize(await get_playbook(ctx.svc, ctx.actor, wanted))
        except ServiceError:
            raise UsageError(f"You have no playbook {wanted!r} in this team. See `/incident playbooks`.") from None


async def usable_playbooks(ctx: Context) -> list[PlaybookSummary]:
    page = await list_playbooks(
        ctx.svc,
        ctx.actor,
        ctx.request.team_id,
        sort="title",
        params=PageParams(page=0, per_page=MAX_PER_PAGE, direction="asc"),
    )
    return page.items


# ---------------------------------------------------------------------------- subcommands


async def start(ctx: Context) -> SlashReply:
    words, rest = ctx.leading(1)
    if not words:
        state = dialog_state(ctx, "start", response_url=ctx.request.response_url)
        await open_dialog(ctx, dialogs.start_dialog(await usable_playbooks(ctx), state))
        return ephemeral("")
    name = " ".join(rest.split())
    if not name:
        raise UsageError("Give the playbook and the incident's name.")
    playbook = await find_playbook(ctx, words[0])
    await incident_start.start_incident(
        ctx.svc,
        ctx.actor,
        team_id=ctx.request.team_id,
        name=name,
        playbook_id=playbook.id,
        response_url=ctx.request.response_url,
        request=request_key(ctx, "start"),
    )
    return ephemeral(
        f"Starting incident **{name}** from playbook **{playbook.title}**… the channel will appear shortly."
    )


async def end(ctx: Context) -> SlashReply:
    what = "end an incident"
    try:
        result = await send(
            ctx, what, IncidentWorkflow.end_incident, lambda a, r: EndIncident(actor=a, confirmed=False)
        )
    except ServiceError as error:
        if error.code != "confirmation_required":
            raise
        place, _ = await incident_here(ctx, what)
        await open_dialog(
            ctx,
            dialogs.confirm_dialog(
                callback_id="end",
                title="End incident?",
                text=error.message,
                submit="End incident",
                state=dialog_state(ctx, "end", incident_id=place.incident_id),
            ),
        )
        return ephemeral("")
    return ephemeral(result.message)


async def restart(ctx: Context) -> SlashReply:
    place, _ = await incident_here(ctx, "restart an incident")
    try:
        result = await incident_start.restart(
            ctx.svc, ctx.actor, place.incident_id, request=request_key(ctx, "restart")
        )
    except ServiceError as error:
        if error.status == 404:
            raise wrong_channel("restart an incident") from None
        raise
    return ephemeral(result.message)


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


async def commander(ctx: Context) -> SlashReply:
    if not ctx.args:
        access = await read_here(ctx, "see or change the commander")
        return ephemeral(f"The commander is {access.state.mention(access.state.commander_id)}.")
    if len(ctx.args) != 1:
        raise UsageError("Name one person.")

    async def build(actor: Actor, request: RequestKey | None) -> ChangeCommander:
        return ChangeCommander(actor=actor, request=request, commander=(await user_facts(ctx, ctx.args))[0])

    return await run(ctx, "see or change the commander", IncidentWorkflow.change_commander, build)


async def add(ctx: Context) -> SlashReply:
    if not ctx.args:
        raise UsageError("Name at least one person.")

    async def build(actor: Actor, request: RequestKey | None) -> InviteMembers:
        return InviteMembers(actor=actor, request=request, users=await user_facts(ctx, ctx.args))

    return await run(ctx, "invite people", IncidentWorkflow.invite_members, build)


async def announce(ctx: Context) -> SlashReply:
    if not ctx.args:
        raise UsageError("Name at least one channel.")

    async def build(actor: Actor, request: RequestKey | None) -> Announce:
        channels = [await channel_fact(ctx, actor, name) for name in ctx.args]
        return Announce(actor=actor, request=request, channels=channels)

    return await run(ctx, "announce an incident", IncidentWorkflow.announce, build)


async def update(ctx: Context) -> SlashReply:
    if not ctx.text.strip():
        # The dialog the reminder's *Post update* button opens.
        place, _ = await incident_here(ctx, "post status updates")
        await open_dialog(
            ctx, dialogs.status_update_dialog(dialog_state(ctx, "status_update", incident_id=place.incident_id))
        )
        return ephemeral("")
    # The message is kept as typed: several lines, quotes and all.
    message, status = ctx.text, None
    first, *rest = message.split(maxsplit=1) or [""]
    if first.lower() in UpdateStatus._value2member_map_:
        status = UpdateStatus(first.lower())
        message = rest[0] if rest else ""
    if not message.strip():
        raise UsageError("Write the update's message.")
    fields = StatusUpdateFields(message=message, status=status)
    return await run(
        ctx,
        "post status updates",
        IncidentWorkflow.post_status_update,
        lambda a, r: PostStatusUpdate(actor=a, request=r, **fields.model_dump()),
    )


async def reminder(ctx: Context) -> SlashReply:
    if len(ctx.args) != 1:
        raise UsageError("Give one interval, or off.")
    seconds = arguments.duration(ctx.args[0])
    return await run(
        ctx,
        "change the reminder",
        IncidentWorkflow.set_reminder,
        lambda a, r: SetReminder(actor=a, request=r, seconds=seconds),
    )


async def timeline(ctx: Context) -> SlashReply:
    access = await read_here(ctx, "see the timeline")
    return ephemeral(render.timeline(access.state))


# ---------------------------------------------------------------------------- registration

COMMANDS: list[tuple[Any, str, str, str]] = [
    # handler, usage, summary, example
    (start, "start [<playbook> <name...>]", "Start an incident: without arguments, a dialog asks for the details",
     'start "Database outage" Primary DB down'),
    (end, "end", "End the incident (asks for confirmation)", ""),
    (restart, "restart", "Reopen an ended incident", ""),
    (info, "info", "Status, commander, duration and every stage's checklist", ""),
    (list_ongoing, "list", "Ongoing incidents in this team, newest first", ""),
    (check, "check [<stage>] <item>", "Mark an item done, or open again (active stage unless you name one)", "check 2"),
    (checkadd, "checkadd <stage> <title...>", "Add an item to a stage", ""),
    (checkremove, "checkremove <stage> <item>", "Remove an item", ""),
    (assign, "assign <stage> <item> @user|@none", "Assign an item (@none unassigns)", ""),
    (stage, "stage next|prev [--force]", "Move to the next or previous stage", "stage next"),
    (commander, "commander [@user]", "Show or change the commander", ""),
    (add, "add @user...", "Invite people to the incident channel", "add @bob"),
    (announce, "announce ~channel...", "Announce the incident in other channels", ""),
    (update, "update [[investigating|identified|monitoring|resolved] <message...>]",
     "Post a status update (resets the reminder); without a message, a dialog asks for it",
     "update identified Failing over to the replica"),
    (reminder, "reminder <15m|1h|4h|off>", "Change the status update reminder", "reminder 1h"),
    (timeline, "timeline", "Everything that happened, with times", ""),
]  # fmt: skip


def register(registry: Registry) -> None:
    for handler, usage, summary, example in COMMANDS:
        registry.command(usage.split()[0], usage=usage, summary=summary, example=example)(handler)
