"""Interactive dialogs we open in Mattermost, and the signed state they carry.

Mattermost sends a dialog submission back with no credential at all, only the `state`
we put into the dialog. The state is signed, names the user it was opened for, and
expires, so a submission can neither be forged nor replayed by someone else.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from models.incident import DESCRIPTION_MAX, NAME_MAX, STATUS_MESSAGE_MAX, UpdateStatus
from models.playbook import PlaybookSummary
from service.container import Services

DialogKind = Literal["start", "end", "stage", "status_update"]
STATE_TTL_SECONDS = 3600
BLANK_PLAYBOOK = "none"


class DialogState(BaseModel):
    kind: DialogKind
    user_id: str
    team_id: str
    channel_id: str
    incident_id: str = ""
    direction: str = ""
    # The stage a confirmation was given for: the incident refuses it once it has moved on.
    stage: int | None = None
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


def start_dialog(playbooks: list[PlaybookSummary], state: str) -> dict[str, Any]:
    options = [{"text": p.title, "value": p.id} for p in playbooks]
    options.append({"text": "No playbook (blank incident)", "value": BLANK_PLAYBOOK})
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
            },
            {
                "display_name": "Description",
                "name": "description",
                "type": "textarea",
                "optional": True,
                "max_length": DESCRIPTION_MAX,
            },
        ],
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
