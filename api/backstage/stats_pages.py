"""The statistics dashboard: the numbers of `GET /api/v1/stats`, charted over the window.

The page reads the same merged slice `team_stats` computes from (`service.team_stats.team_slice`)
and uses the same pure functions (`models.stats`): the totals are `compute`'s, and the
series split the same records by start day (UTC) with the same median and nearest-rank p90.
Charts are drawn by Chart.js, served by this app (no CDN).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from api.backstage.backstage_common import Visitor, render_in_team, visitor
from api.backstage.incident_pages import field_choices, names_for
from models.common import SHORT_ID
from models.severity import NO_SEVERITY, SEVERITY_LEVELS_MAX
from models.stats import StatsSlice, StatsWindow, compute, median, percentile
from service import playbooks, team_configuration
from service.errors import ServiceError
from service.incident_lists import read_field_filters
from service.team_stats import team_slice

router = APIRouter(prefix="/backstage", include_in_schema=False)
WINDOWS = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days", 365: "Last year"}
# Time to first update, bucketed: (upper bound in seconds, label).
FIRST_UPDATE_BUCKETS = ((300, "< 5 min"), (900, "5-15 min"), (3600, "15-60 min"), (4 * 3600, "1-4 h"))
# The most paged people the pages-per-person table shows (the REST answer has everyone).
PEOPLE_SHOWN = 50
# The severity filter's values: a level's number (or "none").
SEVERITY_CHOICES = {str(level) for level in range(1, SEVERITY_LEVELS_MAX + 1)}


def series(data: StatsSlice, since: datetime, until: datetime) -> dict[str, Any]:
    days = [(since + timedelta(days=n)).strftime("%Y-%m-%d") for n in range((until - since).days)]
    started = {day: data.started_per_day.get(day, 0) for day in days}
    resolved = data.resolved_by_day

    def minutes(value: float | None) -> float | None:
        return None if value is None else round(value / 60, 1)

    buckets = [0] * (len(FIRST_UPDATE_BUCKETS) + 1)
    for delay in data.first_updates:
        index = next((i for i, (bound, _) in enumerate(FIRST_UPDATE_BUCKETS) if delay < bound), -1)
        buckets[index] += 1
    return {
        "days": days,
        "started": [started[d] for d in days],
        "ttr_median_minutes": [minutes(median(resolved.get(d, []))) for d in days],
        "ttr_p90_minutes": [minutes(percentile(resolved.get(d, []), 0.9)) for d in days],
        "first_update_labels": [label for _, label in FIRST_UPDATE_BUCKETS] + ["≥ 4 h"],
        "first_update_counts": buckets,
        "status_labels": ["Ongoing", "Ended"],
        "status_counts": [len(data.ongoing_started), len(data.resolved)],
    }


@router.get("/teams/{team_id}/stats")
async def dashboard(team_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    q = request.query_params
    days = int(q["days"]) if q.get("days", "").isdigit() and int(q["days"]) in WINDOWS else 30
    playbook_id = q.get("playbook_id") or None
    if playbook_id and not SHORT_ID.match(playbook_id):
        playbook_id = None
    # A level's number, or "none" for the incidents without a severity; anything else: every incident.
    wanted = q.get("severity", "")
    severity = NO_SEVERITY if wanted == "none" else int(wanted) if wanted in SEVERITY_CHOICES else None
    now = datetime.now(UTC)
    until = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
    since = until - timedelta(days=days)
    # Or a window of one's own: from a day to a day, both included (a year at most).
    error = ""
    chosen = (_date(q.get("since", "")), _date(q.get("until", "")))
    if q.get("since") or q.get("until"):
        first, last = chosen
        if first is None or last is None or last < first or (last - first).days > 366:
            error = "Give both days as 2026-11-30, the first not after the last, at most a year apart."
        else:
            since = datetime.combine(first, time(), UTC)
            until = datetime.combine(last + timedelta(days=1), time(), UTC)
            days = 0
    # A select field's value (`name=value`), read as the REST filter reads it.
    field = q.get("field", "").strip()
    try:
        filters = read_field_filters([field] if field else [])
    except ServiceError as problem:
        error, filters, field = problem.message, [], ""
    window = StatsWindow(
        since=since,
        until=until,
        playbook_id=playbook_id,
        severity=severity,
        fields=[f"{name}={value}" for name, value in filters],
    )
    data = await team_slice(who.svc, who.actor, team_id, window)
    levels = await team_configuration.severity_levels(who.svc, team_id)
    stats = compute(team_id, window, data, now, {level.level: level.name for level in levels})
    team_playbooks = await playbooks.usable_playbooks(who.svc, who.actor, team_id)
    paged = stats.pages_per_person[:PEOPLE_SHOWN]
    usernames = await names_for(who, {person.user_id for person in paged})
    return await render_in_team(
        who,
        "stats.html",
        team_id,
        stats=stats,
        charts=series(data, since, until),
        days=days,
        windows=WINDOWS,
        playbook_id=playbook_id or "",
        playbooks=team_playbooks,
        severity="none" if severity == NO_SEVERITY else str(severity or ""),
        severity_levels=levels,
        field=field,
        field_choices=field_choices(team_playbooks),
        since=since.date().isoformat(),
        until=(until - timedelta(days=1)).date().isoformat(),
        error=error,
        paged=paged,
        paged_more=len(stats.pages_per_person) - len(paged),
        usernames=usernames,
    )


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
