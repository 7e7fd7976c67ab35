"""`/api/v1/stats`: the backstage numbers for a team."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.dependencies import FieldFilters, SeverityFilter, current_user, services
from api.http_errors import error_responses
from models.common import Actor, MattermostId
from models.stats import IncidentStats, StatsWindow
from service.container import Services
from service.errors import invalid
from service.incident_lists import read_field_filters
from service.team_stats import team_stats
from service.time_bounds import time_bound

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"], responses=error_responses(401, 503))


@router.get("", response_model=IncidentStats, responses=error_responses(404, 422))
async def get_stats(
    team_id: Annotated[MattermostId, Query(description="The team")],
    since: datetime | None = Query(None, description="Incidents started at or after this time (no offset: UTC)"),
    until: datetime | None = Query(None, description="Incidents started before this time (no offset: UTC)"),
    playbook_id: str | None = Query(None, max_length=64, description="Only incidents from this playbook"),
    severity: SeverityFilter = None,
    field: FieldFilters = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IncidentStats:
    """Counts, time to resolution (mean, median, p90, max, per-day means), time to first status
    update, the mean age of ongoing incidents, the number of distinct participants, the
    incidents by source (started by people, or opened by each integration from alerts),
    for alert-opened incidents the time from their group's first alert to their incident
    channel (median, p90, max), for paged incidents the time from the first page to the first
    acknowledgement (mean, median, p90, max), the pages per person (pages that reached
    each person, and how many they acknowledged), and the same window by severity level
    (`by_severity`: count, ongoing, ended, time to resolution mean, median and p90, time to
    acknowledge median), each level named as the team names it now, and by each select field's value
    (`by_field`: the same figures).

    The window selects incidents by start time. Only incidents the caller may see count.
    """
    filters = [f"{name}={value}" for name, value in read_field_filters(field or [])]
    window = StatsWindow(
        since=time_bound(since), until=time_bound(until), playbook_id=playbook_id, severity=severity, fields=filters
    )
    if window.since and window.until and window.since >= window.until:
        raise invalid("since must be before until.", {"since": "must be before until"})
    return await team_stats(svc, actor, team_id, window)
