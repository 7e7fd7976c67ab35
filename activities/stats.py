"""Feeding a team's statistics workflow. Idempotent: a report carries the incident's whole facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from models import search_attributes as sa
from models.stats import DEFAULT_SHARD_CAPACITY, IncidentFacts, StatsShardStart, stats_month, stats_workflow_id
from workflows.stats import IncidentStatsWorkflow


class StatsActivities:
    def __init__(self, client: Client, *, task_queue: str, shard_capacity: int = DEFAULT_SHARD_CAPACITY) -> None:
        self._client = client
        self._task_queue = task_queue
        self._shard_capacity = shard_capacity

    @activity.defn
    async def report_incident_facts(self, facts: IncidentFacts) -> None:
        """Update-with-start on the month's shards in order, until one keeps the facts.

        A shard is created by the first report that reaches it. Shards only grow, so the
        first one holding the incident or having room is where it lives (`accepts`).
        """
        month = stats_month(facts.started_at)
        shard = 0
        while True:
            workflow_id = stats_workflow_id(facts.team_id, month, shard)
            start = WithStartWorkflowOperation(
                IncidentStatsWorkflow.run,
                StatsShardStart(team_id=facts.team_id, month=month, capacity=self._shard_capacity),
                id=workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes([SearchAttributePair(sa.INCIDENT_TEAM_ID, facts.team_id)]),
                static_summary=f"Incident statistics · team {facts.team_id} · {month}"
                + (f" · shard {shard + 1}" if shard else ""),
            )
            kept = await self._client.execute_update_with_start_workflow(
                IncidentStatsWorkflow.add, facts, start_workflow_operation=start
            )
            if kept:
                return
            shard += 1

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.report_incident_facts]
