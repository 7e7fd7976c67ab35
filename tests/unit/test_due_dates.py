"""Due dates of checklist items, without Temporal: the parser, the times it means, the anchors,
the one timer (the earliest due time), one nudge per item and due time, and what shows it."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from api.slash import slash_replies as render
from models import incident_commands as cmd
from models.common import Actor, UserFact
from models.due_dates import DUE_HINT, DueText, ItemDue, due_time, mattermost_time_zone, read_due
from models.effects import PAGING_LANE, DirectMessageEffect, lane_of
from models.incident import EventType, IncidentStart, IncidentStatus, ItemState
from models.incident_views import open_items_of, to_view, todo_order
from models.playbook import ChecklistItemSpec, Playbook, PlaybookSpec, StageSpec
from service.errors import describe_fields, validation_fields
from service.playbook_yaml import PlaybookDocument
from workflows import incident_due_dates as due_dates
from workflows import incident_messages as text
from workflows.incident_rules import Incident, new_incident

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE, BOB, CAROL = ("a" * 26, "b" * 26, "c" * 26)
TEAM = "t" * 26
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol"}


def actor(user_id: str = ALICE, *, zone: str = "") -> Actor:
    return Actor(user_id=user_id, username=NAMES[user_id], is_channel_member=True, is_team_member=True, time_zone=zone)


def item(title: str, due: dict[str, Any] | None = None) -> ChecklistItemSpec:
    return ChecklistItemSpec(title=title, due=ItemDue.model_validate(due) if due else None)


def incident(*stages: StageSpec) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    book = Playbook(
        id="pb1",
        team_id=TEAM,
        title="Database outage",
        checklists=list(stages) or [StageSpec(title="Triage", items=[item("Page DBA"), item("Read logs")])],
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )
    start = IncidentStart(id="inc1", team_id=TEAM, name="DB down", reporter=actor(), playbook=book)
    state = new_incident(start, T0, lambda: next(ids))
    state.usernames.update(NAMES)
    state.member_ids = [ALICE, BOB, CAROL]
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down", [], None)
    return made


def set_due(made: Incident, stage: int, number: int, due: str | None, at: datetime, *, zone: str = "") -> str:
    command = cmd.SetItemDue(actor=actor(zone=zone), stage=stage, item=number, due=due)
    made.check_set_item_due(command)
    return made.set_item_due(command, at)


def check(made: Incident, stage: int, number: int, at: datetime, state: str = "done") -> None:
    command = cmd.SetItemState(actor=actor(), stage=stage, item=number, state=state)
    made.check_set_item_state(command)
    made.set_item_state(command, at)


def assign(made: Incident, stage: int, number: int, user: str) -> None:
    command = cmd.AssignItem(
        actor=actor(),
        stage=stage,
        item=number,
        assignee=UserFact(user_id=user, username=NAMES[user], is_channel_member=True),
    )
    made.check_assign_item(command)
    made.assign_item(command, T0)


def nudges(made: Incident) -> list[DirectMessageEffect]:
    return [p.effect for p in made.state.outbox if isinstance(p.effect, DirectMessageEffect)]


def refusal(call: object) -> ApplicationError:
    assert callable(call)
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------------- what people type


def test_durations_times_of_day_and_none_are_read() -> None:
    assert read_due("30m") == DueText("in", seconds=1800)
    assert read_due(" 1H30M ") == DueText("in", seconds=5400)
    assert read_due("14:30") == DueText("at", hour=14, minute=30)
    assert read_due("9:05") == DueText("at", hour=9, minute=5)
    assert read_due("NONE") == DueText("none")
    assert read_due(" 14:30\n") == DueText("at", hour=14, minute=30)  # surrounding spaces are ignored
    for wrong in (
        "",
        "soon",
        "30",
        "24:00",
        "14:60",
        "1:2",
        "-5m",
        "1e3m",
        "\uff11\uff14:\uff13\uff10",
        "m30",
        "14:30:00",
    ):
        with pytest.raises(ValueError, match=re.escape(DUE_HINT)):
            read_due(wrong)
    for out_of_bounds in ("0m", "31d", "9999999m"):
        with pytest.raises(ValueError, match="at most 30d"):
            read_due(out_of_bounds)


DURATIONS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=500), st.sampled_from("smhd")), min_size=1, max_size=3
).map(lambda parts: "".join(f"{n}{unit}" for n, unit in parts))


@given(DURATIONS)
def test_a_duration_is_read_as_its_seconds_or_refused_past_its_bounds(typed: str) -> None:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", typed))
    if 1 <= seconds <= 30 * 86400:
        assert read_due(typed) == DueText("in", seconds=seconds)
    else:
        with pytest.raises(ValueError, match="at least 1s and at most 30d"):
            read_due(typed)


@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
def test_every_time_of_day_is_read(hour: int, minute: int) -> None:
    assert read_due(f"{hour:02}:{minute:02}") == DueText("at", hour=hour, minute=minute)
    assert read_due(f"{hour}:{minute:02}") == DueText("at", hour=hour, minute=minute)


@settings(max_examples=400)
@given(st.text(max_size=60))
def test_garbage_is_refused_with_what_to_type_and_nothing_else_escapes(typed: str) -> None:
    try:
        read = read_due(typed)
    except ValueError:
        with pytest.raises(ValueError, match=re.escape(DUE_HINT)):
            read_due(typed)
        with pytest.raises(ValidationError) as caught:
            cmd.ItemDueFields(due=typed)
        said = describe_fields(validation_fields(caught.value.errors()))
        assert said.startswith("Invalid request: due: ")
        assert DUE_HINT in said
    else:
        assert read.kind in ("in", "at", "none")
        assert cmd.ItemDueFields(due=typed).due == typed.strip()


def test_the_rest_body_needs_due_and_takes_null_to_clear() -> None:
    with pytest.raises(ValidationError):
        cmd.ItemDueFields.model_validate({})
    assert cmd.ItemDueFields.model_validate({"due": None}).due is None


# ---------------------------------------------------------------------------- the time it means


def test_a_duration_is_from_now_and_a_time_of_day_the_next_one_in_the_persons_zone() -> None:
    now = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # 14:00 in Berlin (winter)
    assert due_time(DueText("in", seconds=1800), now, "").at == now + timedelta(minutes=30)
    assert due_time(DueText("in", seconds=1800), now, "").words == "in 30m, at 13:30 UTC"
    later = due_time(DueText("at", hour=14, minute=30), now, "Europe/Berlin")
    assert later.at == datetime(2026, 1, 5, 13, 30, tzinfo=UTC)
    assert later.words == "at 14:30 today (Europe/Berlin; 13:30 UTC)"
    passed = due_time(DueText("at", hour=9, minute=0), now, "Europe/Berlin")
    assert passed.at == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    assert "tomorrow" in passed.words
    # No zone known: UTC, and the answer says so.
    plain = due_time(DueText("at", hour=14, minute=30), now, "")
    assert plain.at == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    assert plain.words == "at 14:30 UTC today (your Mattermost time zone is not set, so times of day are UTC)"
    assert due_time(DueText("at", hour=14, minute=30), now, "Not/AZone").at == plain.at
    # Summer time: 14:30 in Berlin is 12:30 UTC.
    summer = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    assert due_time(DueText("at", hour=14, minute=30), summer, "Europe/Berlin").at.hour == 12


def test_the_mattermost_time_zone_is_the_one_the_person_chose() -> None:
    assert mattermost_time_zone({}) == ""
    auto = {"useAutomaticTimezone": "true", "automaticTimezone": "Europe/Berlin", "manualTimezone": "Asia/Tokyo"}
    assert mattermost_time_zone({"timezone": auto}) == "Europe/Berlin"
    manual = auto | {"useAutomaticTimezone": "false"}
    assert mattermost_time_zone({"timezone": manual}) == "Asia/Tokyo"
    assert mattermost_time_zone({"timezone": manual | {"manualTimezone": "../etc/passwd"}}) == ""
    assert mattermost_time_zone({"timezone": auto | {"automaticTimezone": ""}}) == ""


# ---------------------------------------------------------------------------- the playbook's due


def test_a_playbook_item_due_is_validated_in_json_and_yaml() -> None:
    good = {"title": "P", "checklists": [{"title": "S", "items": [{"title": "I", "due": {"after": "30m"}}]}]}
    spec = PlaybookSpec.model_validate(good)
    due = spec.checklists[0].items[0].due
    assert due is not None
    assert (due.from_, due.seconds) == ("stage", 1800)
    assert spec.model_dump(mode="json")["checklists"][0]["items"][0]["due"] == {"after": "30m", "from": "stage"}
    for after, anchor in (("soon", "stage"), ("0s", "stage"), ("31d", "start"), ("30m", "lunch")):
        bad = {
            "title": "P",
            "checklists": [{"title": "S", "items": [{"title": "I", "due": {"after": after, "from": anchor}}]}],
        }
        with pytest.raises(ValidationError) as caught:
            PlaybookSpec.model_validate(bad)
        fields = validation_fields(caught.value.errors())
        assert set(fields) <= {"checklists[0].items[0].due.after", "checklists[0].items[0].due.from"}, fields
    document = yaml.safe_load(
        "title: P\nchecklists:\n  - title: S\n    items:\n      - title: I\n        due: {after: 1h, from: start}\n"
    )
    parsed = PlaybookDocument.model_validate(document)
    assert parsed.checklists[0].items[0].due == ItemDue.model_validate({"after": "1h", "from": "start"})
    # Items without a due time are written as before (no `due: null`).
    undated = PlaybookSpec.model_validate({"title": "P", "checklists": [{"title": "S", "items": [{"title": "I"}]}]})
    assert "due" not in undated.model_dump(mode="json", exclude_none=True)["checklists"][0]["items"][0]


def test_anchors_the_start_and_the_stage_first_entry_only() -> None:
    made = incident(
        StageSpec(title="Triage", items=[item("A", {"after": "30m"}), item("B", {"after": "2h", "from": "start"})]),
        StageSpec(title="Fix", items=[item("C", {"after": "10m"}), item("D", {"after": "1h", "from": "start"})]),
    )
    a, b = made.state.checklists[0].items
    c, d = made.state.checklists[1].items
    assert (a.due_at, b.due_at, d.due_at) == (
        T0 + timedelta(minutes=30),
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=1),
    )
    assert (c.due_at, c.due_rule) == (None, ItemDue(after="10m"))  # its stage is not entered yet
    entered = T0 + timedelta(minutes=5)
    move = cmd.ChangeStage(actor=actor(), direction="next", force=True)
    made.check_change_stage(move)
    made.change_stage(move, entered)
    assert (c.due_at, c.due_rule) == (entered + timedelta(minutes=10), None)
    # Back and in again: the playbook's due time was used once.
    for direction, at in (("prev", entered + timedelta(minutes=1)), ("next", entered + timedelta(minutes=2))):
        move = cmd.ChangeStage(actor=actor(), direction=direction, force=True)
        made.check_change_stage(move)
        made.change_stage(move, at)
    assert c.due_at == entered + timedelta(minutes=10)


# ---------------------------------------------------------------------------- one timer, one nudge


def test_the_timer_is_the_earliest_due_time_of_the_open_items_and_checking_moves_it() -> None:
    made = incident()
    assert due_dates.next_item_due(made.state) is None  # no due dates: no timer at all
    set_due(made, 0, 0, "30m", T0)
    set_due(made, 0, 1, "10m", T0)
    assert due_dates.next_item_due(made.state) == T0 + timedelta(minutes=10)
    check(made, 0, 1, T0 + timedelta(minutes=1))
    assert due_dates.next_item_due(made.state) == T0 + timedelta(minutes=30)
    check(made, 0, 1, T0 + timedelta(minutes=2), "open")
    assert due_dates.next_item_due(made.state) == T0 + timedelta(minutes=10)
    set_due(made, 0, 1, "none", T0 + timedelta(minutes=3))
    assert due_dates.next_item_due(made.state) == T0 + timedelta(minutes=30)
    end = cmd.EndIncident(actor=actor())
    made.check_end(end)
    made.end(end, T0 + timedelta(minutes=4))
    assert due_dates.next_item_due(made.state) is None  # an ended incident waits on no due time


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000), st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_many_dated_items_are_one_timer_at_the_earliest_open_one(items: list[tuple[int, bool, bool]]) -> None:
    made = incident(StageSpec(title="Many", items=[item(f"Step {n}") for n in range(len(items))]))
    for number, (seconds, done, flagged) in enumerate(items):
        entry = made.state.checklists[0].items[number]
        entry.due_at = T0 + timedelta(seconds=seconds)
        entry.state = ItemState.DONE if done else ItemState.OPEN
        entry.overdue_for = entry.due_at if flagged else None
    waiting = [T0 + timedelta(seconds=s) for s, done, flagged in items if not done and not flagged]
    assert due_dates.next_item_due(made.state) == (min(waiting) if waiting else None)


def test_one_nudge_per_item_and_due_time_to_the_assignee_else_the_commander() -> None:
    made = incident(StageSpec(title="Triage", items=[item("Page DBA"), item("Read logs"), item("Fail over")]))
    assign(made, 0, 0, BOB)
    set_due(made, 0, 0, "10m", T0)
    set_due(made, 0, 1, "10m", T0)
    set_due(made, 0, 2, "1h", T0)
    before = len(nudges(made))
    late = T0 + timedelta(minutes=15)
    assert made.nudge_overdue_items(late)
    sent = nudges(made)[before:]
    assert {n.user_id for n in sent} == {BOB, ALICE}  # alice is the commander
    to_bob = next(n for n in sent if n.user_id == BOB)
    assert "**Page DBA** (stage 1/1 Triage, item 1): due at 09:10 UTC, 5m ago" in to_bob.message
    assert "DB down" in to_bob.message
    assert all(lane_of(n, made.state.channel_id) == PAGING_LANE for n in sent)
    overdue = [e for e in made.state.timeline if e.type == EventType.ITEM_OVERDUE]
    assert [e.details["told"] for e in overdue] == [BOB, ALICE]
    assert overdue[0].summary == "**Page DBA** (stage 1/1 Triage) is overdue: it was due at 09:10 UTC; telling @bob"
    # Again (a timer computed again after a restart, or the same moment): nothing more.
    assert not made.nudge_overdue_items(late + timedelta(minutes=30))
    assert len(nudges(made)) == before + 2
    assert due_dates.next_item_due(made.state) == T0 + timedelta(hours=1)
    # A new due time re-arms the nudge.
    set_due(made, 0, 0, "5m", late)
    assert not made.state.checklists[0].items[0].overdue
    assert made.nudge_overdue_items(late + timedelta(minutes=5))
    assert len(nudges(made)) == before + 3
    # Done items are never nudged; nor anything once the incident ended.
    check(made, 0, 2, late)
    assert not made.nudge_overdue_items(T0 + timedelta(hours=2))


def test_one_message_per_person_however_many_items_become_overdue_at_once() -> None:
    made = incident(StageSpec(title="Many", items=[item(f"Step {n}") for n in range(200)]))
    for number in range(200):
        set_due(made, 0, number, "30m", T0)
    assert due_dates.next_item_due(made.state) == T0 + timedelta(minutes=30)
    before = len(nudges(made))
    assert made.nudge_overdue_items(T0 + timedelta(minutes=30))
    sent = nudges(made)[before:]
    assert len(sent) == 1
    assert "… and 175 more" in sent[0].message
    assert due_dates.next_item_due(made.state) is None


def test_refusals_name_the_item_and_change_nothing() -> None:
    made = incident()
    assert (
        "has no due time"
        in refusal(lambda: made.check_set_item_due(cmd.SetItemDue(actor=actor(), stage=0, item=0, due="none"))).message
    )
    check(made, 0, 0, T0)
    said = refusal(lambda: made.check_set_item_due(cmd.SetItemDue(actor=actor(), stage=0, item=0, due="30m")))
    assert said.message == "Item 'Page DBA' is done; reopen it before giving it a due time."
    said = refusal(lambda: made.check_set_item_due(cmd.SetItemDue(actor=actor(), stage=0, item=8, due="30m")))
    assert said.message == "There is no such item: stage 'Triage' has 2 item(s)."


def test_every_change_is_on_the_timeline_and_the_answer_says_the_zone() -> None:
    made = incident()
    now = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
    assert set_due(made, 0, 0, "14:30", now) == (
        "Item 'Page DBA' is due at 14:30 UTC today (your Mattermost time zone is not set, so times of day are UTC)."
    )
    assert set_due(made, 0, 0, "14:30", now, zone="Europe/Berlin") == (
        "Item 'Page DBA' is due at 14:30 today (Europe/Berlin; 13:30 UTC)."
    )
    assert set_due(made, 0, 0, "45m", now) == "Item 'Page DBA' is due in 45m, at 13:45 UTC."
    assert set_due(made, 0, 0, None, now) == "Item 'Page DBA' no longer has a due time."
    changes = [e.summary for e in made.state.timeline if e.type == EventType.ITEM_DUE_CHANGED]
    assert changes == [
        "@alice set **Page DBA** (stage 1/1 Triage) due at 14:30 UTC",
        "@alice set **Page DBA** (stage 1/1 Triage) due at 13:30 UTC",
        "@alice set **Page DBA** (stage 1/1 Triage) due at 13:45 UTC",
        "@alice cleared the due time of **Page DBA** (stage 1/1 Triage)",
    ]


# ---------------------------------------------------------------------------- what shows it


def test_overdue_items_are_flagged_in_the_post_info_the_view_and_the_todo() -> None:
    made = incident()
    assign(made, 0, 0, BOB)
    set_due(made, 0, 0, "10m", T0)
    set_due(made, 0, 1, "1h", T0)
    late = T0 + timedelta(minutes=20)
    made.nudge_overdue_items(late)
    post = text.checklist_message(made.state)
    assert "1. [ ] Page DBA — @bob · :warning: **overdue** (due 09:10 UTC)" in post
    assert "2. [ ] Read logs · *due 10:00 UTC*" in post
    info = render.info(made.state, late)
    assert "1. [ ] Page DBA — @bob · :warning: **overdue** (due 09:10 UTC)" in info
    view = to_view(made.state, late)
    shown = view.checklists[0].items
    assert (shown[0].overdue, shown[1].overdue) == (True, False)
    assert shown[0].due_at == T0 + timedelta(minutes=10)
    assert view.model_dump(mode="json")["checklists"][0]["items"][0]["overdue"] is True
    mine = open_items_of(made.state, BOB)
    assert [(i.title, i.overdue, i.stage, i.item) for i in mine] == [("Page DBA", True, 0, 0)]
    # Checked off: no longer flagged nor listed; opened again: flagged again, without a second nudge.
    check(made, 0, 0, late)
    assert "overdue" not in text.checklist_message(made.state)
    assert open_items_of(made.state, BOB) == []
    check(made, 0, 0, late, "open")
    assert made.state.checklists[0].items[0].overdue
    assert not made.nudge_overdue_items(late)


def test_the_todo_is_overdue_first_then_by_due_time_then_the_rest() -> None:
    made = incident(StageSpec(title="Triage", items=[item("Later"), item("Undated"), item("Overdue"), item("Soon")]))
    for number in range(4):
        assign(made, 0, number, BOB)
    set_due(made, 0, 0, "2h", T0)
    set_due(made, 0, 2, "5m", T0)
    set_due(made, 0, 3, "1h", T0)
    made.nudge_overdue_items(T0 + timedelta(minutes=10))
    listed = sorted(open_items_of(made.state, BOB), key=todo_order)
    assert [i.title for i in listed] == ["Overdue", "Soon", "Later", "Undated"]
    shown = render.todo(listed, T0, mattermost_url="http://mm.example")
    assert shown.index("Overdue") < shown.index("Soon") < shown.index("Undated")
    assert "[~inc-db-down](http://mm.example//channels/inc-db-down)" not in shown  # no team name: no link
    assert render.todo([], T0, mattermost_url="") == render.NO_OPEN_ITEMS


def test_open_assignees_are_who_has_open_items_while_ongoing() -> None:
    made = incident()
    assert due_dates.open_assignees(made.state) == []
    assign(made, 0, 0, BOB)
    assign(made, 0, 1, CAROL)
    assert due_dates.open_assignees(made.state) == sorted([BOB, CAROL])
    check(made, 0, 1, T0)
    assert due_dates.open_assignees(made.state) == [BOB]
    made.state.status = IncidentStatus.ENDED
    assert due_dates.open_assignees(made.state) == []
