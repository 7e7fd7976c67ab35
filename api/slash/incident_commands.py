"""The `/incident` subcommands that start and drive incidents.

Each one parses its arguments, gathers facts, and calls the same incident operations as
the REST API; the workflow's validators decide, and their refusals reach the user
verbatim. The state change itself is announced in the incident channel by the bot.
A resent request (same `trigger_id`) is applied once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from activities.mattermost import MattermostFailure
from api import incidents
from api.errors import ApiError
from api.incidents import IncidentAccess, IncidentFilter
from api.pagination import MAX_PER_PAGE, PageParams
from api.playbooks import get_playbook, list_playbooks
from api.slash import dialogs, render
from api.slash.protocol import SlashReply, ephemeral
from api.slash.registry import Context, Registry, UsageError
from models.common import SHORT_ID, Actor, ChannelFact, UserFact
from models.incident import NAME_MAX, UpdateStatus
from models.incident_commands import (
    AddItem,
    Announce,
    AssignItem,
    ChangeCommander,
    ChangeStage,
    EndIncident,
    InviteMembers,
    PostStatusUpdate,
    RemoveItem,
    SetItemState,
    SetReminder,
)
from models.playbook import PlaybookSummary, summarize
from workflows.incident import IncidentWorkflow

# ASCII digits only, and few of them: `str.isdigit()` and `\d` accept superscripts and other
# scripts' digits that int() refuses, and int() refuses more than 4,300 digits.
_NUMBER = re.compile(r"[0-9]{1,6}", re.ASCII)
_DURATION = re.compile(r"([0-9]{1,5})[ \t]*(s|sec|m|min|h|hr|d)?", re.ASCII)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, None: 60}


# ---------------------------------------------------------------------------- helpers


async def incident_here(ctx: Context, what: str) -> IncidentAccess:
    """The incident whose channel the command was typed in."""
    request = ctx.request
    wrong_channel = ApiError(400, "wrong_channel", f"You can only {what} from within the incident's channel.")
    incident_id = await incidents.incident_id_for_channel(ctx.svc, request.channel_id, request.channel_name)
    if incident_id is None:
        raise wrong_channel
    try:
        return await incidents.load(ctx.svc, ctx.actor, incident_id)
    except ApiError as error:
        # An incident the caller may not see is no incident for them; an outage is said as it is.
        if error.status != 404:
            raise
        raise wrong_channel from None


async def run(ctx: Context, access: IncidentAccess, update: Any, build: Any) -> SlashReply:
    result = await incidents.command(ctx.svc, access, update, build, request_key=ctx.request.trigger_id or None)
    return ephemeral(result.message)


def number(value: str, what: str) -> int:
    """A 1-based number as people count, returned 0-based."""
    if not _NUMBER.fullmatch(value) or int(value) < 1:
        raise UsageError(f"The {what} must be a number from 1, as shown by `/incident info` (got {shown(value)}).")
    return int(value) - 1


def shown(value: str, limit: int = 40) -> str:
    """An argument quoted back to its author, cut short: it may be megabytes long."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "…"


def parse_duration(value: str) -> int:
    if value.lower() in ("off", "0", "none"):
        return 0
    match = _DURATION.fullmatch(value.lower())
    if not match:
        raise UsageError(f"{shown(value)} is not a duration; use e.g. 15m, 1h, 4h or off.")
    return int(match.group(1)) * _UNITS[match.group(2)]


async def user_facts(ctx: Context, mentions: list[str], channel_id: str | None) -> list[UserFact]:
    facts = []
    for mention in mentions:
        if not mention.startswith("@") or len(mention) < 2:
            raise UsageError(f"Name people with @username (got {shown(mention)}).")
        user = await ctx.svc.facts.user_by_username(mention[1:])
        if user is None:
            raise UsageError(f"There is no user {mention if len(mention) <= 80 else mention[:80] + '…'}.")
        facts.append(await ctx.svc.facts.user_fact(user, team_id=ctx.request.team_id, channel_id=channel_id))
    return facts


async def open_dialog(ctx: Context, dialog: dict[str, Any]) -> None:
    if not ctx.request.trigger_id:
        raise ApiError(400, "no_trigger", "This command needs a dialog, and Mattermost sent no trigger id.")
    await ctx.svc.mattermost.open_dialog(
        trigger_id=ctx.request.trigger_id, url=dialogs.dialog_url(ctx.svc), dialog=dialog
    )


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
        except ApiError:
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


# ---------------------------------------------------------------------------- commands


def register(registry: Registry) -> None:
    @registry.command(
        "start",
        usage="start [<playbook> <name...>]",
        summary="Start an incident: without arguments, a dialog asks for the details",
        example='start "Database outage" Primary DB down',
    )
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
        if len(name) > NAME_MAX:
            raise UsageError(f"The incident name is {len(name)} characters long; the limit is {NAME_MAX}.")
        await incidents.start_incident(
            ctx.svc,
            ctx.actor,
            team_id=ctx.request.team_id,
            name=name,
            playbook_id=playbook.id,
            response_url=ctx.request.response_url,
            request_key=ctx.request.trigger_id or None,
        )
        return ephemeral(
            f"Starting incident **{name}** from playbook **{playbook.title}**… the channel will appear shortly."
        )

    @registry.command("end", usage="end", summary="End the incident (asks for confirmation)")
    async def end(ctx: Context) -> SlashReply:
        access = await incident_here(ctx, "end an incident")
        incidents.precheck(access, lambda incident: incident.check_end(EndIncident(actor=access.actor)))
        state = dialog_state(ctx, "end", incident_id=access.state.id)
        await open_dialog(
            ctx,
            dialogs.confirm_dialog(
                callback_id="end",
                title="End incident?",
                text=f"End **{access.state.name}**? Everyone in the channel and the broadcast channels is told.",
                submit="End incident",
                state=state,
            ),
        )
        return ephemeral("")

    @registry.command("restart", usage="restart", summary="Reopen an ended incident")
    async def restart(ctx: Context) -> SlashReply:
        access = await incident_here(ctx, "restart an incident")
        result = await incidents.restart(ctx.svc, access, request_key=ctx.request.trigger_id or None)
        return ephemeral(result.message)

    @registry.command("info", usage="info", summary="Status, commander, duration and the active checklist")
    async def info(ctx: Context) -> SlashReply:
        access = await incident_here(ctx, "see an incident's details")
        return ephemeral(render.info(access.state, datetime.now(UTC)))

    @registry.command("list", usage="list", summary="Ongoing incidents in this team, newest first")
    async def list_ongoing(ctx: Context) -> SlashReply:
        found = await incidents.list_incidents(ctx.svc, ctx.actor, ctx.request.team_id, IncidentFilter())
        found.sort(key=lambda s: s.started_at, reverse=True)
        users = await ctx.svc.mattermost.get_users_by_ids({s.commander_id for s in found})
        names = {u["id"]: u["username"] for u in users}
        return ephemeral(render.incident_list(found, names, datetime.now(UTC)))

    @registry.command(
        "check",
        usage="check [<stage>] <item>",
        summary="Mark an item done, or open again (active stage unless you name one)",
        example="check 2",
    )
    async def check(ctx: Context) -> SlashReply:
        if len(ctx.args) not in (1, 2):
            raise UsageError("Name the item (and optionally the stage first).")
        access = await incident_here(ctx, "check items")
        stage = number(ctx.args[0], "stage") if len(ctx.args) == 2 else access.state.active_stage
        item = number(ctx.args[-1], "item")
        return await run(
            ctx,
            access,
            IncidentWorkflow.set_item_state,
            lambda actor: SetItemState(actor=actor, stage=stage, item=item, state="toggle"),
        )

    @registry.command("checkadd", usage="checkadd <stage> <title...>", summary="Add an item to a stage")
    async def checkadd(ctx: Context) -> SlashReply:
        words, rest = ctx.leading(1)
        title = " ".join(rest.split())
        if not title:
            raise UsageError("Name the stage and the new item's title.")
        stage = number(words[0], "stage")
        access = await incident_here(ctx, "edit the checklist")
        return await run(
            ctx,
            access,
            IncidentWorkflow.add_item,
            lambda actor: AddItem(actor=actor, stage=stage, title=title),
        )

    @registry.command("checkremove", usage="checkremove <stage> <item>", summary="Remove an item")
    async def checkremove(ctx: Context) -> SlashReply:
        if len(ctx.args) != 2:
            raise UsageError("Name the stage and the item.")
        stage, item = number(ctx.args[0], "stage"), number(ctx.args[1], "item")
        access = await incident_here(ctx, "edit the checklist")
        return await run(
            ctx,
            access,
            IncidentWorkflow.remove_item,
            lambda actor: RemoveItem(actor=actor, stage=stage, item=item),
        )

    @registry.command("assign", usage="assign <stage> <item> @user|@none", summary="Assign an item (@none unassigns)")
    async def assign(ctx: Context) -> SlashReply:
        if len(ctx.args) != 3:
            raise UsageError("Name the stage, the item and the person.")
        stage, item = number(ctx.args[0], "stage"), number(ctx.args[1], "item")
        access = await incident_here(ctx, "assign items")
        who = ctx.args[2]
        assignee = None if who.lower() == "@none" else (await user_facts(ctx, [who], access.state.channel_id))[0]
        return await run(
            ctx,
            access,
            IncidentWorkflow.assign_item,
            lambda actor: AssignItem(actor=actor, stage=stage, item=item, assignee=assignee),
        )

    @registry.command(
        "stage",
        usage="stage next|prev [--force]",
        summary="Move to the next or previous stage",
        example="stage next",
    )
    async def stage(ctx: Context) -> SlashReply:
        words = [a.lower() for a in ctx.args]
        force = "--force" in words
        words = [w for w in words if w != "--force"]
        if words not in (["next"], ["prev"]):
            raise UsageError("Say `next` or `prev`.")
        direction = words[0]
        access = await incident_here(ctx, "change stages")
        state = access.state
        current = state.checklists[state.active_stage]
        if direction == "next" and current.open_count and not force and ctx.request.trigger_id:
            incidents.precheck(
                access,
                lambda incident: incident.check_change_stage(
                    ChangeStage(actor=access.actor, direction="next", force=True)
                ),
            )
            await open_dialog(
                ctx,
                dialogs.confirm_dialog(
                    callback_id="stage",
                    title="Items still open",
                    text=f"Stage **{current.title}** still has {current.open_count} open item(s). Move on anyway?",
                    submit="Move on",
                    state=dialog_state(ctx, "stage", incident_id=state.id, direction="next"),
                ),
            )
            return ephemeral("")
        return await run(
            ctx,
            access,
            IncidentWorkflow.change_stage,
            lambda actor: ChangeStage(actor=actor, direction=direction, force=force),
        )

    @registry.command("commander", usage="commander [@user]", summary="Show or change the commander")
    async def commander(ctx: Context) -> SlashReply:
        access = await incident_here(ctx, "see or change the commander")
        if not ctx.args:
            return ephemeral(f"The commander is {access.state.mention(access.state.commander_id)}.")
        if len(ctx.args) != 1:
            raise UsageError("Name one person.")
        user = (await user_facts(ctx, ctx.args, access.state.channel_id))[0]
        return await run(
            ctx,
            access,
            IncidentWorkflow.change_commander,
            lambda actor: ChangeCommander(actor=actor, commander=user),
        )

    @registry.command("add", usage="add @user...", summary="Invite people to the incident channel", example="add @bob")
    async def add(ctx: Context) -> SlashReply:
        if not ctx.args:
            raise UsageError("Name at least one person.")
        access = await incident_here(ctx, "invite people")
        users = await user_facts(ctx, ctx.args, access.state.channel_id)
        return await run(
            ctx,
            access,
            IncidentWorkflow.invite_members,
            lambda actor: InviteMembers(actor=actor, users=users),
        )

    @registry.command("announce", usage="announce ~channel...", summary="Announce the incident in other channels")
    async def announce(ctx: Context) -> SlashReply:
        if not ctx.args:
            raise UsageError("Name at least one channel.")
        access = await incident_here(ctx, "announce an incident")
        channels = [await channel_fact(ctx, access.actor, name) for name in ctx.args]
        return await run(ctx, access, IncidentWorkflow.announce, lambda actor: Announce(actor=actor, channels=channels))

    @registry.command(
        "update",
        usage="update [investigating|identified|monitoring|resolved] <message...>",
        summary="Post a status update (resets the reminder)",
        example="update identified Failing over to the replica",
    )
    async def update(ctx: Context) -> SlashReply:
        # The message is kept as typed: several lines, quotes and all.
        message, status = ctx.text, None
        first, *rest = message.split(maxsplit=1) or [""]
        if first.lower() in UpdateStatus._value2member_map_:
            status = UpdateStatus(first.lower())
            message = rest[0] if rest else ""
        if not message:
            raise UsageError("Write the update's message.")
        access = await incident_here(ctx, "post status updates")
        return await run(
            ctx,
            access,
            IncidentWorkflow.post_status_update,
            lambda actor: PostStatusUpdate(actor=actor, message=message, status=status),
        )

    @registry.command(
        "reminder",
        usage="reminder <15m|1h|4h|off>",
        summary="Change the status update reminder",
        example="reminder 1h",
    )
    async def reminder(ctx: Context) -> SlashReply:
        if len(ctx.args) != 1:
            raise UsageError("Give one interval, or off.")
        seconds = parse_duration(ctx.args[0])
        access = await incident_here(ctx, "change the reminder")
        return await run(
            ctx,
            access,
            IncidentWorkflow.set_reminder,
            lambda actor: SetReminder(actor=actor, seconds=seconds),
        )

    @registry.command("timeline", usage="timeline", summary="Everything that happened, with times")
    async def timeline(ctx: Context) -> SlashReply:
        access = await incident_here(ctx, "see the timeline")
        return ephemeral(render.timeline(access.state))


async def channel_fact(ctx: Context, actor: Actor, name: str) -> ChannelFact:
    if not name.startswith("~") or len(name) < 2:
        raise UsageError(f"Name channels with ~channel-name (got {name!r}).")
    try:
        channel = await ctx.svc.mattermost.get_channel_by_name(ctx.request.team_id, name[1:].lower())
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        # The bot looks the channel up, and a private channel does not exist for it until it joins.
        bot = await ctx.svc.mattermost.bot_user()
        raise UsageError(
            f"There is no channel {name} that you can see in this team. "
            f"For a private channel, add @{bot['username']} to it first."
        ) from None
    visible = await ctx.svc.facts.visible_channel(actor, channel["id"])
    if visible is None:
        raise UsageError(f"There is no channel {name} that you can see in this team.")
    return await ctx.svc.facts.channel_fact(actor, visible)
