"""`CommandOutcomeWorkflow`: a pending command gets its real outcome, and its sender hears it.

Started by the service when Temporal took a command but had not answered when its
caller had to reply (a slash command's reply is due within seconds; a REST request waits
`TEMPORAL_RPC_TIMEOUT_SECONDS`): the person was told "Received, applying it…". The
workflow asks the incident until it answers (an activity, retried through worker deaths
and outages for as long as a reply can still be delivered), then tells the person the
outcome through the command's `response_url` or a direct message. One per command: its id
is the command's Update id.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.command_outcome_activities import CommandOutcomeActivities
    from models.pending_commands import CommandOutcome, PendingCommand, TellOutcome, outcome_text

ASKING = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=5)
)


def outcome_workflow_id(update_id: str) -> str:
    return f"command-outcome-{update_id}"


@workflow.defn
class CommandOutcomeWorkflow:
    @workflow.run
    async def run(self, pending: PendingCommand) -> CommandOutcome:
        left = max(timedelta(seconds=1), pending.expires_at - workflow.now())
        try:
            outcome = await workflow.execute_activity_method(
                CommandOutcomeActivities.await_command_outcome,
                pending,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=left,
                retry_policy=ASKING,
                summary=f"ask incident {pending.incident_id} for the outcome",
            )
        except ActivityError:
            outcome = CommandOutcome(
                result="unknown", message="Look at the incident (`/incident info`) before you try again."
            )
        if pending.reply is not None and (pending.reply.response_url or pending.reply.user_id):
            try:
                await workflow.execute_activity_method(
                    CommandOutcomeActivities.tell_outcome,
                    TellOutcome(reply=pending.reply, text=outcome_text(pending, outcome)),
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=max(timedelta(seconds=30), pending.expires_at - workflow.now()),
                    retry_policy=ASKING,
                    summary="tell the person the outcome",
                )
            except ActivityError as error:
                workflow.logger.warning("could not tell the outcome of %s: %s", pending.update_id, error)
        return outcome
