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
from models.custom_fields import FieldSpec, FieldType, takes
from models.incident import IncidentCreate
from models.playbook import PlaybookSummary
from service import incident_starts, playbooks, team_configuration
from service.command_follow_ups import CommandPending
from service.errors import ServiceError, validation_fields
from service.idempotency import new_key, scoped

router = APIRouter(prefix="/backstage", include_in_schema=False)
FIELDS = ("playbook_id", "name", "description", "severity")


# A custom field's input: `fields.<name>` (a refusal names it so: shown beside it).
FIELD_INPUT = "fields."


def offered_fields(choices: list[PlaybookSummary]) -> list[dict[str, Any]]:
    """The custom fields of the playbooks offered, one input per name: what it takes (the first
    playbook's field, as text when playbooks declare it differently) and which playbooks ask for it."""
    by_name: dict[str, list[tuple[PlaybookSummary, FieldSpec]]] = {}
    for playbook in choices:
        for spec in playbook.fields:
            by_name.setdefault(spec.name, []).append((playbook, spec))
    offered = []
    for name, declared in by_name.items():
        first = declared[0][1]
        alike = all((spec.type, spec.options) == (first.type, first.options) for _, spec in declared)
        offered.append(
            {
                "name": name,
                "input": FIELD_INPUT + name,
                "spec": first,
                "select": alike and first.type == FieldType.SELECT,
                "takes": takes(first) if alike else "a value",
                "playbooks": ", ".join(p.title for p, _ in declared),
                "required_by": ", ".join(p.title for p, spec in declared if spec.required),
            }
        )
    return offered


async def _form(who: Visitor, team_id: str, draft: dict[str, str], status_code: int = 200, **extra: Any) -> Response:
    choices = await playbooks.usable_playbooks(who.svc, who.actor, team_id)
    return await render_in_team(
        who,
        "incident_start.html",
        team_id,
        status_code,
        playbooks=choices,
        offered_fields=offered_fields(choices),
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
    given = {
        key.removeprefix(FIELD_INPUT): value
        for key, value in who.form.items()
        if key.startswith(FIELD_INPUT) and isinstance(value, str) and value.strip()
    }
    if given:
        # The form asks for every offered playbook's fields: the chosen playbook's are sent.
        choices = await playbooks.usable_playbooks(who.svc, who.actor, team_id)
        chosen = next((p for p in choices if p.id == asked["playbook_id"]), None)
        declared = {spec.name for spec in chosen.fields} if chosen else set()
        given = {name: value for name, value in given.items() if name in declared}
    request = scoped(who.actor.user_id, "start", who.form.get("request_key") or new_key(), {**asked, "fields": given})
    asked |= {FIELD_INPUT + name: value for name, value in given.items()}
    try:
        fields = IncidentCreate.model_validate(
            {
                **asked,
                "team_id": team_id,
                "playbook_id": asked["playbook_id"] or None,
                # None: the playbook's default severity, if it has one.
                "severity": asked["severity"] or None,
                "fields": given,
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
