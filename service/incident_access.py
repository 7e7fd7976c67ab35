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
import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

import permissions
from mattermost_client.gateway import MattermostFailure
from models import search_attributes as sa
from models.common import SHORT_ID, Actor
from models.incident import IncidentState, incident_workflow_id
from models.incident_commands import CommandResult, IncidentCommand, RequestKey
from models.pending_commands import LateReply
from models.refusals import ended_refusal
from service.command_follow_ups import follow_up, handing_over, pending_command
from service.container import Services
from service.errors import ServiceError, not_found
from service.idempotency import check_replay, new_key
from service.temporal_calls import Gone, NotAnswered, execute_update, query, quote
from service.ttl_cache import TTLCache
from service.unavailability import rpc_error
from workflows.incident_workflow import IncidentWorkflow

_MARGIN = timedelta(milliseconds=5)


@dataclass(frozen=True)
class IncidentLocation:
    """Where an incident lives; fixed once its channel exists, so it is remembered."""

    incident_id: str
    team_id: str
    channel_id: str | None


# Per process. An incident's team and channel never change once the channel exists.
_locations: TTLCache[str, IncidentLocation] = TTLCache(ttl=24 * 3600, max_entries=100_000)
_channel_incidents: TTLCache[str, str] = TTLCache(ttl=24 * 3600, max_entries=100_000)


def forget_locations() -> None:
    """What a restarted process knows: nothing yet (tests use it to be such a process)."""
    _locations.clear()
    _channel_incidents.clear()


def remember_location(incident_id: str, team_id: str, channel_id: str | None) -> IncidentLocation:
    place = IncidentLocation(incident_id=incident_id, team_id=team_id, channel_id=channel_id)
    if channel_id:
        _locations.put(incident_id, place)
        _channel_incidents.put(channel_id, incident_id)
    return place


def handle(svc: Services, incident_id: str) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
    return svc.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident_id))


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
    place = _locations.get(incident_id)
    read = query(handle(svc, incident_id), IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout)
    try:
        if place is not None:
            state, actor = await asyncio.gather(read, _facts(svc, actor, place))
        else:
            state = await read
            place = remember_location(state.id, state.team_id, state.channel_id)
            actor = await _facts(svc, actor, place)
    except Gone:
        raise not_found("Incident") from None
    if not permissions.may_see_incident(actor, state, typed_in=channel_id):
        raise not_found("Incident")
    return IncidentAccess(state=state, actor=actor)


async def _facts(svc: Services, actor: Actor, place: IncidentLocation) -> Actor:
    return await svc.facts.for_incident(actor, team_id=place.team_id, channel_id=place.channel_id)


async def locate(svc: Services, incident_id: str) -> IncidentLocation:
    """Where an incident lives: remembered, or read from its workflow's search attributes.

    Temporal answers that itself (no worker needed), so a command still reaches an incident
    whose worker is busy or restarting, and is answered as pending rather than refused."""
    if not SHORT_ID.match(incident_id):
        raise not_found("Incident")
    place = _locations.get(incident_id)
    if place is not None:
        return place
    try:
        described = await handle(svc, incident_id).describe(rpc_timeout=svc.rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise not_found("Incident") from None
        raise rpc_error(error) from None
    attributes = described.typed_search_attributes
    team_id = attributes.get(sa.INCIDENT_TEAM_ID)
    if not team_id:
        raise not_found("Incident")
    return remember_location(incident_id, team_id, attributes.get(sa.INCIDENT_CHANNEL_ID) or None)


# How long after a channel was made its incident may still be missing from visibility
# (search attributes are indexed a moment after the workflow records them).
NEW_CHANNEL_SECONDS = 15.0
VISIBILITY_RETRIES = (0.1, 0.2, 0.4)


async def incident_id_for_channel(svc: Services, channel_id: str) -> str | None:
    """Which incident a channel belongs to, if any, from what the incident recorded when it made
    the channel (its `IncidentChannelId`), never from the channel's name: a name can look like
    an id ("kubernetes"), and channels are renamed. Remembered per process once found.

    Visibility indexes the attribute a moment after the channel is made, so for a channel made
    seconds ago the lookup is asked again a few times before it says "no incident here".
    """
    cached = _channel_incidents.get(channel_id)
    if cached:
        return cached
    query_text = f"WorkflowType = 'IncidentWorkflow' AND IncidentChannelId = {quote(channel_id)}"
    for pause in (0.0, *VISIBILITY_RETRIES):
        if pause:
            if not await _channel_is_new(svc, channel_id):
                return None
            await asyncio.sleep(pause)
        found = [
            execution.id
            async for execution in svc.temporal.list_workflows(query_text, limit=1, rpc_timeout=svc.rpc_timeout)
        ]
        if found:
            incident_id = found[0].removeprefix("incident-")
            _channel_incidents.put(channel_id, incident_id)
            return incident_id
    return None


async def _channel_is_new(svc: Services, channel_id: str) -> bool:
    try:
        channel = await svc.facts.channel(channel_id)
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        return False
    made = float(channel.get("create_at") or 0) / 1000
    return time.time() - made < NEW_CHANNEL_SECONDS


# ---------------------------------------------------------------------------- commands


async def send(
    svc: Services,
    place: IncidentLocation,
    update: str,
    command: IncidentCommand,
    *,
    late_reply: LateReply | None = None,
    asked: str = "",
) -> CommandResult:
    """Send one command: one update, whose answer is everything the caller renders.

    A resent request (same scoped key) is answered with its first result; a reused key
    with another body is refused (422). A command Temporal took but did not answer in time
    is `CommandPending`: its outcome follows (`late_reply`: where the person hears it).
    """
    request = command.request or RequestKey(id=f"{update}:{new_key()}")
    command = command.model_copy(update={"request": request})
    pending = pending_command(
        incident_id=place.incident_id,
        update=update,
        request=request,
        command=command,
        late_reply=late_reply,
        asked=asked,
    )
    handing_over(pending)
    try:
        result: CommandResult = await execute_update(
            handle(svc, place.incident_id),
            update,
            command,
            rpc_timeout=svc.rpc_timeout,
            update_id=request.id,
            result_type=CommandResult,
        )
    except NotAnswered:
        raise follow_up(svc, pending) from None
    except Gone as gone:
        if not gone.completed:
            raise not_found("Incident") from None
        # An ended incident's workflow takes no commands; only those who may see it learn
        # that it ended (a read, on this rare path only).
        await load(svc, command.actor, place.incident_id)
        raise ServiceError(409, "conflict", ended_refusal(update)) from None
    except ServiceError as error:
        if error.status == 404 and not error.fields:
            # Word for word what a caller hears about an incident that does not exist.
            raise not_found("Incident") from None
        raise
    check_replay(command.request, result.fingerprint)
    if result.member_ids_changed:
        svc.facts.forget_channel_members(place.channel_id, result.member_ids_changed)
    if place.channel_id is None and result.incident.channel_id:
        remember_location(place.incident_id, place.team_id, result.incident.channel_id)
    return result


async def actor_at(svc: Services, actor: Actor, place: IncidentLocation) -> Actor:
    """The actor with their facts for this incident (cached)."""
    return await _facts(svc, actor, place)
