"""What the bot writes: posts, channel header, Web UI details. Pure text rendering."""

from __future__ import annotations

from models.incident import IncidentState, IncidentStatus, ItemState, Stage, StatusUpdate

_MARKS = {ItemState.DONE: "[x]", ItemState.IN_PROGRESS: "[ ] *(in progress)*", ItemState.OPEN: "[ ]"}


def format_duration(seconds: float) -> str:
    """Compact, human: 45s, 12m, 1h 5m, 3d 2h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def sentence(text: str) -> str:
    """Capitalize the first letter only (names and titles keep their case) and end with a period."""
    return f"{text[:1].upper()}{text[1:]}."


def stage_label(state: IncidentState, index: int | None = None) -> str:
    index = state.active_stage if index is None else index
    return f"{index + 1}/{len(state.checklists)} {state.checklists[index].title}"


def checklist_lines(state: IncidentState, stage: Stage, *, numbered: bool = True) -> list[str]:
    lines = []
    for number, item in enumerate(stage.items, start=1):
        prefix = f"{number}. " if numbered else "- "
        assignee = f" — {state.mention(item.assignee_id)}" if item.assignee_id else ""
        lines.append(f"{prefix}{_MARKS[item.state]} {item.title}{assignee}")
    return lines or ["*(no items)*"]


def opening_post(state: IncidentState) -> str:
    playbook = f"{state.playbook.title} (v{state.playbook.version})" if state.playbook else "none"
    stage = state.checklists[state.active_stage]
    lines = [f"#### :rotating_light: Incident: {state.name}"]
    if state.description:
        lines += ["", state.description]
    lines += [
        "",
        f"**Commander:** {state.mention(state.commander_id)}"
        f" · **Reporter:** {state.mention(state.reporter_id)} · **Playbook:** {playbook}",
        "",
        f"**Stage {stage_label(state)}**",
        *checklist_lines(state, stage),
        "",
        "Type `/incident help` for what you can do here.",
    ]
    return "\n".join(lines)


def channel_header(state: IncidentState, link: str) -> str:
    status = ":red_circle: Ongoing" if state.status == IncidentStatus.ONGOING else ":white_check_mark: Ended"
    page = f" · [Incident page]({state.config.backstage_url})" if state.config.backstage_url else ""
    details = f" · [Timeline]({link})" if link else ""
    return f"{status} · Commander {state.mention(state.commander_id)}{page}{details} · `/incident info`"[:1024]


def status_update_post(state: IncidentState, update: StatusUpdate) -> str:
    status = f" — **{update.status.value.capitalize()}**" if update.status else ""
    quoted = "\n".join(f"> {line}" for line in update.message.splitlines())
    return f"#### Status update{status}\nfrom {state.mention(update.author_id)}\n\n{quoted}"


def broadcast_post(state: IncidentState, text: str) -> str:
    channel = f"~{state.channel_name}" if state.channel_name else "its channel"
    return f"**Incident {state.name}** ({channel}): {text}"


def reminder_post(state: IncidentState, quiet_seconds: float) -> str:
    return (
        f"{state.mention(state.commander_id)}, there has been no status update for "
        f"{format_duration(quiet_seconds)}. Please post one with `/incident update <message>`."
    )


def current_details(state: IncidentState, now_seconds: float) -> str:
    """Markdown for the Temporal Web UI's "current details" of the workflow."""
    lines = [
        f"**Status:** {state.status.value} · **Commander:** {state.mention(state.commander_id)}"
        f" · **Stage:** {stage_label(state)}",
        f"**Channel:** {('~' + state.channel_name) if state.channel_name else '(creating)'}"
        f" · **Ongoing for:** {format_duration(now_seconds)}",
    ]
    if state.status_updates:
        last = state.status_updates[-1]
        lines.append(f"**Last update:** {last.status.value if last.status else 'note'} — {last.message[:120]}")
    if state.failure:
        lines.append(f"**Failed:** {state.failure}")
    for index, stage in enumerate(state.checklists):
        marker = " (active)" if index == state.active_stage else ""
        done = sum(1 for item in stage.items if item.state == ItemState.DONE)
        lines += ["", f"#### {index + 1}. {stage.title}{marker} — {done}/{len(stage.items)} done"]
        lines += checklist_lines(state, stage, numbered=False)
    return "\n".join(lines)
