"""Calling workflows from HTTP handlers: timeouts, and refusals turned into API errors.

A workflow refuses a command with an `ApplicationError` whose type is a `Refusal`; the
message is the sentence the user reads and is passed on verbatim.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.incident_commands import CommandResult
from models.refusals import Refusal
from service.deadline import diagnosis_budget
from service.errors import ServiceError, not_found
from service.unavailability import diagnose, is_failing, not_taken, rpc_error, workflow_failing

log = logging.getLogger(__name__)
# A query not answered in this long is looked into while it waits (see `query`).
EARLY_LOOK_SECONDS = 0.5

REFUSAL_STATUS = {
    Refusal.FORBIDDEN: (403, "forbidden"),
    Refusal.CONFLICT: (409, "conflict"),
    Refusal.INVALID: (422, "validation_error"),
    Refusal.NOT_FOUND: (404, "not_found"),
    Refusal.CONFIRM: (409, "confirmation_required"),
}


class Gone(Exception):
    """The workflow does not exist, or has completed and cannot take commands."""

    def __init__(self, completed: bool) -> None:
        super().__init__("workflow completed" if completed else "workflow not found")
        self.completed = completed


def refusal_kind(error: WorkflowUpdateFailedError) -> Refusal | None:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return Refusal._value2member_map_.get(cause.type)  # type: ignore[return-value]
    return None


def refusal(error: WorkflowUpdateFailedError) -> ServiceError:
    if isinstance(error.cause, ApplicationError) and refusal_kind(error) is not None:
        return refused(error.cause)
    return ServiceError(500, "internal_error", "The command failed unexpectedly; it has been logged.")


def refused(cause: ApplicationError) -> ServiceError:
    """The API error for a workflow rule's refusal, naming the field at fault when the rule did."""
    kind = Refusal._value2member_map_.get(cause.type or "")
    status, code = REFUSAL_STATUS[kind] if isinstance(kind, Refusal) else (409, "conflict")
    details = refusal_details(cause)
    field = details.get("field")
    problems = details.get("fields")
    if isinstance(problems, dict):
        fields = {str(name): str(problem) for name, problem in problems.items()}
    else:
        fields = {str(field): cause.message} if field else {}
    return ServiceError(status, code, cause.message, fields or None, details=details)


def refusal_details(cause: ApplicationError) -> dict[str, Any]:
    """What a refusal says beyond its sentence (the field at fault, what to confirm)."""
    try:
        details = cause.details[0] if cause.details else {}
    except Exception:  # a payload we cannot decode carries nothing we need
        return {}
    return details if isinstance(details, dict) else {}


def quote(value: str) -> str:
    """A value inside a visibility query, safely quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class NotAnswered(Exception):
    """Temporal took the update but did not answer in time: it may still be applied (its
    outcome is asked again with the same Update id; see `service.command_follow_ups`)."""


# Temporal's answers that mean the update was not taken, and may be taken a moment later:
# the workflow task is failing or timing out (a busy or restarting worker), or too many
# updates are in flight.
NOT_TAKEN = frozenset({RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.RESOURCE_EXHAUSTED})
# Between attempts at an update Temporal did not take, while the caller can still wait.
RETRY_PAUSES = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


async def execute_update(
    handle: WorkflowHandle[Any, Any],
    update: Any,
    arg: Any,
    *,
    rpc_timeout: timedelta,
    update_id: str | None = None,
    refusal_override: dict[Refusal, ServiceError] | None = None,
    result_type: type | None = None,
) -> Any:
    """Run an update; refusals become `ServiceError`s; a missing or closed workflow is `Gone`;
    an update Temporal took but did not answer in time is `NotAnswered`; one it did not take
    is tried again while the caller can wait, then answered as not applied."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rpc_timeout.total_seconds()
    pauses = iter(RETRY_PAUSES)
    moved = 0
    while True:
        try:
            return await handle.execute_update(
                update,
                arg,
                id=update_id,
                rpc_timeout=timedelta(seconds=max(0.1, deadline - loop.time())),
                result_type=result_type,
            )
        except WorkflowUpdateFailedError as error:
            kind = refusal_kind(error)
            if refusal_override and kind in refusal_override:
                raise refusal_override[kind] from None
            raise refusal(error) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise NotAnswered from None
        except RPCError as error:
            if error.status in NOT_TAKEN:
                pause = next(pauses, None)
                if pause is not None and loop.time() + pause + 0.2 < deadline:
                    await asyncio.sleep(pause)
                    continue
                raise await not_taken(handle, error) from None
            if error.status != RPCStatusCode.NOT_FOUND:
                raise rpc_error(error) from None
            # "already completed", "aborted by closing workflow", or no such workflow. A run
            # that closed by continuing as new has a successor: send the update there.
            status = await _status(handle, rpc_timeout)
            moved += 1
            if status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING or moved >= 3:
                raise Gone(completed=status is not None) from None


async def update_or_not_found(
    handle: WorkflowHandle[Any, Any], update: Any, arg: Any, *, what: str, rpc_timeout: timedelta, result_type: type
) -> Any:
    """`execute_update` on a thing the caller may only know of if it is theirs: the workflow's
    "not found" refusal and a missing or closed workflow both answer 404 "<what> not found."."""
    hidden = not_found(what)
    try:
        return await execute_update(
            handle,
            update,
            arg,
            rpc_timeout=rpc_timeout,
            refusal_override={Refusal.NOT_FOUND: hidden},
            result_type=result_type,
        )
    except Gone:
        raise hidden from None


async def execute_update_with_start(
    client: Client,
    update: Any,
    arg: Any,
    *,
    start: WithStartWorkflowOperation[Any, Any],
    workflow_id: str,
    rpc_timeout: timedelta,
    update_id: str | None = None,
    result_type: type = CommandResult,
) -> Any:
    """Start (or reuse) a workflow and run an update on it, with `execute_update`'s error mapping."""
    try:
        try:
            return await client.execute_update_with_start_workflow(
                update,
                arg,
                start_workflow_operation=start,
                id=update_id,
                rpc_timeout=rpc_timeout,
                result_type=result_type,
            )
        finally:
            _retrieve_start_error(start)
    except WorkflowUpdateFailedError as error:
        raise refusal(error) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise NotAnswered from None
    except RPCError as error:
        if error.status in NOT_TAKEN:
            raise await not_taken(client.get_workflow_handle(workflow_id), error) from None
        raise rpc_error(error) from None


def _retrieve_start_error(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Mark the start operation's own outcome as seen. The SDK sets the start's error on a future
    only `start.workflow_handle()` awaits; an error nobody awaits (the call's own error says it
    all) is logged as "Future exception was never retrieved" when the future is collected, and a
    collection inside CPython 3.11's AST builder breaks it (gh-106905)."""
    outcome = start._workflow_handle  # the SDK keeps the start's error only there
    if outcome.done() and not outcome.cancelled():
        outcome.exception()


async def _status(handle: WorkflowHandle[Any, Any], rpc_timeout: Any) -> int | None:
    """The latest run's status, or None when there is no such workflow."""
    try:
        description = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return int(description.raw_description.workflow_execution_info.status)


async def query(handle: WorkflowHandle[Any, Any], query_fn: Any, *args: Any, rpc_timeout: Any) -> Any:
    """A workflow's query. One not answered within `EARLY_LOOK_SECONDS` is looked into at once:
    Temporal holds a query until a worker takes the workflow's next task, which for a workflow
    whose task keeps failing means until the query times out; that is said at once instead."""
    asked = asyncio.ensure_future(handle.query(query_fn, *args, rpc_timeout=rpc_timeout))
    try:
        await asyncio.wait({asked}, timeout=EARLY_LOOK_SECONDS)
        if not asked.done() and await is_failing(handle, _diagnosis_timeout(rpc_timeout)):
            raise workflow_failing(handle.id)
        return await asked
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise Gone(completed=False) from None
        if error.status in (
            RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.CANCELLED,
            RPCStatusCode.FAILED_PRECONDITION,  # "workflow task in failed state"
        ):
            raise await diagnose(handle, _diagnosis_timeout(rpc_timeout)) from None
        raise rpc_error(error) from None
    except WorkflowQueryFailedError as error:
        # The query handler itself raised: a bug in this workflow, not an outage.
        log.error("query on %s failed: %s", handle.id, error)
        raise workflow_failing(handle.id) from None
    finally:
        asked.cancel()  # nothing, once it answered


def _diagnosis_timeout(rpc_timeout: Any) -> timedelta:
    configured = rpc_timeout.total_seconds() if isinstance(rpc_timeout, timedelta) else 5.0
    return timedelta(seconds=diagnosis_budget(configured))
