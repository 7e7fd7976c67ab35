"""What people are told when the service, or one incident, cannot do what they asked.

Every such answer is true about what happened to the request: "nothing was changed" only
when nothing reached Temporal, or Temporal refused to take it. Three situations: the
service is unavailable (Temporal unreachable: try again in a minute); the incident is busy
(its workflow task timed out, a worker restarting or overloaded: try again in a moment);
or one incident's workflow is failing (a bug or a broken deployment: only an admin can
help, and needs the incident id). A request Temporal took but did not answer in time is
none of these: it is pending (`service.command_follow_ups`). A request Temporal refuses as
invalid is not an outage either.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from service.errors import ServiceError

log = logging.getLogger(__name__)

# Codes that mean "Temporal could not be reached or did not answer in time".
OUTAGE_CODES = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAVAILABLE,
    }
)
SERVICE_UNAVAILABLE = "The incident service is unavailable right now; nothing was changed. Try again in a minute."
INCIDENT_BUSY = (
    "The incident is busy right now and did not take your command; nothing was changed. Try again in a moment."
)
MATTERMOST_UNAVAILABLE = "The incident service cannot reach Mattermost right now. Try again in a minute."
UNEXPECTED = "Something went wrong on our side; it has been logged. Try again, or tell your admin if it persists."


def is_outage(error: RPCError) -> bool:
    return error.status in OUTAGE_CODES


def unavailable() -> ServiceError:
    return ServiceError(503, "temporal_unavailable", SERVICE_UNAVAILABLE)


def workflow_failing(workflow_id: str) -> ServiceError:
    kind, _, short_id = workflow_id.partition("-")
    what = f"This {kind}" if kind in ("incident", "playbook") else "This"
    return ServiceError(
        500,
        "workflow_failing",
        f"{what} has a problem: its workflow is failing, so it cannot take changes or be read now; "
        f"nothing was changed. Tell your Mattermost or incident tool admin ({kind} id {short_id}).",
    )


def rpc_error(error: RPCError) -> ServiceError:
    """The API error for a Temporal call that failed outright."""
    if is_outage(error):
        log.warning("Temporal unavailable: %s", error)
        return unavailable()
    if error.status == RPCStatusCode.INVALID_ARGUMENT:
        # Our request was malformed (e.g. a visibility query): not an outage, and retrying
        # the same request would fail the same way.
        log.error("Temporal refused a request as invalid: %s", error)
        return ServiceError(422, "validation_error", f"Temporal refused the request as invalid: {error.message}")
    log.error("Temporal call failed: %s", error)
    return ServiceError(500, "internal_error", UNEXPECTED)


async def diagnose(handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta) -> ServiceError:
    """Why a workflow did not answer a read in time, or would not take an update.

    A workflow task retried after it failed is a broken incident; one retried after it timed
    out is a busy one (a worker overloaded or just killed); anything else, including not
    being able to ask, is unavailability.
    """
    try:
        retried, failed = await _task_state(handle, rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return ServiceError(404, "not_found", "Incident not found.")
        return unavailable()
    if retried:
        if failed:
            log.error("workflow %s is failing (its workflow task is retried after failing)", handle.id)
            return workflow_failing(handle.id)
        return busy()
    return unavailable()


async def is_failing(handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta) -> bool:
    """Whether the workflow's task is being retried after failing (False when Temporal cannot tell now)."""
    try:
        retried, failed = await _task_state(handle, rpc_timeout)
    except RPCError:
        return False
    return retried and failed


async def _task_state(handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta) -> tuple[bool, bool]:
    """Whether the workflow task is being retried, and whether its latest attempt on record
    failed (rather than timed out). Both are asked at once: the answer must fit in what is
    left of a slash command's few seconds."""
    described, failed = await asyncio.gather(
        handle.describe(rpc_timeout=rpc_timeout), _last_task_failed(handle, rpc_timeout)
    )
    raw = described.raw_description
    return raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt > 1, failed


async def not_taken(handle: WorkflowHandle[Any, Any], error: RPCError) -> ServiceError:
    """Temporal would not take an update (the workflow task is failing or timing out, or too many
    updates are in flight): not applied, and why."""
    log.warning("Temporal did not take an update on %s: %s", handle.id, error)
    diagnosed = await diagnose(handle, timedelta(seconds=2))
    return diagnosed if diagnosed.code == "workflow_failing" else busy()


def busy() -> ServiceError:
    return ServiceError(503, "incident_busy", INCIDENT_BUSY)


async def _last_task_failed(handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta) -> bool:
    """Whether the workflow's latest task attempt on record failed (rather than timed out).

    Read from the end of the history (the SDK's handle offers no reverse read, hence its client)."""
    request = GetWorkflowExecutionHistoryReverseRequest(
        namespace=handle._client.namespace,
        execution=WorkflowExecution(workflow_id=handle.id),
        maximum_page_size=20,
    )
    try:
        history = await handle._client.workflow_service.get_workflow_execution_history_reverse(
            request, timeout=rpc_timeout
        )
    except RPCError:
        return False
    for event in history.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            return True
        if event.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        ):
            return False
    return False
