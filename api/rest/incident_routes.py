"""`/api/v1/incidents`: start, list, read and drive incidents; the REST twin of `/incident`.

Stages and items are addressed by 0-based position (checklist routes are in
`checklists.py`). Bodies are the same field models the workflow's commands are built
from, and refusals come from the incident's workflow with its message: 409 for a
conflicting state, 403 when not allowed, 422 for bad input. What the caller may not see
is 404, answered no faster than for an incident that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from api.dependencies import conceal_existence, current_user, page_params, services
from api.http_errors import error_responses
from api.rest.command_deps import (
    ACTION_ERRORS,
    Caller,
    CommandResponse,
    IdempotencyKey,
    IncidentId,
    act,
    caller,
)
from models.common import Actor, ChannelFact, MattermostId, Model, UserFact
from models.incident import EventType, IncidentFields, TimelineEvent
from models.incident_commands import (
    Announce,
    ChangeCommander,
    ChangeStage,
    EndIncident,
    InviteMembers,
    PostStatusUpdate,
    ReminderFields,
    RequestKey,
    SetReminder,
    SnoozeFields,
    SnoozeReminder,
    StageMove,
    StatusUpdateFields,
)
from models.incident_views import IncidentRecord, IncidentSummary, IncidentView, to_record
from service import incident_access as incidents
from service import incident_lists
from service import incident_starts as incident_start
from service.container import Services
from service.errors import invalid, not_found
from service.idempotency import scoped
from service.incident_access import IncidentLocation
from service.incident_lists import IncidentFilter
from service.pagination import Page, PageParams, paginate
from service.time_bounds import time_bound
from workflows.incident_workflow import IncidentWorkflow

router = APIRouter(
    prefix="/api/v1/incidents",
    tags=["incidents"],
    responses=error_responses(401, 503),
    dependencies=[Depends(conceal_existence)],
)


# ---------------------------------------------------------------------------- bodies


class IncidentCreate(IncidentFields):
    team_id: MattermostId
    playbook_id: str | None = Field(default=None, max_length=64)
    commander_id: MattermostId | None = None


class IncidentListItem(IncidentSummary):
    duration_seconds: int


class CommanderChange(Model):
    user_id: MattermostId


class MembersBody(Model):
    user_ids: list[MattermostId] = Field(min_length=1, max_length=100)


class AnnounceBody(Model):
    channel_ids: list[MattermostId] = Field(min_length=1, max_length=20)


# ---------------------------------------------------------------------------- facts


async def user_fact(svc: Services, place: IncidentLocation, user_id: str, field: str) -> UserFact:
    user = await svc.facts.user_by_id(user_id)
    if user is None:
        raise invalid(f"No user has the id {user_id}.", {field: f"no user has the id {user_id}"})
    return await svc.facts.user_fact(user, team_id=place.team_id, channel_id=place.channel_id)


# ---------------------------------------------------------------------------- start, list, read


@router.post("", status_code=201, response_model=IncidentView, responses=error_responses(403, 404, 409, 422))
async def start_incident(
    body: IncidentCreate,
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IncidentView:
    """Start an incident. Returns once the workflow has accepted it; the channel appears moments later."""
    result = await incident_start.start_incident(
        svc,
        actor,
        team_id=body.team_id,
        name=body.name,
        description=body.description,
        playbook_id=body.playbook_id,
        commander_id=body.commander_id,
        request=scoped(actor.user_id, "start", idempotency_key, body),
    )
    return result.incident


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

    Newest first by default (names: A to Z). In that default order a page costs the same
    however many incidents the team has; other orders read every matching incident.
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
    now = datetime.now(UTC)

    def item(summary: IncidentSummary) -> IncidentListItem:
        return IncidentListItem(**summary.model_dump(), duration_seconds=summary.elapsed_seconds(now))

    default: Literal["asc", "desc"] = "asc" if sort == "name" else "desc"
    if sort == "started_at" and (paging.direction or default) == "desc":
        # The default order: read about as many incidents as the page shows, not the team's.
        start = paging.page * paging.per_page
        newest = await incident_lists.newest_incidents(svc, actor, team_id, where, first=start + paging.per_page)
        return Page[IncidentListItem](
            items=[item(s) for s in newest.items[start:]],
            total_count=newest.total,
            page=paging.page,
            per_page=paging.per_page,
            has_more=start + paging.per_page < newest.total,
        )
    found = await incident_lists.list_incidents(svc, actor, team_id, where)
    return paginate([item(s) for s in found], SORT_KEYS[sort], paging, default=default)


@router.get("/by-channel/{channel_id}", response_model=IncidentRecord, responses=error_responses(404))
async def incident_by_channel(
    channel_id: MattermostId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IncidentRecord:
    """The incident whose channel this is."""
    incident_id = await incidents.incident_id_for_channel(svc, channel_id)
    if incident_id is None:
        raise not_found("Incident")
    access = await incidents.load(svc, actor, incident_id, channel_id=channel_id)
    return to_record(access.state, datetime.now(UTC))


@router.get("/{incident_id}", response_model=IncidentRecord, responses=error_responses(404))
async def get_incident(
    incident_id: IncidentId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IncidentRecord:
    """The full incident record, with its elapsed time and time to resolution."""
    access = await incidents.load(svc, actor, incident_id)
    return to_record(access.state, datetime.now(UTC))


@router.get("/{incident_id}/timeline", response_model=Page[TimelineEvent], responses=error_responses(404, 422))
async def get_timeline(
    incident_id: IncidentId,
    type: list[EventType] | None = Query(None, description="Only these event types (repeat the parameter)"),
    params: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[TimelineEvent]:
    """The incident's timeline, oldest first (`direction=desc`: newest first), optionally only some event types."""
    access = await incidents.load(svc, actor, incident_id)
    wanted = set(type or [])
    events = [event for event in access.state.timeline if not wanted or event.type in wanted]
    return paginate(events, lambda event: event.at, params)


# ---------------------------------------------------------------------------- lifecycle


@router.post("/{incident_id}/end", response_model=CommandResponse, responses=ACTION_ERRORS)
async def end_incident(incident_id: IncidentId, who: Caller = Depends(caller)) -> CommandResponse:
    """End the incident: the channel and broadcast channels are told, and its workflow completes."""
    return await act(
        who, incident_id, IncidentWorkflow.end_incident, None, lambda a, r, _: EndIncident(actor=a, request=r)
    )


@router.post("/{incident_id}/restart", response_model=CommandResponse, responses=ACTION_ERRORS)
async def restart_incident(incident_id: IncidentId, who: Caller = Depends(caller)) -> CommandResponse:
    """Reopen an ended incident, with its whole state and timeline."""
    request = who.request("restart_incident", incident_id, None)
    result = await incident_start.restart(who.svc, who.actor, incident_id, request=request)
    return CommandResponse(message=result.message, incident=result.incident)


@router.post("/{incident_id}/commander", response_model=CommandResponse, responses=ACTION_ERRORS)
async def change_commander(
    incident_id: IncidentId, body: CommanderChange, who: Caller = Depends(caller)
) -> CommandResponse:
    """Make another member of the incident channel the commander."""

    async def build(actor: Actor, request: RequestKey | None, place: IncidentLocation) -> ChangeCommander:
        user = await user_fact(who.svc, place, body.user_id, "user_id")
        return ChangeCommander(actor=actor, request=request, commander=user)

    return await act(who, incident_id, IncidentWorkflow.change_commander, body, build)


@router.post("/{incident_id}/stage", response_model=CommandResponse, responses=ACTION_ERRORS)
async def change_stage(incident_id: IncidentId, body: StageMove, who: Caller = Depends(caller)) -> CommandResponse:
    """Move to the next or previous stage, or to a given one.

    Moving past open items needs `force` (otherwise 409 `confirmation_required`); with
    `from_stage`, the move is refused if the incident is no longer at that stage."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.change_stage,
        body,
        lambda a, r, _: ChangeStage(actor=a, request=r, **body.model_dump()),
    )


@router.post("/{incident_id}/status-updates", response_model=CommandResponse, responses=ACTION_ERRORS)
async def post_status_update(
    incident_id: IncidentId, body: StatusUpdateFields, who: Caller = Depends(caller)
) -> CommandResponse:
    """Post a status update to the channel and broadcast channels; resets the reminder."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.post_status_update,
        body,
        lambda a, r, _: PostStatusUpdate(actor=a, request=r, **body.model_dump()),
    )


@router.post("/{incident_id}/members", response_model=CommandResponse, responses=ACTION_ERRORS)
async def invite_members(incident_id: IncidentId, body: MembersBody, who: Caller = Depends(caller)) -> CommandResponse:
    """Invite team members to the incident channel."""

    async def build(actor: Actor, request: RequestKey | None, place: IncidentLocation) -> InviteMembers:
        users = [await user_fact(who.svc, place, uid, f"user_ids[{i}]") for i, uid in enumerate(body.user_ids)]
        return InviteMembers(actor=actor, request=request, users=users)

    return await act(who, incident_id, IncidentWorkflow.invite_members, body, build)


@router.post("/{incident_id}/reminder", response_model=CommandResponse, responses=ACTION_ERRORS)
async def set_reminder(incident_id: IncidentId, body: ReminderFields, who: Caller = Depends(caller)) -> CommandResponse:
    """Set the status update reminder's interval (0 turns it off)."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.set_reminder,
        body,
        lambda a, r, _: SetReminder(actor=a, request=r, **body.model_dump()),
    )


@router.post("/{incident_id}/reminder/snooze", response_model=CommandResponse, responses=ACTION_ERRORS)
async def snooze_reminder(
    incident_id: IncidentId, body: SnoozeFields, who: Caller = Depends(caller)
) -> CommandResponse:
    """Postpone the next status update reminder."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.snooze_reminder,
        body,
        lambda a, r, _: SnoozeReminder(actor=a, request=r, **body.model_dump()),
    )


@router.post("/{incident_id}/announcements", response_model=CommandResponse, responses=ACTION_ERRORS)
async def announce(incident_id: IncidentId, body: AnnounceBody, who: Caller = Depends(caller)) -> CommandResponse:
    """Announce the incident in channels the caller can post to."""

    async def build(actor: Actor, request: RequestKey | None, place: IncidentLocation) -> Announce:
        channels: list[ChannelFact] = []
        for index, channel_id in enumerate(body.channel_ids):
            channel = await who.svc.facts.visible_channel(actor, channel_id)
            if channel is None:
                raise invalid(
                    f"There is no channel {channel_id} that you can see.",
                    {f"channel_ids[{index}]": "no such channel that you can see"},
                )
            channels.append(await who.svc.facts.channel_fact(actor, channel))
        return Announce(actor=actor, request=request, channels=channels)

    return await act(who, incident_id, IncidentWorkflow.announce, body, build)
