"""What people are told when the service, or one incident, cannot do what they asked.

Two different situations, two different messages: the service is unavailable (Temporal
unreachable, no worker running: try again in a minute), or one incident's workflow is
failing (a bug or a broken deployment: only an admin can help, and needs the incident id).
A request Temporal refuses as invalid is neither, and is never reported as an outage.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

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
SERVICE_UNAVAILABLE = "The incident service is unavailable right now. Try again in a minute."
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
        f"{what} has a problem: its workflow is failing, so it cannot take changes or be read now. "
        f"Tell your Mattermost or incident tool admin ({kind} id {short_id}).",
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
    """Why a workflow did not answer an update or query in time.

    A workflow task that keeps failing (attempt > 1) is a broken incident; anything else,
    including not being able to ask, is unavailability (Temporal down, no worker running).
    """
    try:
        description = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return ServiceError(404, "not_found", "Incident not found.")
        return unavailable()
    raw = description.raw_description
    if raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt > 1:
        log.error("workflow %s is failing (workflow task attempt %d)", handle.id, raw.pending_workflow_task.attempt)
        return workflow_failing(handle.id)
    return unavailable()
