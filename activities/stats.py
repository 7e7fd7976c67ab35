"""Feeding a team's statistics workflow. Idempotent: a report carries the incident's whole facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from models import search_attributes as sa
from models.stats import IncidentFacts, StatsShardStart, stats_month, stats_workflow_id
from workflows.stats import IncidentStatsWorkflow


class StatsActivities:
    def __init__(self, client: Client, *, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    async def report_incident_facts(self, facts: IncidentFacts) -> None:
        """Signal-with-start: the month's statistics workflow is created by its first report."""
        month = stats_month(facts.started_at)
        await self._client.start_workflow(
            IncidentStatsWorkflow.run,
            StatsShardStart(team_id=facts.team_id, month=month),
            id=stats_workflow_id(facts.team_id, month),
            task_queue=self._task_queue,
            start_signal="record",
            start_signal_args=[facts],
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.INCIDENT_TEAM_ID, facts.team_id)]),
            static_summary=f"Incident statistics · team {facts.team_id} · {month}",
        )

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.report_incident_facts]
