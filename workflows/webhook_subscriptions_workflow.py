"""`WebhookSubscriptionsWorkflow`: one owner's (a playbook's or a team's) webhook subscriptions.

An entity workflow like a playbook: changes are Updates whose validators refuse what cannot
be done (no trace in history), so the history is the audit log of every change. It is the
only place a subscription's secret lives; every payload carrying one is sealed by the payload
codec (`payload_sealing`). The delivery activity reads the URL and secrets with a query
(`target_for_delivery`: queries are never in history). The memo lists each subscription's id
and events (no secret, no URL) for the incidents' webhooks lanes, which read it with
`describe`. Deliveries (reported by the incidents' webhooks workflows) are kept per
subscription, the newest `DELIVERY_LOG_KEPT`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.refusals import invalid, not_found
    from models.webhooks import (
        DELIVERY_LOG_KEPT,
        ROTATION_OVERLAP_SECONDS,
        SUBSCRIPTIONS_MAX,
        CreateSubscription,
        DeleteSubscription,
        DeliveryRecord,
        DeliveryReport,
        OwnerKind,
        RotateSecret,
        Subscription,
        SubscriptionFilter,
        SubscriptionPublic,
        SubscriptionsState,
        TargetForDelivery,
        UpdateSubscription,
    )

SUBSCRIPTIONS_MEMO = "subscriptions"
NOT_FOUND = "Webhook not found."


@workflow.defn
class WebhookSubscriptionsWorkflow:
    @workflow.init
    def __init__(self, start: SubscriptionsState) -> None:
        self.state = start
        self._memo: dict[str, Any] = {}

    @workflow.run
    async def run(self, start: SubscriptionsState) -> None:
        # Every change refreshes the memo and details in its own handler; the run only keeps
        # the history short (deliveries arrive as signals).
        self._refresh_view()
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.state)

    def _refresh_view(self) -> None:
        subscriptions = self.state.subscriptions
        memo = {SUBSCRIPTIONS_MEMO: [SubscriptionFilter(id=s.id, events=s.events).model_dump() for s in subscriptions]}
        if memo != self._memo:
            # In the same workflow task as the change: the next event's lane reads it.
            workflow.upsert_memo(memo)
            self._memo = memo
        owner = "playbook" if self.state.owner.kind == OwnerKind.PLAYBOOK else "team"
        lines = [f"**Webhooks of {owner} {self.state.owner.id}**: {len(subscriptions)} subscriptions"]
        lines += [f"- `{s.id}` {', '.join(s.events)[:120]}" for s in subscriptions]
        workflow.set_current_details("\n".join(lines))

    def _changed(self) -> None:
        self._refresh_view()

    def _find(self, subscription_id: str) -> Subscription:
        found = next((s for s in self.state.subscriptions if s.id == subscription_id), None)
        if found is None:
            raise not_found(NOT_FOUND)
        return found

    # ------------------------------------------------------------------ reads

    @workflow.query
    def list_subscriptions(self) -> list[SubscriptionPublic]:
        return [s.public() for s in self.state.subscriptions]

    @workflow.query
    def deliveries(self, subscription_id: str) -> list[DeliveryRecord] | None:
        """The subscription's deliveries, newest first (None: no such subscription)."""
        if not any(s.id == subscription_id for s in self.state.subscriptions):
            return None
        return list(reversed(self.state.log.get(subscription_id, [])))

    @workflow.query
    def target_for_delivery(self, subscription_id: str) -> TargetForDelivery | None:
        """Where and with which secrets to send (None: deleted). After a rotation the previous
        secret signs too, for ROTATION_OVERLAP_SECONDS, so receivers can switch without a gap."""
        found = next((s for s in self.state.subscriptions if s.id == subscription_id), None)
        if found is None:
            return None
        secrets = [found.secret]
        until = found.previous_secret_until
        if found.previous_secret and until is not None and workflow.now() < until:
            secrets.append(found.previous_secret)
        return TargetForDelivery(url=found.url, secrets=secrets)

    # ------------------------------------------------------------------ changes

    @workflow.update
    def create_subscription(self, command: CreateSubscription) -> Subscription:
        """The new subscription; the same id again (a repeated request) answers the one made."""
        made = command.subscription
        existing = next((s for s in self.state.subscriptions if s.id == made.id), None)
        if existing is not None:
            return existing
        self.state.subscriptions.append(made)
        self._changed()
        return made

    @create_subscription.validator
    def _check_create(self, command: CreateSubscription) -> None:
        if any(s.id == command.subscription.id for s in self.state.subscriptions):
            return
        if len(self.state.subscriptions) >= SUBSCRIPTIONS_MAX:
            raise invalid(
                f"A {self.state.owner.kind.value} has at most {SUBSCRIPTIONS_MAX} webhook subscriptions; "
                "delete one first, or subscribe one URL to more events."
            )

    @workflow.update
    def update_subscription(self, command: UpdateSubscription) -> SubscriptionPublic:
        current = self._find(command.subscription_id)
        changed = current.model_copy(
            update={**dict(command.spec), "version": current.version + 1, "updated_at": command.updated_at}
        )
        self._replace(changed)
        return changed.public()

    @update_subscription.validator
    def _check_update(self, command: UpdateSubscription) -> None:
        self._find(command.subscription_id)

    @workflow.update
    def rotate_secret(self, command: RotateSecret) -> Subscription:
        current = self._find(command.subscription_id)
        changed = current.model_copy(
            update={
                "secret": command.secret,
                "previous_secret": current.secret,
                "previous_secret_until": command.at + timedelta(seconds=ROTATION_OVERLAP_SECONDS),
                "secret_hint": command.secret[-4:],
                "version": current.version + 1,
                "updated_at": command.at,
            }
        )
        self._replace(changed)
        return changed

    @rotate_secret.validator
    def _check_rotate(self, command: RotateSecret) -> None:
        self._find(command.subscription_id)

    @workflow.update
    def delete_subscription(self, command: DeleteSubscription) -> SubscriptionPublic:
        gone = self._find(command.subscription_id)
        self.state.subscriptions = [s for s in self.state.subscriptions if s.id != gone.id]
        self.state.log.pop(gone.id, None)
        self._changed()
        return gone.public()

    @delete_subscription.validator
    def _check_delete(self, command: DeleteSubscription) -> None:
        self._find(command.subscription_id)

    def _replace(self, changed: Subscription) -> None:
        self.state.subscriptions = [changed if s.id == changed.id else s for s in self.state.subscriptions]
        self._changed()

    # ------------------------------------------------------------------ deliveries

    @workflow.signal
    def record_delivery(self, report: DeliveryReport) -> None:
        """A delivery as it now stands (replacing its earlier report)."""
        if not any(s.id == report.subscription_id for s in self.state.subscriptions):
            return
        log = self.state.log.setdefault(report.subscription_id, [])
        for index in range(len(log) - 1, -1, -1):
            if log[index].delivery_id == report.record.delivery_id:
                log[index] = report.record
                return
        log.append(report.record)
        del log[:-DELIVERY_LOG_KEPT]
