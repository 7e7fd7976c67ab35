"""`IntegrationWorkflow`: an integration is a long-lived entity workflow, like a playbook.

Creating one is an update-with-start whose rules (`integration_rules`) run on the facts it
is started with; a refused one closes at once and reads as not found. Changes are Updates
whose validators run the same rules, so the history is the audit log of every change and a
refused change leaves no trace. Deliveries (what became of each notification received)
arrive as signals; the last `DELIVERIES_KEPT` are kept. Deleting completes the workflow.
The state holds the token's hash only, never the token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models.integration import (
        DELIVERIES_KEPT,
        DeleteIntegration,
        Delivery,
        Integration,
        IntegrationCommand,
        IntegrationState,
        OpenIntegration,
        RotateToken,
        UpdateIntegration,
        summarize,
    )
    from models.refusals import not_found
    from workflows.integration_rules import NOT_FOUND, check_admin, check_spec

SUMMARY_MEMO = "summary"
# The integration as stored (its token's hash included, never the token): what the intake
# reads with `describe`, which Temporal answers from its store without asking a worker, so a
# storm of notifications never queues queries on this workflow; a rotation or deletion is
# seen by the next notification, since the memo changes with the update that makes it.
INTEGRATION_MEMO = "integration"


@workflow.defn
class IntegrationWorkflow:
    @workflow.init
    def __init__(self, start: IntegrationState) -> None:
        self.state = start
        self.refusal: ApplicationError | None = None
        self._memo: dict[str, Any] = {}

    @workflow.run
    async def run(self, start: IntegrationState) -> IntegrationState:
        while True:
            self._refresh_view()
            await workflow.wait_condition(self._changed_since(self.state.integration.version))
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self.state.deleted or self.refusal is not None:
                return self.state
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(self.state)

    def _changed_since(self, version: int) -> Callable[[], bool]:
        return lambda: (
            self.state.deleted
            or self.refusal is not None
            or self.state.integration.version != version
            or workflow.info().is_continue_as_new_suggested()
        )

    def _refresh_view(self) -> None:
        integration = self.state.integration
        workflow.upsert_search_attributes([sa.INTEGRATION_TEAM_ID.value_set(integration.team_id)])
        memo = {
            SUMMARY_MEMO: summarize(integration).model_dump(mode="json"),
            INTEGRATION_MEMO: integration.model_dump(mode="json"),
        }
        if memo != self._memo:
            workflow.upsert_memo(memo)
            self._memo = memo
        workflow.set_current_details(
            f"**{integration.name}** ({integration.kind.value}, version {integration.version}) · "
            f"{len(integration.routes)} routes · token ending …{integration.token_hint}"
        )

    @workflow.query
    def get_integration(self) -> IntegrationState:
        return self.state

    def _check(self, command: IntegrationCommand) -> None:
        if self.state.deleted or self.refusal is not None:
            raise not_found(NOT_FOUND)
        check_admin(command)

    # ------------------------------------------------------------------ changes

    @workflow.update
    def open_integration(self, command: OpenIntegration) -> Integration:
        """The answer to the start: the integration, or the rule that refused it (nothing made)."""
        try:
            check_admin(command)
            check_spec(command, self.state.integration)
        except ApplicationError as refusal:
            self.refusal = refusal
            raise
        return self.state.integration

    @workflow.update
    def update_integration(self, command: UpdateIntegration) -> Integration:
        current = self.state.integration
        self.state.integration = current.model_copy(
            update={**dict(command.spec), "version": current.version + 1, "updated_at": command.updated_at}
        )
        return self.state.integration

    @update_integration.validator
    def _check_update(self, command: UpdateIntegration) -> None:
        self._check(command)
        check_spec(command, command.spec)

    @workflow.update
    def rotate_token(self, command: RotateToken) -> Integration:
        current = self.state.integration
        self.state.integration = current.model_copy(
            update={
                "token_sha256": command.token_sha256,
                "token_hint": command.token_hint,
                "version": current.version + 1,
                "updated_at": command.updated_at,
            }
        )
        return self.state.integration

    @rotate_token.validator
    def _check_rotate(self, command: RotateToken) -> None:
        self._check(command)

    @workflow.update
    def delete_integration(self, command: DeleteIntegration) -> Integration:
        self.state.deleted = True
        return self.state.integration

    @delete_integration.validator
    def _check_delete(self, command: DeleteIntegration) -> None:
        self._check(command)

    # ------------------------------------------------------------------ deliveries

    @workflow.signal
    def record_deliveries(self, deliveries: list[Delivery]) -> None:
        """What became of the notifications an API process received in the last moment."""
        self.state.deliveries.extend(deliveries)
        del self.state.deliveries[:-DELIVERIES_KEPT]
