"""`/api/v1/playbooks`: create, list, read, replace, archive, history, export, import and dry-run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from api.dependencies import current_user, page_params, services
from api.http_errors import error_responses
from models.common import Actor, MattermostId
from models.playbook import Playbook, PlaybookEdit, PlaybookSpec, PlaybookSummary
from models.playbook_dry_run import DryRunRequest, PlaybookDryRun
from service import dry_runs, playbooks
from service.container import Services
from service.errors import ServiceError
from service.pagination import Page, PageParams, paginate
from service.playbook_yaml import export_yaml, parse_yaml_off_loop, resolve_document

router = APIRouter(prefix="/api/v1/playbooks", tags=["playbooks"], responses=error_responses(401, 503))

PlaybookId = Annotated[str, Path(description="Playbook id", max_length=64)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Resending a request with the same key creates the playbook only once",
    ),
]


class PlaybookCreate(PlaybookSpec):
    team_id: MattermostId


class PlaybookReplace(PlaybookSpec):
    version: int


@router.post("", status_code=201, response_model=Playbook, responses=error_responses(404, 422))
async def create_playbook(
    body: PlaybookCreate,
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Playbook:
    """Create a playbook in a team. The creator becomes a member."""
    spec = PlaybookSpec.model_validate(body.model_dump(exclude={"team_id"}))
    return await playbooks.create_playbook(svc, actor, body.team_id, spec, idempotency_key=idempotency_key)


@router.get("", response_model=Page[PlaybookSummary], responses=error_responses(404, 422))
async def list_playbooks(
    team_id: Annotated[MattermostId, Query(description="The team whose playbooks to list")],
    sort: playbooks.SortKey = Query("title", description="title, stages, steps or updated_at"),
    paging: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[PlaybookSummary]:
    """The team's playbooks the caller is a member of (all of them for system admins)."""
    return await playbooks.list_playbooks(svc, actor, team_id, sort=sort, params=paging)


@router.post(
    "/import",
    status_code=201,
    response_model=Playbook,
    responses=error_responses(404, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def import_playbook(
    request: Request,
    team_id: Annotated[MattermostId, Query(description="The team to create the playbook in")],
    idempotency_key: IdempotencyKey = None,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Playbook:
    """Create a playbook from the YAML that `GET /playbooks/{id}/export` produces."""
    await playbooks.require_team(svc, actor, team_id)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(415, "unsupported_media_type", "Send the playbook as UTF-8 YAML.") from None
    document, lines = await parse_yaml_off_loop(text)
    spec = await resolve_document(svc, team_id, document, lines)
    return await playbooks.create_playbook(svc, actor, team_id, spec, idempotency_key=idempotency_key)


@router.get("/{playbook_id}", response_model=Playbook, responses=error_responses(404))
async def get_playbook(
    playbook_id: PlaybookId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Playbook:
    """The playbook at its current version."""
    return await playbooks.get_playbook(svc, actor, playbook_id)


@router.put("/{playbook_id}", response_model=Playbook, responses=error_responses(404, 409, 422))
async def replace_playbook(
    playbook_id: PlaybookId,
    body: PlaybookReplace,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Playbook:
    """Replace the playbook. `version` must be the version you edited (409 if it changed)."""
    spec = PlaybookSpec.model_validate(body.model_dump(exclude={"version"}))
    return await playbooks.update_playbook(svc, actor, playbook_id, spec, body.version)


@router.delete("/{playbook_id}", status_code=204, responses=error_responses(404))
async def archive_playbook(
    playbook_id: PlaybookId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Response:
    """Archive: the playbook leaves every list and cannot start incidents; running ones go on."""
    await playbooks.archive_playbook(svc, actor, playbook_id)
    return Response(status_code=204)


@router.get("/{playbook_id}/history", response_model=Page[PlaybookEdit], responses=error_responses(404))
async def playbook_history(
    playbook_id: PlaybookId,
    params: PageParams = Depends(page_params),
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> Page[PlaybookEdit]:
    """Every accepted edit: version, editor, time and what changed; oldest first (`direction=desc`: newest first)."""
    return paginate(await playbooks.playbook_history(svc, actor, playbook_id), lambda edit: edit.version, params)


@router.get(
    "/{playbook_id}/export",
    response_class=Response,
    responses={
        200: {"description": "The playbook as YAML", "content": {"application/yaml": {"schema": {"type": "string"}}}},
        **error_responses(404),
    },
)
async def export_playbook(
    playbook_id: PlaybookId, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Response:
    """The playbook as YAML, with people and channels by name; `POST /import` reads it back."""
    playbook = await playbooks.get_playbook(svc, actor, playbook_id)
    return Response(await export_yaml(svc, playbook), media_type="application/yaml")


@router.post("/{playbook_id}/dry-run", response_model=PlaybookDryRun, responses=error_responses(404, 422))
async def dry_run_playbook(
    playbook_id: PlaybookId,
    body: DryRunRequest,
    actor: Actor = Depends(current_user),
    svc: Services = Depends(services),
) -> PlaybookDryRun:
    """Try a proposed spec against the playbook's `last` most recently ended incidents (those you
    may see), writing nothing: each one's recorded commands are replayed, with their times, through
    the incident rules against an incident started from the proposal. For each: the commands that
    would be refused and why, the steps never done, the stages never reached, the status update
    reminders, overdue notices and rule firings, as recorded and as proposed. For people who may
    edit the playbook (others: 404); a spec an edit would refuse is 422, naming its fields."""
    try:
        return await dry_runs.dry_run_playbook(svc, actor, playbook_id, body)
    except ServiceError as error:
        # The body's spec is under `spec`, as the request's own field errors name it.
        if error.status == 422 and error.fields:
            error.fields = {f"spec.{name}": problem for name, problem in error.fields.items()}
        raise
