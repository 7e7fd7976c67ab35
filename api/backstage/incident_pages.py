"""Incident list and incident page; every control sends the command the slash command sends.

A control posts the command's fields to the command's route; they go through the same
service as REST and slash (`service.command_runner`: locate the incident, the caller's
facts, a request key scoped to the caller and the command, one update). Refusals come from
the workflow with its sentence: a move past open items (or an end) answers
`confirmation_required`, and the page asks, then resends what the command table's
confirmation says (with the stage it asked about), exactly as the slash command's dialog does.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

import permissions
from api.backstage.backstage_common import Visitor, form_visitor, redirect, render, templates, visitor
from api.dependencies import conceal_existence
from models.command_table import BY_NAME, CommandSpec
from models.common import SHORT_ID, Actor
from models.incident import IncidentState, IncidentStatus, ItemState, UpdateStatus
from models.incident_commands import IncidentCommand
from models.incident_views import to_record
from models.pending_commands import RECEIVED
from service import incident_access as incidents
from service import incident_lists, playbooks
from service import incident_starts as incident_start
from service.command_runner import references_from_body, run_command
from service.errors import ServiceError, describe_fields, validation_fields
from service.idempotency import new_key, scoped
from service.incident_lists import SORT_KEYS, IncidentFilter, IncidentListItem
from service.pagination import PageParams, paginate
from service.pending_commands import CommandPending
from settings import Settings

router = APIRouter(prefix="/backstage", include_in_schema=False)
PER_PAGE = 25
STATUSES = ("all", "ongoing", "ended")
SORTS = {"started_at": "Started", "ended_at": "Ended", "name": "Name", "duration": "Duration"}


# ---------------------------------------------------------------------------- list


def _day(value: str, field: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = "a date such as 2026-11-30"
        return None


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return min(max(number, low), high)


async def names_for(who: Visitor, user_ids: set[str]) -> dict[str, str]:
    """Usernames for display (unknown ids stay ids)."""
    found = await who.svc.mattermost.get_users_by_ids(sorted(user_ids)) if user_ids else []
    return {u["id"]: u["username"] for u in found}


@router.get("/teams/{team_id}/incidents")
async def incident_list(team_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    q = request.query_params
    errors: dict[str, str] = {}
    status = q.get("status", "all") if q.get("status", "all") in STATUSES else "all"
    sort = q.get("sort", "started_at") if q.get("sort", "started_at") in SORTS else "started_at"
    direction = q.get("direction") if q.get("direction") in ("asc", "desc") else None
    search = q.get("search", "").strip()[:64] or None
    commander = q.get("commander", "").strip().lstrip("@")
    commander_id: str | None = None
    if commander:
        user = await who.svc.facts.user_by_username(commander)
        if user is None:
            errors["commander"] = f"there is no user @{commander}"
        else:
            commander_id = str(user["id"])
    playbook_id = q.get("playbook_id", "").strip() or None
    if playbook_id and not SHORT_ID.match(playbook_id):
        errors["playbook_id"] = "not a playbook id"
        playbook_id = None
    after = _day(q.get("started_after", ""), "started_after", errors)
    before = _day(q.get("started_before", ""), "started_before", errors)
    where = IncidentFilter(
        status=status,
        commander_id=commander_id,
        playbook_id=playbook_id,
        search=search,
        started_after=datetime.combine(after, time(), UTC) if after else None,
        # The end date is included: incidents started before the next day.
        started_before=datetime.combine(before + timedelta(days=1), time(), UTC) if before else None,
    )
    found = [] if errors.get("commander") else await incident_lists.list_incidents(who.svc, who.actor, team_id, where)
    if errors.get("commander"):
        await playbooks.require_team(who.svc, who.actor, team_id)
    now = datetime.now(UTC)
    items = [IncidentListItem(**s.model_dump(), duration_seconds=s.elapsed_seconds(now)) for s in found]
    params = PageParams(
        page=_int(q.get("page"), 0, 0, 100_000), per_page=_int(q.get("per_page"), PER_PAGE, 1, 200), direction=direction
    )
    page = paginate(items, SORT_KEYS[sort], params, default="asc" if sort == "name" else "desc")
    names = await names_for(who, {i.commander_id for i in page.items})
    team_playbooks = await playbooks.list_playbooks(
        who.svc, who.actor, team_id, sort="title", params=PageParams(page=0, per_page=200, direction=None)
    )
    return await render(
        who,
        "incidents.html",
        team=_team(await who.teams(), team_id),
        team_id=team_id,
        page=page,
        names=names,
        errors=errors,
        filters={
            "status": status,
            "commander": commander,
            "playbook_id": playbook_id or "",
            "search": search or "",
            "started_after": q.get("started_after", ""),
            "started_before": q.get("started_before", ""),
            "sort": sort,
            "direction": direction or "",
        },
        statuses=STATUSES,
        sorts=SORTS,
        playbooks=team_playbooks.items,
        now=now,
    )


def _team(teams: list[dict[str, Any]], team_id: str) -> dict[str, Any]:
    return next((t for t in teams if t.get("id") == team_id), {"id": team_id, "display_name": "Team", "name": ""})


# ---------------------------------------------------------------------------- the incident page


def digest(state: IncidentState) -> str:
    """Changes whenever anything on the page would (elapsed times aside)."""
    return hashlib.sha256(state.model_dump_json(exclude={"outbox", "next_seq"}).encode()).hexdigest()[:24]


def web_ui_url(settings: Settings, incident_id: str) -> str:
    return incident_start.incident_config(settings, incident_id).details_url


def channel_url(settings: Settings, state: IncidentState) -> str:
    if not state.channel_name or not state.team_name:
        return ""
    return f"{settings.mattermost_browser_url}/{state.team_name}/channels/{state.channel_name}"


def _context(who: Visitor, state: IncidentState, actor: Actor) -> dict[str, Any]:
    now = datetime.now(UTC)
    member = permissions.is_member_of(actor, state)
    return {
        "incident": to_record(state, now),
        "state": state,
        "usernames": state.usernames,
        "can_change": permissions.can_change_incident(actor, is_member=member),
        "ongoing": state.status == IncidentStatus.ONGOING,
        "web_ui": web_ui_url(who.svc.settings, state.id),
        "channel_link": channel_url(who.svc.settings, state),
        "digest": digest(state),
        "update_statuses": [s.value for s in UpdateStatus],
        "done": ItemState.DONE,
        "now": now,
    }


async def _page(who: Visitor, incident_id: str, status_code: int = 200, **extra: Any) -> Response:
    access = await incidents.load(who.svc, who.actor, incident_id)
    return await render(
        who, "incident.html", status_code=status_code, **_context(who, access.state, access.actor), **extra
    )


@router.get("/incidents/{incident_id}", dependencies=[Depends(conceal_existence)])
async def incident_page(incident_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _page(who, incident_id)


@router.get("/incidents/{incident_id}/live", dependencies=[Depends(conceal_existence)])
async def incident_live(incident_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    """What the page polls: 204 while nothing changed, else the changed part of the page."""
    access = await incidents.load(who.svc, who.actor, incident_id)
    current = digest(access.state)
    if request.query_params.get("digest") == current:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    context = {"me": who.actor, "csrf": who.session.csrf, **_context(who, access.state, access.actor)}
    response = templates.TemplateResponse(request, "incident_live.html", context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Digest"] = current
    return response


# ---------------------------------------------------------------------------- actions
#
# Every control on the page posts to one route per command of the command table, with the
# command's own field names (and people by id, as the REST API takes them); a request key
# per rendered form makes a double click apply once.

# Fields every command has that no form may set: the service fills them.
_OWN_FIELDS = frozenset(IncidentCommand.model_fields)


def form_values(spec: CommandSpec, form: dict[str, str]) -> dict[str, Any]:
    """The command's fields a form gives. Empty inputs are left out (their defaults apply), or
    None where a field may be empty (e.g. no assignee); the command's model checks the rest."""
    fields = spec.command.model_fields
    by_rest = {ref.rest_field: name for name, ref in spec.refs.items()}
    given: dict[str, Any] = {}
    for key, value in form.items():
        name = by_rest.get(key, key)
        if name in _OWN_FIELDS or name not in fields:
            continue
        if value == "":
            if fields[name].is_required() and name not in spec.refs:
                given[key] = value
            elif name in spec.refs and spec.refs[name].optional:
                given[key] = None
            continue
        given[key] = value
    return references_from_body(spec, given)


@router.post("/incidents/{incident_id}/commands/{name}", dependencies=[Depends(conceal_existence)])
async def run_command_form(incident_id: str, name: str, who: Visitor = Depends(form_visitor)) -> Response:
    spec = BY_NAME.get(name)
    if spec is None:
        raise ServiceError(404, "not_found", "There is no such action; reload the page.")
    values = form_values(spec, who.form)
    asked = {key: value for key, value in who.form.items() if key not in ("csrf_token", "request_key")}
    request = scoped(who.actor.user_id, f"{spec.name}:{incident_id}", who.form.get("request_key") or new_key(), asked)
    try:
        result = await run_command(
            who.svc, spec, who.actor, incident_id, values, request=request, caller_token=who.session.token
        )
    except ValidationError as invalid:
        problems = validation_fields(invalid.errors())
        return await _page(
            who, incident_id, status_code=422, form=name, form_error=describe_fields(problems), form_fields=problems,
            draft=asked,
        )  # fmt: skip
    except ServiceError as error:
        if error.code == "confirmation_required" and spec.slash and spec.slash.confirm:
            confirm = spec.slash.confirm
            resend = {**asked, **{key: _form_value(value) for key, value in confirm.resend.items()}}
            if confirm.from_stage:
                resend["from_stage"] = str(error.details.get("stage", ""))
            shown = {"name": name, "message": error.message, "submit": confirm.submit, "resend": resend}
            return await _page(who, incident_id, status_code=409, confirm=shown)
        if error.status == 422 and name in FORMS_ON_PAGE:
            return await _page(
                who, incident_id, status_code=422, form=name, form_error=error.message, form_fields=error.fields,
                draft=asked,
            )  # fmt: skip
        if error.status in (401, 404):
            raise
        return redirect(who, f"/backstage/incidents/{incident_id}", error.message, kind="error")
    except CommandPending:
        return redirect(who, f"/backstage/incidents/{incident_id}", PENDING_HERE)
    return redirect(who, f"/backstage/incidents/{incident_id}", result.message)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# A command Temporal took but did not answer in time: the live page shows it once applied.
PENDING_HERE = f"{RECEIVED} The incident service is slow right now; this page shows the change once it is applied."

# Commands with a form of their own on the page, whose refusals are shown beside its fields.
FORMS_ON_PAGE = frozenset({"post_status_update"})
