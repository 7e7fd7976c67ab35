"""Webhook subscriptions for the REST API and the backstage: create, list, read, change,
rotate the secret, delete, deliveries, redeliver.

A playbook's subscriptions are for the people who may edit the playbook, a team's for its
admins (and system admins); anyone else is told "not found", whether or not it exists. The
secret is made here (never in a workflow), shown in the creation's and the rotation's answer
only, and kept sealed in the owner's workflow (`payload_sealing`). URLs are checked against
the safe-target rules (`webhook_targets`) on every save, and again before every delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from models.common import SHORT_ID, Actor, new_short_id, short_id_from
from models.webhooks import (
    CreateSubscription,
    DeleteSubscription,
    DeliveryRecord,
    OwnerKind,
    Redeliver,
    RotateSecret,
    Subscription,
    SubscriptionPublic,
    SubscriptionSpec,
    SubscriptionsState,
    SubscriptionView,
    UpdateSubscription,
    WebhookOwner,
    incident_webhooks_workflow_id,
    new_secret,
)
from service import integrations, playbooks
from service.container import Services
from service.errors import ServiceError, invalid, not_found
from service.pagination import Page, PageParams, paginate
from service.temporal_calls import Gone, execute_update, execute_update_with_start, query, update_or_not_found
from webhook_targets import TargetRefused, vet_target
from workflows.incident_webhooks_workflow import IncidentWebhooksWorkflow
from workflows.webhook_subscriptions_workflow import WebhookSubscriptionsWorkflow


async def owner_for(svc: Services, actor: Actor, kind: OwnerKind, owner_id: str) -> tuple[WebhookOwner, str]:
    """The owner and its team, if the actor may manage its webhooks; else "not found"."""
    if kind == OwnerKind.PLAYBOOK:
        playbook = await playbooks.get_playbook(svc, actor, owner_id)
        return WebhookOwner(kind=kind, id=playbook.id), playbook.team_id
    if not await integrations.may_manage(svc, actor, owner_id):
        raise not_found("Team")
    return WebhookOwner(kind=kind, id=owner_id), owner_id


async def may_manage(svc: Services, actor: Actor, kind: OwnerKind, owner_id: str) -> bool:
    """Whether a face should offer the way to these webhooks."""
    try:
        await owner_for(svc, actor, kind, owner_id)
    except ServiceError:
        return False
    return True


def _handle(svc: Services, owner: WebhookOwner) -> WorkflowHandle[Any, Any]:
    return svc.temporal.get_workflow_handle(owner.workflow_id)


async def _vet(svc: Services, url: str) -> None:
    try:
        await vet_target(url, svc.settings.webhook_networks)
    except TargetRefused as refused:
        raise invalid(f"url: {refused}", {"url": str(refused)}) from None


def _view(subscription: SubscriptionPublic, secret: str | None = None) -> SubscriptionView:
    public = subscription.public() if isinstance(subscription, Subscription) else subscription
    return SubscriptionView(**public.model_dump(), secret=secret)


async def create_subscription(
    svc: Services,
    actor: Actor,
    kind: OwnerKind,
    owner_id: str,
    spec: SubscriptionSpec,
    *,
    idempotency_key: str | None = None,
) -> SubscriptionView:
    """A new subscription and its secret (in this answer only). The same `Idempotency-Key`
    again names the same subscription and makes nothing more (its secret is not shown again)."""
    owner, team_id = await owner_for(svc, actor, kind, owner_id)
    await _vet(svc, spec.url)
    subscription_id = (
        short_id_from(f"webhook:{owner.workflow_id}:{actor.user_id}:{idempotency_key}")
        if idempotency_key
        else new_short_id()
    )
    secret = new_secret()
    now = datetime.now(UTC)
    subscription = Subscription(
        **dict(spec),
        id=subscription_id,
        owner=owner,
        team_id=team_id,
        created_at=now,
        created_by=actor.user_id,
        updated_at=now,
        secret=secret,
        secret_hint=secret[-4:],
    )
    operation = WithStartWorkflowOperation(
        WebhookSubscriptionsWorkflow.run,
        SubscriptionsState(owner=owner, team_id=team_id),
        id=owner.workflow_id,
        task_queue=svc.settings.temporal_task_queue,
        static_summary=f"Webhook subscriptions of {owner.kind.value} {owner.id}",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    made: Subscription = await execute_update_with_start(
        svc.temporal,
        WebhookSubscriptionsWorkflow.create_subscription,
        CreateSubscription(actor=actor, subscription=subscription),
        start=operation,
        workflow_id=owner.workflow_id,
        rpc_timeout=svc.rpc_timeout,
        result_type=Subscription,
    )
    return _view(made, secret if made.secret == secret else None)


async def list_subscriptions(svc: Services, actor: Actor, kind: OwnerKind, owner_id: str) -> list[SubscriptionPublic]:
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    try:
        found: list[SubscriptionPublic] = await query(
            _handle(svc, owner), WebhookSubscriptionsWorkflow.list_subscriptions, rpc_timeout=svc.rpc_timeout
        )
    except Gone:
        return []
    return found


async def get_subscription(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, subscription_id: str
) -> SubscriptionPublic:
    for subscription in await list_subscriptions(svc, actor, kind, owner_id):
        if subscription.id == subscription_id:
            return subscription
    raise not_found("Webhook")


async def _change(svc: Services, owner: WebhookOwner, update: Any, command: Any, result_type: type) -> Any:
    if not SHORT_ID.match(getattr(command, "subscription_id", "")):
        raise not_found("Webhook")
    return await update_or_not_found(
        _handle(svc, owner), update, command, what="Webhook", rpc_timeout=svc.rpc_timeout, result_type=result_type
    )


async def update_subscription(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, subscription_id: str, spec: SubscriptionSpec
) -> SubscriptionView:
    """Change the URL, events and description; what waits to be delivered goes to the new URL."""
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    await _vet(svc, spec.url)
    command = UpdateSubscription(actor=actor, subscription_id=subscription_id, spec=spec, updated_at=datetime.now(UTC))
    changed = await _change(svc, owner, WebhookSubscriptionsWorkflow.update_subscription, command, SubscriptionPublic)
    return _view(changed)


async def rotate_secret(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, subscription_id: str
) -> SubscriptionView:
    """A new secret, in this answer only; the previous one also signs for a day (both signatures
    are sent), so a receiver can switch to the new one without missing a delivery."""
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    secret = new_secret()
    command = RotateSecret(actor=actor, subscription_id=subscription_id, secret=secret, at=datetime.now(UTC))
    changed: Subscription = await _change(svc, owner, WebhookSubscriptionsWorkflow.rotate_secret, command, Subscription)
    return _view(changed, secret)


async def delete_subscription(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, subscription_id: str
) -> None:
    """Delete: nothing more is sent to it, including what waits."""
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    command = DeleteSubscription(actor=actor, subscription_id=subscription_id)
    await _change(svc, owner, WebhookSubscriptionsWorkflow.delete_subscription, command, SubscriptionPublic)


async def _records(svc: Services, owner: WebhookOwner, subscription_id: str) -> list[DeliveryRecord]:
    try:
        records: list[DeliveryRecord] | None = await query(
            _handle(svc, owner), WebhookSubscriptionsWorkflow.deliveries, subscription_id, rpc_timeout=svc.rpc_timeout
        )
    except Gone:
        records = None
    if records is None:
        raise not_found("Webhook")
    return records


async def deliveries(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, subscription_id: str, params: PageParams
) -> Page[DeliveryRecord]:
    """The subscription's deliveries, newest first (the last 1,000)."""
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    records = await _records(svc, owner, subscription_id)
    order = {record.delivery_id: index for index, record in enumerate(records)}
    return paginate(records, lambda r: order[r.delivery_id], params)


async def redeliver(
    svc: Services,
    actor: Actor,
    kind: OwnerKind,
    owner_id: str,
    subscription_id: str,
    event_id: str,
    *,
    and_later: bool,
) -> int:
    """Send one event again (`and_later`: it and every later one of its incident), with the same
    ids and seqs; how many were queued."""
    owner, _ = await owner_for(svc, actor, kind, owner_id)
    records = await _records(svc, owner, subscription_id)
    record = next((r for r in records if r.event_id == event_id), None)
    if record is None:
        raise not_found("Delivery")
    handle = svc.temporal.get_workflow_handle(incident_webhooks_workflow_id(record.incident_id))
    try:
        queued: int = await execute_update(
            handle,
            IncidentWebhooksWorkflow.redeliver,
            Redeliver(actor=actor, subscription_id=subscription_id, event_id=event_id, only=not and_later),
            rpc_timeout=svc.rpc_timeout,
        )
    except Gone:
        raise ServiceError(
            404,
            "not_found",
            "This event is no longer kept: an incident's events are kept 7 days after its last delivery.",
        ) from None
    return queued
