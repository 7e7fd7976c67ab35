"""Incident operations shared by the REST API and the slash commands.

Gathers the Mattermost facts the rules need, applies `permissions`, and talks to the
incident's workflow. Whatever a caller may not see is "not found".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

import permissions
from activities.mattermost import MattermostFailure
from api.cache import TTLCache
from api.errors import ApiError, invalid, not_found
from api.playbooks import get_playbook, require_team
from api.services import Services
from api.temporal_calls import Gone, execute_update, query, quote, refusal, refused
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, UserFact, new_short_id, short_id_from
from models.incident import (
    IncidentConfig,
    IncidentStart,
    IncidentState,
    IncidentStatus,
    IncidentSummary,
    InviteEffect,
    incident_workflow_id,
    summarize,
)
from models.incident_commands import CommandResult, IncidentCommand, RestartIncident
from models.playbook import Playbook
from settings import Settings
from workflows.incident import SUMMARY_MEMO, IncidentWorkflow
from workflows.incident_state import Incident, new_incident

_MARGIN = timedelta(milliseconds=5)
ENDED_MESSAGE = "This incident has ended. Restart it first to make changes."
# A channel's incident never changes, so the mapping is cached for as long as the process lives.
_channel_incidents: TTLCache[str, str] = TTLCache(ttl=24 * 3600)


@dataclass
class IncidentAccess:
    """An incident the actor may see, with the actor's live channel fact filled in."""

    state: IncidentState
    actor: Actor
    handle: WorkflowHandle[Any, Any]


def handle(svc: Services, incident_id: str) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(incident_workflow_id(incident_id))


# ---------------------------------------------------------------------------- start


async def start_incident(
    svc: Services,
    actor: Actor,
    *,
    team_id: str,
    name: str,
    description: str = "",
    playbook_id: str | None = None,
    commander_id: str | None = None,
    response_url: str | None = None,
    request_key: str | None = None,
) -> str:
    """Start an incident; returns its id as soon as the workflow has accepted it."""
    await require_team(svc, actor, team_id)
    playbook = await get_playbook(svc, actor, playbook_id) if playbook_id else None
    if playbook and playbook.team_id != team_id:
        raise not_found("Playbook")
    public = playbook.create_public_incident if playbook else False
    allowed = await svc.facts.team_permissions(team_id, actor)
    if not permissions.can_create_channel(actor, public=public, permissions=allowed):
        kind = "public" if public else "private"
        source = (
            f"playbook {playbook.title!r} starts incidents in {kind} channels"
            if playbook
            else ("blank incidents get private channels")
        )
        raise ApiError(
            403,
            "forbidden",
            f"You cannot create {kind} channels in this team, and {source}. "
            "Ask a team admin for the permission, or use another playbook.",
        )
    commander = await _commander(svc, team_id, commander_id or (playbook.default_commander_id if playbook else None))
    invited = await _invited(svc, team_id, playbook)
    team = await svc.mattermost.get_team(team_id)
    incident_id = short_id_from(f"incident:{team_id}:{request_key}") if request_key else new_short_id()
    start = IncidentStart(
        id=incident_id,
        team_id=team_id,
        team_name=team.get("name", ""),
        name=name,
        description=description,
        reporter=actor,
        commander=commander,
        playbook=playbook,
        invited=invited,
        response_url=response_url or None,
        config=incident_config(svc.settings, incident_id),
        requested_at=datetime.now(UTC),
    )
    try:
        await svc.temporal.start_workflow(
            IncidentWorkflow.run,
            start,
            **start_options(svc.settings, start, playbook, team.get("display_name", "")),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if request_key else WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=svc.rpc_timeout,
        )
    except WorkflowAlreadyStartedError:
        raise ApiError(409, "conflict", "An incident with this id already exists; try again.") from None
    return incident_id


def incident_config(settings: Settings, incident_id: str) -> IncidentConfig:
    link = ""
    if settings.temporal_ui_url:
        link = (
            f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{incident_workflow_id(incident_id)}"
        )
    return IncidentConfig(
        reminder_min_seconds=settings.reminder_min_seconds,
        activity_timeout_seconds=settings.activity_timeout_seconds,
        activity_max_retry_interval_seconds=settings.activity_max_retry_interval_seconds,
        effect_give_up_seconds=settings.effect_give_up_seconds,
        details_url=link,
    )


def start_options(
    settings: Settings, start: IncidentStart, playbook: Playbook | None, team_name: str
) -> dict[str, Any]:
    """Workflow id, queue, Web UI summary and the search attributes visible from the start."""
    source = f"playbook {playbook.title}" if playbook else "no playbook"
    return {
        "id": incident_workflow_id(start.id),
        "task_queue": settings.temporal_task_queue,
        "static_summary": f"{start.name} · {team_name or start.team_id} · {source}",
        "static_details": f"**Incident** {start.name}\n\n{start.description}".strip(),
        "memo": {SUMMARY_MEMO: summarize(new_incident(start, datetime.now(UTC), lambda: "")).model_dump(mode="json")},
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(sa.INCIDENT_TEAM_ID, start.team_id),
                SearchAttributePair(sa.INCIDENT_STATUS, "ongoing"),
                SearchAttributePair(sa.INCIDENT_NAME, start.name),
                SearchAttributePair(sa.INCIDENT_STARTED_AT, start.requested_at or datetime.now(UTC)),
                SearchAttributePair(sa.INCIDENT_MEMBER_IDS, [start.reporter.user_id]),
                SearchAttributePair(sa.INCIDENT_PUBLIC, bool(playbook and playbook.create_public_incident)),
                *([SearchAttributePair(sa.INCIDENT_PLAYBOOK_ID, playbook.id)] if playbook else []),
            ]
        ),
    }


async def _commander(svc: Services, team_id: str, user_id: str | None) -> UserFact | None:
    if not user_id:
        return None
    user = await svc.facts.user_by_id(user_id)
    if user is None:
        raise invalid("The commander does not exist.", {"commander_id": f"no user has the id {user_id}"})
    fact = await svc.facts.user_fact(user, team_id=team_id, channel_id=None)
    if not fact.is_team_member:
        raise invalid(f"{fact.mention} is not in this team.", {"commander_id": f"{fact.mention} is not in this team"})
    if fact.is_bot:
        raise invalid(f"{fact.mention} is a bot.", {"commander_id": f"{fact.mention} is a bot and cannot command"})
    return fact


async def _invited(svc: Services, team_id: str, playbook: Playbook | None) -> list[UserFact]:
    if not playbook or not playbook.invited_user_ids:
        return []
    users = await svc.mattermost.get_users_by_ids(playbook.invited_user_ids)
    facts = await asyncio.gather(*(svc.facts.user_fact(u, team_id=team_id, channel_id=None) for u in users))
    return list(facts)


# ---------------------------------------------------------------------------- reading


async def load(svc: Services, actor: Actor, incident_id: str) -> IncidentAccess:
    """The incident if the actor may see it (live channel membership checked), else 404."""
    if not SHORT_ID.match(incident_id):
        raise not_found("Incident")
    wf = handle(svc, incident_id)
    try:
        state: IncidentState = await query(wf, IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout)
    except Gone:
        raise not_found("Incident") from None
    is_team_member = await svc.facts.is_team_member(state.team_id, actor.user_id)
    member = await svc.facts.in_channel(actor, state.channel_id)
    if not member.is_channel_member and actor.user_id in being_added(state):
        member = member.model_copy(update={"is_channel_member": True})
    if state.status == "failed" or not permissions.can_see_incident(
        member, is_team_member=is_team_member, is_public=state.is_public
    ):
        raise not_found("Incident")
    return IncidentAccess(state=state, actor=member, handle=wf)


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
    if where.started_after:
        clauses.append(f"IncidentStartedAt >= {quote((where.started_after - _MARGIN).isoformat())}")
    if where.started_before:
        clauses.append(f"IncidentStartedAt < {quote((where.started_before + _MARGIN).isoformat())}")
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


def being_added(state: IncidentState) -> set[str]:
    """People the incident is still bringing into its channel (it may not exist yet).

    Until their invitation is carried out, Mattermost does not list them as members, but
    they are members in the making: the reporter and commander right after the start.
    """
    if state.channel_id is None:
        return set(state.member_ids)
    return {
        user.user_id
        for pending in state.outbox
        if isinstance(pending.effect, InviteEffect)
        for user in pending.effect.users
    }


async def incident_id_for_channel(svc: Services, channel_id: str, channel_name: str | None = None) -> str | None:
    """Which incident a channel belongs to, if any.

    Incident channel names end with the incident id, so the workflow is found at once and
    checked; other channels are looked up in visibility.
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
        try:
            state: IncidentState = await query(
                handle(svc, candidate), IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout
            )
        except Gone:
            state = None  # type: ignore[assignment]
        if state is not None and state.channel_id == channel_id:
            _channel_incidents.put(channel_id, candidate)
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


def precheck(access: IncidentAccess, check: Callable[[Incident], object]) -> None:
    """Apply one of the workflow's own rules to the state just read, before doing something
    that cannot be taken back (opening a dialog, running a slash command). The workflow's
    validator still decides when the command itself arrives."""
    try:
        check(Incident(access.state, _no_new_ids))
    except ApplicationError as error:
        raise refused(error) from None


def _no_new_ids() -> str:
    raise AssertionError("a check never creates anything")


async def command(
    svc: Services,
    access: IncidentAccess,
    update: Callable[..., Any],
    build: Callable[[Actor], IncidentCommand],
    *,
    request_key: str | None = None,
) -> CommandResult:
    """Send one command. A resent request (same key) is applied once: Temporal dedupes by update id."""
    try:
        result: CommandResult = await execute_update(
            access.handle, update, build(access.actor), rpc_timeout=svc.rpc_timeout, update_id=request_key
        )
    except Gone as gone:
        if gone.completed:
            raise ApiError(409, "conflict", ENDED_MESSAGE) from None
        raise not_found("Incident") from None
    return result


async def restart(svc: Services, access: IncidentAccess, *, request_key: str | None = None) -> CommandResult:
    """Reopen an ended incident: a new run of the same workflow, carrying its whole state."""
    state = access.state
    resume = IncidentStart.resuming(state, access.actor)
    team = await svc.mattermost.get_team(state.team_id)
    operation = WithStartWorkflowOperation(
        IncidentWorkflow.run,
        resume,
        **start_options(svc.settings, resume, state.playbook, team.get("display_name", "")),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        result: CommandResult = await svc.temporal.execute_update_with_start_workflow(
            IncidentWorkflow.restart_incident,
            RestartIncident(actor=access.actor),
            start_workflow_operation=operation,
            id=request_key,
            rpc_timeout=svc.rpc_timeout,
        )
    except WorkflowUpdateFailedError as error:
        raise refusal(error) from None
    return result
