"""What the bot writes: posts, channel header, Web UI details. Pure text rendering."""

from __future__ import annotations

import re
from datetime import datetime

from models.common import Actor
from models.custom_fields import FieldType, takes
from models.effects import Attachment, Button, MenuOption
from models.incident import ChecklistItem, IncidentState, IncidentStatus, ItemState, Stage, StatusUpdate
from models.incident_alerts import ALERTS_LISTED, AlertRecord
from models.mentions import neutralise_mentions
from models.paging import PageStatus, page_label
from workflows.incident_due_dates import DueItem

# Mattermost's longest post message (model.PostMessageMaxRunesV2), in runes (Python characters).
POST_MESSAGE_MAX = 16383
# How many items of the active stage get a button each; a stage with more gets a message
# menu instead, of at most MENU_OPTIONS_MAX items (the rest: `/incident check`).
ITEM_BUTTONS_MAX = 10
MENU_OPTIONS_MAX = 100
# A button's label shows this much of the item's title.
LABEL_MAX = 40

_MARKS = {
    ItemState.DONE: "[x]",
    ItemState.IN_PROGRESS: "[ ] *(in progress)*",
    ItemState.OPEN: "[ ]",
    ItemState.SKIPPED: "[-]",
}


def duration_parts(seconds: float) -> tuple[int, int, int, int]:
    """Whole days, hours, minutes and seconds of a duration (a negative one is none)."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def format_duration(seconds: float) -> str:
    """Compact, human: 45s, 12m, 1h 5m, 3d 2h."""
    days, hours, minutes, secs = duration_parts(seconds)
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


def incident_name(name: str) -> str:
    """An incident's name as the bot writes it: a title, repeated in every post about the
    incident, so none of its mentions notify (the state keeps the name as typed)."""
    return neutralise_mentions(name)


def relayed(state: IncidentState, typed: str, author: Actor | None = None) -> str:
    """What a person typed, as the bot posts it on their behalf: mentions of the incident's
    members stay; `@channel`, `@here`, `@all` and every other `@name` (a group, or someone
    else) are neutralised, unless `author`, writing in the incident channel, may use them there.
    """
    members = {state.usernames[user_id].lower() for user_id in state.member_ids if user_id in state.usernames}
    return neutralise_mentions(
        typed,
        usernames=members,
        channel_wide=author is not None and author.can_mention_channel,
        groups=author is not None and author.can_mention_groups,
    )


def stage_label(state: IncidentState, index: int | None = None) -> str:
    index = state.active_stage if index is None else index
    return f"{index + 1}/{len(state.checklists)} {relayed(state, state.checklists[index].title)}"


def checklist_lines(state: IncidentState, stage: Stage, *, numbered: bool = True) -> list[str]:
    lines = []
    for number, item in enumerate(stage.items, start=1):
        prefix = f"{number}. " if numbered else "- "
        assignee = f" — {state.mention(item.assignee_id)}" if item.assignee_id else ""
        title = item_title(state, item)
        lines.append(f"{prefix}{_MARKS[item.state]} {title}{assignee}{due_note(state, item)}{skip_note(item)}")
    return lines or ["*(no items)*"]


def item_title(state: IncidentState, item: ChecklistItem) -> str:
    """An item's title as posted: struck through when skipped (`workflows.incident_conditions`)."""
    title = relayed(state, item.title)
    return f"~~{title}~~" if item.state == ItemState.SKIPPED else title


def skip_note(item: ChecklistItem) -> str:
    """Why a skipped step is skipped: ` · *skipped (only when SEV1)*`; nothing otherwise."""
    if item.state != ItemState.SKIPPED:
        return ""
    return f" · *skipped ({item.skipped_reason})*" if item.skipped_reason else " · *skipped*"


def stage_tally(stage: Stage) -> str:
    """`2/5 done`, `2/4 done, 1 skipped`, or `skipped` when every item is."""
    if stage.all_skipped:
        return "skipped"
    done = sum(1 for item in stage.items if item.state == ItemState.DONE)
    skipped = sum(1 for item in stage.items if item.state == ItemState.SKIPPED)
    tally = f"{done}/{len(stage.items) - skipped} done"
    return f"{tally}, {skipped} skipped" if skipped else tally


def due_note(state: IncidentState, item: ChecklistItem) -> str:
    """An open item's due time, flagged once the incident found it overdue; nothing otherwise."""
    if item.due_at is None or item.state in (ItemState.DONE, ItemState.SKIPPED):
        return ""
    if item.overdue:
        return f" · :warning: **overdue** (due {clock(state, item.due_at)})"
    return f" · *due {clock(state, item.due_at)}*"


# The items one overdue nudge lists (the rest are counted).
OVERDUE_LISTED = 25


def overdue_message(state: IncidentState, found: list[DueItem], now: datetime) -> str:
    """The direct message telling someone their items are overdue: the incident, each item with its
    stage and how late it is, and what to do."""
    channel = f" (~{state.channel_name})" if state.channel_name else ""
    lines = [f"**Overdue** in incident **{incident_name(state.name)}**{channel}:"]
    for due in found[:OVERDUE_LISTED]:
        item = due.entry
        assert item.due_at is not None
        late = (now - item.due_at).total_seconds()
        how_late = "just now" if late < 60 else f"{format_duration(late)} ago"
        lines.append(
            f"- **{relayed(state, item.title)}** (stage {stage_label(state, due.stage)}, item {due.item + 1}): "
            f"due at {clock(state, item.due_at)}, {how_late}"
        )
    if len(found) > OVERDUE_LISTED:
        lines.append(f"- … and {len(found) - OVERDUE_LISTED} more: `/incident info` in the channel lists them")
    lines.append(
        "Check an item off with `/incident check <stage> <item>` in the incident channel, or give it another "
        "due time with `/incident due <stage> <item> 30m`."
    )
    return "\n".join(lines)


def informed_channels(state: IncidentState) -> list[str]:
    """Channels kept informed of the incident's changes: its broadcast channels, then the ones
    it was announced in (each once)."""
    return list(dict.fromkeys([*state.broadcast_channel_ids, *state.announced_channel_ids]))


def who_is_told(state: IncidentState) -> str:
    """The end confirmation's second sentence: who hears of it."""
    broadcast, announced = bool(state.broadcast_channel_ids), bool(state.announced_channel_ids)
    if broadcast and announced:
        return "The incident channel, the broadcast channels and the channels it was announced in are told."
    if broadcast:
        return "The incident channel and the broadcast channels are told."
    if announced:
        return "The incident channel and the channels it was announced in are told."
    return "Everyone in the incident channel is told."


def channel_header(state: IncidentState, link: str) -> str:
    status = ":red_circle: Ongoing" if state.status == IncidentStatus.ONGOING else ":white_check_mark: Ended"
    page = f" · [Incident page]({state.config.backstage_url})" if state.config.backstage_url else ""
    details = f" · [Timeline]({link})" if link else ""
    severity = f" · Severity **{state.severity.name}**" if state.severity else ""
    header = f"{status}{severity} · Commander {state.mention(state.commander_id)}{page}{details} · `/incident info`"
    return header[:1024]


def severity_part(state: IncidentState) -> str:
    """` · **Severity:** SEV2` beside the status, or nothing while the incident has none."""
    return f" · **Severity:** {state.severity.name}" if state.severity else ""


# How much of a text field's value one line shows.
FIELD_SHOWN_MAX = 100


def field_shown(state: IncidentState, name: str) -> str:
    """A field's value as posts show it: a person as @username, text on one line (mentions
    neutralised, long text cut); "" when it has none."""
    value = state.field_values.get(name, "")
    declared = state.playbook.fields if state.playbook else []
    spec = next((spec for spec in declared if spec.name == name), None)
    if not value:
        return ""
    if spec is not None and spec.type == FieldType.USER:
        return state.mention(value)
    line = " ".join(value.split())
    if len(line) > FIELD_SHOWN_MAX:
        line = line[: FIELD_SHOWN_MAX - 1] + "…"
    return relayed(state, line)


def fields_line(state: IncidentState) -> str:
    """The fields that have a value, on one line: `**Region:** eu-west · **Owner:** @bob`; "" for none."""
    declared = state.playbook.fields if state.playbook else []
    return " · ".join(
        f"**{plain(spec.title)}:** {field_shown(state, spec.name)}"
        for spec in declared
        if spec.name in state.field_values
    )


def fields_listing(state: IncidentState) -> list[str]:
    """Every field of the incident, with what it takes and its value (`/incident field` alone)."""
    declared = state.playbook.fields if state.playbook else []
    lines = []
    for spec in declared:
        required = ", required" if spec.required else ""
        value = field_shown(state, spec.name) or "*(no value)*"
        label = f" ({plain(spec.label)})" if spec.label else ""
        lines.append(f"- `{spec.name}`{label}: {value} — {takes(spec)}{required}")
    return lines


def status_update_post(state: IncidentState, update: StatusUpdate, author: Actor) -> str:
    """The status update in the incident channel: its author's mentions, as far as they may make them there."""
    status = f" — **{update.status.value.capitalize()}**" if update.status else ""
    quoted = "\n".join(f"> {line}" for line in relayed(state, update.message, author).splitlines())
    return f"#### Status update{status}\nfrom {state.mention(update.author_id)}\n\n{quoted}"


def broadcast_post(state: IncidentState, text: str) -> str:
    channel = f"~{state.channel_name}" if state.channel_name else "its channel"
    return f"**Incident {incident_name(state.name)}** ({channel}): {text}"


def reminder_post(state: IncidentState, quiet_seconds: float) -> str:
    return (
        f"{state.mention(state.commander_id)}, there has been no status update for "
        f"{format_duration(quiet_seconds)}. Please post one with `/incident update <message>`."
    )


def _link(url: str, label: str) -> str:
    """A Markdown link to an alert's page (URLs are http(s) only, checked when parsed)."""
    return f"[{label}]({url.replace(' ', '%20').replace(')', '%29')})"


def source_line(state: IncidentState) -> str:
    """Where an incident opened by alerts came from: the integration, its alerts, their links."""
    source = state.source
    if source is None:
        return ""
    links = " · ".join(_link(url, f"alert {n}") for n, url in enumerate(source.links[:3], start=1))
    severity = f" · **Alert severity:** {plain(source.severity)}" if source.severity else ""
    return (
        f"**Source:** {plain(source.reporter_name)} · {source.firing} firing, "
        f"{source.resolved} resolved{severity}" + (f" · {links}" if links else "")
    )


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#|~!])")


def plain(text: str) -> str:
    """What a monitoring system wrote, shown as text: its Markdown escaped (no link, image or
    table of its making) and its mentions neutralised."""
    return neutralise_mentions(_MARKDOWN.sub(r"\\\1", " ".join(text.split())))


def _alert_line(state: IncidentState, alert: AlertRecord) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")[:300]
    link = f" · {_link(alert.links[0], 'source')}" if alert.links else ""
    shown = f" · {plain(labels)}" if labels else ""
    return f"- {plain(alert.title[:200])}{shown}{link}"


def alerts_post(
    state: IncidentState, fired: list[AlertRecord], resolved: list[AlertRecord], *, all_resolved: bool
) -> str:
    """One post for one notification, however many alerts it brought (the first few by name)."""
    source = state.source
    lines: list[str] = []
    for heading, alerts in ((":fire: **Firing**", fired), (":white_check_mark: **Resolved**", resolved)):
        if not alerts:
            continue
        lines += ["", f"{heading} ({len(alerts)})"]
        lines += [_alert_line(state, alert) for alert in alerts[:ALERTS_LISTED]]
        if len(alerts) > ALERTS_LISTED:
            lines.append(f"- … and {len(alerts) - ALERTS_LISTED} more (the incident's timeline lists every one)")
    if all_resolved and source is not None:
        lines += ["", "**Every alert of the group has resolved.**"]
        if source.auto_end_at is not None:
            lines.append(
                f"The incident ends automatically at {_utc(source.auto_end_at)} unless someone acts on it "
                "(any `/incident` command keeps it open)."
            )
    head = f"#### Alerts · {source.firing} firing, {source.resolved} resolved" if source else "#### Alerts"
    return "\n".join([head, *lines])[:POST_MESSAGE_MAX]


def _utc(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


def reopen_window_summary(until: datetime) -> str:
    """The label of the timer an ended incident's run waits on (the Web UI shows it on the pending timer)."""
    return f"incident ended · /incident restart reopens it in this run until {_utc(until)}"


def web_ui_status(state: IncidentState) -> str:
    """What the incident is, in one line, beside its workflow's status, which says *Running* of
    an ended incident whose run waits in its reopen window. Its state alone decides it (it is
    the workflow's memo, rewritten only when the incident changes: past the window it reads as
    what was so)."""
    until = state.reopenable_until
    retrospective = state.retrospective
    if state.status == IncidentStatus.ENDED and retrospective is not None and retrospective.is_open:
        restart = f"; /incident restart reopens it in this run until {_utc(until)}" if until is not None else ""
        return (
            f"Ended; its retrospective is a draft, due {_utc(retrospective.due_at)}{restart}. The workflow stays "
            "Running, reminding its commander, until the retrospective is published or declined."
        )
    if until is not None:
        return (
            f"Ended; /incident restart reopens it in this run until {_utc(until)}. The workflow stays "
            "Running until then, for that alone, then completes."
        )
    return {
        IncidentStatus.ONGOING: "Ongoing.",
        IncidentStatus.ENDED: "Ended.",
        IncidentStatus.FAILED: "Failed to start: its channel could not be made.",
        IncidentStatus.REFUSED: "Refused at its start: nothing was made.",
    }[state.status]


def current_details(state: IncidentState, *, in_reopen_window: bool) -> str:
    """Markdown for the Temporal Web UI's "current details" of the workflow.

    Times are absolute (the details are only rewritten when something changes, so a relative
    "ongoing for" would freeze); the original start stays first, whichever run shows it. An
    ended incident whose run waits in its reopen window is *Running* in the Web UI: the first
    line then says at once that it has ended, and until when.
    """
    when = f"**Started:** {_utc(state.started_at)}"
    if len(state.periods) > 1:
        when += f" · **Restarted:** {_utc(state.periods[-1].started_at)}"
    if state.status == IncidentStatus.ENDED and state.ended_at is not None:
        ongoing = sum(((p.ended_at or state.ended_at) - p.started_at).total_seconds() for p in state.periods)
        when += f" · **Ended:** {_utc(state.ended_at)}, after {format_duration(ongoing)} ongoing"
    lines = [
        f"**Status:** {state.status.value}{severity_part(state)} · **Commander:** {state.mention(state.commander_id)}"
        f" · **Stage:** {stage_label(state)}",
        f"**Channel:** {('~' + state.channel_name) if state.channel_name else '(creating)'}",
        when,
    ]
    retrospective = state.retrospective
    if in_reopen_window or (state.status == IncidentStatus.ENDED and retrospective and retrospective.is_open):
        lines.insert(0, f"**{web_ui_status(state)}**")
    if state.status_updates:
        last = state.status_updates[-1]
        lines.append(f"**Last update:** {last.status.value if last.status else 'note'} — {last.message[:120]}")
    if state.failure:
        lines.append(f"**Failed:** {state.failure}")
    for index, stage in enumerate(state.checklists):
        marker = " (active)" if index == state.active_stage else ""
        lines += ["", f"#### {index + 1}. {stage.title}{marker} — {stage_tally(stage)}"]
        lines += checklist_lines(state, stage, numbered=False)
    return "\n".join(lines)


def clock(state: IncidentState, when: datetime) -> str:
    """A time on the checklist: the hour and minute, with the day when it is not the start's."""
    same_day = when.date() == state.started_at.date()
    return f"{when:%H:%M} UTC" if same_day else f"{when:%b %d %H:%M} UTC"


def _item_line(state: IncidentState, number: int, item: ChecklistItem) -> str:
    assignee = f" — {state.mention(item.assignee_id)}" if item.assignee_id else ""
    who = ""
    if item.state in (ItemState.DONE, ItemState.IN_PROGRESS) and item.state_changed_at is not None:
        by = f" by {state.mention(item.state_changed_by)}" if item.state_changed_by else ""
        verb = "checked" if item.state == ItemState.DONE else "started"
        who = f" · *{verb}{by} at {clock(state, item.state_changed_at)}*"
    title = item_title(state, item)
    return f"{number}. {_MARKS[item.state]} {title}{assignee}{who}{due_note(state, item)}{skip_note(item)}"


# How many pages the checklist post and `/incident info` list (the newest).
PAGES_SHOWN = 10


def paging_lines(state: IncidentState) -> list[str]:
    """Who was paged, who acknowledged and when, the newest last; empty when nobody was paged."""
    if not state.pages:
        return []
    lines = ["**Paging**"]
    shown = state.pages[-PAGES_SHOWN:]
    if len(state.pages) > len(shown):
        lines.append(f"*({len(state.pages) - len(shown)} earlier page(s) on the timeline)*")
    for page in shown:
        tier = f" (tier {page.tier + 1})" if page.tier is not None else ""
        status = page.status.value
        if page.acted_at is not None and page.status in (PageStatus.ACKNOWLEDGED, PageStatus.DECLINED):
            status += f" by {state.mention(page.acted_by)} at {clock(state, page.acted_at)}"
        elif page.status == PageStatus.EXPIRED and page.acted_by:
            status = f"answered by {state.mention(page.acted_by)}"
        elif page.status == PageStatus.UNREACHABLE:
            status += f": {plain(page.problem)}"
        lines.append(f"- {page_label(page, state.usernames)}{tier}, paged at {clock(state, page.paged_at)}: {status}")
    escalation = state.escalation
    if escalation is not None and not escalation.done and escalation.due_at is not None:
        lines.append(f"*Escalates to the next tier at {clock(state, escalation.due_at)} unless acknowledged.*")
    elif escalation is not None and escalation.outcome == "exhausted":
        lines.append("*Nobody acknowledged: every tier was tried.*")
    return lines


def _stage_heading(state: IncidentState, index: int, stage: Stage) -> str:
    active = " · **active**" if index == state.active_stage else ""
    return f"**Stage {stage_label(state, index)}**{active} · {stage_tally(stage)}"


def checklist_message(state: IncidentState) -> str:
    """The live checklist post: status, people, the last update and every stage with its items.

    Never longer than Mattermost allows: past the limit, stages other than the active one
    shrink to their heading, then items are cut, with a note saying where to see the rest.
    """
    playbook = f"{state.playbook.title} (v{state.playbook.version})" if state.playbook else "none"
    ongoing = state.status == IncidentStatus.ONGOING
    status = ":red_circle: **Ongoing**" if ongoing else ":white_check_mark: **Ended**"
    head = [f"#### :rotating_light: Incident: {incident_name(state.name)}"]
    if state.description:
        head += ["", relayed(state, state.description)]
    head += [
        "",
        f"{status}{severity_part(state)} · **Commander:** {state.mention(state.commander_id)}"
        f" · **Reporter:** {state.mention(state.reporter_id)} · **Playbook:** {playbook}",
    ]
    fields = fields_line(state)
    if fields:
        head[-1] += "\n" + fields
    if state.source is not None:
        head += ["", source_line(state)]
    paging = paging_lines(state)
    if paging:
        head += ["", *paging]
    if state.status_updates:
        last = state.status_updates[-1]
        kind = f" ({last.status.value})" if last.status else ""
        quoted = "\n".join(f"> {line}" for line in relayed(state, last.message[:1000]).splitlines())
        head += [
            "",
            f"**Last update{kind}** from {state.mention(last.author_id)} at {clock(state, last.at)}:",
            quoted,
        ]
    foot = [
        "",
        "Click below, or type `/incident help` for what you can do here."
        if ongoing
        else "The incident has ended: `/incident restart` reopens it.",
    ]
    full: list[list[str]] = []
    short: list[list[str]] = []
    for index, stage in enumerate(state.checklists):
        heading = _stage_heading(state, index, stage)
        items = [_item_line(state, n, item) for n, item in enumerate(stage.items, start=1)] or ["*(no items)*"]
        full.append(["", heading, *items])
        short.append(["", heading, *items] if index == state.active_stage else ["", heading])
    budget = POST_MESSAGE_MAX - len("\n".join(head + foot)) - 200  # room for the note
    for stages in (full, short):
        body = [line for stage_lines in stages for line in stage_lines]
        if len("\n".join(body)) <= budget:
            if stages is short:
                body.append("\n*Only the active stage's items fit here: `/incident info` shows every stage.*")
            return "\n".join(head + body + foot)
    kept: list[str] = []
    used = 0
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    note = (
        f"\n*{len(body) - len(kept)} more line(s) do not fit in one Mattermost post: "
        "`/incident info` and the incident page show everything.*"
    )
    return "\n".join(head + kept + [note] + foot)


def _label(prefix: str, title: str) -> str:
    short = title if len(title) <= LABEL_MAX else title[: LABEL_MAX - 1] + "…"
    return f"{prefix} {short}"


def control_id(*parts: str) -> str:
    """A control's id names what it was drawn for: Mattermost finds a click's control by id in the
    post as it is when the click arrives, so a control whose meaning changed (another item, the
    other state, another stage) must not keep its id. Letters and digits only, as Mattermost wants."""
    return "".join(part for part in parts if part.isascii() and part.isalnum())


def checklist_controls(state: IncidentState) -> list[Attachment]:
    """The live checklist's controls: the active stage's items (a button each, or a menu when
    they do not fit), then *Next stage* and *Post update*. An ended incident has none."""
    if state.status != IncidentStatus.ONGOING:
        return []
    index = state.active_stage
    stage = state.checklists[index]
    controls: list[Attachment] = []
    # Skipped steps get no control (`/incident check <n>` still reaches them).
    shown = [(number, item) for number, item in enumerate(stage.items) if item.state != ItemState.SKIPPED]

    def flipped(item: ChecklistItem) -> str:
        return (ItemState.OPEN if item.state == ItemState.DONE else ItemState.DONE).value

    if shown and len(shown) <= ITEM_BUTTONS_MAX:
        buttons = [
            Button(
                id=control_id("check", item.id, flipped(item)),
                # The box says what the item is and the click flips it; a verb would repeat
                # one when the title starts with it ("Check Check replication").
                name=_label("☑" if item.state == ItemState.DONE else "☐", item.title),
                action="set_item",
                stage=index,
                item=number,
                item_id=item.id,
                state=flipped(item),
                style="default" if item.state == ItemState.DONE else "primary",
            )
            for number, item in shown
        ]
        controls.append(
            Attachment(text=f"**{relayed(state, stage.title)}**: check or uncheck an item", buttons=buttons)
        )
    elif shown:
        options = [
            MenuOption(
                text=_label("☑" if item.state == ItemState.DONE else "☐", f"{number + 1}. {item.title}"),
                value=f"{number}:{item.id}:{flipped(item)}",
            )
            for number, item in shown
        ]
        # Open items first: they are what people come to check.
        options = sorted(options, key=lambda o: o.text.startswith("☑"))[:MENU_OPTIONS_MAX]
        note = (
            f" (the first {MENU_OPTIONS_MAX} open items are listed; `/incident check <n>` reaches any)"
            if len(shown) > MENU_OPTIONS_MAX
            else ""
        )
        menu = Button(
            id=control_id("pick", str(index)), name="Check or uncheck an item…", action="pick_item", stage=index,
            options=options,
        )  # fmt: skip
        controls.append(Attachment(text=f"**{relayed(state, stage.title)}**: {len(shown)} items{note}", buttons=[menu]))
    actions = []
    if index < len(state.checklists) - 1:
        actions.append(Button(id=control_id("next", str(index)), name="Next stage", action="next_stage", stage=index))
    actions.append(Button(id="postupdate", name="Post update", action="post_update"))
    controls.append(Attachment(buttons=actions))
    return controls
