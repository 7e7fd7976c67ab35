"""The incident list and the incident page, the commander's cockpit.

The page shows the incident as the service reads it (`service.incident_access.load`) and
offers a control for every command of the command table a person can take from it; each
control posts the command's fields to `command_forms.run_command_form`, which sends them
through the same service as REST and slash. The choices a control offers (the team's
people, the person's channels) are the service's reads (`service.incident_choices`).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

import permissions
from api.backstage.backstage_common import Visitor, render, render_in_team, templates, visitor
from api.dependencies import conceal_existence
from models.common import SHORT_ID, Actor
from models.custom_fields import FieldType, select_filter, takes
from models.incident import (
    ITEM_EVENTS,
    EventType,
    IncidentState,
    IncidentStatus,
    ItemState,
    TimelineEvent,
    UpdateStatus,
)
from models.incident_views import to_record
from models.playbook import PlaybookSummary
from models.severity import NO_SEVERITY, SEVERITY_LEVELS_MAX
from service import incident_access as incidents
from service import (
    incident_choices,
    incident_history,
    incident_lists,
    incident_reports,
    integrations,
    playbooks,
    team_configuration,
)
from service import incident_starts as incident_start
from service.errors import ServiceError
from service.incident_lists import DEFAULT_DIRECTION, SORT_KEYS, IncidentFilter, IncidentListItem
from service.incident_reports import ReportFormat
from service.pagination import PageParams, paginate
from settings import Settings

router = APIRouter(prefix="/backstage", include_in_schema=False)
PER_PAGE = 25
STATUSES = ("all", "ongoing", "ended")
SORTS = {"started_at": "Started", "ended_at": "Ended", "name": "Name", "duration": "Duration", "severity": "Severity"}
UNFILTERED = {
    "status": "all",
    "commander": "",
    "playbook_id": "",
    "severity": "",
    "field": "",
    "search": "",
    "started_after": "",
    "started_before": "",
    "sort": "started_at",
    "direction": "",
}


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
    severity_text = q.get("severity", "").strip()
    # A level's number, or "none" for the incidents without one; anything else is no filter.
    severity = NO_SEVERITY if severity_text == "none" else _int(severity_text, -1, -1, SEVERITY_LEVELS_MAX)
    field_text = q.get("field", "").strip()
    try:
        field_filters = incident_lists.read_field_filters([field_text] if field_text else [])
    except ServiceError as problem:
        errors["field"] = problem.message
        field_filters = []
    where = IncidentFilter(
        status=status,
        fields=field_filters,
        commander_id=commander_id,
        playbook_id=playbook_id,
        search=search,
        started_after=datetime.combine(after, time(), UTC) if after else None,
        # The end date is included: incidents started before the next day.
        started_before=datetime.combine(before + timedelta(days=1), time(), UTC) if before else None,
        severity=severity if severity >= 0 else None,
    )
    found = [] if errors.get("commander") else await incident_lists.list_incidents(who.svc, who.actor, team_id, where)
    if errors.get("commander"):
        await playbooks.require_team(who.svc, who.actor, team_id)
    now = datetime.now(UTC)
    items = [IncidentListItem(**s.model_dump(), duration_seconds=s.elapsed_seconds(now)) for s in found]
    params = PageParams(
        page=_int(q.get("page"), 0, 0, 100_000), per_page=_int(q.get("per_page"), PER_PAGE, 1, 200), direction=direction
    )
    page = paginate(items, SORT_KEYS[sort], params, default=DEFAULT_DIRECTION.get(sort, "desc"))
    names = await names_for(who, {i.commander_id for i in page.items})
    team_playbooks = await playbooks.usable_playbooks(who.svc, who.actor, team_id)
    levels = await team_configuration.severity_levels(who.svc, team_id)
    filters = {
        "status": status,
        "commander": commander,
        "playbook_id": playbook_id or "",
        "severity": "none" if severity == NO_SEVERITY else str(severity) if severity > 0 else "",
        "field": field_text,
        "search": search or "",
        "started_after": q.get("started_after", ""),
        "started_before": q.get("started_before", ""),
        "sort": sort,
        "direction": direction or "",
    }
    return await render_in_team(
        who,
        "incidents.html",
        team_id,
        page=page,
        names=names,
        errors=errors,
        filters=filters,
        # The filters stay folded until used.
        filtering=bool(errors) or filters != UNFILTERED,
        statuses=STATUSES,
        sorts=SORTS,
        playbooks=team_playbooks,
        severity_levels=levels,
        field_choices=field_choices(team_playbooks),
        now=now,
    )


def field_choices(choices: list[PlaybookSummary]) -> list[str]:
    """What a field filter offers: each select field's options as `name=option`, for the playbooks shown."""
    found = [f"{spec.name}={option}" for p in choices for spec in select_filter(p.fields) for option in spec.options]
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------------------- the incident page

# The timeline's kinds, for its filter: every event type is of exactly one.
TIMELINE_KINDS: dict[str, tuple[str, frozenset[EventType]]] = {
    "updates": ("Status updates", frozenset({EventType.STATUS_UPDATE})),
    "notes": (
        "Notes and key moments",
        frozenset(
            {
                EventType.NOTE_ADDED,
                EventType.NOTE_EDITED,
                EventType.NOTE_DELETED,
                EventType.KEY_MOMENT_STARRED,
                EventType.KEY_MOMENT_UNSTARRED,
            }
        ),
    ),
    "retrospective": (
        "Retrospective",
        frozenset(
            {
                EventType.RETROSPECTIVE_OPENED,
                EventType.RETROSPECTIVE_REMINDED,
                EventType.RETROSPECTIVE_PUBLISHED,
                EventType.RETROSPECTIVE_DECLINED,
            }
        ),
    ),
    "severity": ("Severity", frozenset({EventType.SEVERITY_CHANGED})),
    "fields": ("Fields", frozenset({EventType.FIELD_CHANGED})),
    "alerts": (
        "Alerts",
        frozenset(
            {EventType.ALERT_FIRING, EventType.ALERT_RESOLVED, EventType.ALERTS_RESOLVED, EventType.ALERTS_UNLISTED}
        ),
    ),
    "checklist": ("Checklist", ITEM_EVENTS | {EventType.COMMAND_RUN}),
    "stages": ("Stages", frozenset({EventType.STAGE_CHANGED})),
    "people": ("People", frozenset({EventType.COMMANDER_CHANGED, EventType.MEMBER_INVITED})),
    "announcements": ("Announcements", frozenset({EventType.ANNOUNCED})),
    "reminders": ("Reminders", frozenset({EventType.REMINDER_CHANGED, EventType.REMINDER_SENT})),
    "rules": ("Playbook rules", frozenset({EventType.RULE_FIRED})),
    "paging": (
        "Paging",
        frozenset(
            {
                EventType.PAGED,
                EventType.PAGE_ACKNOWLEDGED,
                EventType.PAGE_DECLINED,
                EventType.PAGE_UNREACHABLE,
                EventType.ESCALATED,
                EventType.ESCALATION_EXHAUSTED,
            }
        ),
    ),
    "lifecycle": (
        "Start and end",
        frozenset({EventType.CREATED, EventType.ENDED, EventType.CANCELLED, EventType.RESTARTED, EventType.AUTO_ENDED}),
    ),
    "problems": (
        "Problems",
        frozenset(
            {
                EventType.INVITE_FAILED,
                EventType.EFFECT_FAILED,
                EventType.WEBHOOK_FAILED,
                EventType.EFFECT_RECOVERED,
                EventType.CHANNEL_ACCESS_LOST,
                EventType.CHANNEL_ACCESS_BACK,
            }
        ),
    ),
}
KIND_OF: dict[EventType, str] = {t: kind for kind, (_, types) in TIMELINE_KINDS.items() for t in types}
# The reminder's and the snooze's one-click intervals (a custom one is typed in minutes).
REMINDER_PRESETS = ((900, "15 min"), (1800, "30 min"), (3600, "1 hour"), (4 * 3600, "4 hours"))
SNOOZE_PRESETS = ((1800, "30 min"), (3600, "1 hour"), (4 * 3600, "4 hours"))


def digest(state: IncidentState) -> str:
    """Changes whenever anything on the page would (elapsed times aside)."""
    return hashlib.sha256(state.model_dump_json(exclude={"outbox", "next_seq"}).encode()).hexdigest()[:24]


def web_ui_url(settings: Settings, incident_id: str) -> str:
    return incident_start.incident_config(settings, incident_id).details_url


def channel_url(settings: Settings, state: IncidentState) -> str:
    if not state.channel_name or not state.team_name:
        return ""
    return f"{settings.mattermost_browser_url}/{state.team_name}/channels/{state.channel_name}"


def timeline_view(events: list[TimelineEvent], kind: str) -> list[TimelineEvent]:
    """Newest first, of one kind (or all)."""
    chosen = TIMELINE_KINDS[kind][1] if kind in TIMELINE_KINDS else None
    return [e for e in reversed(events) if chosen is None or e.type in chosen]


def kind_counts(events: list[TimelineEvent]) -> dict[str, int]:
    """How many events of each kind there are, for the kinds there are any of."""
    counts: dict[str, int] = {}
    for event in events:
        counts[KIND_OF[event.type]] = counts.get(KIND_OF[event.type], 0) + 1
    return {kind: counts[kind] for kind in TIMELINE_KINDS if kind in counts}


@dataclass(frozen=True)
class PageView:
    """How the person is looking at the page: the timeline's kind, and the item being edited."""

    kind: str = "all"
    editing: str = ""

    @classmethod
    def of(cls, request: Request) -> PageView:
        kind = request.query_params.get("kind", "all")
        editing = request.query_params.get("edit", "")
        return cls(kind=kind if kind in TIMELINE_KINDS else "all", editing=editing[:64])

    def query(self, **changes: str) -> str:
        """The page's query string with some of the view changed ("" leaves a part out)."""
        params = {"kind": self.kind if self.kind != "all" else "", "edit": self.editing, **changes}
        given = {key: value for key, value in params.items() if value}
        return "?" + urlencode(given) if given else ""


async def _choices(who: Visitor, state: IncidentState) -> dict[str, Any]:
    """What the controls offer: people to invite (the team's, not yet in the incident) and
    channels to announce in (the person's, not yet told)."""
    people, channels = await asyncio.gather(
        incident_choices.team_people(who.svc, state.team_id),
        incident_choices.channels_to_announce_in(who.svc, who.session.token, state.team_id),
    )
    informed = {state.channel_id, *state.broadcast_channel_ids, *state.announced_channel_ids}
    return {
        "invitable": [p for p in people if p["id"] not in state.member_ids],
        "announceable": [c for c in channels if c["id"] not in informed],
    }


def field_rows(state: IncidentState) -> list[dict[str, Any]]:
    """The incident's custom fields as its page shows them (and the forms that set them)."""
    declared = state.playbook.fields if state.playbook else []
    rows = []
    for spec in declared:
        value = state.field_values.get(spec.name, "")
        shown = value
        if value and spec.type == FieldType.USER:
            shown = "@" + state.usernames.get(value, value)
        rows.append({"spec": spec, "value": value, "shown": shown, "takes": takes(spec)})
    return rows


async def _context(
    who: Visitor, state: IncidentState, actor: Actor, view: PageView, *, read_only: bool = False
) -> dict[str, Any]:
    """What the incident page shows; `read_only` (the incident as it stood once) offers no change,
    so it asks Mattermost and the team's settings nothing for the forms."""
    now = datetime.now(UTC)
    member = permissions.is_member_of(actor, state)
    can_change = permissions.can_change_incident(actor, is_member=member) and not read_only
    ongoing = state.status == IncidentStatus.ONGOING
    minimum = who.svc.settings.reminder_min_seconds
    return {
        "incident": to_record(state, now),
        "state": state,
        "usernames": state.usernames,
        "can_change": can_change,
        "ongoing": ongoing,
        "web_ui": web_ui_url(who.svc.settings, state.id),
        "channel_link": channel_url(who.svc.settings, state),
        "digest": digest(state),
        "update_statuses": [s.value for s in UpdateStatus],
        "done": ItemState.DONE,
        "now": now,
        "view": view,
        "timeline": timeline_view(state.timeline, view.kind),
        "kinds": {kind: label for kind, (label, _) in TIMELINE_KINDS.items()},
        "kind_counts": kind_counts(state.timeline),
        "kind_of": KIND_OF,
        "reminder_presets": [(seconds, label) for seconds, label in REMINDER_PRESETS if seconds >= minimum],
        "snooze_presets": SNOOZE_PRESETS,
        # The levels the severity form offers (the team's, as they are now).
        "severity_levels": await team_configuration.severity_levels(who.svc, state.team_id) if can_change else [],
        # The playbook's custom fields, each with its value as kept and as people read it.
        "field_rows": field_rows(state),
        **(await _choices(who, state) if can_change and ongoing else {"invitable": [], "announceable": []}),
    }


async def incident_page_response(
    who: Visitor, incident_id: str, status_code: int = 200, view: PageView | None = None, **extra: Any
) -> Response:
    """The incident page; `extra` is what a refused form shows (its error and the draft)."""
    access = await incidents.load(who.svc, who.actor, incident_id)
    context = await _context(who, access.state, access.actor, view or PageView.of(who.request))
    # The header links to the team's integrations for those who manage them, as on every team page.
    context["manages_integrations"] = await integrations.may_manage(who.svc, who.actor, access.state.team_id)
    return await render(who, "incident.html", status_code=status_code, **context, **extra)


@router.get("/incidents/{incident_id}", dependencies=[Depends(conceal_existence)])
async def incident_page(incident_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await incident_page_response(who, incident_id)


@router.get("/incidents/{incident_id}/report", dependencies=[Depends(conceal_existence)])
async def incident_report(incident_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    """The page's *Download* links: the report as REST gives it (`?format=pdf|md|json`)."""
    asked = request.query_params.get("format", "pdf")
    if asked not in get_args(ReportFormat):
        raise ServiceError(422, "validation_error", "A report is pdf, md or json: ask for one of those (?format=pdf).")
    fmt = cast(ReportFormat, asked)
    rendered = await incident_reports.rendered_report(who.svc, who.actor, incident_id, fmt)
    return Response(
        content=rendered.body,
        media_type=rendered.media_type,
        headers={"Content-Disposition": f'attachment; filename="{rendered.filename}"', "Cache-Control": "no-store"},
    )


@router.get("/incidents/{incident_id}/live", dependencies=[Depends(conceal_existence)])
async def incident_live(incident_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    """What the page polls: 204 while nothing changed, else the changed part of the page."""
    access = await incidents.load(who.svc, who.actor, incident_id)
    current = digest(access.state)
    if request.query_params.get("digest") == current:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    context = {
        "me": who.actor,
        "csrf": who.session.csrf,
        **await _context(who, access.state, access.actor, PageView.of(request)),
    }
    response = templates.TemplateResponse(request, "incident_live.html", context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Digest"] = current
    return response


def _moment(request: Request, started: datetime, last: datetime) -> datetime:
    """The moment asked for: `at` (ISO, UTC without an offset), else `offset` seconds after the
    start (the slider's), else the last one (now, or the end)."""
    given = request.query_params.get("at", "").strip()
    offset = request.query_params.get("offset", "").strip()
    if given:
        try:
            moment = datetime.fromisoformat(given[:40])
        except ValueError:
            raise ServiceError(422, "validation_error", "That is not a time: give it as 2025-06-01T09:30:00.") from None
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        # The page's moment field is to the second: the second the incident started in means its
        # start (the field shows the start as that second, and sent back it must not be refused).
        return started if started - timedelta(seconds=1) < moment < started else moment
    if offset.isascii() and offset.isdigit():
        return started + timedelta(seconds=min(int(offset[:12]), max(0, (last - started).total_seconds())))
    return last


@router.get("/incidents/{incident_id}/as-of", dependencies=[Depends(conceal_existence)])
async def incident_as_of(incident_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    """The incident as it stood at a moment of its life, read-only, rebuilt from its history
    (`GET /api/v1/incidents/{id}?as_of=`), with a slider over its span from start to end (or now)."""
    access = await incidents.load(who.svc, who.actor, incident_id)
    now = datetime.now(UTC)
    current = access.state
    last = current.ended_at if current.status != IncidentStatus.ONGOING and current.ended_at else now
    at = _moment(request, current.started_at, last)
    state = await incident_history.rebuilt_at(who.svc, current, at)
    context = await _context(who, state, access.actor, PageView.of(request), read_only=True)
    shown = min(max(at.astimezone(UTC), current.started_at), now)
    context.update(
        incident=to_record(state, shown),
        now=shown,
        as_of=shown,
        span_ends="now" if current.status == IncidentStatus.ONGOING else "its end",
        span_seconds=max(1, int((last - current.started_at).total_seconds())),
        offset_seconds=max(0, int((shown - current.started_at).total_seconds())),
        manages_integrations=await integrations.may_manage(who.svc, who.actor, current.team_id),
    )
    return await render(who, "incident_as_of.html", **context)
