"""Interactive dialogs we open in Mattermost, and the signed state they carry.

Mattermost sends a dialog submission back with no credential at all, only the `state`
we put into the dialog. The state is signed, names the user it was opened for, and
expires, so a submission can neither be forged nor replayed by someone else.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from models.command_table import CommandSpec
from models.custom_fields import FIELD_TEXT_MAX, FieldSpec, FieldType, takes
from models.incident import DESCRIPTION_MAX, NAME_MAX, STATUS_MESSAGE_MAX, UpdateStatus
from models.playbook import PlaybookSummary
from models.severity import SeverityLevel
from service.container import Services
from service.errors import ServiceError
from service.incident_access import IncidentLocation

STATE_TTL_SECONDS = 3600
BLANK_PLAYBOOK = "none"


class DialogState(BaseModel):
    # The dialog's callback id: "start", or a command's dialog (its confirmation, or its fields).
    kind: str
    user_id: str
    team_id: str
    channel_id: str
    incident_id: str = ""
    # The command the dialog sends (`models.command_table`), with the fields it already has
    # (a confirmation names the stage it was given for: the incident refuses it once it has moved on).
    command: str = ""
    values: dict[str, Any] = Field(default_factory=dict)
    response_url: str = ""
    nonce: str
    expires: int


def sign_state(svc: Services, **fields: Any) -> str:
    state = DialogState(nonce=secrets.token_hex(8), expires=int(time.time()) + STATE_TTL_SECONDS, **fields)
    return svc.signer.sign(state.model_dump())


def verify_state(svc: Services, token: object) -> DialogState | None:
    payload = svc.signer.verify(token)
    if payload is None:
        return None
    try:
        state = DialogState.model_validate(payload)
    except ValidationError:
        return None
    return state if state.expires >= time.time() else None


def dialog_url(svc: Services) -> str:
    return f"{svc.settings.api_public_url}/mattermost/dialog"


def start_dialog(
    playbooks: list[PlaybookSummary],
    state: str,
    levels: list[SeverityLevel],
    *,
    name: str = "",
    blank: bool = True,
) -> dict[str, Any]:
    """The start dialog: the playbooks (and a blank incident, unless `blank` is off), the name
    (`name` filled in), the severity, and the playbooks' custom fields."""
    options = [{"text": p.title, "value": p.id} for p in playbooks]
    if blank:
        options.append({"text": "No playbook (blank incident)", "value": BLANK_PLAYBOOK})
    severities = [{"text": f"{v.level} · {v.name}: {v.description}"[:150], "value": str(v.level)} for v in levels]
    return {
        "callback_id": "start",
        "title": "Incident Details",
        "introduction_text": "A new channel is created for the incident and the playbook's people are invited.",
        "submit_label": "Start incident",
        "state": state,
        "elements": [
            {
                "display_name": "Playbook",
                "name": "playbook",
                "type": "select",
                "options": options,
                "default": options[0]["value"],
            },
            {
                "display_name": "Incident name",
                "name": "name",
                "type": "text",
                "max_length": NAME_MAX,
                "placeholder": "Database outage in eu-west",
                **({"default": name[:NAME_MAX]} if name else {}),
            },
            {
                "display_name": "Description",
                "name": "description",
                "type": "textarea",
                "optional": True,
                "max_length": DESCRIPTION_MAX,
            },
            {
                "display_name": "Severity",
                "name": "severity",
                "type": "select",
                "optional": True,
                "options": severities,
                "help_text": "Left empty: the playbook's default severity, if it has one.",
            },
            *field_elements(playbooks, blank=blank),
        ],
    }


# The start dialog's element of a custom field (`field_<name>`), and how many fields it asks for at most.
FIELD_ELEMENT = "field_"
FIELD_ELEMENTS_MAX = 15


def field_elements(playbooks: list[PlaybookSummary], *, blank: bool) -> list[dict[str, Any]]:
    """One element per custom field of the playbooks offered (by name; a name two playbooks
    declare differently is asked as text, and the chosen playbook's field reads it). A field is
    required in the dialog only when every choice requires it (no blank incident offered); else
    the start rules refuse a missing one for the chosen playbook, shown beside its element."""
    by_name: dict[str, list[tuple[PlaybookSummary, FieldSpec]]] = {}
    for playbook in playbooks:
        for spec in playbook.fields:
            by_name.setdefault(spec.name, []).append((playbook, spec))
    elements = []
    for name, declared in list(by_name.items())[:FIELD_ELEMENTS_MAX]:
        specs = [spec for _, spec in declared]
        first = specs[0]
        alike = all((s.type, s.options) == (first.type, first.options) for s in specs)
        owners = ", ".join(p.title for p, _ in declared)
        required = [p.title for p, spec in declared if spec.required]
        everywhere = not blank and len(declared) == len(playbooks) and len(required) == len(playbooks)
        help_text = first.description or f"{takes(first) if alike else 'A value'}. Playbooks: {owners}"
        if required and not everywhere:
            help_text += f" (required by {', '.join(required)})"
        element: dict[str, Any] = {
            "display_name": first.title.encode()[:24].decode(errors="ignore"),
            "name": FIELD_ELEMENT + name,
            "optional": not everywhere,
            "help_text": help_text[:150],
        }
        if alike and first.type == FieldType.SELECT:
            element |= {"type": "select", "options": [{"text": o, "value": o} for o in first.options]}
        elif alike and first.type == FieldType.USER:
            element |= {"type": "select", "data_source": "users"}
        else:
            limit = max((s.max_length for s in specs if s.type == FieldType.TEXT), default=FIELD_TEXT_MAX)
            element |= {"type": "text", "max_length": limit if alike else FIELD_TEXT_MAX}
            if alike and first.type == FieldType.NUMBER:
                element["subtype"] = "number"
        elements.append(element)
    return elements


def submitted_fields(submission: dict[str, Any]) -> dict[str, str]:
    """The custom fields a start dialog's submission gave values to, by field name."""
    return {
        key.removeprefix(FIELD_ELEMENT): str(value)
        for key, value in submission.items()
        if key.startswith(FIELD_ELEMENT) and value not in (None, "")
    }


def confirm_dialog(*, callback_id: str, title: str, text: str, submit: str, state: str) -> dict[str, Any]:
    return {
        "callback_id": callback_id,
        "title": title[:24],
        "introduction_text": text,
        "submit_label": submit,
        "state": state,
        "elements": [],
    }


def status_update_dialog(state: str) -> dict[str, Any]:
    return {
        "callback_id": "status_update",
        "title": "Post status update",
        "submit_label": "Post",
        "state": state,
        "elements": [
            {
                "display_name": "Status",
                "name": "status",
                "type": "select",
                "optional": True,
                "options": [{"text": s.value.capitalize(), "value": s.value} for s in UpdateStatus],
            },
            {"display_name": "Update", "name": "message", "type": "textarea", "max_length": STATUS_MESSAGE_MAX},
        ],
    }


@dataclass(frozen=True)
class CommandDialog:
    """A dialog asking for a command's fields (its elements are named as the command's fields)."""

    kind: str
    build: Callable[[str], dict[str, Any]]


# Commands whose slash subcommand, without arguments, opens a dialog (see `Slash.when_empty`).
COMMAND_DIALOGS = {"post_status_update": CommandDialog("status_update", status_update_dialog)}


def command_dialog(command: str, state: str) -> dict[str, Any]:
    return COMMAND_DIALOGS[command].build(state)


def confirmation(
    svc: Services,
    spec: CommandSpec,
    values: dict[str, Any],
    refusal: ServiceError,
    *,
    user_id: str,
    place: IncidentLocation,
) -> dict[str, Any]:
    """The dialog asking for the yes a command needs: it resends the command confirmed, naming
    what it was asked about (a stage confirmation is refused once the incident has moved on)."""
    assert spec.slash is not None
    assert spec.slash.confirm is not None
    confirm = spec.slash.confirm
    resend = {**values, **confirm.resend}
    if confirm.from_stage:
        resend["from_stage"] = int(refusal.details["stage"])
    state = sign_state(
        svc,
        kind=spec.slash.name,
        user_id=user_id,
        team_id=place.team_id,
        channel_id=str(place.channel_id),
        incident_id=place.incident_id,
        command=spec.name,
        values=resend,
    )
    return confirm_dialog(
        callback_id=spec.slash.name, title=confirm.title, text=refusal.message, submit=confirm.submit, state=state
    )
