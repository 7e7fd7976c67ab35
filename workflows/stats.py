"""`IncidentStatsWorkflow`: a team's incident statistics for one month, kept in Temporal.

Incidents report their facts here (the `add` update, sent with update-with-start by an
activity) when they start, gain members, get their first status update, end or restart.
A shard holds at most `capacity` incidents and answers `False` for a new one past it, so
the activity moves on to the month's next shard: a month has no limit. The API
reads a window with a query and computes the numbers, so statistics over thousands of
incidents cost one query per month instead of one per incident. Months keep each
workflow's state small; continue-as-new keeps its history short.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.stats import IncidentFacts, StatsShardStart, StatsSlice, StatsWindow, accepts, record_facts, slice_of


@workflow.defn
class IncidentStatsWorkflow:
    @workflow.init
    def __init__(self, start: StatsShardStart) -> None:
        self.shard = start

    @workflow.run
    async def run(self, start: StatsShardStart) -> None:
        workflow.set_current_details(f"Incident statistics of team {start.team_id} for {start.month}")
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.shard)

    @workflow.update
    def add(self, facts: IncidentFacts) -> bool:
        """Keep the incident's facts if this shard holds it or has room; False: try the next shard."""
        if not accepts(self.shard, facts.incident_id):
            return False
        record_facts(self.shard, facts)
        return True

    @workflow.signal
    def record(self, facts: IncidentFacts) -> None:
        # Reports before shards had a capacity came as this signal; kept for those in flight.
        record_facts(self.shard, facts)

    @workflow.query
    def slice(self, window: StatsWindow) -> StatsSlice:
        return slice_of(self.shard, window)
