"""The incident command path, shared by the REST API, slash commands, dialogs and buttons.

The API gathers facts and translates; the incident's workflow decides. A command costs
one Temporal round trip: the facts it carries (who asks, team and channel membership)
come from caches kept for `AUTH_CACHE_SECONDS`, where the incident is (its team and
channel, which never change once made) is remembered per process, and the update
returns everything the caller renders. Reads are one query. Whatever a caller may not
see is "not found", and takes as long to say so as an existing incident would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Depends
from temporalio.client import WorkflowHandle

import permissions
from activities.mattermost import MattermostFailure
from api.cache import TTLCache
from api.errors import ApiError, not_found
from api.idempotency import check_replay
from api.playbooks import require_team
from api.services import Services, services
from api.temporal_calls import Gone, execute_update, query, quote
from models import search_attributes as sa
from models.common import SHORT_ID, Actor
from models.incident import IncidentState, IncidentStatus, incident_workflow_id
from models.incident_commands import CommandResult, IncidentCommand
from models.incident_views import IncidentSummary
from workflows.incident import SUMMARY_MEMO, IncidentWorkflow

_MARGIN = timedelta(milliseconds=5)
ENDED_MESSAGE = "This incident has ended. Restart it first to make changes."
# What an ended incident's rules say, when its completed workflow cannot be asked.
ENDED_REFUSALS = {"end_incident": "This incident has already ended."}


@dataclass(frozen=True)
class Place:
    """Where an incident lives; fixed once its channel exists, so it is remembered."""

    incident_id: str
    team_id: str
    channel_id: str | None


# Per process. An incident's team and channel never change once the channel exists.
_places: TTLCache[str, Place] = TTLCache(ttl=24 * 3600, max_entries=100_000)
_channel_incidents: TTLCache[str, str] = TTLCache(ttl=24 * 3600, max_entries=100_000)


def remember_place(incident_id: str, team_id: str, channel_id: str | None) -> Place:
    place = Place(incident_id=incident_id, team_id=team_id, channel_id=channel_id)
    if channel_id:
        _places.put(incident_id, place)
        _channel_incidents.put(channel_id, incident_id)
    return place


def handle(svc: Services, incident_id: str) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
    return svc.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident_id))


async def conceal_existence(svc: Services = Depends(services)) -> AsyncIterator[None]:
    """A route dependency: "not found" answers no sooner than an existing incident's would.

    An incident the caller may not see and one that does not exist must be
    indistinguishable, by body, status and timing; an existing one costs a query and a
    few cached facts, so every 404 is held to a floor above that (`NOT_FOUND_FLOOR_SECONDS`).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        yield
    except ApiError as error:
        if error.status == 404:
            await asyncio.sleep(max(0.0, started + svc.settings.not_found_floor_seconds - loop.time()))
        raise


# ---------------------------------------------------------------------------- reading


@dataclass
class IncidentAccess:
    """An incident the actor may see, read now, with the actor's facts for it."""

    state: IncidentState
    actor: Actor


async def load(svc: Services, actor: Actor, incident_id: str, *, channel_id: str | None = None) -> IncidentAccess:
    """The incident if the actor may see it, else 404. One query; facts come from caches.

    With `channel_id` (a slash command typed there), the incident must be that channel's.
    """
    if not SHORT_ID.match(incident_id):
        raise not_found("Incident")
    place = _places.get(incident_id)
    read = query(handle(svc, incident_id), IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout)
    try:
        if place is not None:
            state, actor = await asyncio.gather(read, _facts(svc, actor, place))
        else:
            state = await read
            place = remember_place(state.id, state.team_id, state.channel_id)
            actor = await _facts(svc, actor, place)
    except Gone:
        raise not_found("Incident") from None
    member = permissions.is_incident_member(actor, member_ids=state.member_ids, joined_at=state.members_joined_at)
    if (
        state.status in (IncidentStatus.FAILED, IncidentStatus.REFUSED)
        or (channel_id is not None and state.channel_id != channel_id)
        or not permissions.can_see_incident(actor, is_member=member, is_public=state.is_public)
    ):
        raise not_found("Incident")
    return IncidentAccess(state=state, actor=actor)


async def _facts(svc: Services, actor: Actor, place: Place) -> Actor:
    return await svc.facts.for_incident(actor, team_id=place.team_id, channel_id=place.channel_id)


async def locate(svc: Services, incident_id: str) -> Place:
    """Where an incident lives: remembered, or read once from the workflow."""
    if not SHORT_ID.match(incident_id):
        raise not_found("Incident")
    place = _places.get(incident_id)
    if place is not None:
        return place
    try:
        state = await query(handle(svc, incident_id), IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout)
    except Gone:
        raise not_found("Incident") from None
    return remember_place(state.id, state.team_id, state.channel_id)


@dataclass
class IncidentFilter:
    status: str = "ongoing"  # ongoing | ended | all
    commander_id: str | None = None
    member_id: str | None = None
    playbook_id: str | None = None
    search: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


async def list_incidents(svc: Services, actor: Actor, team_id: str, where: IncidentFilter) -> list[IncidentSummary]:
    """The team's incidents the actor may see, from one visibility listing (no queries).

    A restarted incident has an old, completed run besides its new one; only the newest
    run of each incident counts.
    """
    await require_team(svc, actor, team_id)
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
    newest: dict[str, tuple[datetime, IncidentSummary]] = {}
    async for execution in svc.temporal.list_workflows(" AND ".join(clauses), rpc_timeout=svc.rpc_timeout):
        seen = newest.get(execution.id)
        if seen is None or execution.start_time > seen[0]:
            summary = await execution.memo_value(SUMMARY_MEMO, type_hint=IncidentSummary)
            newest[execution.id] = (execution.start_time, summary)
    found = [summary for _, summary in newest.values()]
    if where.status in (IncidentStatus.ONGOING, IncidentStatus.ENDED):
        found = [s for s in found if s.status == where.status]
    if where.started_after:
        found = [s for s in found if s.started_at >= where.started_after]
    if where.started_before:
        found = [s for s in found if s.started_at < where.started_before]
    if where.search:
        needle = where.search.casefold()
        found = [s for s in found if needle in s.name.casefold()]
    return found


async def incident_id_for_channel(svc: Services, channel_id: str, channel_name: str | None = None) -> str | None:
    """Which incident a channel belongs to, if any, without reading the incident.

    Incident channel names end with the incident id, so that is the answer; the workflow
    itself refuses a command whose channel is not its own. A channel named otherwise
    (renamed by hand) is looked up in visibility once and remembered.
    """
    cached = _channel_incidents.get(channel_id)
    if cached:
        return cached
    if channel_name is None:
        try:
            channel_name = str((await svc.mattermost.get_channel(channel_id)).get("name", ""))
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            return None
    candidate = channel_name.rsplit("-", 1)[-1].rsplit("_", 1)[-1] if channel_name else ""
    if SHORT_ID.match(candidate):
        return candidate
    found = [
        execution.id
        async for execution in svc.temporal.list_workflows(
            f"WorkflowType = 'IncidentWorkflow' AND IncidentChannelId = {quote(channel_id)}",
            limit=1,
            rpc_timeout=svc.rpc_timeout,
        )
    ]
    if not found:
        return None
    incident_id = found[0].removeprefix("incident-")
    _channel_incidents.put(channel_id, incident_id)
    return incident_id


# ---------------------------------------------------------------------------- commands


async def send(svc: Services, place: Place, update: Any, command: IncidentCommand) -> CommandResult:
    """Send one command: one update, whose answer is everything the caller renders.

    A resent request (same scoped key) is answered with its first result; a reused key
    with another body is refused (422).
    """
    try:
        result: CommandResult = await execute_update(
            handle(svc, place.incident_id),
            update,
            command,
            rpc_timeout=svc.rpc_timeout,
            update_id=command.request.id if command.request else None,
        )
    except Gone as gone:
        if not gone.completed:
            raise not_found("Incident") from None
        # An ended incident's workflow takes no commands; only those who may see it learn
        # that it ended (a read, on this rare path only).
        await load(svc, command.actor, place.incident_id)
        raise ApiError(409, "conflict", ENDED_REFUSALS.get(update.__name__, ENDED_MESSAGE)) from None
    except ApiError as error:
        if error.status == 404 and not error.fields:
            # Word for word what a caller hears about an incident that does not exist.
            raise not_found("Incident") from None
        raise
    check_replay(command.request, result.fingerprint)
    if result.member_ids_changed:
        svc.facts.forget_channel_members(place.channel_id, result.member_ids_changed)
    if place.channel_id is None and result.incident.channel_id:
        remember_place(place.incident_id, place.team_id, result.incident.channel_id)
    return result


async def actor_at(svc: Services, actor: Actor, place: Place) -> Actor:
    """The actor with their facts for this incident (cached)."""
    return await _facts(svc, actor, place)
