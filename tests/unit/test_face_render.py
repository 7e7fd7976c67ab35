"""The incident's face, rendered by pure functions: the live checklist post and its controls,
`/incident info`, the timeline and the Web UI details."""

from __future__ import annotations

from datetime import timedelta

from api.slash import slash_replies as render
from models.effects import ChecklistEffect
from models.incident import ChecklistItem, EventType, IncidentStatus, ItemState, Stage, TimelineEvent
from models.incident_commands import ChangeStage, EndIncident, PostStatusUpdate, SetItemState
from models.incident_report import duration
from models.incident_views import summarize
from models.mentions import WORD_JOINER
from tests.unit.test_incident_rules import ALICE, T0, actor, incident
from workflows import incident_messages as text


def test_the_checklist_shows_every_stage_who_checked_what_and_the_last_update() -> None:
    made = incident()
    made.set_item_state(SetItemState(actor=actor(), stage=0, item=1, state="done"), T0 + timedelta(minutes=3))
    made.post_status_update(PostStatusUpdate(actor=actor(), message="Replica lag\nsecond line"), T0)
    message = text.checklist_message(made.state)
    assert message.startswith("#### :rotating_light: Incident: DB down\n")
    assert ":red_circle: **Ongoing** · **Commander:** @alice · **Reporter:** @alice" in message
    assert "**Last update** from @alice at 09:00 UTC:\n> Replica lag\n> second line" in message
    assert (
        "**Stage 1/3 Triage** · **active** · 1/2 done\n1. [ ] Page DBA\n"
        "2. [x] Logs · *checked by @alice at 09:03 UTC*" in message
    )
    assert "**Stage 2/3 Fix** · 0/1 done\n1. [ ] Failover" in message
    assert "**Stage 3/3 Review** · 0/0 done\n*(no items)*" in message


def test_controls_are_buttons_a_menu_past_ten_items_and_none_once_ended() -> None:
    made = incident()
    [items, moves] = text.checklist_controls(made.state)
    assert [(b.name, b.action, b.stage, b.item, b.state) for b in items.buttons] == [
        ("☐ Page DBA", "set_item", 0, 0, "done"),
        ("☐ Logs", "set_item", 0, 1, "done"),
    ]
    assert [b.action for b in moves.buttons] == ["next_stage", "post_update"]
    triage = made.state.checklists[0]
    triage.items += [ChecklistItem(id=f"x{n}", title=f"Step {n} " + "y" * 100) for n in range(150)]
    triage.items[0].state = ItemState.DONE
    [menu_row, _] = text.checklist_controls(made.state)
    [menu] = menu_row.buttons
    assert menu.action == "pick_item"
    assert len(menu.options) == text.MENU_OPTIONS_MAX
    assert menu.options[0].value == f"1:{triage.items[1].id}:done"
    assert all(len(o.text) <= text.LABEL_MAX + 2 for o in menu.options)
    assert "`/incident check <n>` reaches any" in menu_row.text
    made.state.active_stage = 2
    [last] = text.checklist_controls(made.state)
    assert [b.action for b in last.buttons] == ["post_update"], "no items, no next stage"
    made.state.status = IncidentStatus.ENDED
    assert text.checklist_controls(made.state) == []


def test_a_button_names_its_item_once() -> None:
    made = incident()
    made.state.checklists[0].items[1].title = "Check replication"
    [items, _] = text.checklist_controls(made.state)
    assert [b.name for b in items.buttons] == ["☐ Page DBA", "☐ Check replication"]
    made.set_item_state(SetItemState(actor=actor(), stage=0, item=1, state="done"), T0)
    [items, _] = text.checklist_controls(made.state)
    assert [b.name for b in items.buttons] == ["☐ Page DBA", "☑ Check replication"]


def test_a_huge_checklist_still_fits_in_one_post() -> None:
    made = incident()
    for stage in made.state.checklists:
        stage.items = [ChecklistItem(id=f"{stage.title}{n}", title=f"{n} " + "z" * 250) for n in range(200)]
    message = text.checklist_message(made.state)
    assert len(message) <= text.POST_MESSAGE_MAX
    assert "do not fit in one Mattermost post" in message
    assert message.endswith("Click below, or type `/incident help` for what you can do here.")
    # Small enough with other stages shrunk: they keep their heading.
    for stage in made.state.checklists:
        stage.items = stage.items[:40]
    shrunk = text.checklist_message(made.state)
    assert "**Stage 2/3 Fix** · 0/40 done\n\n**Stage 3/3 Review**" in shrunk
    assert "Only the active stage's items fit here" in shrunk


def test_every_change_that_shows_queues_a_checklist_edit() -> None:
    made = incident()
    made.change_stage(ChangeStage(actor=actor(), direction="next", force=True), T0)
    assert any(isinstance(p.effect, ChecklistEffect) for p in made.state.outbox)
    made.state.outbox.clear()
    made.end(EndIncident(actor=actor(), confirmed=True), T0)
    assert any(isinstance(p.effect, ChecklistEffect) for p in made.state.outbox)


def test_info_shows_every_stage_and_no_reminder_once_ended() -> None:
    made = incident(reminder=900)
    made.set_item_state(SetItemState(actor=actor(), stage=0, item=1, state="done"), T0)
    made.change_stage(ChangeStage(actor=actor(), direction="next", force=True), T0)
    shown = render.info(made.state, T0 + timedelta(minutes=5))
    assert "**Status update reminder:** every 15m, next in 10m" in shown
    assert "**Stage 1/3 Triage** · 1/2 done\n1. [ ] Page DBA\n2. [x] Logs" in shown
    assert "**Stage 2/3 Fix** · **active** · 0/1 done\n1. [ ] Failover" in shown
    made.end(EndIncident(actor=actor(), confirmed=True), T0 + timedelta(minutes=6))
    ended = render.info(made.state, T0 + timedelta(hours=2))
    assert "reminder" not in ended.lower()
    assert "**Stage 3/3 Review** · 0/0 done" in ended


def test_the_timeline_tells_the_story_to_the_second() -> None:
    made = incident()
    made.set_item_state(SetItemState(actor=actor(), stage=0, item=0, state="done"), T0 + timedelta(seconds=75))
    made.post_status_update(
        PostStatusUpdate(actor=actor(), message="Lag | gone\nok"), T0 + timedelta(hours=1, seconds=2)
    )
    rows = render.timeline(made.state).splitlines()
    assert rows[2] == "| Time (UTC) | Since start | Id | What |"
    assert rows[4].startswith("| 2026-01-05 09:00:00 | 00:00 | e1 | @alice started the incident")
    assert rows[5] == "| 2026-01-05 09:01:15 | 01:15 | e2 | @alice marked **Page DBA** as done (stage 1/3 Triage) |"
    assert rows[6] == "| 2026-01-05 10:00:02 | 1:00:02 | e3 | @alice posted a status update: Lag \\| gone ok |"
    assert duration(2 * 86400 + 3723) == "2d 01:02:03"
    assert duration(86400 + 300) == "1d 00:05:00"


def test_a_long_timeline_keeps_the_newest_events_that_fit() -> None:
    made = incident()
    made.state.timeline += [
        TimelineEvent(
            id=f"x{n}", at=T0 + timedelta(seconds=n), actor_id=ALICE, type=EventType.ITEM_ADDED, summary="x" * 200
        )
        for n in range(1000)
    ]
    shown = render.timeline(made.state)
    assert len(shown) <= text.POST_MESSAGE_MAX
    assert "earliest events do not fit here" in shown.splitlines()[1]
    assert shown.endswith(f"| {T0 + timedelta(seconds=999):%Y-%m-%d %H:%M:%S} | 16:39 | x999 | {'x' * 200} |")


def test_web_ui_details_show_the_original_start_and_no_frozen_duration() -> None:
    made = incident()
    made.end(EndIncident(actor=actor(), confirmed=True), T0 + timedelta(minutes=30))
    details = text.current_details(made.state, in_reopen_window=False)
    assert "**Started:** 2026-01-05 09:00:00 UTC · **Ended:** 2026-01-05 09:30:00 UTC, after 30m ongoing" in details
    assert "Ongoing for" not in details


def test_web_ui_says_at_first_glance_that_an_ended_incident_in_its_reopen_window_has_ended_and_until_when() -> None:
    made = incident()
    made.state.config.reopen_window_seconds = 7 * 86400
    assert text.current_details(made.state, in_reopen_window=False).startswith("**Status:** ongoing")
    assert text.web_ui_status(made.state) == "Ongoing."
    made.end(EndIncident(actor=actor(), confirmed=True), T0 + timedelta(minutes=30))
    until = T0 + timedelta(days=7, minutes=30)
    assert made.state.reopenable_until == until
    told = (
        "Ended; /incident restart reopens it in this run until 2026-01-12 09:30:00 UTC. The workflow stays "
        "Running until then, for that alone, then completes."
    )
    assert text.web_ui_status(made.state) == told
    assert text.current_details(made.state, in_reopen_window=True).splitlines()[:2] == [
        f"**{told}**",
        "**Status:** ended · **Commander:** @alice · **Stage:** 1/3 Triage",
    ]
    assert text.reopen_window_summary(until) == (
        "incident ended · /incident restart reopens it in this run until 2026-01-12 09:30:00 UTC"
    )
    # Once the window is over the run completes: the details have nothing more to explain.
    assert text.current_details(made.state, in_reopen_window=False).startswith("**Status:** ended")
    made.state.config.reopen_window_seconds = 0
    assert text.web_ui_status(made.state) == "Ended."


def test_the_end_confirmation_says_who_is_told() -> None:
    made = incident()
    assert text.who_is_told(made.state) == "The incident channel and the broadcast channels are told."
    made.state.announced_channel_ids = ["y" * 26]
    assert text.who_is_told(made.state) == (
        "The incident channel, the broadcast channels and the channels it was announced in are told."
    )
    made.state.broadcast_channel_ids = []
    made.state.announced_channel_ids = []
    assert text.who_is_told(made.state) == "Everyone in the incident channel is told."
    assert Stage(title="x").open_count == 0


def test_slash_replies_show_the_name_with_its_mentions_neutralised() -> None:
    made = incident(name="@channel db down")
    shown = f"@{WORD_JOINER}channel db down"
    assert render.info(made.state, T0).startswith(f"#### Incident: {shown}\n")
    assert render.timeline(made.state).startswith(f"#### Timeline: {shown}\n")
    listed = render.incident_list([summarize(made.state)], {}, T0, total=1)
    assert f"| {shown} (~inc-db-down-inc1) |" in listed
