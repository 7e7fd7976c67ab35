"""Dialog submissions and button clicks that Mattermost sends back to us.

Neither carries a token: a dialog submission is trusted only through its signed
`state`, a button click only through the signed token in its `context` (Mattermost
keeps the context from clients). Forged or expired ones get 401 and change nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api import incidents
from api.errors import ApiError, ErrorBody, unauthorized
from api.incidents import IncidentAccess
from api.playbooks import get_playbook
from api.services import Services, services
from api.slash import dialogs
from models.common import Actor
from models.incident import DESCRIPTION_MAX, NAME_MAX, STATUS_MESSAGE_MAX, UpdateStatus
from models.incident_commands import ChangeStage, EndIncident, PostStatusUpdate, SnoozeReminder
from workflows.incident import IncidentWorkflow
from workflows.incident_messages import format_duration

router = APIRouter(tags=["mattermost"])


class DialogSubmission(BaseModel):
    type: str = "dialog_submission"
    callback_id: str = ""
    state: str = ""
    user_id: str
    channel_id: str = ""
    team_id: str = ""
    submission: dict[str, Any] = Field(default_factory=dict)
    cancelled: bool = False


class DialogReply(BaseModel):
    """Empty closes the dialog; `errors` keeps it open with a message under each field."""

    errors: dict[str, str] | None = None
    error: str | None = None


class ActionRequest(BaseModel):
    user_id: str
    user_name: str = ""
    channel_id: str = ""
    team_id: str = ""
    post_id: str = ""
    trigger_id: str = ""
    type: str = ""
    context: dict[str, Any] = Field(default_factory=dict)


class ActionReply(BaseModel):
    update: dict[str, Any] | None = None
    ephemeral_text: str | None = None


async def _access(svc: Services, actor: Actor, incident_id: str) -> IncidentAccess:
    return await incidents.load(svc, actor, incident_id)


@router.post(
    "/mattermost/dialog",
    response_model=DialogReply,
    response_model_exclude_none=True,
    summary="Interactive dialog submissions",
    responses={401: {"model": ErrorBody, "description": "Forged, expired or foreign dialog state"}},
)
async def submit_dialog(body: DialogSubmission, svc: Services = Depends(services)) -> DialogReply:
    state = dialogs.verify_state(svc, body.state)
    if state is None or state.user_id != body.user_id or state.kind != body.callback_id:
        raise unauthorized("This dialog is not valid any more; run the command again.")
    if body.cancelled:
        return DialogReply()
    actor = await svc.facts.caller_for_user_id(body.user_id)
    # A double submit of the same dialog is applied once.
    request_key = "dialog-" + hashlib.sha256(body.state.encode()).hexdigest()[:32]
    try:
        if state.kind == "start":
            return await _start(svc, actor, state, body.submission, request_key)
        access = await _access(svc, actor, state.incident_id)
        if state.kind == "end":
            await incidents.command(
                svc, access, IncidentWorkflow.end_incident, lambda a: EndIncident(actor=a), request_key=request_key
            )
        elif state.kind == "stage":
            await incidents.command(
                svc,
                access,
                IncidentWorkflow.change_stage,
                lambda a: ChangeStage(actor=a, direction="next", force=True),
                request_key=request_key,
            )
        else:
            return await _status_update(svc, access, body.submission, request_key)
    except ApiError as error:
        return DialogReply(error=error.message)
    # The bot announces the change in the incident channel; the dialog just closes.
    return DialogReply()


async def _start(
    svc: Services, actor: Actor, state: dialogs.DialogState, submission: dict[str, Any], request_key: str
) -> DialogReply:
    name = str(submission.get("name") or "").strip()
    description = str(submission.get("description") or "")
    playbook_id = str(submission.get("playbook") or "")
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the incident a name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"At most {NAME_MAX} characters (this one has {len(name)})."
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = f"At most {DESCRIPTION_MAX} characters."
    chosen = None if playbook_id in ("", dialogs.BLANK_PLAYBOOK) else playbook_id
    if chosen:
        try:
            await get_playbook(svc, actor, chosen)
        except ApiError:
            errors["playbook"] = "Choose a playbook you are a member of."
    if errors:
        return DialogReply(errors=errors)
    await incidents.start_incident(
        svc,
        actor,
        team_id=state.team_id,
        name=name,
        description=description,
        playbook_id=chosen,
        response_url=state.response_url,
        request_key=request_key,
    )
    return DialogReply()


async def _status_update(
    svc: Services, access: IncidentAccess, submission: dict[str, Any], request_key: str
) -> DialogReply:
    message = str(submission.get("message") or "").strip()
    status_value = str(submission.get("status") or "")
    if not message:
        return DialogReply(errors={"message": "Write what changed."})
    if len(message) > STATUS_MESSAGE_MAX:
        # Mattermost does not enforce the element's max_length on the server.
        return DialogReply(errors={"message": f"At most {STATUS_MESSAGE_MAX} characters."})
    if status_value and status_value not in UpdateStatus._value2member_map_:
        return DialogReply(errors={"status": "Choose one of the listed statuses."})
    status = UpdateStatus(status_value) if status_value else None
    await incidents.command(
        svc,
        access,
        IncidentWorkflow.post_status_update,
        lambda a: PostStatusUpdate(actor=a, message=message, status=status),
        request_key=request_key,
    )
    return DialogReply()


@router.post(
    "/mattermost/action",
    response_model=ActionReply,
    response_model_exclude_none=True,
    summary="Button clicks on bot posts (reminders)",
    responses={401: {"model": ErrorBody, "description": "Forged button context"}},
)
async def button_action(body: ActionRequest, svc: Services = Depends(services)) -> ActionReply:
    payload = svc.signer.verify(body.context.get("token"))
    if payload is None or "incident_id" not in payload:
        raise unauthorized("This button is not valid.")
    actor = await svc.facts.caller_for_user_id(body.user_id)
    try:
        access = await _access(svc, actor, str(payload["incident_id"]))
        if payload.get("action") == "post_update":
            if not body.trigger_id:
                return ActionReply(ephemeral_text="Use /incident update <message> to post an update.")
            state = dialogs.sign_state(
                svc,
                kind="status_update",
                user_id=actor.user_id,
                team_id=access.state.team_id,
                channel_id=body.channel_id,
                incident_id=access.state.id,
            )
            await svc.mattermost.open_dialog(
                trigger_id=body.trigger_id, url=dialogs.dialog_url(svc), dialog=dialogs.status_update_dialog(state)
            )
            return ActionReply()
        seconds = int(payload.get("seconds") or 3600)
        result = await incidents.command(
            svc,
            access,
            IncidentWorkflow.snooze_reminder,
            lambda a: SnoozeReminder(actor=a, seconds=seconds),
            request_key=f"snooze-{body.post_id}-{body.user_id}" if body.post_id else None,
        )
    except ApiError as error:
        return ActionReply(ephemeral_text=error.message)
    return ActionReply(
        update={"message": f"Reminder snoozed for {format_duration(seconds)} by @{actor.username}.", "props": {}},
        ephemeral_text=result.message,
    )
