"""`/api/v1/playbooks/{id}/webhooks` and `/api/v1/teams/{id}/webhooks`: outgoing webhook
subscriptions (create, list, read, change, rotate the secret, delete, deliveries, redeliver).

Both owners have the same routes (one declaration, `_owner_routes`); a playbook's are for the
people who may edit it, a team's for its admins; others get 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.dependencies import IdempotencyKey, current_user, page_params, services
from api.http_errors import error_responses
from models.common import Actor
from models.webhooks import (
    DeliveryRecord,
    ImportedWebhooks,
    OwnerKind,
    SubscriptionPublic,
    SubscriptionSpec,
    SubscriptionView,
)
from service import webhook_subscriptions as webhooks
from service import webhook_yaml
from service.container import Services
from service.errors import ServiceError
from service.pagination import Page, PageParams

WebhookId = Annotated[str, Path(description="Webhook subscription id", max_length=64)]
EventId = Annotated[str, Path(description="The event's id (its `webhook-id`)", max_length=128)]
OwnerId = Annotated[str, Path(description="The playbook's id, or the team's Mattermost id", max_length=64)]
Caller = Annotated[Actor, Depends(current_user)]
YAML_TEXT = {"schema": {"type": "string"}}
Svc = Annotated[Services, Depends(services)]


class RedeliverRequest(BaseModel):
    and_later: bool = Field(
        default=False, description="Also every later event of the same incident to this webhook, in order"
    )


class Redelivered(BaseModel):
    queued: int = Field(description="How many events were queued again")


def _owner_routes(kind: OwnerKind, owner_path: str) -> APIRouter:
    router = APIRouter(
        prefix=f"/api/v1/{owner_path}/{{owner_id}}/webhooks",
        tags=["webhooks"],
        responses=error_responses(401, 404, 503),
    )
    name = kind.value

    @router.post(
        "",
        status_code=201,
        response_model=SubscriptionView,
        responses=error_responses(422),
        operation_id=f"create_{name}_webhook",
    )
    async def create(
        owner_id: OwnerId,
        body: SubscriptionSpec,
        actor: Caller,
        svc: Svc,
        idempotency_key: IdempotencyKey = None,
    ) -> SubscriptionView:
        """Subscribe a URL to events (`["*"]` for all). The answer holds `secret` (Standard Webhooks,
        `whsec_…`), shown this once: `POST …/{webhook_id}/secret` makes a new one."""
        return await webhooks.create_subscription(svc, actor, kind, owner_id, body, idempotency_key=idempotency_key)

    @router.get("", response_model=list[SubscriptionPublic], operation_id=f"list_{name}_webhooks")
    async def list_all(owner_id: OwnerId, actor: Caller, svc: Svc) -> list[SubscriptionPublic]:
        return await webhooks.list_subscriptions(svc, actor, kind, owner_id)

    # Before `/{webhook_id}`: routes match in order.
    @router.get(
        "/export",
        response_class=Response,
        responses={200: {"description": "The subscriptions as YAML", "content": {"application/yaml": YAML_TEXT}}},
        operation_id=f"export_{name}_webhooks",
    )
    async def export(owner_id: OwnerId, actor: Caller, svc: Svc) -> Response:
        """The subscriptions as YAML (URLs, events, descriptions; never secrets), for `PUT …/import`."""
        return Response(await webhook_yaml.export_yaml(svc, actor, kind, owner_id), media_type="application/yaml")

    @router.put(
        "/import",
        response_model=ImportedWebhooks,
        responses=error_responses(415, 422),
        operation_id=f"import_{name}_webhooks",
        openapi_extra={"requestBody": {"required": True, "content": {"application/yaml": YAML_TEXT}}},
    )
    async def import_(
        owner_id: OwnerId,
        request: Request,
        actor: Caller,
        svc: Svc,
        prune: Annotated[bool, Query(description="Also delete the subscriptions the file does not list")] = False,
    ) -> ImportedWebhooks:
        """Make the subscriptions what the file says, matched by URL: new ones are made (their
        secrets in this answer, shown once), listed ones changed; nothing is applied unless the
        whole file holds (each error on its line)."""
        await webhooks.owner_for(svc, actor, kind, owner_id)
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError(415, "unsupported_media_type", "Send the webhooks file as UTF-8 YAML.") from None
        return await webhook_yaml.import_yaml(svc, actor, kind, owner_id, text, prune=prune)

    @router.get("/{webhook_id}", response_model=SubscriptionPublic, operation_id=f"get_{name}_webhook")
    async def get(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        actor: Caller,
        svc: Svc,
    ) -> SubscriptionPublic:
        return await webhooks.get_subscription(svc, actor, kind, owner_id, webhook_id)

    @router.put(
        "/{webhook_id}",
        response_model=SubscriptionView,
        responses=error_responses(422),
        operation_id=f"update_{name}_webhook",
    )
    async def update(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        body: SubscriptionSpec,
        actor: Caller,
        svc: Svc,
    ) -> SubscriptionView:
        """Change the URL, events and description (events waiting go to the new URL)."""
        return await webhooks.update_subscription(svc, actor, kind, owner_id, webhook_id, body)

    @router.post("/{webhook_id}/secret", response_model=SubscriptionView, operation_id=f"rotate_{name}_webhook_secret")
    async def rotate(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        actor: Caller,
        svc: Svc,
    ) -> SubscriptionView:
        """A new secret, shown this once; the previous one still signs beside it for 24 hours."""
        return await webhooks.rotate_secret(svc, actor, kind, owner_id, webhook_id)

    @router.delete("/{webhook_id}", status_code=204, operation_id=f"delete_{name}_webhook")
    async def delete(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        actor: Caller,
        svc: Svc,
    ) -> Response:
        await webhooks.delete_subscription(svc, actor, kind, owner_id, webhook_id)
        return Response(status_code=204)

    @router.get(
        "/{webhook_id}/deliveries",
        response_model=Page[DeliveryRecord],
        responses=error_responses(422),
        operation_id=f"list_{name}_webhook_deliveries",
    )
    async def deliveries(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        actor: Caller,
        svc: Svc,
        paging: PageParams = Depends(page_params),
    ) -> Page[DeliveryRecord]:
        """Deliveries, newest first: event, attempts, last status code and error, next attempt, delivered at."""
        return await webhooks.deliveries(svc, actor, kind, owner_id, webhook_id, paging)

    @router.post(
        "/{webhook_id}/deliveries/{event_id}/redeliver",
        response_model=Redelivered,
        responses=error_responses(409, 422),
        operation_id=f"redeliver_{name}_webhook_event",
    )
    async def redeliver(
        owner_id: OwnerId,
        webhook_id: WebhookId,
        event_id: EventId,
        actor: Caller,
        svc: Svc,
        body: RedeliverRequest | None = None,
    ) -> Redelivered:
        """Send the event again (same `webhook-id` and `seq`), or with `and_later` it and every
        later event of its incident, in order, after what already waits."""
        and_later = body.and_later if body else False
        queued = await webhooks.redeliver(svc, actor, kind, owner_id, webhook_id, event_id, and_later=and_later)
        return Redelivered(queued=queued)

    return router


playbook_router = _owner_routes(OwnerKind.PLAYBOOK, "playbooks")
team_router = _owner_routes(OwnerKind.TEAM, "teams")
