"""Markdown replies for `/incident info`, `list` and `timeline`."""

from __future__ import annotations

from datetime import datetime

from models.incident import IncidentState, IncidentSummary, to_record
from workflows.incident_messages import checklist_lines, format_duration, stage_label


def info(state: IncidentState, now: datetime) -> str:
    record = to_record(state, now)
    stage = state.checklists[state.active_stage]
    lines = [
        f"#### Incident: {state.name}",
        f"**Status:** {state.status.value} · **Commander:** {state.mention(state.commander_id)}"
        f" · **Duration:** {format_duration(record.duration_seconds)}",
    ]
    if record.time_to_resolution_seconds is not None:
        lines.append(f"**Time to resolution:** {format_duration(record.time_to_resolution_seconds)}")
    if state.status_updates:
        last = state.status_updates[-1]
        status = f" ({last.status.value})" if last.status else ""
        lines.append(
            f"**Last update{status}:** {last.message[:200]} — {format_duration((now - last.at).total_seconds())} ago"
        )
    reminder = f"every {format_duration(state.reminder_seconds)}" if state.reminder_seconds else "off"
    lines += [f"**Status update reminder:** {reminder}", "", f"**Stage {stage_label(state)}**"]
    lines += checklist_lines(state, stage)
    return "\n".join(lines)


# `/incident list` shows the newest ones; a message with thousands of rows helps no one.
LIST_LENGTH = 25


def incident_list(incidents: list[IncidentSummary], names: dict[str, str], now: datetime, *, total: int) -> str:
    if not incidents:
        return "There are no ongoing incidents in this team that you can see."
    title = "#### Ongoing incidents" + (f" (the newest {len(incidents)} of {total})" if total > len(incidents) else "")
    lines = [title, "", "| Incident | Commander | Duration | Stage |", "|---|---|---|---|"]
    for incident in incidents:
        channel = f" (~{incident.channel_name})" if incident.channel_name else ""
        commander = f"@{names[incident.commander_id]}" if incident.commander_id in names else incident.commander_id
        lines.append(
            f"| {incident.name}{channel} | {commander} | {format_duration(incident.elapsed_seconds(now))} "
            f"| {incident.active_stage + 1}. {incident.active_stage_title} |"
        )
    return "\n".join(lines)


def timeline(state: IncidentState) -> str:
    lines = [
        f"#### Timeline: {state.name}",
        "",
        "| Time (UTC) | Since start | Who | What |",
        "|---|---|---|---|",
    ]
    for event in state.timeline:
        who = state.mention(event.actor_id) if event.actor_id != "system" else "bot"
        since = format_duration((event.at - state.started_at).total_seconds())
        what = event.summary.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {event.at:%Y-%m-%d %H:%M:%S} | {since} | {who} | {what} |")
    return "\n".join(lines)
