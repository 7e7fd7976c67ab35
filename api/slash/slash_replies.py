"""Markdown replies for `/incident info`, `list` and `timeline`."""

from __future__ import annotations

from datetime import datetime

from models.due_dates import utc_clock
from models.incident import EventType, IncidentState, IncidentStatus, TimelineEvent
from models.incident_report import duration
from models.incident_views import IncidentSummary, OpenItem, to_record
from models.retrospective import RetrospectiveStatus
from workflows.incident_messages import (
    POST_MESSAGE_MAX,
    checklist_lines,
    fields_line,
    format_duration,
    incident_name,
    paging_lines,
    severity_part,
    source_line,
    stage_label,
    stage_tally,
)
from workflows.incident_retrospective import retrospective_url


def info(state: IncidentState, now: datetime) -> str:
    """Status, people, the last update, the reminder (while ongoing) and every stage, the active one marked."""
    record = to_record(state, now)
    ongoing = state.status == IncidentStatus.ONGOING
    lines = [
        f"#### Incident: {incident_name(state.name)}",
        f"**Status:** {state.status.value}{severity_part(state)} · **Commander:** {state.mention(state.commander_id)}"
        f" · **Duration:** {format_duration(record.duration_seconds)}",
    ]
    fields = fields_line(state)
    if fields:
        lines.append(fields)
    if state.source is not None:
        lines.append(source_line(state))
    if record.time_to_resolution_seconds is not None:
        lines.append(f"**Time to resolution:** {format_duration(record.time_to_resolution_seconds)}")
    if state.retrospective is not None:
        retro = state.retrospective
        said = f"due {utc_clock(retro.due_at, now)}" if retro.is_open else f"version {retro.version}"
        lines.append(f"**Retrospective:** {retro.status.value}, {said} (`/incident retrospective`)")
    if state.status_updates:
        last = state.status_updates[-1]
        status = f" ({last.status.value})" if last.status else ""
        lines.append(
            f"**Last update{status}:** {last.message[:200]} — {format_duration((now - last.at).total_seconds())} ago"
        )
    if ongoing:
        reminder = f"every {format_duration(state.reminder_seconds)}" if state.reminder_seconds else "off"
        if state.reminder_seconds and state.reminder_due_at is not None:
            reminder += f", next in {format_duration((state.reminder_due_at - now).total_seconds())}"
        lines.append(f"**Status update reminder:** {reminder}")
    paging = paging_lines(state)
    if paging:
        lines += ["", *paging]
    for index, stage in enumerate(state.checklists):
        active = " · **active**" if index == state.active_stage else ""
        lines += ["", f"**Stage {stage_label(state, index)}**{active} · {stage_tally(stage)}"]
        lines += checklist_lines(state, stage)
    return "\n".join(lines)


# `/incident list` shows the newest ones; a message with thousands of rows helps no one.
LIST_LENGTH = 25


def incident_list(incidents: list[IncidentSummary], names: dict[str, str], now: datetime, *, total: int) -> str:
    if not incidents:
        return "There are no ongoing incidents in this team that you can see."
    title = "#### Ongoing incidents" + (f" (the newest {len(incidents)} of {total})" if total > len(incidents) else "")
    # A severity column once any of them has one (the name each incident was given).
    graded = any(incident.severity for incident in incidents)
    columns = "| Incident | " + ("Severity | " if graded else "") + "Commander | Duration | Stage |"
    lines = [title, "", columns, "|---" * columns.count(" | ") + "|---|"]
    for incident in incidents:
        channel = f" (~{incident.channel_name})" if incident.channel_name else ""
        commander = f"@{names[incident.commander_id]}" if incident.commander_id in names else incident.commander_id
        severity = (f"{incident.severity.name} " if incident.severity else "— ") + "| " if graded else ""
        lines.append(
            f"| {incident_name(incident.name)}{channel} | {severity}{commander} "
            f"| {format_duration(incident.elapsed_seconds(now))} "
            f"| {incident.active_stage + 1}. {incident.active_stage_title} |"
        )
    return "\n".join(lines)


NO_OPEN_ITEMS = "You have no open items assigned to you in the ongoing incidents you can see."


def todo(items: list[OpenItem], now: datetime, *, mattermost_url: str, incomplete: bool = False) -> str:
    """`/incident todo`: the caller's open items, overdue first, each linking its incident channel."""
    if not items:
        return NO_OPEN_ITEMS
    lines = [
        f"#### Your open items ({len(items)})",
        "",
        "| Due | Item | Incident |",
        "|---|---|---|",
    ]
    for item in items:
        due = "—"
        if item.due_at is not None:
            when = utc_clock(item.due_at, now)
            due = f":warning: **overdue** since {when}" if item.overdue else f"{when}"
        channel = f"~{item.channel_name}" if item.channel_name else "(no channel)"
        if item.channel_name and item.team_name:
            channel = f"[{channel}]({mattermost_url}/{item.team_name}/channels/{item.channel_name})"
        lines.append(
            f"| {due} | {_cell(item.title)} (stage {item.stage + 1} {_cell(item.stage_title)}, item {item.item + 1}) "
            f"| {_cell(incident_name(item.incident_name))} · {channel} |"
        )
    if incomplete:
        lines.append("\n*You have open items in more incidents than fit here; see the backstage's My open items.*")
    text = "\n".join(lines)
    if len(text) > POST_MESSAGE_MAX:
        text = text[: POST_MESSAGE_MAX - 80] + "\n\n*… cut short: the backstage's My open items lists them all.*"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def timeline_entry(event: TimelineEvent) -> str:
    """What happened, as one line: the summary (which names who), and what a status update said."""
    what = event.summary
    if event.type == EventType.STATUS_UPDATE and event.details.get("message"):
        message = str(event.details["message"])
        what += f": {message[:300]}{'…' if len(message) > 300 else ''}"
    return what


def timeline(state: IncidentState) -> str:
    lines = [
        f"#### Timeline: {incident_name(state.name)}",
        "",
        "| Time (UTC) | Since start | Id | What |",
        "|---|---|---|---|",
    ]
    # The id names the event to `/incident star` (and a note to `noteedit`, `notedelete`); ★ a key moment.
    rows = [
        f"| {event.at:%Y-%m-%d %H:%M:%S} | {duration((event.at - state.started_at).total_seconds())} "
        f"| {event.id}{' ★' if event.id in state.key_moments else ''} | {_cell(timeline_entry(event))} |"
        for event in state.timeline
    ]
    # A reply is a post: the newest events that fit in one (Mattermost's length limit).
    budget = POST_MESSAGE_MAX - len("\n".join(lines)) - 200
    kept: list[str] = []
    for row in reversed(rows):
        budget -= len(row) + 1
        if budget < 0:
            break
        kept.append(row)
    if len(kept) < len(rows):
        lines.insert(1, f"*The {len(rows) - len(kept)} earliest events do not fit here: see the incident page.*")
    return "\n".join(lines + kept[::-1])


def retrospective(state: IncidentState, now: datetime) -> str:
    """`/incident retrospective`: where it stands, and where to edit it."""
    retro = state.retrospective
    if retro is None:
        if state.playbook is None or state.playbook.retrospective is None:
            return "This incident has no retrospective: its playbook has none."
        return "This incident's retrospective opens when the incident ends."
    url = retrospective_url(state)
    where = f"[Open it in the backstage]({url})" if url else "Open it in the backstage"
    if retro.status == RetrospectiveStatus.PUBLISHED:
        return (
            f"The retrospective was published by {state.mention(retro.concluded_by)} "
            f"{utc_clock(retro.concluded_at or now, now)} (version {retro.version}). {where}."
        )
    if retro.status == RetrospectiveStatus.DECLINED:
        return (
            f"The retrospective was declined by {state.mention(retro.concluded_by)} "
            f"{utc_clock(retro.concluded_at or now, now)}: {retro.reason}"
        )
    due = "overdue since" if retro.due_at <= now else "due"
    return (
        f"The retrospective is a draft (version {retro.version}), {due} {utc_clock(retro.due_at, now)}. {where} to "
        "edit it; the commander publishes it with `/incident retropublish` or declines it with "
        "`/incident retrodecline <reason>`."
    )
