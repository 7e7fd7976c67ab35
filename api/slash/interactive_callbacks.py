"""Dialog submissions and button clicks that Mattermost sends back to us.

Neither carries a token: a dialog submission is trusted only through its signed
`state`, a button click only through the signed token in its `context` (Mattermost
keeps the context from clients). Forged or expired ones get 401 and change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, ValidationError

from activities.incident_activities import DEDUPE_PROP, STABLE_PROP
from api.dependencies import services
from api.http_errors import ErrorBody
from api.slash import slash_dialogs as dialogs
from api.slash.slash_endpoint import within_deadline
from models.command_table import BY_BUTTON, BY_NAME, CommandSpec
from models.common import Actor
from models.incident import IncidentCreate, IncidentFields, ItemState
from models.incident_commands import RequestKey
from models.pending_commands import RECEIVED, LateReply
from models.severity import SeverityText
from service import incident_access as incidents
from service import incident_starts as incident_start
from service.command_runner import run_command
from service.container import Services
from service.errors import ServiceError, unauthorized, validation_fields
from service.idempotency import fingerprint, new_key, scoped
from service.incident_access import IncidentLocation

router = APIRouter(tags=["mattermost"])
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[BaseModel]])
# A page's *Acknowledge* and *Decline*, in the paged person's direct message (`item_id`: the page).
PAGE_ACTIONS = ("page_ack", "page_decline")
# Dialogs and buttons have no response_url: a late outcome comes as a direct message.
RECEIVED_BY_MESSAGE = (
    f"{RECEIVED} The incident service is slow right now; the outcome will follow as a direct message from the bot."
)


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


class StartFields(IncidentFields):
    """The start dialog's fields: the REST API's start body, without the team (the dialog's own)."""

    playbook_id: str | None = Field(default=None, max_length=64)
    severity: SeverityText | None = None


def _place(state: dialogs.DialogState) -> IncidentLocation:
    return IncidentLocation(incident_id=state.incident_id, team_id=state.team_id, channel_id=state.channel_id)


async def _send(
    svc: Services,
    actor: Actor,
    place: IncidentLocation,
    spec: CommandSpec,
    values: dict[str, Any],
    request: RequestKey | None,
    *,
    through: str,
) -> str:
    """A command from a dialog or a button in the incident channel: the same path as every face's.
    A late outcome is told as a direct message (neither has a `response_url`)."""
    name = spec.slash.name if spec.slash else spec.name.replace("_", " ")
    result = await run_command(
        svc,
        spec,
        actor,
        place.incident_id,
        values,
        request=request,
        location=place,
        channel_id=place.channel_id,
        late_reply=LateReply(user_id=actor.user_id),
        asked=f"Your {through} (`/incident {name}`)",
    )
    return result.message


def _callback(path: str, reply: type[BaseModel], summary: str, forged: str) -> Callable[[Handler], Handler]:
    """The route of a Mattermost callback: its reply (without nulls), and the 401 for a forged state."""
    return router.post(
        path,
        response_model=reply,
        response_model_exclude_none=True,
        summary=summary,
        responses={401: {"model": ErrorBody, "description": forged}},
    )


@_callback(
    "/mattermost/dialog", DialogReply, "Interactive dialog submissions", "Forged, expired or foreign dialog state"
)
async def submit_dialog(body: DialogSubmission, svc: Services = Depends(services)) -> DialogReply:
    state = dialogs.verify_state(svc, body.state)
    if state is None or state.user_id != body.user_id or state.kind != body.callback_id:
        raise unauthorized("This dialog is not valid any more; run the command again.")
    if body.cancelled:
        return DialogReply()
    spec = BY_NAME.get(state.command)
    if state.kind != "start" and spec is None:
        raise unauthorized("This dialog is not valid any more; run the command again.")
    return await within_deadline(
        svc, lambda: _submitted(svc, state, body, spec), lambda text: DialogReply(error=text), RECEIVED_BY_MESSAGE
    )


async def _submitted(
    svc: Services, state: dialogs.DialogState, body: DialogSubmission, spec: CommandSpec | None
) -> DialogReply:
    actor = await svc.facts.caller_for_user_id(body.user_id)
    # A dialog submitted twice (or replayed, even after a restart) is applied once: the key
    # is the signed state and what was submitted (a dialog kept open by field errors and
    # corrected is a new request), scoped to the user and the incident, which remembers it.
    key = f"{body.state}:{fingerprint(body.submission)}"
    request = scoped(actor.user_id, f"dialog:{state.kind}:{state.incident_id}", key, body.submission)
    if spec is None:
        return await _start(svc, actor, state, body.submission, request)
    values = dict(state.values)
    if state.command in dialogs.COMMAND_DIALOGS:
        try:
            values.update(_dialog_fields(spec, body.submission))
        except ValidationError as error:
            return _dialog_errors(error, {})
    await _send(svc, actor, _place(state), spec, values, request, through="dialog")
    # The bot announces the change in the incident channel; the dialog just closes.
    return DialogReply()


def _dialog_fields(spec: CommandSpec, submission: dict[str, Any]) -> dict[str, Any]:
    """The command's fields from a dialog whose elements are named after them. Mattermost does not
    enforce the elements' limits on the server: the command's fields model does."""
    body = spec.rest.body
    assert body is not None
    given = {
        name: str(submission.get(name) or "")
        for name, info in body.model_fields.items()
        if info.is_required() or submission.get(name) not in (None, "")
    }
    return body.model_validate(given).model_dump()


def _dialog_errors(error: ValidationError, names: dict[str, str]) -> DialogReply:
    fields = validation_fields(error.errors())
    return DialogReply(errors={names.get(field, field): problem for field, problem in fields.items()})


async def _start(
    svc: Services, actor: Actor, state: dialogs.DialogState, submission: dict[str, Any], request: RequestKey
) -> DialogReply:
    names = {"name": "name", "description": "description", "playbook_id": "playbook", "severity": "severity"}
    playbook_id = str(submission.get("playbook") or "")
    try:
        fields = StartFields(
            name=str(submission.get("name") or ""),
            description=str(submission.get("description") or ""),
            playbook_id=None if playbook_id in ("", dialogs.BLANK_PLAYBOOK) else playbook_id,
            severity=str(submission.get("severity") or "") or None,
        )
    except ValidationError as error:
        return _dialog_errors(error, names)
    given = dialogs.submitted_fields(submission)
    if given and fields.playbook_id:
        # The dialog asks for every offered playbook's fields: the chosen playbook's are sent.
        playbook = await incident_start.read_playbook(svc, fields.playbook_id)
        declared = {spec.name for spec in playbook.fields} if playbook else set()
        given = {name: value for name, value in given.items() if name in declared}
    elif not fields.playbook_id:
        given = {}
    try:
        await incident_start.start_incident(
            svc,
            actor,
            IncidentCreate(team_id=state.team_id, **fields.model_dump(), fields=given),
            response_url=state.response_url,
            request=request,
            late_reply=LateReply(response_url=state.response_url),
            asked=f"Starting incident **{fields.name}**",
        )
    except ServiceError as error:
        if error.status == 404:
            # The team is the dialog's own, so what is not found is the chosen playbook.
            return DialogReply(errors={"playbook": "Choose a playbook you are a member of."})
        if error.fields:
            return DialogReply(errors={_element(names, f): problem for f, problem in error.fields.items()})
        raise
    return DialogReply()


def _element(names: dict[str, str], field: str) -> str:
    """The dialog element a refusal names: a custom field's (`fields.<name>`) or the start's own."""
    if field.startswith("fields."):
        return dialogs.FIELD_ELEMENT + field.removeprefix("fields.")
    return names.get(field, field)


@_callback(
    "/mattermost/action",
    ActionReply,
    "Button and menu clicks on bot posts (the live checklist, reminders)",
    "Forged, expired or misplaced button context",
)
async def button_action(body: ActionRequest, svc: Services = Depends(services)) -> ActionReply:
    """A click. The signed context names its incident, its post (by the post's dedupe key, or
    the stable key of a post edited in place) and when it expires; the click must come from
    that post, in that channel. The clicker is the user Mattermost names; each click is the
    slash command's update, with its validators, and the same click applies once however
    often it is sent."""
    button = await _verified_button(svc, body)
    spec = BY_BUTTON.get(button.action)
    if spec is None:
        raise unauthorized("This button is not valid.")
    return await within_deadline(
        svc, lambda: _clicked_command(svc, button, spec, body), lambda text: ActionReply(ephemeral_text=text),
        RECEIVED_BY_MESSAGE,
    )  # fmt: skip


async def _clicked_command(svc: Services, button: ButtonContext, spec: CommandSpec, body: ActionRequest) -> ActionReply:
    actor = await svc.facts.caller_for_user_id(body.user_id)
    try:
        place = await incidents.locate(svc, button.incident_id)
        if button.action not in PAGE_ACTIONS:
            place = IncidentLocation(incident_id=place.incident_id, team_id=place.team_id, channel_id=body.channel_id)
        # A page's buttons are in the paged person's direct message with the bot, and answer for
        # the incident wherever it is (the rule: only the person paged may).
        if spec.name in dialogs.COMMAND_DIALOGS:
            return await _open_command_dialog(svc, actor, place, spec, body)
        values = _clicked(button, body)
        if values is None:
            return ActionReply(ephemeral_text="Choose an item from the menu.")
        if button.action == "snooze":
            # A reminder's Snooze applies once, whoever clicks it (it is bound to its post).
            request = scoped(button.incident_id, f"button:{button.action}", button.post_key)
        else:
            # A click resent by Mattermost (same trigger id) applies once.
            request = scoped(
                actor.user_id, f"button:{button.action}:{button.incident_id}", body.trigger_id or new_key(), values
            )
        try:
            message = await _send(svc, actor, place, spec, values, request, through="click")
        except ServiceError as error:
            if error.code != "confirmation_required" or not body.trigger_id:
                raise
            dialog = dialogs.confirmation(svc, spec, values, error, user_id=actor.user_id, place=place)
            await svc.mattermost.open_dialog(trigger_id=body.trigger_id, url=dialogs.dialog_url(svc), dialog=dialog)
            return ActionReply(ephemeral_text=error.message)
    except ServiceError as error:
        return ActionReply(ephemeral_text=error.message)
    if button.action == "snooze":
        return ActionReply(update={"message": message, "props": {}}, ephemeral_text=message)
    return ActionReply(ephemeral_text=message)


def _clicked(button: ButtonContext, body: ActionRequest) -> dict[str, Any] | None:
    """The command's fields a click stands for; None for a menu choice that names no item."""
    if button.action == "snooze":
        return {"seconds": button.seconds or 3600}
    if button.action in PAGE_ACTIONS:
        return {"page_id": button.item_id}
    if button.action == "next_stage":
        # From the stage the post showed; past open items it asks first, as `/incident stage next` does.
        return {"direction": "next", "from_stage": button.stage}
    item, item_id, target = button.item, button.item_id, button.state
    if button.action == "pick_item":
        parts = str(body.context.get("selected_option") or "").split(":")
        if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit() or len(parts[0]) > 5:
            return None
        item, item_id, target = int(parts[0]), parts[1], parts[2]
    if button.stage is None or item is None or target not in (ItemState.DONE, ItemState.OPEN):
        return None
    # The view's stage was the active one: a click from it is refused once the incident moved on.
    return {"stage": button.stage, "item": item, "item_id": item_id[:64], "state": target, "from_stage": button.stage}


class ButtonContext(BaseModel):
    incident_id: str
    action: str
    seconds: int = 0
    stage: int | None = None
    item: int | None = None
    item_id: str = ""
    state: str = ""
    post_key: str
    expires: int


async def _verified_button(svc: Services, body: ActionRequest) -> ButtonContext:
    forged = unauthorized("This button is not valid.")
    payload = svc.signer.verify(body.context.get("token"))
    try:
        button = ButtonContext.model_validate(payload)
    except ValidationError:
        raise forged from None
    if button.expires < time.time():
        raise unauthorized("This button has expired; use the /incident command instead.")
    post = await svc.facts.post(body.post_id)
    props = (post or {}).get("props") or {}
    if (
        post is None
        or post.get("channel_id") != body.channel_id
        or button.post_key
        not in (
            props.get(DEDUPE_PROP),
            props.get(STABLE_PROP),
        )
    ):
        raise forged
    return button


async def _open_command_dialog(
    svc: Services, actor: Actor, place: IncidentLocation, spec: CommandSpec, body: ActionRequest
) -> ActionReply:
    if not body.trigger_id:
        return ActionReply(ephemeral_text="Use /incident update <message> to post an update.")
    state = dialogs.sign_state(
        svc,
        kind=dialogs.COMMAND_DIALOGS[spec.name].kind,
        user_id=actor.user_id,
        team_id=place.team_id,
        channel_id=body.channel_id,
        incident_id=place.incident_id,
        command=spec.name,
    )
    await svc.mattermost.open_dialog(
        trigger_id=body.trigger_id, url=dialogs.dialog_url(svc), dialog=dialogs.command_dialog(spec.name, state)
    )
    return ActionReply()
