"""Integrations for the REST API and the backstage: create, list, read, change, rotate, delete.

Only a team's admins (and system admins) see its integrations: anyone outside the team
learns nothing ("Team not found" / "Integration not found"), a member who is not an admin
is told who can. Each function gathers the facts the rules need (is the actor a team
admin, which playbooks and commanders the spec names exist) and calls the integration's
workflow, which decides (`workflows.integration_rules`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

import permissions
from models import search_attributes as sa
from models.common import SHORT_ID, Actor, new_short_id, short_id_from
from models.integration import (
    DeleteIntegration,
    Delivery,
    Integration,
    IntegrationCommand,
    IntegrationKind,
    IntegrationSpec,
    IntegrationState,
    IntegrationSummary,
    IntegrationView,
    OpenIntegration,
    RotateToken,
    UpdateIntegration,
    integration_workflow_id,
    new_token,
    summarize,
    token_sha256,
)
from service import team_configuration
from service.container import Services
from service.errors import ServiceError, not_found
from service.incident_starts import read_playbook
from service.temporal_calls import Gone, execute_update_with_start, query, quote, update_or_not_found
from service.unavailability import rpc_error
from workflows.integration_workflow import INTEGRATION_MEMO, SUMMARY_MEMO, IntegrationWorkflow

# Where alerts are sent: `<API_PUBLIC_URL>/hooks/alerts/<integration id>`.
HOOK_PATH = "/hooks/alerts/"
MANAGE_TEAM = permissions.MANAGE_TEAM


def hook_url(svc: Services, integration_id: str) -> str:
    return f"{svc.settings.api_public_url}{HOOK_PATH}{integration_id}"


def view(svc: Services, integration: Integration, token: str | None = None) -> IntegrationView:
    return IntegrationView(
        **integration.model_dump(exclude={"token_sha256"}), url=hook_url(svc, integration.id), token=token
    )


async def _admin_command(svc: Services, actor: Actor, team_id: str) -> IntegrationCommand:
    """The actor as an admin of the team, or "Team not found" for an outsider and 403 for a
    member who is not an admin (they know the team; they learn who can do this)."""
    member = await svc.facts.is_team_member(team_id, actor.user_id)
    if not permissions.can_see_team(actor, is_team_member=member):
        raise not_found("Team")
    admin = actor.is_system_admin or MANAGE_TEAM in await svc.facts.team_permissions(team_id, actor)
    if not admin:
        raise ServiceError(403, "forbidden", "Only team admins can manage this team's integrations.")
    return IntegrationCommand(actor=actor, is_team_admin=True)


async def may_manage(svc: Services, actor: Actor, team_id: str) -> bool:
    """Whether the actor may manage the team's integrations (a face offers the way to them only then)."""
    try:
        await _admin_command(svc, actor, team_id)
    except ServiceError:
        return False
    return True


async def _spec_facts(svc: Services, actor: Actor, team_id: str, spec: IntegrationSpec) -> dict[str, Any]:
    """The playbooks (of the team, not archived) and the possible commanders the spec names."""
    wanted = {spec.playbook_id, *(route.playbook_id for route in spec.routes)} - {None}
    found = await asyncio.gather(*(read_playbook(svc, str(pid)) for pid in sorted(wanted, key=str)))
    playbooks = {p.id: p.title for p in found if p is not None and p.team_id == team_id and not p.archived}
    commanders: list[str] = []
    for user_id in sorted({route.commander_id for route in spec.routes if route.commander_id}):
        user = await svc.facts.user_by_id(user_id)
        if user is None:
            continue
        fact = await svc.facts.user_fact(user, team_id=team_id, channel_id=None)
        if fact.is_team_member and not fact.is_bot:
            commanders.append(user_id)
    named_severity = any(route.severity for route in spec.routes)
    levels = await team_configuration.severity_levels(svc, team_id) if named_severity else []
    return {"playbooks": playbooks, "commanders": commanders, "severity_levels": levels}


def integration_handle(svc: Services, integration_id: str) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(integration_workflow_id(integration_id))


async def create_integration(
    svc: Services,
    actor: Actor,
    team_id: str,
    kind: IntegrationKind,
    spec: IntegrationSpec,
    *,
    idempotency_key: str | None = None,
) -> IntegrationView:
    """Make an integration and its token (shown in this answer only; the workflow keeps its hash).

    With an `Idempotency-Key`, the same request again names the same integration and makes
    nothing more; its token is not shown again (`POST .../token` makes a new one)."""
    admin = await _admin_command(svc, actor, team_id)
    facts = await _spec_facts(svc, actor, team_id, spec)
    integration_id = (
        short_id_from(f"integration:{team_id}:{actor.user_id}:{idempotency_key}") if idempotency_key else new_short_id()
    )
    token = new_token()
    now = datetime.now(UTC)
    integration = Integration(
        **dict(spec),
        id=integration_id,
        team_id=team_id,
        kind=kind,
        created_at=now,
        created_by=actor.user_id,
        updated_at=now,
        token_sha256=token_sha256(token),
        token_hint=token[-4:],
    )
    operation = WithStartWorkflowOperation(
        IntegrationWorkflow.run,
        IntegrationState(integration=integration),
        id=integration_workflow_id(integration_id),
        task_queue=svc.settings.temporal_task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.INTEGRATION_TEAM_ID, team_id)]),
        memo={SUMMARY_MEMO: summarize(integration).model_dump(mode="json")},
        static_summary=f"Integration: {integration.name} ({kind.value})",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING if idempotency_key else WorkflowIDConflictPolicy.FAIL,
    )
    made: Integration = await execute_update_with_start(
        svc.temporal,
        IntegrationWorkflow.open_integration,
        OpenIntegration(actor=admin.actor, is_team_admin=admin.is_team_admin, **facts),
        start=operation,
        workflow_id=integration_workflow_id(integration_id),
        rpc_timeout=svc.rpc_timeout,
        result_type=Integration,
    )
    return view(svc, made, token if made.token_sha256 == integration.token_sha256 else None)


async def integration_state(svc: Services, integration_id: str) -> IntegrationState:
    if not SHORT_ID.match(integration_id):
        raise not_found("Integration")
    try:
        state: IntegrationState = await query(
            integration_handle(svc, integration_id), IntegrationWorkflow.get_integration, rpc_timeout=svc.rpc_timeout
        )
    except Gone:
        raise not_found("Integration") from None
    return state


async def _managed(svc: Services, actor: Actor, integration_id: str) -> tuple[IntegrationState, IntegrationCommand]:
    """The integration, if the actor is an admin of its team; else "not found" (a member who is
    not an admin learns no more than an outsider of an integration they were not shown)."""
    state = await integration_state(svc, integration_id)
    if state.deleted:
        raise not_found("Integration")
    try:
        admin = await _admin_command(svc, actor, state.integration.team_id)
    except ServiceError:
        raise not_found("Integration") from None
    return state, admin


async def integration_for_delivery(svc: Services, integration_id: str) -> Integration | None:
    """The integration as it stands (None: no such one, or deleted), read with `describe` from its
    workflow's memo: Temporal answers from its store, without a worker, however many arrive."""
    if not SHORT_ID.match(integration_id):
        return None
    try:
        described = await integration_handle(svc, integration_id).describe(rpc_timeout=svc.rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise rpc_error(error) from None
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None  # deleted (or a creation its rules refused)
    integration: Integration | None = await described.memo_value(INTEGRATION_MEMO, None, type_hint=Integration)
    return integration


async def require_admin(svc: Services, actor: Actor, team_id: str) -> None:
    """Refuse anyone but the team's admins (outsiders: "Team not found")."""
    await _admin_command(svc, actor, team_id)


async def managed_integration(svc: Services, actor: Actor, integration_id: str) -> Integration:
    state, _ = await _managed(svc, actor, integration_id)
    return state.integration


async def get_integration(svc: Services, actor: Actor, integration_id: str) -> IntegrationView:
    state, _ = await _managed(svc, actor, integration_id)
    return view(svc, state.integration)


async def list_integrations(svc: Services, actor: Actor, team_id: str) -> list[IntegrationSummary]:
    await _admin_command(svc, actor, team_id)
    clauses = [
        "WorkflowType = 'IntegrationWorkflow'",
        "ExecutionStatus = 'Running'",
        f"IntegrationTeamId = {quote(team_id)}",
    ]
    summaries = [
        await execution.memo_value(SUMMARY_MEMO, type_hint=IntegrationSummary)
        async for execution in svc.temporal.list_workflows(" AND ".join(clauses), rpc_timeout=svc.rpc_timeout)
    ]
    return sorted(summaries, key=lambda s: (s.name.casefold(), s.id))


async def _change(svc: Services, integration_id: str, update: Any, command: IntegrationCommand) -> Integration:
    changed: Integration = await update_or_not_found(
        integration_handle(svc, integration_id),
        update,
        command,
        what="Integration",
        rpc_timeout=svc.rpc_timeout,
        result_type=Integration,
    )
    return changed


async def update_integration(
    svc: Services, actor: Actor, integration_id: str, spec: IntegrationSpec
) -> IntegrationView:
    state, admin = await _managed(svc, actor, integration_id)
    facts = await _spec_facts(svc, actor, state.integration.team_id, spec)
    command = UpdateIntegration(
        actor=admin.actor, is_team_admin=admin.is_team_admin, **facts, spec=spec, updated_at=datetime.now(UTC)
    )
    return view(svc, await _change(svc, integration_id, IntegrationWorkflow.update_integration, command))


async def rotate_token(svc: Services, actor: Actor, integration_id: str) -> IntegrationView:
    """A new token; the old one stops working at once (every delivery reads the current hash)."""
    _, admin = await _managed(svc, actor, integration_id)
    token = new_token()
    command = RotateToken(
        actor=admin.actor,
        is_team_admin=admin.is_team_admin,
        token_sha256=token_sha256(token),
        token_hint=token[-4:],
        updated_at=datetime.now(UTC),
    )
    return view(svc, await _change(svc, integration_id, IntegrationWorkflow.rotate_token, command), token)


async def delete_integration(svc: Services, actor: Actor, integration_id: str) -> None:
    _, admin = await _managed(svc, actor, integration_id)
    await _change(
        svc,
        integration_id,
        IntegrationWorkflow.delete_integration,
        DeleteIntegration(actor=admin.actor, is_team_admin=admin.is_team_admin),
    )


async def deliveries(svc: Services, actor: Actor, integration_id: str) -> list[Delivery]:
    state, _ = await _managed(svc, actor, integration_id)
    return list(reversed(state.deliveries))
