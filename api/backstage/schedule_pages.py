"""On-call schedules, per team: who is on call now and the handoffs of the next 7 days, a new
schedule, editing one, deleting one.

The team's members see the page; its admins (and system admins) change schedules, as the
service decides (`service.oncall_schedules`, the functions the REST routes call): someone
outside the team reads "Team not found." or "Schedule not found." as for anything else they
may not see. A schedule is written as YAML in a text area (the fields of the REST body,
without the team, people by username), read by the same parser as the YAML import, so errors
name their line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Response

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, visitor
from api.dependencies import conceal_existence
from models.schedules import Schedule, local_label, next_handoffs, oncall_at
from service import oncall_schedules as schedules
from service import schedule_yaml
from service.errors import ServiceError

router = APIRouter(prefix="/backstage", include_in_schema=False)

# What the timeline shows ahead, and at most how many handoffs in it.
TIMELINE = timedelta(days=7)
TIMELINE_MAX = 50


@dataclass(frozen=True)
class TimelineRow:
    at: str
    incoming: str
    outgoing: str


@dataclass(frozen=True)
class ScheduleCard:
    schedule: Schedule
    oncall: str
    timeline: list[TimelineRow]


def example_yaml(today: str) -> str:
    return (
        "name: payments-primary\n"
        "time_zone: Europe/Berlin\n"
        "rotations:\n"
        "- members: [<username>, <username>]\n"
        "  shift: 1w\n"
        "  handoff: Mon 09:00\n"
        f"  start: {today}\n"
        "overrides: []\n"
    )


async def _card(who: Visitor, schedule: Schedule, now: datetime) -> ScheduleCard:
    ahead = [h for h in next_handoffs(schedule, now, TIMELINE_MAX) if h.at <= now + TIMELINE]
    people = oncall_at(schedule, now)
    names = await schedules.usernames(who.svc, people + [u for h in ahead for u in h.incoming + h.outgoing])

    def named(ids: list[str]) -> str:
        return ", ".join(f"@{names[i]}" if i in names else i for i in ids) or "nobody"

    rows = [TimelineRow(local_label(h.at, schedule.time_zone), named(h.incoming), named(h.outgoing)) for h in ahead]
    return ScheduleCard(schedule, named(people), rows)


async def _list_page(
    who: Visitor,
    team_id: str,
    status_code: int = 200,
    *,
    draft: str = "",
    message: str = "",
    errors: dict[str, str] | None = None,
) -> Response:
    listed = await schedules.list_schedules(who.svc, who.actor, team_id)
    now = datetime.now(UTC)
    return await render_in_team(
        who,
        "schedules.html",
        team_id,
        status_code,
        cards=[await _card(who, s, now) for s in listed],
        manages=await schedules.may_manage(who.svc, who.actor, team_id),
        draft=draft or example_yaml(now.date().isoformat()),
        message=message,
        errors=errors or {},
    )


@router.get("/teams/{team_id}/schedules")
async def schedule_list(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _list_page(who, team_id)


@router.post("/teams/{team_id}/schedules")
async def create_schedule(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    text = who.form.get("spec", "")
    try:
        spec = await schedule_yaml.parse_schedule(who.svc, text, team_id)
        made = await schedules.create_schedule(
            who.svc, who.actor, spec, idempotency_key=who.form.get("request_key") or None
        )
    except ServiceError as error:
        if error.status != 422:
            raise
        return await _list_page(who, team_id, 422, draft=text, message=error.message, errors=error.fields)
    return redirect(who, f"/backstage/teams/{team_id}/schedules", f"Schedule {made.name!r} created.")


async def _edit_page(
    who: Visitor,
    schedule: Schedule,
    status_code: int = 200,
    *,
    draft: str = "",
    message: str = "",
    errors: dict[str, str] | None = None,
) -> Response:
    return await render_in_team(
        who,
        "schedule_edit.html",
        schedule.team_id,
        status_code,
        schedule=schedule,
        draft=draft or await schedule_yaml.schedule_as_yaml(who.svc, schedule),
        message=message,
        errors=errors or {},
    )


@router.get("/schedules/{schedule_id}/edit", dependencies=[Depends(conceal_existence)])
async def edit_form(schedule_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _edit_page(who, await schedules.get_schedule(who.svc, who.actor, schedule_id))


@router.post("/schedules/{schedule_id}/edit", dependencies=[Depends(conceal_existence)])
async def edit_schedule(schedule_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    current = await schedules.get_schedule(who.svc, who.actor, schedule_id)
    text = who.form.get("spec", "")
    try:
        spec = await schedule_yaml.parse_schedule(who.svc, text, current.team_id)
        changed = await schedules.update_schedule(who.svc, who.actor, schedule_id, spec)
    except ServiceError as error:
        if error.status != 422:
            raise
        return await _edit_page(who, current, 422, draft=text, message=error.message, errors=error.fields)
    return redirect(who, f"/backstage/teams/{current.team_id}/schedules", f"Schedule {changed.name!r} saved.")


@router.get("/schedules/{schedule_id}/delete", dependencies=[Depends(conceal_existence)])
async def confirm_delete(schedule_id: str, who: Visitor = Depends(visitor)) -> Response:
    schedule = await schedules.get_schedule(who.svc, who.actor, schedule_id)
    return await render_in_team(who, "schedule_delete.html", schedule.team_id, schedule=schedule)


@router.post("/schedules/{schedule_id}/delete", dependencies=[Depends(conceal_existence)])
async def delete_schedule(schedule_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """Deletes once confirmed (`confirmed=1`, which the confirmation's button sends); else asks."""
    schedule = await schedules.get_schedule(who.svc, who.actor, schedule_id)
    if who.form.get("confirmed") != "1":
        return await render_in_team(who, "schedule_delete.html", schedule.team_id, 409, schedule=schedule)
    await schedules.delete_schedule(who.svc, who.actor, schedule_id)
    return redirect(
        who,
        f"/backstage/teams/{schedule.team_id}/schedules",
        f"Schedule {schedule.name!r} deleted: nobody is told of its handoffs any more.",
    )
