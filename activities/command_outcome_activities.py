"""Finding out what became of a pending command, and telling the person who sent it.

A command whose caller stopped waiting is sent again with the same Update id until the
incident answers: Temporal (within a run) and the incident itself (across runs, by the
request's key) answer a repeated Update with its first outcome, so it is applied at most
once; and one that never reached the incident is applied now, as the person was told it
would be ("Received, applying it…"). A start is not sent again: it is asked of the
incident's workflow, which either exists (and answers) or was never made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from mattermost_client.gateway import Mattermost, MattermostFailure
from models.incident import incident_workflow_id
from models.incident_commands import CommandResult, OpenIncident
from models.pending_commands import CommandOutcome, PendingCommand, TellOutcome
from models.refusals import ended_refusal

# How long one wait for the incident's answer lasts before it is asked again.
ASK_SECONDS = 20.0
# A start that did not reach Temporal leaves no workflow; its caller's request has surely
# ended after this long, so a workflow still missing then was never made.
START_GRACE_SECONDS = 30.0


async def await_outcome(client: Client, pending: PendingCommand) -> CommandOutcome:
    """The command's outcome, asking until the incident answers; raises to be asked again later."""
    handle = client.get_workflow_handle(incident_workflow_id(pending.incident_id))
    update, argument = (
        (pending.update, pending.command) if pending.command is not None else ("open_incident", OpenIncident())
    )
    try:
        result = await handle.execute_update(
            update,
            argument,
            id=pending.update_id,
            result_type=CommandResult,
            rpc_timeout=timedelta(seconds=ASK_SECONDS),
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else "The incident could not apply it."
        return CommandOutcome(result="refused", message=message)
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise ApplicationError("The incident has not answered yet.", type="NotYet") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return _closed(pending)
        # Not taken for now (too many updates in flight, a task timing out) or unreachable:
        # asked again, as any unanswered attempt is.
        raise ApplicationError(f"The incident did not take it yet: {error.message}", type="NotYet") from None
    return CommandOutcome(result="applied", message=result.message)


def _closed(pending: PendingCommand) -> CommandOutcome:
    """No running workflow takes the command: an incident that ended (or was never made)."""
    if pending.command is not None and pending.update != "restart_incident":
        return CommandOutcome(result="refused", message=ended_refusal(pending.update))
    if datetime.now(UTC) - pending.received_at < timedelta(seconds=START_GRACE_SECONDS):
        raise ApplicationError("The incident's workflow is not there yet.", type="NotYet")
    return CommandOutcome(result="not_applied", message="it never reached the incident service.")


class CommandOutcomeActivities:
    def __init__(self, client: Client, mattermost: Mattermost) -> None:
        self._client = client
        self._mattermost = mattermost

    @activity.defn
    async def await_command_outcome(self, pending: PendingCommand) -> CommandOutcome:
        """Heartbeats while it waits (every attempt does: `activities.attempts`), so a worker that
        dies is noticed in seconds."""
        return await await_outcome(self._client, pending)

    @activity.defn
    async def tell_outcome(self, told: TellOutcome) -> None:
        """The outcome, where the person will see it: the command's `response_url`, or a direct message."""
        try:
            if told.reply.response_url:
                payload = {"response_type": "ephemeral", "text": told.text}
                await self._mattermost.respond_to_command(told.reply.response_url, payload)
            else:
                await self._mattermost.direct_message(told.reply.user_id, told.text)
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            raise ApplicationError(failure.message, non_retryable=True) from None

    def all(self) -> list[Callable[..., Any]]:
        return [self.await_command_outcome, self.tell_outcome]
