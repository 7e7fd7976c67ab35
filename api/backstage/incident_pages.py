"""Incident list and incident page; every button sends the update the slash command sends.

Actions build the same command models as the REST routes and go through the same
`act` (locate the incident, the caller's facts, a request key scoped to the caller and
the action, one update). Refusals come from the workflow with its sentence: a move past
open items (or an end) answers `confirmation_required`, and the page asks, then resends
with `force` and the stage it asked about, exactly as the slash command's dialog does.
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
from api.rest.command_deps import Caller, CommandResponse, act
from api.rest.incident_routes import SORT_KEYS, IncidentListItem, user_fact
from models.common import SHORT_ID, Actor
from models.incident import IncidentState, IncidentStatus, ItemState, UpdateStatus
from models.incident_commands import (
    AssignItem,
    ChangeStage,
    EndIncident,
    PostStatusUpdate,
    RequestKey,
    SetItemState,
    StatusUpdateFields,
)
from models.incident_views import to_record
from service import incident_access as incidents
from service import incident_lists, playbooks
from service import incident_starts as incident_start
from service.errors import ServiceError, describe_fields, validation_fields
from service.incident_access import IncidentLocation
from service.incident_lists import IncidentFilter
from service.pagination import PageParams, paginate
from settings import Settings
from workflows.incident_workflow import IncidentWorkflow

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
    member = permissions.is_incident_member(actor, member_ids=state.member_ids, joined_at=state.members_joined_at)
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


def _caller(who: Visitor) -> Caller:
    return Caller(actor=who.actor, svc=who.svc, key=who.form.get("request_key") or None)


def _index(who: Visitor, name: str) -> int:
    value = who.form.get(name, "")
    if not value.isascii() or not value.isdigit() or len(value) > 5:
        raise ServiceError(422, "validation_error", f"The form's {name} is not a position; reload the page.")
    return int(value)


async def _done(who: Visitor, incident_id: str, result: CommandResponse) -> Response:
    return redirect(who, f"/backstage/incidents/{incident_id}", result.message)


async def _refused(who: Visitor, incident_id: str, error: ServiceError) -> Response:
    if error.status in (401, 404):
        raise error
    return redirect(who, f"/backstage/incidents/{incident_id}", error.message, kind="error")


@router.post("/incidents/{incident_id}/items/state", dependencies=[Depends(conceal_existence)])
async def set_item_state(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    stage, item = _index(who, "stage"), _index(who, "item")
    state = ItemState.DONE if who.form.get("state") == "done" else ItemState.OPEN
    body = {"stage": stage, "item": item, "state": state.value}
    try:
        result = await act(
            _caller(who),
            incident_id,
            IncidentWorkflow.set_item_state,
            body,
            lambda a, r, _: SetItemState(actor=a, request=r, stage=stage, item=item, state=state),
        )
    except ServiceError as error:
        return await _refused(who, incident_id, error)
    return await _done(who, incident_id, result)


@router.post("/incidents/{incident_id}/items/assignee", dependencies=[Depends(conceal_existence)])
async def assign_item(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    stage, item = _index(who, "stage"), _index(who, "item")
    assignee_id = who.form.get("assignee_id") or None
    body = {"stage": stage, "item": item, "assignee_id": assignee_id}

    async def build(actor: Actor, request: RequestKey | None, place: IncidentLocation) -> AssignItem:
        assignee = await user_fact(who.svc, place, assignee_id, "assignee_id") if assignee_id else None
        return AssignItem(actor=actor, request=request, stage=stage, item=item, assignee=assignee)

    try:
        result = await act(_caller(who), incident_id, IncidentWorkflow.assign_item, body, build)
    except ServiceError as error:
        return await _refused(who, incident_id, error)
    return await _done(who, incident_id, result)


@router.post("/incidents/{incident_id}/stage", dependencies=[Depends(conceal_existence)])
async def change_stage(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    direction = "prev" if who.form.get("direction") == "prev" else "next"
    force = who.form.get("force") == "1"
    from_stage = _index(who, "from_stage") if who.form.get("from_stage") else None
    body = {"direction": direction, "force": force, "from_stage": from_stage}
    try:
        result = await act(
            _caller(who),
            incident_id,
            IncidentWorkflow.change_stage,
            body,
            lambda a, r, _: ChangeStage(actor=a, request=r, direction=direction, force=force, from_stage=from_stage),
        )
    except ServiceError as error:
        if error.code == "confirmation_required":
            return await _page(
                who,
                incident_id,
                status_code=409,
                confirm={"kind": "stage", "message": error.message, "stage": error.details.get("stage")},
            )
        return await _refused(who, incident_id, error)
    return await _done(who, incident_id, result)


@router.post("/incidents/{incident_id}/end", dependencies=[Depends(conceal_existence)])
async def end_incident(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    confirmed = who.form.get("confirmed") == "1"
    try:
        result = await act(
            _caller(who),
            incident_id,
            IncidentWorkflow.end_incident,
            {"confirmed": confirmed},
            lambda a, r, _: EndIncident(actor=a, request=r, confirmed=confirmed),
        )
    except ServiceError as error:
        if error.code == "confirmation_required":
            return await _page(who, incident_id, status_code=409, confirm={"kind": "end", "message": error.message})
        return await _refused(who, incident_id, error)
    return await _done(who, incident_id, result)


@router.post("/incidents/{incident_id}/restart", dependencies=[Depends(conceal_existence)])
async def restart_incident(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    caller = _caller(who)
    try:
        result = await incident_start.restart(
            who.svc, who.actor, incident_id, request=caller.request("restart_incident", incident_id, None)
        )
    except ServiceError as error:
        return await _refused(who, incident_id, error)
    return redirect(who, f"/backstage/incidents/{incident_id}", result.message)


@router.post("/incidents/{incident_id}/status-updates", dependencies=[Depends(conceal_existence)])
async def post_status_update(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    draft = {"message": who.form.get("message", ""), "status": who.form.get("status", "")}
    try:
        fields = StatusUpdateFields.model_validate({"message": draft["message"], "status": draft["status"] or None})
    except ValidationError as invalid:
        problems = validation_fields(invalid.errors())
        return await _page(
            who,
            incident_id,
            status_code=422,
            update_error=describe_fields(problems),
            update_fields=problems,
            draft=draft,
        )
    try:
        result = await act(
            _caller(who),
            incident_id,
            IncidentWorkflow.post_status_update,
            fields,
            lambda a, r, _: PostStatusUpdate(actor=a, request=r, **fields.model_dump()),
        )
    except ServiceError as error:
        if error.status == 422:
            return await _page(
                who,
                incident_id,
                status_code=422,
                update_error=error.message,
                update_fields=error.fields,
                draft=draft,
            )
        return await _refused(who, incident_id, error)
    return await _done(who, incident_id, result)
