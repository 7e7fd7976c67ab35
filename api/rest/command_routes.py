"""The incident commands' REST routes, one per entry of the command table.

Each route parses its path and body (the body is the command's fields model, so a limit
reads the same here as in a slash command), scopes the caller's `Idempotency-Key` to the
caller and the command, and hands over to the service (`service.command_runner`). Stages
and items are addressed by 0-based position. Refusals come from the incident's workflow
with its sentence: 409 for a conflicting state, 403 when not allowed, 422 for bad input;
what the caller may not see is 404, answered no faster than for an incident that does not
exist.
"""

from inspect import Parameter, Signature
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.dependencies import IdempotencyKey, IncidentId, bearer_token, conceal_existence, current_user, services
from api.http_errors import PENDING_RESPONSE, error_responses, pending_response
from models.command_table import COMMANDS, CommandSpec
from models.common import Actor, Model
from models.incident_views import IncidentView
from service.command_follow_ups import CommandPending
from service.command_runner import references_from_body, run_command
from service.container import Services
from service.idempotency import new_key, scoped

PATH_PARAMETERS: dict[str, Any] = {
    "stage": Annotated[int, Path(ge=0, le=10_000, description="0-based stage position")],
    "item": Annotated[int, Path(ge=0, le=10_000, description="0-based item position within the stage")],
    "page_id": Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$", description="The page's id (the incident's pages)")],
    # Any text: the incident refuses a name its playbook does not declare, listing the fields it does.
    "name": Annotated[str, Path(min_length=1, max_length=64, description="The custom field's name")],
    "note_id": Annotated[
        str, Path(pattern=r"^e[0-9]{1,12}$", description="The note's id: its timeline event's (`e12`)")
    ],
    "event_id": Annotated[str, Path(pattern=r"^e[0-9]{1,12}$", description="A timeline event's id (`e12`)")],
}
ACTION_ERRORS = error_responses(403, 404, 409, 422)

router = APIRouter(
    prefix="/api/v1/incidents",
    responses=error_responses(401, 503),
    dependencies=[Depends(conceal_existence)],
)


class CommandResponse(Model):
    message: str = Field(description="What happened, in one sentence")
    incident: IncidentView


def _route(spec: CommandSpec) -> Any:
    path_fields = [name for name in PATH_PARAMETERS if "{" + name + "}" in spec.rest.path]

    async def route(
        *,
        incident_id: str,
        idempotency_key: str | None,
        actor: Actor,
        svc: Services,
        body: BaseModel | None = None,
        token: str | None = None,
        **path: int | str,
    ) -> CommandResponse | JSONResponse:
        given = body.model_dump() if body is not None else {}
        asked = {**path, **given}
        key = idempotency_key or new_key()
        request = scoped(actor.user_id, f"{spec.name}:{incident_id}", key, asked or None)
        values = {**path, **references_from_body(spec, given)}
        try:
            result = await run_command(svc, spec, actor, incident_id, values, request=request, caller_token=token)
        except CommandPending as pending:
            return pending_response(pending, key)
        return CommandResponse(message=result.message, incident=result.incident)

    parameters = [
        Parameter("incident_id", Parameter.KEYWORD_ONLY, annotation=IncidentId),
        *(Parameter(name, Parameter.KEYWORD_ONLY, annotation=PATH_PARAMETERS[name]) for name in path_fields),
        *([Parameter("body", Parameter.KEYWORD_ONLY, annotation=spec.rest.body)] if spec.rest.body else []),
        Parameter("idempotency_key", Parameter.KEYWORD_ONLY, annotation=IdempotencyKey, default=None),
        Parameter("actor", Parameter.KEYWORD_ONLY, annotation=Actor, default=Depends(current_user)),
        Parameter("svc", Parameter.KEYWORD_ONLY, annotation=Services, default=Depends(services)),
        *(
            [Parameter("token", Parameter.KEYWORD_ONLY, annotation=str, default=Depends(bearer_token))]
            if spec.runs_item_command
            else []
        ),
    ]
    route.__signature__ = Signature(parameters, return_annotation=CommandResponse)  # type: ignore[attr-defined]
    route.__name__ = spec.name
    route.__doc__ = spec.rest.description
    return route


for _spec in COMMANDS:
    router.add_api_route(
        _spec.rest.path,
        _route(_spec),
        methods=[_spec.rest.method],
        response_model=CommandResponse,
        responses={**ACTION_ERRORS, **PENDING_RESPONSE, **(error_responses(502) if _spec.runs_item_command else {})},
        tags=[_spec.rest.tag],
        name=_spec.name,
    )
