"""`SignedOutSessionsWorkflow`: one shard of the backstage sessions that were signed out.

Every API process asks it, on every backstage page view, whether the visitor's session
was signed out (a query: one dictionary lookup), and records a sign-out with an update
(sent with update-with-start, so a shard exists from its first sign-out on). An update
rather than a signal: the sign-out page says "signed out" only once the record is
applied, and a query after it, in any process, sees it. See `models/signed_out_sessions.py`
for what is kept and for how long.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.signed_out_sessions import SignedOutSessions, SignOut, prune_expired, record_sign_out


def _now() -> int:
    return int(workflow.now().timestamp())


@workflow.defn
class SignedOutSessionsWorkflow:
    @workflow.init
    def __init__(self, state: SignedOutSessions) -> None:
        self.state = state

    @workflow.run
    async def run(self, state: SignedOutSessions) -> None:
        workflow.set_current_details(f"Signed-out backstage sessions, shard {state.shard}")
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Pruned only here: the entries a run adds are bounded by its history's length,
        # and each update stays one dictionary write however many sessions are kept.
        prune_expired(self.state, _now())
        workflow.continue_as_new(self.state)

    @workflow.update
    def end_session(self, sign_out: SignOut) -> None:
        record_sign_out(self.state, sign_out, _now())

    @workflow.query
    def has_ended(self, session_hash: str) -> bool:
        return session_hash in self.state.ended_until
