"""Starting and restarting incidents: both are one update-with-start.

A start gathers the facts its rules need concurrently (the starter's team membership and
permissions, the playbook, the team, the commander and the invited people), then sends
the start with an `open_incident` update; the workflow runs the start rules and answers
with the incident or the refusal. A restart begins a new run of the same workflow from
the ended state and sends `restart_incident` with it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from mattermost_client.gateway import MattermostFailure
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, UserFact, short_id_from
from models.custom_fields import FieldType, field_named, field_terms, user_reference
from models.incident import IncidentConfig, IncidentCreate, IncidentStart, incident_workflow_id
from models.incident_commands import CommandResult, OpenIncident, RequestKey, RestartIncident
from models.incident_views import summarize, to_view
from models.paging import policy_user_ids
from models.pending_commands import LateReply
from models.playbook import Playbook, playbook_workflow_id
from models.playbook_automation import rule_user_ids
from models.severity import SeverityLevel
from service import team_configuration
from service.command_follow_ups import follow_up, pending_command
from service.container import Services
from service.errors import invalid, not_found
from service.idempotency import check_replay, new_key
from service.incident_access import handle, load, remember_location
from service.temporal_calls import Gone, NotAnswered, execute_update_with_start, query
from settings import Settings
from workflows.incident_rules import new_incident
from workflows.incident_workflow import SUMMARY_MEMO, IncidentWorkflow
from workflows.playbook_workflow import PlaybookWorkflow


async def start_incident(
    svc: Services,
    actor: Actor,
    asked_for: IncidentCreate,
    *,
    request: RequestKey,
    response_url: str | None = None,
    late_reply: LateReply | None = None,
    asked: str = "",
) -> CommandResult:
    """Start an incident: gather the facts concurrently, then one update-with-start.

    The workflow runs the start rules (team, playbook, channel permission, commander) and
    answers with the incident or the refusal, so a refused start makes no channel.
    """
    team_id, playbook_id, commander_id = asked_for.team_id, asked_for.playbook_id, asked_for.commander_id
    in_team, allowed, team, playbook = await asyncio.gather(
        svc.facts.is_team_member(team_id, actor.user_id),
        svc.facts.team_permissions(team_id, actor),
        team_record(svc, team_id),
        read_playbook(svc, playbook_id),
    )
    if playbook_id and playbook is None:
        # Only team members learn whether a playbook exists.
        raise not_found("Playbook" if in_team or actor.is_system_admin else "Team")
    wanted_commander = commander_id or (playbook.default_commander_id if playbook else None)
    commander, invited, rule_users, levels = await asyncio.gather(
        commander_fact(svc, team_id, wanted_commander),
        invited_facts(svc, team_id, playbook),
        rule_user_facts(svc, team_id, playbook),
        severity_levels_for(svc, team_id, asked_for.severity, playbook),
    )
    field_users = await field_user_facts(svc, team_id, playbook, asked_for.fields)
    # Chosen before the call from the request's key: a pending start can name its incident, and
    # the same request sent again never opens a second one.
    incident_id = short_id_from(f"incident:{team_id}:{request.id}")
    start = IncidentStart(
        id=incident_id,
        team_id=team_id,
        team_name=str(team.get("name", "")),
        name=asked_for.name,
        description=asked_for.description,
        reporter=actor.model_copy(update={"is_team_member": in_team, "is_channel_member": True}),
        reporter_permissions=sorted(p for p in allowed if p.startswith("create_")),
        commander=commander,
        playbook=playbook,
        invited=invited,
        rule_users=rule_users,
        response_url=response_url or None,
        config=incident_config(svc.settings, incident_id),
        requested_at=datetime.now(UTC),
        fingerprint=request.fingerprint,
        severity=asked_for.severity,
        severity_levels=levels,
        fields=asked_for.fields,
        field_users=field_users,
    )
    operation = new_incident_operation(svc.settings, start, playbook, str(team.get("display_name", "")))
    try:
        result = await _update_with_start(
            svc, operation, incident_id, "open_incident", None, request, late_reply=late_reply, asked=asked
        )
    except WorkflowAlreadyStartedError:
        # The same request, resent after its incident ended: answer with that incident.
        state = await query(handle(svc, incident_id), IncidentWorkflow.get_state, rpc_timeout=svc.rpc_timeout)
        check_replay(request, state.start_fingerprint)
        return CommandResult(message=f"Incident {state.name!r} started.", incident=to_view(state, datetime.now(UTC)))
    check_replay(request, result.fingerprint)
    remember_location(incident_id, team_id, result.incident.channel_id)
    return result


async def severity_levels_for(
    svc: Services, team_id: str, asked: str | None, playbook: Playbook | None
) -> list[SeverityLevel]:
    """The team's severity levels when the start may set a severity (asked for, or the playbook's
    default); none otherwise (most starts: nothing to read)."""
    if asked is None and (playbook is None or playbook.default_severity is None):
        return []
    return await team_configuration.severity_levels(svc, team_id)


async def field_user_facts(
    svc: Services, team_id: str, playbook: Playbook | None, given: dict[str, str | None]
) -> list[UserFact]:
    """The people the start's user fields name (by username or id), as far as they exist: the
    start rules read each value against them ("there is no user" when absent)."""
    declared = playbook.fields if playbook else []
    wanted = [
        user_reference(text)
        for name, text in given.items()
        if (spec := field_named(declared, name)) is not None and spec.type == FieldType.USER
    ]
    found = await asyncio.gather(*(user_named(svc, team_id, ref) for ref in dict.fromkeys(wanted) if ref))
    return [fact for fact in found if fact is not None]


async def user_named(svc: Services, team_id: str, reference: str) -> UserFact | None:
    """A person by username (or by id, as a dialog's user select sends it), with their team
    membership; None when there is nobody by that name."""
    user = await svc.facts.user_by_username(reference)
    if user is None and len(reference) == 26 and reference.isalnum():
        user = await svc.facts.user_by_id(reference)
    if user is None:
        return None
    return await svc.facts.user_fact(user, team_id=team_id, channel_id=None)


async def team_record(svc: Services, team_id: str) -> dict[str, Any]:
    try:
        return await svc.facts.team(team_id)
    except MattermostFailure as failure:
        if failure.retryable:
            raise
        return {}


async def read_playbook(svc: Services, playbook_id: str | None) -> Playbook | None:
    """The playbook as stored (access is the start rules' business), or None if there is none."""
    if not playbook_id:
        return None
    if not SHORT_ID.match(playbook_id):
        return None
    wf = svc.temporal.get_workflow_handle_for(PlaybookWorkflow.run, playbook_workflow_id(playbook_id))
    try:
        playbook: Playbook = await query(wf, PlaybookWorkflow.get_playbook, rpc_timeout=svc.rpc_timeout)
    except Gone:
        return None
    return playbook


# What an incident takes from the settings when it starts (and keeps, whatever the settings become).
CONFIGURED = set(IncidentConfig.model_fields) & set(Settings.model_fields)


def incident_config(settings: Settings, incident_id: str) -> IncidentConfig:
    link = ""
    if settings.temporal_ui_url:
        link = (
            f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
            f"/workflows/{incident_workflow_id(incident_id)}"
        )
    return IncidentConfig(
        # The settings of the same name (the timings an operator tunes), as they are now.
        **settings.model_dump(include=CONFIGURED),
        details_url=link,
        backstage_url=f"{settings.api_public_url}/backstage/incidents/{incident_id}",
    )


def start_options(
    settings: Settings, start: IncidentStart, playbook: Playbook | None, team_name: str
) -> dict[str, Any]:
    """Workflow id, queue, Web UI summary and the search attributes visible from the start.

    The status is not among them: the workflow sets it in its first task, once its rules
    have accepted (or refused) the start.
    """
    source = f"playbook {playbook.title}" if playbook else "no playbook"
    initial = new_incident(start, datetime.now(UTC), lambda: "")
    severity = start.resume.severity if start.resume else initial.severity
    values = start.resume.field_values if start.resume else initial.field_values
    terms = " ".join(field_terms(playbook.fields if playbook else [], values))
    return {
        "id": incident_workflow_id(start.id),
        "task_queue": settings.temporal_task_queue,
        "static_summary": f"{start.name} · {team_name or start.team_id} · {source}"
        + (f" · {severity.name}" if severity else ""),
        "static_details": f"**Incident** {start.name}\n\n{start.description}".strip(),
        "memo": {SUMMARY_MEMO: summarize(initial).model_dump(mode="json")},
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(sa.INCIDENT_TEAM_ID, start.team_id),
                SearchAttributePair(sa.INCIDENT_NAME, start.name),
                SearchAttributePair(sa.INCIDENT_STARTED_AT, start.requested_at or datetime.now(UTC)),
                SearchAttributePair(sa.INCIDENT_MEMBER_IDS, [start.reporter.user_id]),
                SearchAttributePair(sa.INCIDENT_PUBLIC, bool(playbook and playbook.create_public_incident)),
                *([SearchAttributePair(sa.INCIDENT_PLAYBOOK_ID, playbook.id)] if playbook else []),
                *([SearchAttributePair(sa.INCIDENT_SEVERITY, severity.level)] if severity else []),
                *([SearchAttributePair(sa.INCIDENT_FIELDS, terms)] if terms else []),
            ]
        ),
    }


def new_incident_operation(
    settings: Settings, start: IncidentStart, playbook: Playbook | None, team_name: str
) -> WithStartWorkflowOperation[Any, Any]:
    """The start of a new incident, sent with its first update: an incident that exists already
    takes the update; one that has closed is never started over (a resent start, or the alert
    group's incident that ended: the group's next one opens instead)."""
    return WithStartWorkflowOperation(
        IncidentWorkflow.run,
        start,
        **start_options(settings, start, playbook, team_name),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def commander_fact(svc: Services, team_id: str, user_id: str | None) -> UserFact | None:
    if not user_id:
        return None
    user = await svc.facts.user_by_id(user_id)
    if user is None:
        raise invalid("The commander does not exist.", {"commander_id": f"no user has the id {user_id}"})
    return await svc.facts.user_fact(user, team_id=team_id, channel_id=None)


async def invited_facts(svc: Services, team_id: str, playbook: Playbook | None) -> list[UserFact]:
    if not playbook or not playbook.invited_user_ids:
        return []
    users = await svc.mattermost.get_users_by_ids(playbook.invited_user_ids)
    facts = await asyncio.gather(*(svc.facts.user_fact(u, team_id=team_id, channel_id=None) for u in users))
    return list(facts)


async def rule_user_facts(svc: Services, team_id: str, playbook: Playbook | None) -> list[UserFact]:
    """The people the playbook's rules may invite and its escalation pages: the incident names them."""
    wanted = [*rule_user_ids(playbook.rules), *policy_user_ids(playbook.escalation)] if playbook else []
    if not wanted:
        return []
    users = await svc.mattermost.get_users_by_ids(wanted)
    facts = await asyncio.gather(*(svc.facts.user_fact(u, team_id=team_id, channel_id=None) for u in users))
    return list(facts)


async def restart(
    svc: Services,
    actor: Actor,
    incident_id: str,
    *,
    request: RequestKey | None,
    late_reply: LateReply | None = None,
    asked: str = "",
) -> CommandResult:
    """Reopen an ended incident: inside the reopen window its own run (still open) reopens;
    after it, a new run of the same workflow begins, carrying the whole state."""
    access = await load(svc, actor, incident_id)
    state = access.state
    resume = IncidentStart.resuming(state, access.actor)
    team = await team_record(svc, state.team_id)
    options = start_options(svc.settings, resume, state.playbook, str(team.get("display_name", "")))
    # Lists count restarted incidents' runs once (see `service.incident_lists.newest_incidents`).
    options["search_attributes"] = TypedSearchAttributes(
        [*options["search_attributes"].search_attributes, SearchAttributePair(sa.INCIDENT_RESTARTED, True)]
    )
    operation = WithStartWorkflowOperation(
        IncidentWorkflow.run, resume, **options, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
    )
    request = request or RequestKey(id=f"restart_incident:{new_key()}")
    command = RestartIncident(actor=access.actor, request=request)
    result = await _update_with_start(
        svc, operation, incident_id, "restart_incident", command, request, late_reply=late_reply, asked=asked
    )
    check_replay(request, result.fingerprint)
    return result


async def _update_with_start(
    svc: Services,
    operation: WithStartWorkflowOperation[Any, Any],
    incident_id: str,
    update: str,
    command: RestartIncident | None,
    request: RequestKey,
    *,
    late_reply: LateReply | None,
    asked: str,
) -> CommandResult:
    """Send `update` with the start; an unanswered one is followed up (and said to be pending)."""
    try:
        result: CommandResult = await execute_update_with_start(
            svc.temporal,
            update,
            command if command is not None else OpenIncident(),
            start=operation,
            workflow_id=incident_workflow_id(incident_id),
            update_id=request.id,
            rpc_timeout=svc.rpc_timeout,
        )
    except NotAnswered:
        pending = pending_command(
            incident_id=incident_id, update=update, request=request, command=command, late_reply=late_reply, asked=asked
        )
        raise follow_up(svc, pending) from None
    return result
