"""`/api/v1/incidents/{id}/checklists/...`: an incident's checklist items, by 0-based position.

The REST twin of `/incident check`, `checkadd`, `checkremove` and `assign`: each route
sends one command to the incident's workflow, built from the same fields model.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from api.dependencies import bearer_token, conceal_existence
from api.http_errors import error_responses
from api.rest.command_deps import (
    ACTION_ERRORS,
    Caller,
    CommandResponse,
    IncidentId,
    ItemIndex,
    StageIndex,
    act,
    caller,
)
from api.rest.incident_routes import user_fact
from mattermost_client.gateway import MattermostFailure
from models.common import Actor, MattermostId, Model
from models.incident_commands import (
    AddItem,
    AssignItem,
    EditItem,
    ItemEditFields,
    ItemFields,
    ItemMove,
    ItemStateChange,
    MoveItem,
    RemoveItem,
    RequestKey,
    RunItemCommand,
    SetItemState,
)
from service.errors import ServiceError
from service.incident_access import IncidentLocation
from workflows.incident_workflow import IncidentWorkflow

router = APIRouter(
    prefix="/api/v1/incidents/{incident_id}/checklists/{stage}/items",
    tags=["checklists"],
    responses=error_responses(401, 503),
    dependencies=[Depends(conceal_existence)],
)


class AssigneeBody(Model):
    assignee_id: MattermostId | None = Field(description="null unassigns")


@router.post("", response_model=CommandResponse, responses=ACTION_ERRORS)
async def add_item(
    incident_id: IncidentId, stage: StageIndex, body: ItemFields, who: Caller = Depends(caller)
) -> CommandResponse:
    """Add an item to a stage (at `position`, or at the end)."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.add_item,
        {"stage": stage, **body.model_dump()},
        lambda a, r, _: AddItem(actor=a, request=r, stage=stage, **body.model_dump()),
    )


@router.put("/{item}", response_model=CommandResponse, responses=ACTION_ERRORS)
async def edit_item(
    incident_id: IncidentId, stage: StageIndex, item: ItemIndex, body: ItemEditFields, who: Caller = Depends(caller)
) -> CommandResponse:
    """Rename an item or change its description or command (fields left out stay)."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.edit_item,
        {"stage": stage, "item": item, **body.model_dump()},
        lambda a, r, _: EditItem(actor=a, request=r, stage=stage, item=item, **body.model_dump()),
    )


@router.delete("/{item}", response_model=CommandResponse, responses=ACTION_ERRORS)
async def remove_item(
    incident_id: IncidentId, stage: StageIndex, item: ItemIndex, who: Caller = Depends(caller)
) -> CommandResponse:
    """Remove an item from a stage."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.remove_item,
        {"stage": stage, "item": item},
        lambda a, r, _: RemoveItem(actor=a, request=r, stage=stage, item=item),
    )


@router.put("/{item}/state", response_model=CommandResponse, responses=ACTION_ERRORS)
async def set_item_state(
    incident_id: IncidentId, stage: StageIndex, item: ItemIndex, body: ItemStateChange, who: Caller = Depends(caller)
) -> CommandResponse:
    """Set an item's state: open, in_progress or done."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.set_item_state,
        {"stage": stage, "item": item, **body.model_dump()},
        lambda a, r, _: SetItemState(actor=a, request=r, stage=stage, item=item, state=body.state),
    )


@router.put("/{item}/assignee", response_model=CommandResponse, responses=ACTION_ERRORS)
async def assign_item(
    incident_id: IncidentId, stage: StageIndex, item: ItemIndex, body: AssigneeBody, who: Caller = Depends(caller)
) -> CommandResponse:
    """Assign an item to a member of the incident channel, or unassign it."""

    async def build(actor: Actor, request: RequestKey | None, place: IncidentLocation) -> AssignItem:
        assignee = await user_fact(who.svc, place, body.assignee_id, "assignee_id") if body.assignee_id else None
        return AssignItem(actor=actor, request=request, stage=stage, item=item, assignee=assignee)

    return await act(
        who, incident_id, IncidentWorkflow.assign_item, {"stage": stage, "item": item, **body.model_dump()}, build
    )


@router.post("/{item}/move", response_model=CommandResponse, responses=ACTION_ERRORS)
async def move_item(
    incident_id: IncidentId, stage: StageIndex, item: ItemIndex, body: ItemMove, who: Caller = Depends(caller)
) -> CommandResponse:
    """Move an item to another position within its stage."""
    return await act(
        who,
        incident_id,
        IncidentWorkflow.move_item,
        {"stage": stage, "item": item, **body.model_dump()},
        lambda a, r, _: MoveItem(actor=a, request=r, stage=stage, item=item, **body.model_dump()),
    )


@router.post("/{item}/run", response_model=CommandResponse, responses={**ACTION_ERRORS, **error_responses(502)})
async def run_item_command(
    incident_id: IncidentId,
    stage: StageIndex,
    item: ItemIndex,
    who: Caller = Depends(caller),
    token: str = Depends(bearer_token),
) -> CommandResponse:
    """Run the item's slash command as the caller, in the incident channel, and record that it ran.

    The incident records the run first (its rules decide whether you may); then the
    command runs as you. If Mattermost refuses to run it, the answer says so (502)."""
    response = await act(
        who,
        incident_id,
        IncidentWorkflow.run_item_command,
        {"stage": stage, "item": item},
        lambda a, r, _: RunItemCommand(actor=a, request=r, stage=stage, item=item),
    )
    view = response.incident
    text = view.checklists[stage].items[item].command
    try:
        await who.svc.mattermost.execute_command(token, channel_id=str(view.channel_id), command=text)
    except MattermostFailure as failure:
        raise ServiceError(
            502,
            "mattermost_refused",
            f"The run of {text} was recorded, but Mattermost did not run it: {failure.message}",
        ) from None
    return response
