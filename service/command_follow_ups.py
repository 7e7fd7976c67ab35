"""Commands Temporal took but had not answered when their caller had to reply.

Whoever sent such a command is told the truth: it was received and is being applied
(`CommandPending`, which each face renders: "Received, applying it…", or REST's 202), and
`CommandOutcomeWorkflow` makes sure it gets its outcome and tells them. Only a command
that provably never reached Temporal is answered "not applied, try again".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.incident_commands import IncidentCommand, RequestKey
from models.pending_commands import FOLLOW_UP_SECONDS, LateReply, PendingCommand
from service.container import Services
from workflows.command_outcome_workflow import CommandOutcomeWorkflow, outcome_workflow_id

log = logging.getLogger(__name__)
# Follow-ups being started in the background (the caller has already been answered).
_starting: set[asyncio.Task[None]] = set()
START_ATTEMPTS = 5


@dataclass
class HandOver:
    """What a request handed to Temporal, if anything: a caller whose own deadline cut a
    command short learns from it whether the command may still be applied."""

    pending: PendingCommand | None = None


_hand_over: ContextVar[HandOver | None] = ContextVar("hand_over", default=None)


@contextmanager
def watching_hand_over() -> Iterator[HandOver]:
    box = HandOver()
    token = _hand_over.set(box)
    try:
        yield box
    finally:
        _hand_over.reset(token)


def handing_over(pending: PendingCommand) -> None:
    """Called just before a command goes to Temporal."""
    box = _hand_over.get()
    if box is not None:
        box.pending = pending


class CommandPending(Exception):
    """Temporal took the command and has not answered yet; its outcome follows."""

    def __init__(self, pending: PendingCommand) -> None:
        super().__init__(f"command {pending.update} on incident {pending.incident_id} is pending")
        self.pending = pending


def pending_command(
    *,
    incident_id: str,
    update: str,
    request: RequestKey,
    command: IncidentCommand | None,
    late_reply: LateReply | None,
    asked: str,
) -> PendingCommand:
    now = datetime.now(UTC)
    return PendingCommand(
        incident_id=incident_id,
        update=update,
        update_id=request.id,
        command=command.model_dump(mode="json") if command is not None else None,
        asked=asked,
        reply=late_reply,
        received_at=now,
        expires_at=now + timedelta(seconds=FOLLOW_UP_SECONDS),
    )


def follow_up(svc: Services, pending: PendingCommand) -> CommandPending:
    """Start the command's follow-up in the background (the caller replies now); the exception
    the caller raises to say so."""
    task = asyncio.create_task(_start_follow_up(svc, pending))
    _starting.add(task)
    task.add_done_callback(_starting.discard)
    return CommandPending(pending)


async def _start_follow_up(svc: Services, pending: PendingCommand) -> None:
    delay = 0.5
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            await svc.temporal.start_workflow(
                CommandOutcomeWorkflow.run,
                pending,
                id=outcome_workflow_id(pending.update_id),
                task_queue=svc.settings.temporal_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"Outcome of {pending.update} on incident {pending.incident_id}",
                rpc_timeout=timedelta(seconds=5),
            )
            return
        except WorkflowAlreadyStartedError:
            return
        except Exception as error:
            log.warning("could not start the follow-up of %s (attempt %d): %s", pending.update_id, attempt, error)
            await asyncio.sleep(delay)
            delay *= 2
    log.error("gave up starting the follow-up of %s; its sender is not told its outcome", pending.update_id)


async def drain_follow_ups(within: float = 10.0) -> None:
    """Let follow-ups being started finish before the process stops."""
    if _starting:
        await asyncio.wait(set(_starting), timeout=within)


def pending_body(pending: PendingCommand, key: str | None) -> dict[str, Any]:
    """What REST answers (202) for a pending command or start."""
    return {
        "status": "pending",
        "message": "Received, applying it… Repeat this request with the same Idempotency-Key to get its outcome.",
        "incident_id": pending.incident_id,
        "idempotency_key": key,
        "incident_url": f"/api/v1/incidents/{pending.incident_id}",
    }
