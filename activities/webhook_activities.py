"""The incident's webhooks lane: hand one event to the incident's webhooks workflow.

Which subscriptions want the event is read from the owners' memo (the incident's playbook
and team; `describe`, answered by Temporal's store without a worker); when any does, the
event goes to the incident's `IncidentWebhooksWorkflow` by signal-with-start, which delivers
it. An incident without subscriptions costs two reads per event and starts nothing. A retried
attempt sends the same event again; that workflow ignores a number it already took.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.webhooks import (
    EventsArrived,
    ForwardEvent,
    IncidentWebhooksState,
    OwnerKind,
    SubscriptionFilter,
    WebhookConfig,
    WebhookOwner,
    incident_webhooks_workflow_id,
)

# The owner workflow's memo entry listing its subscriptions' ids and events (never secrets).
SUBSCRIPTIONS_MEMO = "subscriptions"
# By name: activities do not import workflows.
INCIDENT_WEBHOOKS_WORKFLOW = "IncidentWebhooksWorkflow"
EVENTS_ARRIVED_SIGNAL = "events_arrived"


class WebhookActivities:
    def __init__(self, client: Client, *, task_queue: str, config: WebhookConfig) -> None:
        self._client = client
        self._task_queue = task_queue
        self._config = config

    def all(self) -> list[Callable[..., Any]]:
        return [self.forward_webhook_event]

    async def _wanting(self, owner: WebhookOwner, event_type: str) -> dict[str, str]:
        """The owner's subscriptions that want this event type: id -> the owner's workflow id."""
        handle = self._client.get_workflow_handle(owner.workflow_id)
        try:
            described = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return {}
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return {}
        filters: list[SubscriptionFilter] = await described.memo_value(
            SUBSCRIPTIONS_MEMO, [], type_hint=list[SubscriptionFilter]
        )
        return {f.id: owner.workflow_id for f in filters if f.wants(event_type)}

    @activity.defn
    async def forward_webhook_event(self, forward: ForwardEvent) -> int:
        """How many subscriptions the event went to (0: none wants it, nothing was started)."""
        owners = [WebhookOwner(kind=OwnerKind.TEAM, id=forward.team_id)]
        if forward.playbook_id:
            owners.insert(0, WebhookOwner(kind=OwnerKind.PLAYBOOK, id=forward.playbook_id))
        targets: dict[str, str] = {}
        for owner in owners:
            targets.update(await self._wanting(owner, forward.event.type))
        if not targets:
            return 0
        await self._client.start_workflow(
            INCIDENT_WEBHOOKS_WORKFLOW,
            IncidentWebhooksState(incident_id=forward.incident_id, config=self._config),
            id=incident_webhooks_workflow_id(forward.incident_id),
            task_queue=self._task_queue,
            start_signal=EVENTS_ARRIVED_SIGNAL,
            start_signal_args=[EventsArrived(event=forward.event, targets=targets, config=self._config)],
            static_summary=f"Webhooks of incident {forward.incident_id}",
        )
        return len(targets)
