"""`IncidentStatsWorkflow`: a shard of a team's incident statistics for one month, kept in Temporal.

Incidents report their facts here (a signal, sent with signal-with-start by an activity)
when they start, gain members, get their first status update, end or restart. The API
reads a window with a query and computes the numbers, so statistics over thousands of
incidents cost one query per shard instead of one per incident. A shard holds at most
`capacity` incidents: a report of another one is forwarded, in order, to the month's next
shard (an activity's signal-with-start), so a month has no limit. Signals, not updates:
every incident of a team-month reports to the same shard, and signals to one workflow are
batched into few workflow tasks, where updates are one task each and limited in flight.
Continue-as-new keeps each shard's history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.stats_activities import StatsActivities
    from models.stats import (
        STATS_WORKFLOW,
        IncidentFacts,
        StatsForward,
        StatsShardStart,
        StatsSlice,
        StatsWindow,
        accepts,
        record_facts,
        slice_of,
    )


@workflow.defn(name=STATS_WORKFLOW)
class IncidentStatsWorkflow:
    @workflow.init
    def __init__(self, start: StatsShardStart) -> None:
        self.shard = start

    @workflow.run
    async def run(self, start: StatsShardStart) -> None:
        workflow.set_current_details(
            f"Incident statistics of team {start.team_id} for {start.month}"
            + (f" (shard {start.shard + 1})" if start.shard else "")
        )
        while True:
            await workflow.wait_condition(
                lambda: bool(self.shard.overflow) or workflow.info().is_continue_as_new_suggested()
            )
            while self.shard.overflow:
                await workflow.execute_activity_method(
                    StatsActivities.forward_incident_facts,
                    StatsForward(
                        facts=self.shard.overflow[0], shard=self.shard.shard + 1, capacity=self.shard.capacity
                    ),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                    summary=f"forward to shard {self.shard.shard + 2}",
                )
                self.shard.overflow.pop(0)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.shard)

    @workflow.signal
    def record(self, facts: IncidentFacts) -> None:
        if accepts(self.shard, facts.incident_id):
            record_facts(self.shard, facts)
        else:
            self.shard.overflow.append(facts)

    @workflow.query
    def slice(self, window: StatsWindow) -> StatsSlice:
        return slice_of(self.shard, window)
