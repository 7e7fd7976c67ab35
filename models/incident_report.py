"""The incident report to share: one model built from the incident's state, and its markdown.

`GET /api/v1/incidents/{id}/report?format=json|md|pdf` (and the backstage's *Download*) gives
the same `IncidentReport`: as JSON it is this model; `to_markdown` renders it here (pure), and
`service.incident_reports` renders the PDF from it. What it holds: the incident's name,
severity, times and figures, its participants, its status updates, the checklist as it ended
(or stands), the key moments and the whole timeline (as the incident keeps it: its newest
events, `workflows.incident_rules.MAX_TIMELINE_EVENTS`).

The retrospective (`models.retrospective`), once the incident has one, is its last section:
where it stands (draft, published, declined: who, when, why) and its text as people wrote it
(markdown; its headings nested under the report's own, mentions neutralised, HTML as text).
Without one the section is absent, not empty.

Markdown is escaped where people's words go (`cell`, `line`, `block`): a pipe or a new line
cannot break a table, HTML is shown as text, and no mention can notify anyone when the report
is pasted into Mattermost (every `@name` is neutralised, `models.mentions`).
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field

from models.common import Model
from models.incident import EventType, IncidentState, IncidentStatus, ItemState, UpdateStatus
from models.incident_views import time_to_resolution
from models.mentions import neutralise_mentions
from models.retrospective import RetrospectiveStatus


class ReportPerson(Model):
    user_id: str
    username: str = Field(description="Their Mattermost username as the incident knew it (empty: unknown)")
    roles: list[str] = Field(description="commander, reporter, member (of the incident channel), acted, assignee")


class ReportUpdate(Model):
    at: datetime
    author: str
    status: UpdateStatus | None
    message: str


class ReportItem(Model):
    title: str
    state: ItemState
    assignee: str | None
    state_changed_at: datetime | None
    due_at: datetime | None
    overdue: bool


class ReportStage(Model):
    title: str
    active: bool
    items: list[ReportItem]


class ReportEvent(Model):
    id: str
    at: datetime
    since_start_seconds: int
    type: EventType
    what: str = Field(description="What happened, as the timeline says it (it names who)")
    key_moment: bool


class ReportRetrospective(Model):
    status: RetrospectiveStatus
    version: int
    due_at: datetime
    concluded_at: datetime | None = Field(description="When it was published or declined")
    concluded_by: str | None = Field(description="Who published or declined it")
    reason: str = Field(description="Why it was declined")
    text: str = Field(description="Its markdown, as people wrote it")


class IncidentReport(Model):
    """An incident's report, as of `generated_at`."""

    id: str
    name: str
    description: str
    status: IncidentStatus
    severity: str | None = Field(description="The severity's name and level (`SEV2 (level 2)`), if one was given")
    team: str
    playbook: str | None
    commander: str
    reporter: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int
    first_status_update_at: datetime | None
    time_to_resolution_seconds: int | None
    participants: list[ReportPerson]
    status_updates_posted: int
    status_updates: list[ReportUpdate] = Field(description="The newest the incident keeps in full, oldest first")
    checklist: list[ReportStage]
    key_moments: list[ReportEvent]
    timeline: list[ReportEvent]
    retrospective: ReportRetrospective | None = Field(
        default=None, description="The incident's retrospective (None: it has none)"
    )
    generated_at: datetime


def _name(state: IncidentState, user_id: str | None) -> str:
    if user_id is None:
        return ""
    return state.usernames.get(user_id, "") or user_id


def _participants(state: IncidentState) -> list[ReportPerson]:
    """The commander, the reporter, the channel's members, whoever acted and the items' assignees."""
    roles: dict[str, list[str]] = {}
    for user_id, role in (
        (state.commander_id, "commander"),
        (state.reporter_id, "reporter"),
        *((m, "member") for m in state.member_ids),
        *((e.actor_id, "acted") for e in state.timeline if e.actor_id in state.usernames),
        *((i.assignee_id, "assignee") for stage in state.checklists for i in stage.items if i.assignee_id),
    ):
        if role not in roles.setdefault(user_id, []):
            roles[user_id].append(role)
    return [ReportPerson(user_id=u, username=state.usernames.get(u, ""), roles=r) for u, r in roles.items()]


def build_report(state: IncidentState, now: datetime) -> IncidentReport:
    """The report of `state` at `now` (pure)."""
    ongoing = state.status == IncidentStatus.ONGOING
    end = state.ended_at if not ongoing and state.ended_at else now
    starred = set(state.key_moments)
    timeline = [
        ReportEvent(
            id=e.id,
            at=e.at,
            since_start_seconds=max(0, round((e.at - state.started_at).total_seconds())),
            type=e.type,
            what=e.summary,
            key_moment=e.id in starred,
        )
        for e in sorted(state.timeline, key=lambda e: e.at)
    ]
    severity = state.severity
    return IncidentReport(
        id=state.id,
        name=state.name,
        description=state.description,
        status=state.status,
        severity=f"{severity.name} (level {severity.level})" if severity else None,
        team=state.team_name or state.team_id,
        playbook=f"{state.playbook.title} (v{state.playbook.version})" if state.playbook else None,
        commander=_name(state, state.commander_id),
        reporter=state.source.reporter_name if state.source else _name(state, state.reporter_id),
        started_at=state.started_at,
        ended_at=state.ended_at if state.status == IncidentStatus.ENDED else None,
        duration_seconds=max(0, round((end - state.started_at).total_seconds())),
        first_status_update_at=state.first_status_update_at,
        time_to_resolution_seconds=time_to_resolution(state),
        participants=_participants(state),
        status_updates_posted=max(state.status_updates_posted, len(state.status_updates)),
        status_updates=[
            ReportUpdate(at=u.at, author=_name(state, u.author_id), status=u.status, message=u.message)
            for u in state.status_updates
        ],
        checklist=[
            ReportStage(
                title=stage.title,
                active=ongoing and index == state.active_stage,
                items=[
                    ReportItem(
                        title=item.title,
                        state=item.state,
                        assignee=_name(state, item.assignee_id) or None,
                        state_changed_at=item.state_changed_at,
                        due_at=item.due_at,
                        overdue=item.overdue,
                    )
                    for item in stage.items
                ],
            )
            for index, stage in enumerate(state.checklists)
        ],
        # In the order they happened (a key moment that left the bounded timeline is not listed).
        key_moments=[e for e in timeline if e.id in starred],
        timeline=timeline,
        retrospective=_retrospective(state),
        generated_at=now,
    )


def _retrospective(state: IncidentState) -> ReportRetrospective | None:
    retro = state.retrospective
    if retro is None:
        return None
    return ReportRetrospective(
        status=retro.status,
        version=retro.version,
        due_at=retro.due_at,
        concluded_at=retro.concluded_at,
        concluded_by=_name(state, retro.concluded_by) or None,
        reason=retro.reason,
        text=retro.text,
    )


# ---------------------------------------------------------------------------- markdown

_LINE_BREAKS = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_MARKDOWN_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _quiet(text: str) -> str:
    """People's words with every mention neutralised and HTML shown as text."""
    return neutralise_mentions(text).translate(_MARKDOWN_HTML)


def line(text: str) -> str:
    """Text on one line of markdown (a heading, a list item): line breaks become spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", _quiet(text)).split())


def cell(text: str) -> str:
    """Text in one table cell: on one line, and no pipe or backslash of it can end the cell."""
    return line(text).replace("\\", "\\\\").replace("|", "\\|")


def block(text: str) -> str:
    """A paragraph of people's words as a quote, its lines kept."""
    return "\n".join(f"> {part}" if part.strip() else ">" for part in _LINE_BREAKS.split(_quiet(text)))


def duration(seconds: float | None) -> str:
    """A time to the second: mm:ss for the first hour, then h:mm:ss, then days (`2d 01:02:03`);
    `—` for none."""
    if seconds is None:
        return "—"
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02}:{minutes:02}:{secs:02}"
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes:02}:{secs:02}"


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


def table(headings: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table; every cell is escaped here."""
    return [
        "| " + " | ".join(cell(h) for h in headings) + " |",
        "|" + "---|" * len(headings),
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows),
    ]


# The report's tables, the same in markdown and in the PDF (`service.incident_reports`).
PARTICIPANT_HEADINGS = ["Who", "Role"]
ITEM_HEADINGS = ["Item", "State", "Assignee", "Changed", "Due"]
EVENT_HEADINGS = ["Time", "Since start", "Id", "What"]


def fact_rows(report: IncidentReport) -> list[list[str]]:
    return [
        ["Status", report.status.value],
        ["Severity", report.severity or "none given"],
        ["Team", report.team],
        ["Playbook", report.playbook or "none"],
        ["Commander", report.commander],
        ["Reporter", report.reporter],
        ["Started", when(report.started_at)],
        ["Ended", when(report.ended_at)],
        ["Duration", duration(report.duration_seconds)],
        ["First status update", when(report.first_status_update_at)],
        ["Time to resolution", duration(report.time_to_resolution_seconds)],
    ]


def participant_rows(report: IncidentReport) -> list[list[str]]:
    return [[p.username or p.user_id, ", ".join(p.roles)] for p in report.participants]


def item_rows(stage: ReportStage) -> list[list[str]]:
    return [
        [
            item.title,
            item.state.value.replace("_", " ") + (" (overdue)" if item.overdue else ""),
            item.assignee or "",
            when(item.state_changed_at) if item.state_changed_at else "",
            when(item.due_at) if item.due_at else "",
        ]
        for item in stage.items
    ]


def to_markdown(report: IncidentReport) -> str:
    lines = [f"# Incident report: {line(report.name)}", ""]
    if report.description:
        lines += [block(report.description), ""]
    lines += table(["", ""], fact_rows(report))
    lines += ["", "## Participants", ""]
    lines += table(PARTICIPANT_HEADINGS, participant_rows(report))
    lines += ["", "## Status updates", ""]
    if report.status_updates_posted > len(report.status_updates):
        lines += [f"*The newest {len(report.status_updates)} of {report.status_updates_posted} updates.*", ""]
    for update in report.status_updates:
        status = f" ({update.status.value})" if update.status else ""
        lines += [f"**{when(update.at)}**, {line(update.author)}{status}:", "", block(update.message), ""]
    if not report.status_updates:
        lines += ["None were posted.", ""]
    lines += ["## Checklist", ""]
    for number, stage in enumerate(report.checklist, start=1):
        active = " (active)" if stage.active else ""
        lines += [f"### {number}. {line(stage.title)}{active}", ""]
        rows = item_rows(stage)
        lines += [*table(ITEM_HEADINGS, rows), ""] if rows else ["No items.", ""]
    lines += ["## Key moments", ""]
    if report.key_moments:
        lines += [*table(EVENT_HEADINGS, [event_row(e) for e in report.key_moments]), ""]
    else:
        lines += ["None were starred.", ""]
    lines += ["## Timeline", ""]
    lines += table(EVENT_HEADINGS, [event_row(e) for e in report.timeline])
    if report.retrospective is not None:
        lines += ["", *retrospective_lines(report.retrospective)]
    lines += ["", f"*Generated {when(report.generated_at)}.*", ""]
    return "\n".join(lines)


def retrospective_status(retro: ReportRetrospective) -> str:
    """Where it stands, in words: `published by bob at ...`, `draft, due ...`."""
    if retro.status == RetrospectiveStatus.DRAFT:
        return f"Draft (version {retro.version}), due {when(retro.due_at)}."
    by = f" by {retro.concluded_by}" if retro.concluded_by else ""
    said = f"{retro.status.value.capitalize()}{by} {when(retro.concluded_at)} (version {retro.version})"
    return f"{said}: {retro.reason}" if retro.reason else f"{said}."


_HEADING = re.compile(r"^(#{1,6})(?=\s|$)")


def retrospective_lines(retro: ReportRetrospective) -> list[str]:
    """The retrospective's section: where it stands, then its markdown, its headings nested two
    levels under the section's (`#` becomes `###`), mentions neutralised and HTML shown as text."""
    body = [
        _HEADING.sub(lambda m: "#" * min(6, len(m[1]) + 2), part) for part in _LINE_BREAKS.split(_quiet(retro.text))
    ]
    return ["## Retrospective", "", f"*{line(retrospective_status(retro))}*", "", *body]


def event_row(event: ReportEvent, star: str = " ★") -> list[str]:
    """An event's row (`EVENT_HEADINGS`), a key moment's id marked with `star`."""
    return [
        when(event.at),
        duration(event.since_start_seconds),
        event.id + (star if event.key_moment else ""),
        event.what,
    ]
