"""Starting an incident from the backstage: a form sent exactly as `POST /api/v1/incidents`.

The form asks what the slash command's *Incident Details* dialog asks (a playbook among
the person's, a name, a description); the fields are checked by the same model as the
REST body and the start goes through `service.incident_starts.start_incident` with a
request key per rendered form, so a double click starts one incident. The start's rules
(team, playbook, channel permission, commander) are the workflow's; a refusal is shown on
the form, with what was typed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, visitor
from api.backstage.command_forms import PENDING_HERE
from models.incident import IncidentCreate
from service import incident_starts, playbooks, team_configuration
from service.command_follow_ups import CommandPending
from service.errors import ServiceError, validation_fields
from service.idempotency import new_key, scoped

router = APIRouter(prefix="/backstage", include_in_schema=False)
FIELDS = ("playbook_id", "name", "description", "severity")


async def _form(who: Visitor, team_id: str, draft: dict[str, str], status_code: int = 200, **extra: Any) -> Response:
    return await render_in_team(
        who,
        "incident_start.html",
        team_id,
        status_code,
        playbooks=await playbooks.usable_playbooks(who.svc, who.actor, team_id),
        severity_levels=await team_configuration.severity_levels(who.svc, team_id),
        draft=draft,
        errors=extra.pop("errors", {}),
        **extra,
    )


@router.get("/teams/{team_id}/incidents/new")
async def start_form(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _form(who, team_id, {"playbook_id": who.request.query_params.get("playbook_id", "")})


@router.post("/teams/{team_id}/incidents/new")
async def start_from_form(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    asked = {name: who.form.get(name, "") for name in FIELDS}
    request = scoped(who.actor.user_id, "start", who.form.get("request_key") or new_key(), asked)
    try:
        fields = IncidentCreate.model_validate(
            {
                **asked,
                "team_id": team_id,
                "playbook_id": asked["playbook_id"] or None,
                # None: the playbook's default severity, if it has one.
                "severity": asked["severity"] or None,
            }
        )
        started = await incident_starts.start_incident(who.svc, who.actor, fields, request=request)
    except ValidationError as invalid:
        return await _form(who, team_id, asked, status_code=422, errors=validation_fields(invalid.errors()))
    except ServiceError as error:
        if error.status not in (403, 404, 409, 422):
            raise
        return await _form(who, team_id, asked, status_code=error.status, errors=error.fields, message=error.message)
    except CommandPending as pending:
        # The incident's id was chosen before the start: its page shows it once Temporal answers.
        return redirect(who, f"/backstage/incidents/{pending.pending.incident_id}", PENDING_HERE)
    return redirect(who, f"/backstage/incidents/{started.incident.id}", started.message)
