"""Lists of a team's incidents, read from Temporal visibility (no per-incident queries).

Whatever the caller may not see is left out: the visibility query itself carries the
access rule (`permissions.incident_query_filter`), and the newest run of each incident
decides what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import permissions
from models import search_attributes as sa
from models.common import Actor
from models.custom_fields import FILTER_MAX, FieldValueError, filter_words, parse_field_filter
from models.incident import IncidentStatus
from models.incident_views import IncidentSummary
from models.severity import NO_SEVERITY, SEVERITY_LEVELS_MAX
from service.container import Services
from service.errors import invalid
from service.playbooks import require_team
from service.temporal_calls import quote
from workflows.incident_workflow import SUMMARY_MEMO

_MARGIN = timedelta(milliseconds=5)


@dataclass
class IncidentFilter:
    status: str = "ongoing"  # ongoing | ended | all
    commander_id: str | None = None
    member_id: str | None = None
    playbook_id: str | None = None
    search: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    # A severity level (NO_SEVERITY: incidents without one).
    severity: int | None = None
    # Select fields' values, each (name, value): incidents with all of them (`read_field_filters`).
    fields: list[tuple[str, str]] = field(default_factory=list)


def read_field_filters(texts: list[str]) -> list[tuple[str, str]]:
    """Field filters as given (`name=value`, REST `?field=`, the backstage's), read strictly: a
    malformed one is a 422 naming `field`, and nothing unchecked reaches a visibility query."""
    if len(texts) > FILTER_MAX:
        raise invalid(f"At most {FILTER_MAX} field filters.", {"field": f"at most {FILTER_MAX}"})
    filters = []
    for text in texts:
        try:
            filters.append(parse_field_filter(text))
        except FieldValueError as problem:
            raise invalid(str(problem), {"field": str(problem)}) from None
    return list(dict.fromkeys(filters))


def _clauses(actor: Actor, team_id: str, where: IncidentFilter) -> list[str]:
    """The visibility query of a list: every filter but `search` and the exact time bounds."""
    clauses = ["WorkflowType = 'IncidentWorkflow'", f"IncidentTeamId = {quote(team_id)}"]
    if where.status == IncidentStatus.ONGOING:
        clauses += ["ExecutionStatus = 'Running'", "IncidentStatus = 'ongoing'"]
    else:
        clauses += ["ExecutionStatus IN ('Running', 'Completed')", "IncidentStatus IN ('ongoing', 'ended')"]
    for attribute, value in (
        (sa.INCIDENT_COMMANDER_ID, where.commander_id),
        (sa.INCIDENT_MEMBER_IDS, where.member_id),
        (sa.INCIDENT_PLAYBOOK_ID, where.playbook_id),
    ):
        if value:
            clauses.append(f"{attribute.name} = {quote(value)}")
    if where.severity is not None:
        level = int(where.severity)
        name = sa.INCIDENT_SEVERITY.name
        clauses.append(f"{name} IS NULL" if level == NO_SEVERITY else f"{name} = {level}")
    for name, value in where.fields:
        # Narrows the reading; `_matches` keeps exactly the incidents with the value.
        clauses.append(f"{sa.INCIDENT_FIELDS.name} = {quote(filter_words(name, value))}")
    # Visibility stores times less precisely than we keep them: ask for a little more, then
    # apply the exact bounds to the incidents' own start times below.
    margin = _MARGIN
    if where.started_after:
        clauses.append(f"IncidentStartedAt >= {quote((where.started_after - margin).isoformat())}")
    if where.started_before:
        clauses.append(f"IncidentStartedAt < {quote((where.started_before + margin).isoformat())}")
    restriction = permissions.incident_query_filter(actor)
    if restriction:
        clauses.append(restriction)
    return clauses


def _matches(where: IncidentFilter, summary: IncidentSummary) -> bool:
    """What visibility cannot decide exactly: the status of the newest run, exact times, the name."""
    if where.status in (IncidentStatus.ONGOING, IncidentStatus.ENDED) and summary.status != where.status:
        return False
    if where.started_after and summary.started_at < where.started_after:
        return False
    if where.started_before and summary.started_at >= where.started_before:
        return False
    if where.severity is not None and (summary.severity.level if summary.severity else NO_SEVERITY) != where.severity:
        return False
    if any(summary.fields.get(name, "").casefold() != value.casefold() for name, value in where.fields):
        return False
    return not where.search or where.search.casefold() in summary.name.casefold()


async def list_incidents(svc: Services, actor: Actor, team_id: str, where: IncidentFilter) -> list[IncidentSummary]:
    """The team's incidents the actor may see, from one visibility listing (no queries).

    A restarted incident has an old, completed run besides its new one; only the newest
    run of each incident counts. This reads every matching incident: lists that show a
    page use `newest_incidents`, whose cost does not grow with the team.
    """
    await require_team(svc, actor, team_id)
    clauses = _clauses(actor, team_id, where)
    newest: dict[str, tuple[datetime, IncidentSummary]] = {}
    async for execution in svc.temporal.list_workflows(" AND ".join(clauses), rpc_timeout=svc.rpc_timeout):
        seen = newest.get(execution.id)
        if seen is None or execution.start_time > seen[0]:
            summary = await execution.memo_value(SUMMARY_MEMO, type_hint=IncidentSummary)
            newest[execution.id] = (execution.start_time, summary)
    return [summary for _, summary in newest.values() if _matches(where, summary)]


# How far the API's clock (which stamps `started_at`) may run ahead of Temporal's (which
# stamps a run's start and close); hosts kept by NTP agree to milliseconds.
CLOCK_SKEW = timedelta(seconds=2)


@dataclass
class NewestIncidents:
    items: list[IncidentSummary]  # newest first, at most the number asked for
    total: int  # every incident the list would show


class _OrderBroken(Exception):
    """Visibility did not answer in the order `newest_incidents` relies on."""


async def newest_incidents(
    svc: Services, actor: Actor, team_id: str, where: IncidentFilter, *, first: int
) -> NewestIncidents:
    """The `first` most recently started incidents of `list_incidents`, and how many there are,
    reading about `first` incidents however many the team has.

    SQL visibility has no ORDER BY, but answers in a fixed order: running workflows by
    their run's start time, newest first, then closed ones by close time, newest first. An
    incident started no later than its current run did (plus `CLOCK_SKEW`), and no later
    than its run closed, so each of the two listings can stop as soon as the `first`
    newest incidents found so far all started after the run just read: nothing later in
    the listing can be newer. The total is counted by the server (`count_workflows`), less
    the second runs of restarted incidents (marked `IncidentRestarted`) and the incidents
    the exact time bounds exclude (a few, read from a band around each bound). Should the
    server's order ever differ, the whole list is read instead (slower, still exact).
    """
    if not where.search and not where.fields:
        await require_team(svc, actor, team_id)
        clauses = _clauses(actor, team_id, where)
        with contextlib.suppress(_OrderBroken):
            items, total = await asyncio.gather(_newest(svc, where, clauses, first), _total(svc, where, clauses))
            return NewestIncidents(items=items, total=total)
    # A part of the name, or a field's value, cannot be matched exactly by SQL visibility: read them all.
    found = await list_incidents(svc, actor, team_id, where)
    found.sort(key=lambda s: (s.started_at, s.id), reverse=True)
    return NewestIncidents(items=found[:first], total=len(found))


async def _newest(svc: Services, where: IncidentFilter, clauses: list[str], first: int) -> list[IncidentSummary]:
    newest: dict[str, tuple[datetime, IncidentSummary]] = {}

    def kth_newest() -> datetime | None:
        starts = sorted((s.started_at for _, s in newest.values() if _matches(where, s)), reverse=True)
        return starts[first - 1] if len(starts) >= first else None

    # One page usually suffices: those started within CLOCK_SKEW of the last one are read too.
    page_size = min(1000, 2 * first + 50)
    # How often the stopping rule is checked once `first` runs are read: it sorts what was read.
    every = max(1, first // 10)
    for closed in (False, True):
        if closed and where.status == IncidentStatus.ONGOING:
            break
        stream = [*clauses, f"ExecutionStatus = '{'Completed' if closed else 'Running'}'"]
        if not closed and where.status == IncidentStatus.ENDED:
            # Of the running runs, only those of ended incidents still finishing, and restarted
            # incidents' new runs (which hide their ended old runs), can matter.
            stream.append("(IncidentStatus = 'ended' OR IncidentRestarted = true)")
        listing = svc.temporal.list_workflows(" AND ".join(stream), page_size=page_size, rpc_timeout=svc.rpc_timeout)
        previous: datetime | None = None
        read = 0
        async for execution in listing:
            bound = execution.close_time if closed else execution.start_time
            if bound is None or (previous is not None and bound > previous):
                raise _OrderBroken
            previous = bound
            seen = newest.get(execution.id)
            if seen is None or execution.start_time > seen[0]:
                summary = await execution.memo_value(SUMMARY_MEMO, type_hint=IncidentSummary)
                newest[execution.id] = (execution.start_time, summary)
            read += 1
            if read >= first and (read - first) % every == 0:
                kth = kth_newest()
                if kth is not None and kth > bound + CLOCK_SKEW:
                    break
    found = sorted((s for _, s in newest.values() if _matches(where, s)), key=lambda s: (s.started_at, s.id))
    return found[::-1][:first]


async def _total(svc: Services, where: IncidentFilter, clauses: list[str]) -> int:
    query = " AND ".join(clauses)
    # The listing of ended ones keeps ongoing runs too (a restarted incident's newest run
    # decides), but only runs of ended incidents count.
    ended_only = " AND IncidentStatus = 'ended'" if where.status == IncidentStatus.ENDED else ""
    total = (await svc.temporal.count_workflows(query + ended_only, rpc_timeout=svc.rpc_timeout)).count
    # Restarted incidents have runs beside their newest: count each incident once, as the
    # list shows it (by its newest matching run).
    restarted = {
        execution.id
        async for execution in svc.temporal.list_workflows(
            f"{query} AND IncidentRestarted = true", rpc_timeout=svc.rpc_timeout
        )
    }
    for chunk in _chunks(sorted(restarted), 50):
        ids = " OR ".join(f"WorkflowId = {quote(workflow_id)}" for workflow_id in chunk)
        runs: dict[str, list[tuple[datetime, IncidentSummary]]] = {}
        async for execution in svc.temporal.list_workflows(f"{query} AND ({ids})", rpc_timeout=svc.rpc_timeout):
            summary = await execution.memo_value(SUMMARY_MEMO, type_hint=IncidentSummary)
            runs.setdefault(execution.id, []).append((execution.start_time, summary))
        for found in runs.values():
            counted_runs = sum(1 for _, s in found if where.status != IncidentStatus.ENDED or s.status == "ended")
            newest = max(found, key=lambda run: run[0])[1]
            total -= counted_runs - (1 if _status_matches(where, newest) else 0)
    # Visibility keeps times less precisely: the bounds were widened by a margin; take out
    # the incidents (by their newest run) inside it that the exact bounds exclude.
    for bound in (where.started_after, where.started_before):
        if bound is None:
            continue
        band = (
            f"{query} AND IncidentStartedAt >= {quote((bound - _MARGIN).isoformat())} "
            f"AND IncidentStartedAt < {quote((bound + _MARGIN).isoformat())}"
        )
        in_band: dict[str, tuple[datetime, IncidentSummary]] = {}
        async for execution in svc.temporal.list_workflows(band, rpc_timeout=svc.rpc_timeout):
            seen = in_band.get(execution.id)
            if seen is None or execution.start_time > seen[0]:
                summary = await execution.memo_value(SUMMARY_MEMO, type_hint=IncidentSummary)
                in_band[execution.id] = (execution.start_time, summary)
        total -= sum(1 for _, s in in_band.values() if _status_matches(where, s) and not _matches(where, s))
    return total


def _status_matches(where: IncidentFilter, summary: IncidentSummary) -> bool:
    return where.status not in (IncidentStatus.ONGOING, IncidentStatus.ENDED) or summary.status == where.status


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[n : n + size] for n in range(0, len(values), size)]


class IncidentListItem(IncidentSummary):
    duration_seconds: int


SORT_KEYS: dict[str, Callable[[IncidentListItem], Any]] = {
    "started_at": lambda i: (i.started_at, i.id),
    "ended_at": lambda i: (i.ended_at or datetime.max.replace(tzinfo=UTC), i.id),
    "name": lambda i: (i.name.casefold(), i.id),
    "duration": lambda i: (i.duration_seconds, i.id),
    # The most severe first (those without a severity last), the newest first within a level.
    "severity": lambda i: (
        i.severity.level if i.severity else SEVERITY_LEVELS_MAX + 1,
        -i.started_at.timestamp(),
        i.id,
    ),
}
# The order each sort reads in unless asked otherwise: names A to Z, the most severe first, else the latest first.
DEFAULT_DIRECTION: dict[str, Literal["asc", "desc"]] = {"name": "asc", "severity": "asc"}
