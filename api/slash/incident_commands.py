"""The `/incident` subcommands that start and drive incidents, one function each.

Each parses its arguments (`arguments`), gathers the facts a command needs and sends
one command; the incident's workflow resolves the intent ("the active stage") and
decides, and its refusal reaches the user verbatim. When the workflow asks for a
confirmation (leaving open items, ending), the subcommand opens a dialog that carries
what was confirmed (the stage), so a stale confirmation is refused, not applied.
A resent request (same `trigger_id`) is applied once.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from activities.mattermost import MattermostFailure
from api import incidents
from api.errors import ApiError
from api.idempotency import scoped
from api.incidents import IncidentFilter, Place
from api.pagination import MAX_PER_PAGE, PageParams
from api.playbooks import get_playbook, list_playbooks
from api.slash import arguments, dialogs, render
from api.slash.protocol import SlashReply, ephemeral
from api.slash.registry import Context, Registry, UsageError
from models.common import SHORT_ID, Actor, ChannelFact, UserFact
from models.incident import UpdateStatus
from models.incident_commands import (
    AddItem,
    Announce,
    AssignItem,
    ChangeCommander,
    ChangeStage,
    CommandResult,
    EndIncident,
    IncidentCommand,
    InviteMembers,
    PostStatusUpdate,
    RemoveItem,
    RequestKey,
    SetItemState,
    SetReminder,
    StatusUpdateFields,
)
from models.playbook import PlaybookSummary, summarize
from workflows.incident import IncidentWorkflow

# ---------------------------------------------------------------------------- the incident typed in


def wrong_channel(what: str) -> ApiError:
    return ApiError(400, "wrong_channel", f"You can only {what} from within the incident's channel.")


async def incident_here(ctx: Context, what: str) -> tuple[Place, Actor]:
    """The incident whose channel the command was typed in, and the actor's facts for it.

    No read: the channel's name says which incident it is, and the workflow refuses a
    command whose channel is not its own (or that the actor may not see)."""
    request = ctx.request
    incident_id = await incidents.incident_id_for_channel(ctx.svc, request.channel_id, request.channel_name)
    if incident_id is None:
        raise wrong_channel(what)
    place = Place(incident_id=incident_id, team_id=request.team_id, channel_id=request.channel_id)
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
        # Someone outside the channel learns nothing from how their arguments fare here.
        if actor.is_channel_member is False and not actor.is_system_admin:
            raise wrong_channel(what) from None
        raise
    command = built.model_copy(update={"channel_id": place.channel_id})
    try:
        return await incidents.send(ctx.svc, place, update, command)
    except ApiError as error:
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
        raise ApiError(400, "no_trigger", "This command needs a dialog, and Mattermost sent no trigger id.")
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
    await incidents.start_incident(
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
    except ApiError as error:
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
        result = await incidents.restart(ctx.svc, ctx.actor, place.incident_id, request=request_key(ctx, "restart"))
    except ApiError as error:
        if error.status == 404:
            raise wrong_channel("restart an incident") from None
        raise
    return ephemeral(result.message)


async def read_here(ctx: Context, what: str) -> incidents.IncidentAccess:
    place, _ = await incident_here(ctx, what)
    try:
        return await incidents.load(ctx.svc, ctx.actor, place.incident_id, channel_id=ctx.request.channel_id)
    except ApiError as error:
        if error.status != 404:
            raise
        raise wrong_channel(what) from None


async def info(ctx: Context) -> SlashReply:
    access = await read_here(ctx, "see an incident's details")
    return ephemeral(render.info(access.state, datetime.now(UTC)))


async def list_ongoing(ctx: Context) -> SlashReply:
    found = await incidents.list_incidents(ctx.svc, ctx.actor, ctx.request.team_id, IncidentFilter())
    found.sort(key=lambda s: s.started_at, reverse=True)
    users = await ctx.svc.mattermost.get_users_by_ids({s.commander_id for s in found})
    names = {u["id"]: u["username"] for u in users}
    return ephemeral(render.incident_list(found, names, datetime.now(UTC)))


async def check(ctx: Context) -> SlashReply:
    if len(ctx.args) not in (1, 2):
        raise UsageError("Name the item (and optionally the stage first).")
    stage = arguments.number(ctx.args[0], "stage") if len(ctx.args) == 2 else None
    item = arguments.number(ctx.args[-1], "item")
    return await run(
        ctx,
        "check items",
        IncidentWorkflow.set_item_state,
        lambda a, r: SetItemState(actor=a, request=r, stage=stage, item=item, state="toggle"),
    )


async def checkadd(ctx: Context) -> SlashReply:
    words, rest = ctx.leading(1)
    title = " ".join(rest.split())
    if not words or not title:
        raise UsageError("Name the stage and the new item's title.")
    stage = arguments.number(words[0], "stage")
    return await run(
        ctx,
        "edit the checklist",
        IncidentWorkflow.add_item,
        lambda a, r: AddItem(actor=a, request=r, stage=stage, title=title),
    )


async def checkremove(ctx: Context) -> SlashReply:
    if len(ctx.args) != 2:
        raise UsageError("Name the stage and the item.")
    stage, item = arguments.number(ctx.args[0], "stage"), arguments.number(ctx.args[1], "item")
    return await run(
        ctx,
        "edit the checklist",
        IncidentWorkflow.remove_item,
        lambda a, r: RemoveItem(actor=a, request=r, stage=stage, item=item),
    )


async def assign(ctx: Context) -> SlashReply:
    if len(ctx.args) != 3:
        raise UsageError("Name the stage, the item and the person.")
    stage, item = arguments.number(ctx.args[0], "stage"), arguments.number(ctx.args[1], "item")
    who = ctx.args[2]

    async def build(actor: Actor, request: RequestKey | None) -> AssignItem:
        assignee = None if who.lower() == "@none" else (await user_facts(ctx, [who]))[0]
        return AssignItem(actor=actor, request=request, stage=stage, item=item, assignee=assignee)

    return await run(ctx, "assign items", IncidentWorkflow.assign_item, build)


async def stage(ctx: Context) -> SlashReply:
    words = [a.lower() for a in ctx.args]
    force = "--force" in words
    words = [w for w in words if w != "--force"]
    if words not in (["next"], ["prev"]):
        raise UsageError("Say `next` or `prev`.")
    direction = words[0]
    what = "change stages"
    try:
        result = await send(
            ctx,
            what,
            IncidentWorkflow.change_stage,
            lambda a, r: ChangeStage(actor=a, request=r, direction=direction, force=force),
        )
    except ApiError as error:
        if error.code != "confirmation_required":
            raise
        if not ctx.request.trigger_id:
            return ephemeral(f"{error.message} Type `/incident stage next --force` to move on.")
        place, _ = await incident_here(ctx, what)
        await open_dialog(
            ctx,
            dialogs.confirm_dialog(
                callback_id="stage",
                title="Items still open",
                text=error.message,
                submit="Move on",
                state=dialog_state(
                    ctx, "stage", incident_id=place.incident_id, direction="next", stage=int(error.details["stage"])
                ),
            ),
        )
        return ephemeral("")
    return ephemeral(result.message)


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


# ---------------------------------------------------------------------------- registration

COMMANDS: list[tuple[Any, str, str, str]] = [
    # handler, usage, summary, example
    (start, "start [<playbook> <name...>]", "Start an incident: without arguments, a dialog asks for the details",
     'start "Database outage" Primary DB down'),
    (end, "end", "End the incident (asks for confirmation)", ""),
    (restart, "restart", "Reopen an ended incident", ""),
    (info, "info", "Status, commander, duration and the active checklist", ""),
    (list_ongoing, "list", "Ongoing incidents in this team, newest first", ""),
    (check, "check [<stage>] <item>", "Mark an item done, or open again (active stage unless you name one)", "check 2"),
    (checkadd, "checkadd <stage> <title...>", "Add an item to a stage", ""),
    (checkremove, "checkremove <stage> <item>", "Remove an item", ""),
    (assign, "assign <stage> <item> @user|@none", "Assign an item (@none unassigns)", ""),
    (stage, "stage next|prev [--force]", "Move to the next or previous stage", "stage next"),
    (commander, "commander [@user]", "Show or change the commander", ""),
    (add, "add @user...", "Invite people to the incident channel", "add @bob"),
    (announce, "announce ~channel...", "Announce the incident in other channels", ""),
    (update, "update [investigating|identified|monitoring|resolved] <message...>",
     "Post a status update (resets the reminder)", "update identified Failing over to the replica"),
    (reminder, "reminder <15m|1h|4h|off>", "Change the status update reminder", "reminder 1h"),
    (timeline, "timeline", "Everything that happened, with times", ""),
]  # fmt: skip


def register(registry: Registry) -> None:
    for handler, usage, summary, example in COMMANDS:
        registry.command(usage.split()[0], usage=usage, summary=summary, example=example)(handler)
