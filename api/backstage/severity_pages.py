"""A team's severity levels: every member sees them, its admins edit them, and the stylesheet that
colours them on every page that shows a severity.

The page calls the service the REST routes call (`service.team_configuration`): someone outside
the team reads "Team not found.", a member who is not an admin sees the levels without the form.
The form is one row per level (name, description, colour), a *Remove* box on each and an empty
row to add one, its inputs named by the REST body's field paths (`levels[0].name`); it is read
into that body (`SeverityLevelsSpec`, with the version the page showed), so the limits and the
refusals are the API's, each shown beside its field.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, visitor
from models.severity import SEVERITY_LEVELS_MAX, SeverityLevel, SeverityLevelsSpec
from service import team_configuration
from service.errors import ServiceError, describe_fields, validation_fields
from service.idempotency import scoped

router = APIRouter(prefix="/backstage", include_in_schema=False)
# A new level's colour until its admin picks one.
NEW_COLOUR = "#6b7280"
# The form's inputs: the REST body's field paths (a row's place is its level until saved).
_INPUT = re.compile(r"^levels\[(\d{1,2})\]\.(name|description|colour|remove)$")


def _rows(levels: list[SeverityLevel]) -> list[dict[str, str]]:
    return [{"name": v.name, "description": v.description, "colour": v.colour} for v in levels]


def _drafted(form: dict[str, str]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The rows as typed, in order (an empty new row and removed ones left out), and the REST body
    they make."""
    typed: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        found = _INPUT.match(key)
        if found:
            typed.setdefault(int(found[1]), {})[found[2]] = value
    rows = [
        {
            "name": row.get("name", ""),
            "description": row.get("description", ""),
            "colour": row.get("colour", NEW_COLOUR),
        }
        for _, row in sorted(typed.items())
        if not row.get("remove") and (row.get("name", "").strip() or row.get("description", "").strip())
    ]
    version = form.get("version", "")
    body = {"levels": rows, "version": int(version) if version.isascii() and version.isdigit() else None}
    return rows, body


def _field_row(fields: dict[str, str]) -> dict[int, dict[str, str]]:
    """Problems by row and column (`levels[1].name`, as the API names them); the list's own under -1."""
    by_row: dict[int, dict[str, str]] = {}
    for path, problem in fields.items():
        parts = path.replace("[", ".").replace("]", "").split(".")
        if len(parts) >= 3 and parts[0] == "levels" and parts[1].isdigit():
            by_row.setdefault(int(parts[1]), {})[parts[2]] = problem
        else:
            by_row.setdefault(-1, {})["levels"] = problem
    return by_row


async def _page(
    who: Visitor,
    team_id: str,
    status_code: int = 200,
    *,
    rows: list[dict[str, str]] | None = None,
    message: str = "",
    fields: dict[str, str] | None = None,
) -> Response:
    severities = await team_configuration.team_severities(who.svc, who.actor, team_id)
    editing = rows if rows is not None else _rows(severities.levels)
    return await render_in_team(
        who,
        "severities.html",
        team_id,
        status_code,
        severities=severities,
        manages=await team_configuration.may_manage(who.svc, who.actor, team_id),
        rows=editing,
        # A row to add a level, while there is room for one.
        adding=len(editing) < SEVERITY_LEVELS_MAX,
        new_colour=NEW_COLOUR,
        message=message,
        problems=_field_row(fields or {}),
    )


@router.get("/teams/{team_id}/severities")
async def severity_levels(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _page(who, team_id)


@router.post("/teams/{team_id}/severities")
async def save_severity_levels(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    rows, body = _drafted(who.form)
    try:
        spec = SeverityLevelsSpec.model_validate(body)
        key = who.form.get("request_key") or ""
        request_id = scoped(who.actor.user_id, f"severities:{team_id}", key).id if key else None
        saved = await team_configuration.set_severity_levels(who.svc, who.actor, team_id, spec, request_id=request_id)
    except ValidationError as invalid:
        problems = validation_fields(invalid.errors())
        return await _page(who, team_id, 422, rows=rows, message=describe_fields(problems), fields=problems)
    except ServiceError as error:
        if error.status not in (409, 422):
            raise
        return await _page(who, team_id, error.status, rows=rows, message=error.message, fields=error.fields)
    names = ", ".join(level.name for level in saved.levels)
    return redirect(who, f"/backstage/teams/{team_id}/severities", f"Severity levels saved: {names}.")


@router.get("/teams/{team_id}/severities.css")
async def severity_colours(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    """Each level's colour as a class (`sev-2`): the pages allow styles from the app only (no inline
    style), and colours are the team's. They are checked to be `#rrggbb` when saved."""
    severities = await team_configuration.team_severities(who.svc, who.actor, team_id)
    rules = [f".sev-{level.level} {{ --severity-colour: {level.colour}; }}" for level in severities.levels]
    return Response("\n".join(rules) + "\n", media_type="text/css")
