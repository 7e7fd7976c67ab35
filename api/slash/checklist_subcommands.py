"""The `/incident` subcommands that work the checklist: check, checkadd, checkremove, assign, stage.

Stages and items are numbered from 1, as `/incident info` shows them. `check 2` means
item 2 of the stage that is active when the command arrives (the workflow resolves it);
a move past open items is answered by the workflow with a confirmation request, which
opens a dialog naming the stage, so a stale confirmation is refused, not applied.
"""

from __future__ import annotations

from api.slash import slash_arguments as arguments
from api.slash import slash_dialogs as dialogs
from api.slash.slash_context import dialog_state, incident_here, open_dialog, run, send, user_facts
from api.slash.slash_protocol import SlashReply, ephemeral
from api.slash.slash_registry import Context, UsageError
from models.common import Actor
from models.incident_commands import AddItem, AssignItem, ChangeStage, RemoveItem, RequestKey, SetItemState
from service.errors import ServiceError
from workflows.incident_workflow import IncidentWorkflow


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
    except ServiceError as error:
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
