"""`/api/v1/incidents`: start, list and read incidents (the commands' routes are in `command_routes`).

What the caller may not see is 404, answered no faster than for an incident that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from api.dependencies import (
    FieldFilters,
    IdempotencyKey,
    IncidentId,
    SeverityFilter,
    conceal_existence,
    current_user,
    page_params,
    services,
)
from api.http_errors import PENDING_RESPONSE, error_responses, pending_response
from models.common import Actor, MattermostId
from models.incident import EventType, IncidentCreate, TimelineEvent
from models.incident_report import IncidentReport
from models.incident_views import IncidentRecord, IncidentSummary, IncidentView, to_record
from models.retrospective import RetrospectiveView
from service import incident_access as incidents
from service import incident_history, incident_lists, incident_reports, retrospectives
from service import incident_starts as incident_start
from service.command_follow_ups import CommandPending
from service.container import Services
from service.errors import not_found
from service.idempotency import new_key, scoped
from service.incident_lists import DEFAULT_DIRECTION, SORT_KEYS, IncidentFilter, IncidentListItem
from service.incident_reports import ReportFormat
from service.pagination import Page, PageParams, paginate
from service.time_bounds import time_bound

router = APIRouter(
    prefix="/api/v1/incidents",
    tags=["incidents"],
    responses=error_responses(401, 503),
    dependencies=[Depends(conceal_existence)],
)


# ---------------------------------------------------------------------------- bodies


# ---------------------------------------------------------------------------- start, list, read


@router.post(
    "",
    status_code=201,
    response_model=IncidentView,
    responses={**error_responses(403, 404, 409, 422), **PENDING_RESPONSE},
)
async def start_incident(
    body: IncidentCreate,
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IncidentView | JSONResponse:
    """Start an incident. Returns once the workflow has accepted it; the channel appears moments later
    (`channel_id` is null until then: `GET /api/v1/incidents/{id}` shows it).

    When Temporal took the start but had not answered within `TEMPORAL_RPC_TIMEOUT_SECONDS`,
    the answer is 202 with the incident's id: repeat the request with the same
    `Idempotency-Key` (the answer names the key, when you sent none) to get the incident."""
    key = idempotency_key or new_key()
    try:
        result = await incident_start.start_incident(
            svc, actor, body, request=scoped(actor.user_id, "start", key, body)
        )
    except CommandPending as pending:
        return pending_response(pending, key)
    return result.incident


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
    severity: SeverityFilter = None,
    field: FieldFilters = None,
    sort: Literal["started_at", "ended_at", "name", "duration", "severity"] = Query(
        "started_at", description="`severity`: the most severe first (the newest first within a level)"
    ),
    paging: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[IncidentListItem]:
    """Incidents the caller may see, from Temporal visibility (no per-incident queries).

    Newest first by default (names: A to Z; severity: the most severe first). In that default
    order a page costs the same however many incidents the team has; other orders read every
    matching incident.
    """
    where = IncidentFilter(
        status=status,
        commander_id=commander_id,
        member_id=member_id,
        playbook_id=playbook_id,
        search=search,
        started_after=time_bound(started_after),
        started_before=time_bound(started_before),
        severity=severity,
        fields=incident_lists.read_field_filters(field or []),
    )
    now = datetime.now(UTC)

    def item(summary: IncidentSummary) -> IncidentListItem:
        return IncidentListItem(**summary.model_dump(), duration_seconds=summary.elapsed_seconds(now))

    default = DEFAULT_DIRECTION.get(sort, "desc")
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


@router.get("/{incident_id}", response_model=IncidentRecord, responses=error_responses(404, 422))
async def get_incident(
    incident_id: IncidentId,
    as_of: datetime | None = Query(
        None,
        description="The incident as it stood at this time (no offset: UTC), rebuilt from its recorded "
        "history: 422 before its start or in the future",
    ),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IncidentRecord:
    """The full incident record, with its elapsed time and time to resolution; with `as_of`, as it
    stood then (its status, commander, stage, items, status updates and timeline up to that time)."""
    if as_of is not None:
        at = time_bound(as_of) or as_of
        return to_record(await incident_history.incident_at(svc, actor, incident_id, at), at)
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


@router.get(
    "/{incident_id}/report",
    response_model=IncidentReport,
    responses={
        200: {
            "description": "The report: JSON (`format=json`, the default), markdown (`md`) or PDF (`pdf`)",
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(404, 422),
    },
)
async def get_report(
    incident_id: IncidentId,
    format: ReportFormat = Query("json", description="`json`, `md` (markdown) or `pdf`"),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Response:
    """The incident's report to share: its name, severity, times, participants, status updates, the
    checklist as it ended (or stands), its key moments and timeline. For whoever may see the incident."""
    rendered = await incident_reports.rendered_report(svc, actor, incident_id, format)
    return Response(
        content=rendered.body,
        media_type=rendered.media_type,
        headers={"Content-Disposition": f'attachment; filename="{rendered.filename}"'},
    )


@router.get("/{incident_id}/retrospective", response_model=RetrospectiveView, responses=error_responses(404, 422))
async def get_retrospective(
    incident_id: IncidentId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> RetrospectiveView:
    """The incident's retrospective: opened from its playbook's template when the incident ended,
    its text and latest `version` (a save names it: `PUT .../retrospective`), its history, and whether
    the caller may edit, publish or decline it. 404 when the incident has none (its playbook has no
    retrospective, or it has not ended), and for whoever may not see the incident."""
    return await retrospectives.retrospective(svc, actor, incident_id)
