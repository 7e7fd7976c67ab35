"""`/api/v1/schedules`: on-call schedules (create, list, read, replace, delete, who is on call,
and a team's schedules as YAML). Team members read; team admins change; others get 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.dependencies import IdempotencyKey, conceal_existence, current_user, services
from api.http_errors import error_responses
from models.common import Actor, MattermostId
from models.schedules import ImportedSchedules, OncallView, Schedule, ScheduleSpec
from service import oncall_schedules as schedules
from service import schedule_yaml
from service.container import Services
from service.errors import ServiceError

router = APIRouter(
    prefix="/api/v1/schedules",
    tags=["schedules"],
    responses=error_responses(401, 503),
    dependencies=[Depends(conceal_existence)],
)

ScheduleId = Annotated[str, Path(description="Schedule id", max_length=64)]
TeamId = Annotated[MattermostId, Query(description="The team whose schedules these are")]
Caller = Annotated[Actor, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]
YAML_TEXT = {"schema": {"type": "string"}}
# The answer is a YAML document (a mapping with `schedules`), which clients read as YAML, not as a string.
YAML_DOCUMENT = {"schema": {"description": "A YAML mapping: `schedules`, a list of schedules without their team"}}


@router.post("", status_code=201, response_model=Schedule, responses=error_responses(403, 404, 422))
async def create_schedule(
    body: ScheduleSpec, actor: Caller, svc: Svc, idempotency_key: IdempotencyKey = None
) -> Schedule:
    """Make an on-call schedule (team admins). Every person named must be in the team. With an
    `Idempotency-Key`, the same request again answers the same schedule and makes nothing more."""
    return await schedules.create_schedule(svc, actor, body, idempotency_key=idempotency_key)


@router.get("", response_model=list[Schedule], responses=error_responses(404, 422))
async def list_schedules(team_id: TeamId, actor: Caller, svc: Svc) -> list[Schedule]:
    """The team's schedules, by name (team members)."""
    return await schedules.list_schedules(svc, actor, team_id)


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {"description": "The team's schedules as YAML", "content": {"application/yaml": YAML_DOCUMENT}},
        **error_responses(404, 422),
    },
)
async def export_schedules(team_id: TeamId, actor: Caller, svc: Svc) -> Response:
    """The team's schedules as YAML; `PUT /import` applies such a file."""
    return Response(await schedule_yaml.export_yaml(svc, actor, team_id), media_type="application/yaml")


@router.put(
    "/import",
    response_model=ImportedSchedules,
    responses=error_responses(403, 404, 415, 422),
    openapi_extra={"requestBody": {"required": True, "content": {"application/yaml": YAML_TEXT}}},
)
async def import_schedules(request: Request, team_id: TeamId, actor: Caller, svc: Svc) -> ImportedSchedules:
    """Apply a schedules file (team admins): schedules matched by name are changed, new ones made,
    others left alone. Nothing is applied unless the whole file holds; each error names its line."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(415, "unsupported_media_type", "Send the schedules as UTF-8 YAML.") from None
    return await schedule_yaml.import_yaml(svc, actor, team_id, text)


@router.get("/{schedule_id}", response_model=Schedule, responses=error_responses(404))
async def get_schedule(schedule_id: ScheduleId, actor: Caller, svc: Svc) -> Schedule:
    return await schedules.get_schedule(svc, actor, schedule_id)


@router.put("/{schedule_id}", response_model=Schedule, responses=error_responses(403, 404, 422))
async def update_schedule(schedule_id: ScheduleId, body: ScheduleSpec, actor: Caller, svc: Svc) -> Schedule:
    """Replace the schedule (team admins; its team stays)."""
    return await schedules.update_schedule(svc, actor, schedule_id, body)


@router.delete("/{schedule_id}", status_code=204, responses=error_responses(403, 404))
async def delete_schedule(schedule_id: ScheduleId, actor: Caller, svc: Svc) -> Response:
    await schedules.delete_schedule(svc, actor, schedule_id)
    return Response(status_code=204)


@router.get("/{schedule_id}/oncall", response_model=OncallView, responses=error_responses(404, 422))
async def oncall(
    schedule_id: ScheduleId,
    actor: Caller,
    svc: Svc,
    at: Annotated[
        datetime | None, Query(description="The moment to ask about (ISO 8601; without an offset: UTC). Default: now")
    ] = None,
) -> OncallView:
    """Who is on call at `at`, and the next five handoffs after it."""
    return await schedules.oncall(svc, actor, schedule_id, at)
