"""`/api/v1/integrations` (team admins: create, list, read, change, rotate the token, delete,
deliveries) and `/hooks/alerts/{id}`, where Alertmanager, Grafana or any JSON source sends alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.dependencies import IdempotencyKey, current_user, services
from api.http_errors import error_responses
from models.common import Actor, MattermostId
from models.integration import Delivery, IntegrationKind, IntegrationSpec, IntegrationSummary, IntegrationView
from service import alert_intake, integration_yaml, integrations
from service.container import Services
from service.errors import ServiceError

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], responses=error_responses(401, 503))
hooks = APIRouter(tags=["alerts"])

YAML_TEXT = {"type": "string"}
IntegrationId = Annotated[str, Path(description="Integration id", max_length=64)]


class IntegrationCreate(IntegrationSpec):
    team_id: MattermostId
    kind: IntegrationKind


@router.post("", status_code=201, response_model=IntegrationView, responses=error_responses(403, 404, 422))
async def create_integration(
    body: IntegrationCreate,
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IntegrationView:
    """Make an integration (team admins). The answer holds `url`, to paste into the monitoring
    system, and `token`, its bearer credential, shown this once (`POST .../{id}/token` makes a new one)."""
    spec = IntegrationSpec.model_validate(body.model_dump(exclude={"team_id", "kind"}))
    return await integrations.create_integration(
        svc, actor, body.team_id, body.kind, spec, idempotency_key=idempotency_key
    )


@router.post(
    "/import",
    status_code=201,
    response_model=IntegrationView,
    responses=error_responses(403, 404, 415, 422),
    openapi_extra={"requestBody": {"required": True, "content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def import_integration(
    request: Request,
    team_id: Annotated[MattermostId, Query(description="The team to create the integration in")],
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IntegrationView:
    """Create an integration from the YAML `GET /integrations/{id}/export` produces (playbooks by
    title, commanders by username); the answer holds its new token, shown this once."""
    await integrations.require_admin(svc, actor, team_id)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(415, "unsupported_media_type", "Send the integration as UTF-8 YAML.") from None
    document, lines = await integration_yaml.parse_off_loop_integration(text)
    kind, spec = await integration_yaml.resolve_document(svc, actor, team_id, document, lines)
    return await integrations.create_integration(svc, actor, team_id, kind, spec, idempotency_key=idempotency_key)


@router.get("", response_model=list[IntegrationSummary], responses=error_responses(403, 404, 422))
async def list_integrations(
    team_id: Annotated[MattermostId, Query(description="The team whose integrations to list")],
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> list[IntegrationSummary]:
    """The team's integrations, by name (team admins)."""
    return await integrations.list_integrations(svc, actor, team_id)


@router.get("/{integration_id}", response_model=IntegrationView, responses=error_responses(404))
async def get_integration(
    integration_id: IntegrationId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IntegrationView:
    return await integrations.get_integration(svc, actor, integration_id)


@router.get(
    "/{integration_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The integration as YAML",
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        },
        **error_responses(404),
    },
)
async def export_integration(
    integration_id: IntegrationId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Response:
    """The integration as YAML (never its token), playbooks by title and commanders by username;
    `POST /import` reads it back."""
    integration = await integrations.managed_integration(svc, actor, integration_id)
    return Response(await integration_yaml.export_yaml(svc, actor, integration), media_type="application/yaml")


@router.patch("/{integration_id}", response_model=IntegrationView, responses=error_responses(404, 422))
async def update_integration(
    integration_id: IntegrationId,
    body: IntegrationSpec,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> IntegrationView:
    """Change the name, playbook and routes (the whole spec: what is left out is reset to its default)."""
    return await integrations.update_integration(svc, actor, integration_id, body)


@router.post("/{integration_id}/token", response_model=IntegrationView, responses=error_responses(404))
async def rotate_token(
    integration_id: IntegrationId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> IntegrationView:
    """A new token, shown in this answer only; the old one stops working at once."""
    return await integrations.rotate_token(svc, actor, integration_id)


@router.delete("/{integration_id}", status_code=204, responses=error_responses(404))
async def delete_integration(
    integration_id: IntegrationId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Response:
    """Delete: its URL stops taking alerts; incidents it opened go on."""
    await integrations.delete_integration(svc, actor, integration_id)
    return Response(status_code=204)


@router.get("/{integration_id}/deliveries", response_model=list[Delivery], responses=error_responses(404))
async def deliveries(
    integration_id: IntegrationId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> list[Delivery]:
    """The last 50 notifications received, newest first, with what became of each."""
    return await integrations.deliveries(svc, actor, integration_id)


class Received(BaseModel):
    incident_id: str = Field(description="The incident the notification went to")
    opened: bool = Field(description="Whether this notification opened it")
    message: str


@hooks.post(
    "/hooks/alerts/{integration_id}",
    response_model=Received,
    responses=error_responses(400, 401, 409, 413, 415, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def receive_alerts(
    integration_id: IntegrationId,
    request: Request,
    authorization: Annotated[
        str, Header(description="Bearer <integration token>, or basic auth with the token as password")
    ] = "",
    svc: Services = Depends(services),
) -> Received:
    """Where the monitoring system sends its notifications (Alertmanager webhook v4, Grafana's
    webhook contact point, or the generic JSON). Authenticated before the body is read; one
    incident per alert group."""
    received = await alert_intake.receive(svc, integration_id, authorization, request.body)
    return Received(incident_id=received.incident_id, opened=received.opened, message=received.message)
