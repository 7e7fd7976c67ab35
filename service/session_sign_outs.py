"""Ending backstage sessions in every API process, through Temporal (the only shared store).

Fails closed: when Temporal cannot say whether a session was signed out, the page is not
shown (503, "try again in a minute"), and a sign-out Temporal did not record is reported
as not done, so the person can sign out again rather than believe they have.
"""

from __future__ import annotations

import math

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from models.signed_out_sessions import SignedOutSessions, SignOut, session_hash, signed_out_workflow_id
from service.container import Services
from service.temporal_calls import Gone, execute_update_with_start, query
from workflows.signed_out_sessions_workflow import SignedOutSessionsWorkflow


async def end_session(svc: Services, session_id: str, expires_at: float) -> None:
    """Record that the session is over; every process refuses its cookie from now on."""
    hashed = session_hash(session_id)
    workflow_id = signed_out_workflow_id(hashed)
    start = WithStartWorkflowOperation(
        SignedOutSessionsWorkflow.run,
        SignedOutSessions(shard=hashed[0]),
        id=workflow_id,
        task_queue=svc.settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Signed-out backstage sessions, shard {hashed[0]}",
    )
    await execute_update_with_start(
        svc.temporal,
        SignedOutSessionsWorkflow.end_session,
        SignOut(session_hash=hashed, expires_at=math.ceil(expires_at)),
        start=start,
        workflow_id=workflow_id,
        rpc_timeout=svc.rpc_timeout,
        # Signing out twice (a resent form) records it once.
        update_id=f"sign-out-{hashed}",
    )


async def has_ended(svc: Services, session_id: str) -> bool:
    hashed = session_hash(session_id)
    handle = svc.temporal.get_workflow_handle(signed_out_workflow_id(hashed))
    try:
        ended = await query(handle, SignedOutSessionsWorkflow.has_ended, hashed, rpc_timeout=svc.rpc_timeout)
    except Gone:  # no session of this shard was ever signed out
        return False
    return bool(ended)
