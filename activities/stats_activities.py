"""Feeding a team's statistics workflow. Idempotent: a report carries the incident's whole facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from models import search_attributes as sa
from models.stats import (
    DEFAULT_SHARD_CAPACITY,
    STATS_WORKFLOW,
    IncidentFacts,
    StatsForward,
    StatsShardStart,
    stats_month,
    stats_workflow_id,
)


class StatsActivities:
    def __init__(self, client: Client, *, task_queue: str, shard_capacity: int = DEFAULT_SHARD_CAPACITY) -> None:
        self._client = client
        self._task_queue = task_queue
        self._shard_capacity = shard_capacity

    @activity.defn
    async def report_incident_facts(self, facts: IncidentFacts) -> None:
        """Signal-with-start to the month's first shard, created by its first report; a full
        shard forwards the report to the next (`forward_incident_facts`)."""
        await self._signal(facts, shard=0, capacity=self._shard_capacity)

    @activity.defn
    async def forward_incident_facts(self, forward: StatsForward) -> None:
        await self._signal(forward.facts, shard=forward.shard, capacity=forward.capacity)

    async def _signal(self, facts: IncidentFacts, *, shard: int, capacity: int) -> None:
        month = stats_month(facts.started_at)
        # By its name: the statistics workflow itself calls these activities.
        await self._client.start_workflow(
            STATS_WORKFLOW,
            StatsShardStart(team_id=facts.team_id, month=month, capacity=capacity, shard=shard),
            id=stats_workflow_id(facts.team_id, month, shard),
            task_queue=self._task_queue,
            start_signal="record",
            start_signal_args=[facts],
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.INCIDENT_TEAM_ID, facts.team_id)]),
            static_summary=f"Incident statistics · team {facts.team_id} · {month}"
            + (f" · shard {shard + 1}" if shard else ""),
        )

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.report_incident_facts, self.forward_incident_facts]
