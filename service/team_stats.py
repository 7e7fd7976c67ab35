"""Team statistics: one query per month of incidents, merged and computed here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from models.common import Actor
from models.stats import IncidentStats, StatsSlice, StatsWindow, compute, shard_month, stats_month
from service import team_configuration
from service.container import Services
from service.playbooks import get_playbook, require_team
from service.temporal_calls import Gone, query, quote
from workflows.stats_workflow import IncidentStatsWorkflow


async def team_stats(svc: Services, actor: Actor, team_id: str, window: StatsWindow) -> IncidentStats:
    merged = await team_slice(svc, actor, team_id, window)
    # The breakdown by severity names each level as the team names it now.
    names = {level.level: level.name for level in await team_configuration.severity_levels(svc, team_id)}
    return compute(team_id, window.model_copy(update={"viewer_id": None}), merged, datetime.now(UTC), names)


async def team_slice(svc: Services, actor: Actor, team_id: str, window: StatsWindow) -> StatsSlice:
    """The raw numbers behind `team_stats` (the backstage charts them over time)."""
    await require_team(svc, actor, team_id)
    if window.playbook_id:
        await get_playbook(svc, actor, window.playbook_id)
    window = window.model_copy(update={"viewer_id": None if actor.is_system_admin else actor.user_id})
    first = stats_month(window.since) if window.since else ""
    last = stats_month(window.until) if window.until else "9999-12"
    shards = [
        execution.id
        async for execution in svc.temporal.list_workflows(
            f"WorkflowType = 'IncidentStatsWorkflow' AND ExecutionStatus = 'Running' "
            f"AND IncidentTeamId = {quote(team_id)}",
            rpc_timeout=svc.rpc_timeout,
        )
        if first <= (shard_month(execution.id) or "") <= last
    ]
    slices = await asyncio.gather(*(_slice(svc, workflow_id, window) for workflow_id in shards))
    merged = StatsSlice()
    for part in slices:
        merged = merged.merge(part)
    return merged


async def _slice(svc: Services, workflow_id: str, window: StatsWindow) -> StatsSlice:
    handle = svc.temporal.get_workflow_handle_for(IncidentStatsWorkflow.run, workflow_id)
    try:
        result: StatsSlice = await query(handle, IncidentStatsWorkflow.slice, window, rpc_timeout=svc.rpc_timeout)
    except Gone:
        return StatsSlice()
    return result
