"""A team's settings for REST, slash commands, the backstage and the incidents: its severity levels.

Members of the team read them, its admins (and system admins) change them, as they manage the
team's integrations and schedules; anyone outside the team learns nothing ("Team not found").
The settings live in the team's `TeamSettingsWorkflow`, started by the first change; until then
the team has the defaults. Reads are a `describe` of that workflow (its memo): Temporal answers
from its store without a worker, and a change is seen by every API process as soon as it is
answered, so nothing is cached here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

import permissions
from models.common import Actor
from models.severity import SeverityLevel, SeverityLevelsSpec, TeamSeverities, numbered
from models.team_settings import SetSeverityLevels, TeamSettings, team_settings_workflow_id
from service.container import Services
from service.errors import ServiceError, not_found
from service.temporal_calls import NotAnswered, execute_update_with_start
from service.unavailability import rpc_error
from workflows.team_settings_workflow import SETTINGS_MEMO, TeamSettingsWorkflow


def _handle(svc: Services, team_id: str) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(team_settings_workflow_id(team_id))


async def settings_of(svc: Services, team_id: str) -> TeamSettings:
    """The team's settings as they stand (the defaults when its admins never changed any).
    No access check: the callers decided the actor may see the team, or act for it."""
    try:
        described = await _handle(svc, team_id).describe(rpc_timeout=svc.rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return TeamSettings(team_id=team_id)
        raise rpc_error(error) from None
    found: TeamSettings | None = await described.memo_value(SETTINGS_MEMO, None, type_hint=TeamSettings)
    return found or TeamSettings(team_id=team_id)


async def severity_levels(svc: Services, team_id: str) -> list[SeverityLevel]:
    """The team's severity levels, the facts a command or a start naming a severity carries."""
    return (await settings_of(svc, team_id)).severity_levels


async def _require_member(svc: Services, actor: Actor, team_id: str) -> bool:
    """Whether the actor is in the team; outsiders learn nothing of it ("Team not found")."""
    member = await svc.facts.is_team_member(team_id, actor.user_id)
    if not permissions.can_see_team(actor, is_team_member=member):
        raise not_found("Team")
    return member


async def may_manage(svc: Services, actor: Actor, team_id: str) -> bool:
    """Whether the actor may change the team's settings (a face offers the way only then)."""
    if actor.is_system_admin:
        return True
    member = await svc.facts.is_team_member(team_id, actor.user_id)
    return member and permissions.can_manage_team(
        actor, is_team_member=member, team_permissions=await svc.facts.team_permissions(team_id, actor)
    )


async def team_severities(svc: Services, actor: Actor, team_id: str) -> TeamSeverities:
    """The team's severity levels, for its members."""
    await _require_member(svc, actor, team_id)
    return (await settings_of(svc, team_id)).severities()


async def set_severity_levels(
    svc: Services, actor: Actor, team_id: str, spec: SeverityLevelsSpec, *, request_id: str | None = None
) -> TeamSeverities:
    """Replace the team's levels (team admins). `spec.version`, when given, must still be the
    current one; `request_id` makes a resent request apply once (the Update's id)."""
    await _require_member(svc, actor, team_id)
    admin = await may_manage(svc, actor, team_id)
    if not admin:
        raise ServiceError(
            403, "forbidden", "Only team admins can change this team's severity levels; ask one of them."
        )
    command = SetSeverityLevels(
        actor=actor,
        is_team_admin=admin,
        levels=numbered(spec.levels),
        expected_version=spec.version,
        at=datetime.now(UTC),
    )
    workflow_id = team_settings_workflow_id(team_id)
    operation = WithStartWorkflowOperation(
        TeamSettingsWorkflow.run,
        TeamSettings(team_id=team_id),
        id=workflow_id,
        task_queue=svc.settings.temporal_task_queue,
        static_summary=f"Settings of team {team_id}",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        changed: TeamSeverities = await execute_update_with_start(
            svc.temporal,
            TeamSettingsWorkflow.set_severity_levels,
            command,
            start=operation,
            workflow_id=workflow_id,
            update_id=request_id,
            rpc_timeout=svc.rpc_timeout,
            result_type=TeamSeverities,
        )
    except NotAnswered:
        raise ServiceError(
            503,
            "temporal_unavailable",
            "The team's settings did not answer in time, so the change may or may not be made. "
            "Look at the levels in a minute, or send the same request again with the same Idempotency-Key.",
        ) from None
    return changed
