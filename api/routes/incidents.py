"""`/api/v1/incidents`: start, list, read and drive incidents; the REST twin of `/incident`.

Stages and items are addressed by 0-based position. Refusals come from the incident's
workflow and keep its message: 409 for a conflicting state, 403 when not allowed,
422 for bad input. What the caller may not see is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import Field, model_validator

from api import incidents
from api.auth import bearer_token, current_user
from api.errors import error_responses, invalid, not_found
from api.incidents import IncidentAccess, IncidentFilter
from api.pagination import Page, PageParams, page_params, paginate
from api.services import Services, services
from api.time_bounds import time_bound
from models.common import Actor, ChannelFact, MattermostId, Model, Trimmed, UserFact
from models.incident import (
    DESCRIPTION_MAX,
    NAME_MAX,
    STATUS_MESSAGE_MAX,
    EventType,
    IncidentRecord,
    IncidentSummary,
    ItemState,
    TimelineEvent,
    UpdateStatus,
    to_record,
)
from models.incident_commands import (
    AddItem,
    Announce,
    AssignItem,
    ChangeCommander,
    ChangeStage,
    CommandResult,
    EditItem,
    EndIncident,
    IncidentCommand,
    InviteMembers,
    MoveItem,
    PostStatusUpdate,
    RemoveItem,
    RunItemCommand,
    SetItemState,
    SetReminder,
    SnoozeReminder,
)
from models.playbook import COMMAND_MAX, ITEM_TITLE_MAX
from workflows.incident import IncidentWorkflow

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], responses=error_responses(401, 503))

IncidentId = Annotated[str, Path(description="Incident id (the part after `incident-` in the workflow id)")]
StageIndex = Annotated[int, Path(ge=0, description="0-based stage position")]
ItemIndex = Annotated[int, Path(ge=0, description="0-based item position within the stage")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=128, description="A resent request with the same key applies once"),
]
ACTION_ERRORS = error_responses(403, 404, 409, 422)


# ---------------------------------------------------------------------------- bodies


class IncidentCreate(Model):
    team_id: MattermostId
    playbook_id: str | None = Field(default=None, max_length=64)
    name: Trimmed = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    commander_id: MattermostId | None = None


class IncidentListItem(IncidentSummary):
    duration_seconds: int


class CommandResponse(Model):
    message: str = Field(description="What happened, in one sentence")
    incident: IncidentRecord


class CommanderChange(Model):
    user_id: MattermostId


class StageChange(Model):
    direction: Literal["next", "prev"] | None = None
    stage: int | None = Field(default=None, ge=0, description="Move to this 0-based stage instead")
    force: bool = Field(default=False, description="Move past open items")

    @model_validator(mode="after")
    def _one_target(self) -> StageChange:
        if (self.direction is None) == (self.stage is None):
            raise ValueError("give either direction (next or prev) or stage, not both")
        return self


class StatusUpdateBody(Model):
    message: Trimmed = Field(min_length=1, max_length=STATUS_MESSAGE_MAX)
    status: UpdateStatus | None = None


class MembersBody(Model):
    user_ids: list[MattermostId] = Field(min_length=1, max_length=100)


class ReminderBody(Model):
    seconds: int = Field(ge=0, description="Interval between reminders; 0 turns them off")


class SnoozeBody(Model):
    seconds: int = Field(gt=0, le=7 * 86400)


class AnnounceBody(Model):
    channel_ids: list[MattermostId] = Field(min_length=1, max_length=20)


class ItemCreate(Model):
    title: Trimmed = Field(min_length=1, max_length=ITEM_TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    command: Trimmed = Field(default="", max_length=COMMAND_MAX)
    position: int | None = Field(default=None, ge=0)


class ItemEdit(Model):
    title: Trimmed | None = Field(default=None, min_length=1, max_length=ITEM_TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    command: Trimmed | None = Field(default=None, max_length=COMMAND_MAX)


class ItemStateBody(Model):
    state: ItemState


class AssigneeBody(Model):
    assignee_id: MattermostId | None = Field(description="null unassigns")


class MoveBody(Model):
    to_position: int = Field(ge=0)


# ---------------------------------------------------------------------------- helpers


async def _visible(svc: Services, actor: Actor, incident_id: str) -> IncidentAccess:
    return await incidents.load(svc, actor, incident_id)


async def _respond(svc: Services, access: IncidentAccess, result: CommandResult) -> CommandResponse:
    reloaded = await incidents.load(svc, access.actor, access.state.id)
    return CommandResponse(message=result.message, incident=to_record(reloaded.state, datetime.now(UTC)))


@dataclass
class Caller:
    """Who calls an action, with the services and the request's idempotency key."""

    actor: Actor
    svc: Services
    key: str | None


def caller(
    key: IdempotencyKey = None, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Caller:
    return Caller(actor=actor, svc=svc, key=key)


async def _act(
    who: Caller, incident_id: str, update: Any, build: Callable[[Actor], IncidentCommand]
) -> CommandResponse:
    access = await _visible(who.svc, who.actor, incident_id)
    result = await incidents.command(who.svc, access, update, build, request_key=who.key)
    return await _respond(who.svc, access, result)


async def _user_fact(svc: Services, access: IncidentAccess, user_id: str, field: str) -> UserFact:
    user = await svc.facts.user_by_id(user_id)
    if user is None:
        raise invalid(f"No user has the id {user_id}.", {field: f"no user has the id {user_id}"})
    return await svc.facts.user_fact(user, team_id=access.state.team_id, channel_id=access.state.channel_id)


# ---------------------------------------------------------------------------- start, list, read


@router.post("", status_code=201, response_model=IncidentRecord, responses=error_responses(403, 404, 409, 422))
async def start_incident(
    body: IncidentCreate,
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IncidentRecord:
    """Start an incident. Returns once the workflow has accepted it; the channel appears moments later."""
    incident_id = await incidents.start_incident(
        svc,
        actor,
        team_id=body.team_id,
        name=body.name,
        description=body.description,
        playbook_id=body.playbook_id,
        commander_id=body.commander_id,
        request_key=f"api:{actor.user_id}:{idempotency_key}" if idempotency_key else None,
    )
    access = await incidents.load(svc, actor.model_copy(update={"is_channel_member": True}), incident_id)
    return to_record(access.state, datetime.now(UTC))


SORT_KEYS: dict[str, Callable[[IncidentListItem], Any]] = {
    "started_at": lambda i: (i.started_at, i.id),
    "ended_at": lambda i: (i.ended_at or datetime.max.replace(tzinfo=UTC), i.id),
    "name": lambda i: (i.name.casefold(), i.id),
    "duration": lambda i: (i.duration_seconds, i.id),
}


@router.get("", response_model=Page[IncidentListItem], responses=error_responses(404, 422))
async def list_incidents(
    team_id: Annotated[MattermostId, Query(description="The team whose incidents to list")],
    status: Literal["ongoing", "ended", "all"] = Query("all"),
    commander_id: Annotated[MattermostId | None, Query()] = None,
    member_id: Annotated[MattermostId | None, Query()] = None,
    playbook_id: str | None = Query(None, max_length=64),
    search: str | None = Query(None, max_length=64, description="Case-insensitive part of the name"),
    started_after: datetime | None = Query(None, description="Started at or after (no offset: UTC)"),
    started_before: datetime | None = Query(None, description="Started before (no offset: UTC)"),
    sort: Literal["started_at", "ended_at", "name", "duration"] = Query("started_at"),
    paging: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[IncidentListItem]:
    """Incidents the caller may see, from Temporal visibility (no per-incident queries).

    Newest first by default (names: A to Z).
    """
    where = IncidentFilter(
        status=status,
        commander_id=commander_id,
        member_id=member_id,
        playbook_id=playbook_id,
        search=search,
        started_after=time_bound(started_after),
        started_before=time_bound(started_before),
    )
    found = await incidents.list_incidents(svc, actor, team_id, where)
    now = datetime.now(UTC)
    items = [IncidentListItem(**s.model_dump(), duration_seconds=s.elapsed_seconds(now)) for s in found]
    return paginate(items, SORT_KEYS[sort], paging, default="asc" if sort == "name" else "desc")


@router.get("/by-channel/{channel_id}", response_model=IncidentRecord, responses=error_responses(404))
async def incident_by_channel(
    channel_id: MattermostId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IncidentRecord:
    """The incident whose channel this is."""
    incident_id = await incidents.incident_id_for_channel(svc, channel_id)
    if incident_id is None:
        raise not_found("Incident")
    access = await _visible(svc, actor, incident_id)
    return to_record(access.state, datetime.now(UTC))


@router.get("/{incident_id}", response_model=IncidentRecord, responses=error_responses(404))
async def get_incident(
    incident_id: IncidentId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IncidentRecord:
    """The full incident record, with its elapsed time and time to resolution."""
    access = await _visible(svc, actor, incident_id)
    return to_record(access.state, datetime.now(UTC))


@router.get("/{incident_id}/timeline", response_model=list[TimelineEvent], responses=error_responses(404, 422))
async def get_timeline(
    incident_id: IncidentId,
    type: list[EventType] | None = Query(None, description="Only these event types (repeat the parameter)"),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> list[TimelineEvent]:
    """The incident's timeline, optionally only some event types."""
    access = await _visible(svc, actor, incident_id)
    wanted = set(type or [])
    return [event for event in access.state.timeline if not wanted or event.type in wanted]


# ---------------------------------------------------------------------------- lifecycle


@router.post("/{incident_id}/end", response_model=CommandResponse, responses=ACTION_ERRORS)
async def end_incident(
    incident_id: IncidentId,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """End the incident: the channel and broadcast channels are told, and its workflow completes."""
    return await _act(who, incident_id, IncidentWorkflow.end_incident, lambda a: EndIncident(actor=a))


@router.post("/{incident_id}/restart", response_model=CommandResponse, responses=ACTION_ERRORS)
async def restart_incident(
    incident_id: IncidentId,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Reopen an ended incident, with its whole state and timeline."""
    access = await _visible(who.svc, who.actor, incident_id)
    result = await incidents.restart(who.svc, access, request_key=who.key)
    return await _respond(who.svc, access, result)


@router.post("/{incident_id}/commander", response_model=CommandResponse, responses=ACTION_ERRORS)
async def change_commander(
    incident_id: IncidentId,
    body: CommanderChange,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Make another member of the incident channel the commander."""
    access = await _visible(who.svc, who.actor, incident_id)
    user = await _user_fact(who.svc, access, body.user_id, "user_id")
    result = await incidents.command(
        who.svc,
        access,
        IncidentWorkflow.change_commander,
        lambda a: ChangeCommander(actor=a, commander=user),
        request_key=who.key,
    )
    return await _respond(who.svc, access, result)


@router.post("/{incident_id}/stage", response_model=CommandResponse, responses=ACTION_ERRORS)
async def change_stage(
    incident_id: IncidentId,
    body: StageChange,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Move to the next or previous stage, or to a given one; `force` moves past open items."""
    return await _act(
        who,
        incident_id,
        IncidentWorkflow.change_stage,
        lambda a: ChangeStage(actor=a, direction=body.direction, to_stage=body.stage, force=body.force),
    )


@router.post("/{incident_id}/status-updates", response_model=CommandResponse, responses=ACTION_ERRORS)
async def post_status_update(
    incident_id: IncidentId,
    body: StatusUpdateBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Post a status update to the channel and broadcast channels; resets the reminder."""
    return await _act(
        who,
        incident_id,
        IncidentWorkflow.post_status_update,
        lambda a: PostStatusUpdate(actor=a, message=body.message, status=body.status),
    )


@router.post("/{incident_id}/members", response_model=CommandResponse, responses=ACTION_ERRORS)
async def invite_members(
    incident_id: IncidentId,
    body: MembersBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Invite team members to the incident channel."""
    access = await _visible(who.svc, who.actor, incident_id)
    users = [await _user_fact(who.svc, access, uid, f"user_ids[{i}]") for i, uid in enumerate(body.user_ids)]
    result = await incidents.command(
        who.svc,
        access,
        IncidentWorkflow.invite_members,
        lambda a: InviteMembers(actor=a, users=users),
        request_key=who.key,
    )
    return await _respond(who.svc, access, result)


@router.post("/{incident_id}/reminder", response_model=CommandResponse, responses=ACTION_ERRORS)
async def set_reminder(
    incident_id: IncidentId,
    body: ReminderBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Set the status update reminder's interval (0 turns it off)."""
    return await _act(
        who, incident_id, IncidentWorkflow.set_reminder, lambda a: SetReminder(actor=a, seconds=body.seconds)
    )


@router.post("/{incident_id}/reminder/snooze", response_model=CommandResponse, responses=ACTION_ERRORS)
async def snooze_reminder(
    incident_id: IncidentId,
    body: SnoozeBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Postpone the next status update reminder."""
    return await _act(
        who, incident_id, IncidentWorkflow.snooze_reminder, lambda a: SnoozeReminder(actor=a, seconds=body.seconds)
    )


@router.post("/{incident_id}/announcements", response_model=CommandResponse, responses=ACTION_ERRORS)
async def announce(
    incident_id: IncidentId,
    body: AnnounceBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Announce the incident in channels the caller can post to."""
    access = await _visible(who.svc, who.actor, incident_id)
    channels: list[ChannelFact] = []
    for index, channel_id in enumerate(body.channel_ids):
        channel = await who.svc.facts.visible_channel(access.actor, channel_id)
        if channel is None:
            raise invalid(
                f"There is no channel {channel_id} that you can see.",
                {f"channel_ids[{index}]": "no such channel that you can see"},
            )
        channels.append(await who.svc.facts.channel_fact(access.actor, channel))
    result = await incidents.command(
        who.svc, access, IncidentWorkflow.announce, lambda a: Announce(actor=a, channels=channels), request_key=who.key
    )
    return await _respond(who.svc, access, result)


# ---------------------------------------------------------------------------- checklists


@router.post("/{incident_id}/checklists/{stage}/items", response_model=CommandResponse, responses=ACTION_ERRORS)
async def add_item(
    incident_id: IncidentId,
    stage: StageIndex,
    body: ItemCreate,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Add an item to a stage (at `position`, or at the end)."""
    return await _act(
        who, incident_id, IncidentWorkflow.add_item, lambda a: AddItem(actor=a, stage=stage, **body.model_dump())
    )


@router.put("/{incident_id}/checklists/{stage}/items/{item}", response_model=CommandResponse, responses=ACTION_ERRORS)
async def edit_item(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    body: ItemEdit,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Rename an item or change its description or command (fields left out stay)."""
    return await _act(
        who,
        incident_id,
        IncidentWorkflow.edit_item,
        lambda a: EditItem(actor=a, stage=stage, item=item, **body.model_dump()),
    )


@router.delete(
    "/{incident_id}/checklists/{stage}/items/{item}", response_model=CommandResponse, responses=ACTION_ERRORS
)
async def remove_item(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Remove an item from a stage."""
    return await _act(
        who, incident_id, IncidentWorkflow.remove_item, lambda a: RemoveItem(actor=a, stage=stage, item=item)
    )


@router.put(
    "/{incident_id}/checklists/{stage}/items/{item}/state", response_model=CommandResponse, responses=ACTION_ERRORS
)
async def set_item_state(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    body: ItemStateBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Set an item's state: open, in_progress or done."""
    return await _act(
        who,
        incident_id,
        IncidentWorkflow.set_item_state,
        lambda a: SetItemState(actor=a, stage=stage, item=item, state=body.state),
    )


@router.put(
    "/{incident_id}/checklists/{stage}/items/{item}/assignee", response_model=CommandResponse, responses=ACTION_ERRORS
)
async def assign_item(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    body: AssigneeBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Assign an item to a member of the incident channel, or unassign it."""
    access = await _visible(who.svc, who.actor, incident_id)
    assignee = await _user_fact(who.svc, access, body.assignee_id, "assignee_id") if body.assignee_id else None
    result = await incidents.command(
        who.svc,
        access,
        IncidentWorkflow.assign_item,
        lambda a: AssignItem(actor=a, stage=stage, item=item, assignee=assignee),
        request_key=who.key,
    )
    return await _respond(who.svc, access, result)


@router.post(
    "/{incident_id}/checklists/{stage}/items/{item}/move", response_model=CommandResponse, responses=ACTION_ERRORS
)
async def move_item(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    body: MoveBody,
    who: Caller = Depends(caller),
) -> CommandResponse:
    """Move an item to another position within its stage."""
    return await _act(
        who,
        incident_id,
        IncidentWorkflow.move_item,
        lambda a: MoveItem(actor=a, stage=stage, item=item, to_position=body.to_position),
    )


@router.post(
    "/{incident_id}/checklists/{stage}/items/{item}/run",
    response_model=CommandResponse,
    responses={**ACTION_ERRORS, **error_responses(502)},
)
async def run_item_command(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    key: IdempotencyKey = None,
    token: str = Depends(bearer_token),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> CommandResponse:
    """Run the item's slash command as the caller, in the incident channel, and record that it ran."""
    access = await _visible(svc, actor, incident_id)
    command = RunItemCommand(actor=access.actor, stage=stage, item=item)
    incidents.precheck(access, lambda rules: rules.check_run_item_command(command))
    text = access.state.checklists[stage].items[item].command
    await svc.mattermost.execute_command(token, channel_id=str(access.state.channel_id), command=text)
    result = await incidents.command(
        svc,
        access,
        IncidentWorkflow.run_item_command,
        lambda a: RunItemCommand(actor=a, stage=stage, item=item),
        request_key=key,
    )
    return await _respond(svc, access, result)
