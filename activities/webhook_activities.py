"""The incident's webhooks lane: hand its waiting events to the incident's webhooks workflow.

Which subscriptions want the event is read from the owners' memo (the incident's playbook
and team; `describe`, answered by Temporal's store without a worker); when any does, the
events go to the incident's `IncidentWebhooksWorkflow` by signal-with-start, which delivers
them. The lane hands over what waits at once (a burst of changes is one activity). An incident
without subscriptions costs two reads per handover and starts nothing. A retried attempt sends
the same events again; that workflow ignores a number it already took.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from models.webhooks import (
    ArrivedEvent,
    EventsArrived,
    Forwarded,
    ForwardEvents,
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
        return [self.forward_webhook_events]

    async def _filters(self, owner: WebhookOwner) -> list[SubscriptionFilter]:
        """The owner's subscriptions' ids and events, from its memo (none: no such owner)."""
        handle = self._client.get_workflow_handle(owner.workflow_id)
        try:
            described = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return []
            raise
        if described.status != WorkflowExecutionStatus.RUNNING:
            return []
        filters: list[SubscriptionFilter] = await described.memo_value(
            SUBSCRIPTIONS_MEMO, [], type_hint=list[SubscriptionFilter]
        )
        return filters

    @activity.defn
    async def forward_webhook_events(self, forward: ForwardEvents) -> Forwarded:
        """How many events went to each subscription (none: none wants any, nothing was started)."""
        owners = [WebhookOwner(kind=OwnerKind.TEAM, id=forward.team_id)]
        if forward.playbook_id:
            owners.insert(0, WebhookOwner(kind=OwnerKind.PLAYBOOK, id=forward.playbook_id))
        subscribed = [(owner, await self._filters(owner)) for owner in owners]
        arrived = [
            ArrivedEvent(
                event=event,
                targets={
                    f.id: owner.workflow_id for owner, filters in subscribed for f in filters if f.wants(event.type)
                },
            )
            for event in forward.events
        ]
        wanted = [a for a in arrived if a.targets]
        if not wanted:
            return Forwarded()
        await self._client.start_workflow(
            INCIDENT_WEBHOOKS_WORKFLOW,
            IncidentWebhooksState(incident_id=forward.incident_id, config=self._config),
            id=incident_webhooks_workflow_id(forward.incident_id),
            task_queue=self._task_queue,
            start_signal=EVENTS_ARRIVED_SIGNAL,
            start_signal_args=[EventsArrived(events=wanted, config=self._config, handed_before=forward.handed_before)],
            static_summary=f"Webhooks of incident {forward.incident_id}",
        )
        handed: dict[str, int] = {}
        for item in wanted:
            for subscription_id in item.targets:
                handed[subscription_id] = handed.get(subscription_id, 0) + 1
        return Forwarded(handed=handed)
