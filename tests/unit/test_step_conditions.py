"""Conditional steps without Temporal: what a condition is and when it holds, what a playbook may
say, and how an incident's checklist follows its severity and fields (nothing a person touched
ever disappears)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from models.common import Actor, UserFact
from models.conditions import StepCondition, combine, condition_holds, read_when_text, when_text
from models.custom_fields import FieldSpec, FieldType
from models.effects import ChecklistEffect, PostEffect, WebhookEffect
from models.incident import EventType, IncidentStart, IncidentStatus, ItemState
from models.incident_commands import (
    AddItem,
    AssignItem,
    RemoveItem,
    RestartIncident,
    SetItemDue,
    SetItemState,
    SetSeverity,
)
from models.incident_views import open_items_of
from models.playbook import ChecklistItemSpec, Playbook, PlaybookFacts, PlaybookSpec, StageSpec
from models.refusals import Refusal
from models.severity import DEFAULT_LEVELS
from workflows import incident_due_dates as due_dates
from workflows import incident_messages as text
from workflows.incident_rules import Incident, new_incident
from workflows.playbook_rules import check_spec

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "a" * 26
BOB = "b" * 26
TEAM = "t" * 26
LEVELS = list(DEFAULT_LEVELS)


def when(**parts: Any) -> StepCondition:
    return StepCondition.model_validate(parts)


# ---------------------------------------------------------------------------- the condition


@pytest.mark.parametrize(
    ("condition", "severity", "fields", "holds"),
    [
        (None, None, {}, True),
        ({"severity": [1]}, 1, {}, True),
        ({"severity": [1]}, 2, {}, False),
        ({"severity": [1, 2]}, 2, {}, True),
        ({"severity": [1]}, None, {}, False),  # no severity does not match a severity condition
        ({"field": {"region": ["eu-west"]}}, None, {"region": "eu-west"}, True),
        ({"field": {"region": ["eu-west", "us-east"]}}, 3, {"region": "us-east"}, True),  # OR within a list
        ({"field": {"region": ["eu-west"]}}, 1, {"region": "us-east"}, False),
        ({"field": {"region": ["eu-west"]}}, 1, {}, False),  # a field without a value does not match
        ({"severity": [1], "field": {"region": ["eu-west"]}}, 1, {"region": "eu-west"}, True),  # AND
        ({"severity": [1], "field": {"region": ["eu-west"]}}, 2, {"region": "eu-west"}, False),
        ({"severity": [1], "field": {"region": ["eu-west"]}}, 1, {"region": "us-east"}, False),
        ({"field": {"region": ["eu-west"], "tier": ["gold"]}}, 1, {"region": "eu-west"}, False),
        ({"field": {"region": ["eu-west"], "tier": ["gold"]}}, 1, {"region": "eu-west", "tier": "gold"}, True),
    ],
)
def test_a_condition_holds_when_every_part_does(
    condition: dict[str, Any] | None, severity: int | None, fields: dict[str, str], holds: bool
) -> None:
    parsed = StepCondition.model_validate(condition) if condition is not None else None
    assert condition_holds(parsed, severity, fields) is holds


@pytest.mark.parametrize("level", [2, "2", "sev2", "SEV2", "Sev 2", " sev2 "])
def test_a_severity_level_is_written_as_a_number_or_sev_n(level: Any) -> None:
    assert when(severity=[level]).severity == [2]


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        ({}, "needs a severity list, a field, or both"),
        ({"severity": [], "field": {}}, "needs a severity list, a field, or both"),
        ({"severity": [0]}, "greater than or equal to 1"),
        ({"severity": [11]}, "less than or equal to 10"),
        ({"severity": ["critical"]}, "is not a severity level"),
        ({"severity": [True]}, "must be a severity level"),
        ({"field": {"region": []}}, "at least 1 item"),
        ({"other": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_condition_that_cannot_be_is_refused(condition: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        StepCondition.model_validate(condition)


def test_a_condition_in_words_and_as_the_editor_writes_it() -> None:
    condition = when(severity=["sev2", 1, 1], field={"region": ["eu-west", "us-east"]})
    assert condition.severity == [1, 2]
    assert condition.words() == "SEV1, SEV2 and region eu-west or us-east"
    assert when_text(condition) == "severity: 1, 2; region: eu-west, us-east"
    assert StepCondition.model_validate(read_when_text(when_text(condition))) == condition
    assert read_when_text("sev1, sev2") == {"severity": ["sev1", "sev2"], "field": {}}
    assert read_when_text("  ") is None
    with pytest.raises(ValueError, match="write `severity: 1, 2`"):
        read_when_text("region:")


def test_a_stage_condition_and_an_item_condition_combine() -> None:
    stage = when(severity=[1, 2], field={"region": ["eu-west", "us-east"]})
    item = when(severity=[2, 3], field={"region": ["eu-west"], "tier": ["gold"]})
    assert combine(stage, item) == when(severity=[2], field={"region": ["eu-west"], "tier": ["gold"]})
    assert combine(None, item) == item
    assert combine(stage, None) == stage
    assert combine(None, None) is None
    with pytest.raises(ValueError, match="would never apply"):
        combine(when(severity=[1]), when(severity=[2]))


# ---------------------------------------------------------------------------- the playbook

REGION = FieldSpec(name="region", type=FieldType.SELECT, options=["EU-West", "us-east"])
TIER = FieldSpec(name="tier")


def spec(checklists: list[dict[str, Any]], fields: list[FieldSpec] | None = None) -> PlaybookSpec:
    return PlaybookSpec.model_validate(
        {"title": "P", "checklists": checklists, "fields": [f.model_dump() for f in fields or []]}
    )


def test_a_playbook_condition_names_its_fields_and_their_options() -> None:
    made = spec(
        [{"title": "T", "items": [{"title": "x", "when": {"field": {"region": ["eu-west"], "tier": ["Gold"]}}}]}],
        [REGION, TIER],
    )
    # A select value is written as the option is declared; a text field's as given.
    assert made.checklists[0].items[0].when == when(field={"region": ["EU-West"], "tier": ["Gold"]})
    with pytest.raises(ValidationError) as refused:
        spec([{"title": "T", "items": [{"title": "Page", "when": {"field": {"zone": ["a"]}}}]}], [REGION, TIER])
    said = str(refused.value)
    assert "stage 1 ('T') item 1 ('Page'): `when` names field 'zone'" in said
    assert "(its fields: region, tier)" in said
    with pytest.raises(ValidationError, match=r"field 'region' has no option 'mars' \(its options: EU-West, us-east\)"):
        spec([{"title": "T", "when": {"field": {"region": ["mars"]}}, "items": []}], [REGION])
    number = FieldSpec(name="customers", type=FieldType.NUMBER, max=1000)
    made = spec([{"title": "T", "when": {"field": {"customers": ["100.0", "0100"]}}, "items": []}], [number])
    assert made.checklists[0].when == when(field={"customers": ["100"]}), "as the incident keeps a number"
    with pytest.raises(ValidationError, match="is not a number of at most 1000"):
        spec([{"title": "T", "when": {"field": {"customers": ["2000"]}}, "items": []}], [number])
    owner = FieldSpec(name="owner", type=FieldType.USER)
    with pytest.raises(ValidationError, match="cannot name field 'owner', a user field"):
        spec([{"title": "T", "when": {"field": {"owner": ["bob"]}}, "items": []}], [owner])
    with pytest.raises(ValidationError, match="its fields: none"):
        spec([{"title": "T", "items": [{"title": "x", "when": {"field": {"region": ["a"]}}}]}])
    with pytest.raises(ValidationError, match=r"stage 1 \('T'\) item 1 \('x'\): its severity levels"):
        spec([{"title": "T", "when": {"severity": [1]}, "items": [{"title": "x", "when": {"severity": [2]}}]}])


def test_a_condition_names_the_teams_levels() -> None:
    made = spec([{"title": "T", "when": {"severity": [2]}, "items": [{"title": "x", "when": {"severity": [2, 5]}}]}])
    with pytest.raises(ApplicationError) as refused:
        check_spec(made, PlaybookFacts(severity_level_count=4))
    assert refused.value.details[0]["fields"] == {
        "checklists[0].items[0].when": "the team has no severity level 5: its levels are 1 to 4"
    }
    check_spec(made, PlaybookFacts(severity_level_count=5))


# ---------------------------------------------------------------------------- the incident


def actor(user_id: str = ALICE, name: str = "alice") -> Actor:
    return Actor(user_id=user_id, username=name, is_channel_member=True, is_team_member=True)


def playbook() -> Playbook:
    """Triage: Assess (always), Page exec (SEV1), Notify EU (region EU-West), Status page (SEV1-2);
    Escalate (only at SEV1): Call vendor, War room (SEV1-2 within it: SEV1)."""
    checklists = [
        StageSpec(
            title="Triage",
            items=[
                ChecklistItemSpec(title="Assess"),
                ChecklistItemSpec(title="Page exec", when=when(severity=[1]), due={"after": "10m", "from": "start"}),
                ChecklistItemSpec(title="Notify EU", when=when(field={"region": ["EU-West"]})),
                ChecklistItemSpec(title="Status page", when=when(severity=[1, 2])),
            ],
        ),
        StageSpec(
            title="Escalate",
            when=when(severity=["sev1"]),
            items=[
                ChecklistItemSpec(title="Call vendor"),
                ChecklistItemSpec(title="War room", when=when(severity=[1, 2])),
            ],
        ),
    ]
    return Playbook(
        id="pb1",
        team_id=TEAM,
        title="Outage",
        checklists=checklists,
        fields=[REGION],
        member_ids=[ALICE],
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )


def incident(severity: str | None = "3", **fields: Any) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    start = IncidentStart.model_validate(
        {
            "id": "inc1",
            "team_id": TEAM,
            "name": "Checkout down",
            "reporter": actor(),
            "reporter_permissions": ["create_private_channel"],
            "playbook": playbook(),
            "severity": severity,
            "severity_levels": LEVELS,
        }
        | fields
    )
    state = new_incident(start, T0, lambda: next(ids))
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "c" * 26, "inc-checkout-down-inc1", [], None)
    made.start_emitting()
    state.outbox.clear()
    return made


def titles(made: Incident) -> list[list[tuple[str, str]]]:
    return [[(item.title, item.state.value) for item in stage.items] for stage in made.state.checklists]


def sev(made: Incident, level: str, minutes: int = 1, who: Actor | None = None) -> None:
    command = SetSeverity(actor=who or actor(), severity=level, levels=LEVELS)
    made.check_set_severity(command)
    made.set_severity(command, T0 + timedelta(minutes=minutes))


def item_of(made: Incident, title: str) -> tuple[int, int]:
    for s, stage in enumerate(made.state.checklists):
        for i, item in enumerate(stage.items):
            if item.title == title:
                return s, i
    raise AssertionError(f"no item {title!r}")


def test_the_start_has_only_the_steps_that_apply() -> None:
    assert titles(incident("3")) == [[("Assess", "open")], []]
    at_sev1 = incident("1")
    assert titles(at_sev1) == [
        [("Assess", "open"), ("Page exec", "open"), ("Status page", "open")],
        [("Call vendor", "open"), ("War room", "open")],
    ]
    page_exec = at_sev1.state.checklists[0].items[1]
    assert page_exec.spec_key == "0/1"
    assert page_exec.condition == when(severity=[1])
    assert page_exec.due_at == T0 + timedelta(minutes=10), "due from the start, as any step"
    assert at_sev1.state.checklists[1].items[1].condition == when(severity=[1]), "its stage's and its own"
    assert titles(incident(None)) == [[("Assess", "open")], []], "no severity matches no severity condition"


def test_severity_changes_gain_skip_and_bring_back_steps_and_never_remove_one() -> None:
    made = incident("3")
    sev(made, "1", 1)
    assert titles(made) == [
        [("Assess", "open"), ("Page exec", "open"), ("Status page", "open")],
        [("Call vendor", "open"), ("War room", "open")],
    ]
    event = made.state.timeline[-1]
    assert event.type == EventType.STEPS_CHANGED
    assert event.summary == ("Severity SEV1: 4 step(s) added ('Page exec', 'Status page', 'Call vendor', 'War room')")
    assert [entry["spec_key"] for entry in event.details["added"]] == ["0/1", "0/3", "1/0", "1/1"]
    assert event.details["severity"] == 1
    effects = [pending.effect for pending in made.state.outbox]
    assert any(isinstance(e, ChecklistEffect) for e in effects), "the checklist post is refreshed"
    assert any(isinstance(e, PostEffect) and e.message == event.summary for e in effects), "and the channel told"
    hooks = [e.event for e in effects if isinstance(e, WebhookEffect)]
    assert [h.type for h in hooks] == ["incident.severity_changed", "incident.item_changed"]
    assert hooks[1].data["change"] == "steps_changed"
    # A step gained later is due from when it is gained (its anchor, the start, has passed).
    assert made.state.checklists[0].items[1].due_at == T0 + timedelta(minutes=11)

    # Touch steps: check one, assign another.
    s, i = item_of(made, "Page exec")
    made.set_item_state(SetItemState(actor=actor(), stage=s, item=i, state=ItemState.DONE), T0 + timedelta(minutes=2))
    s, i = item_of(made, "Call vendor")
    bob = UserFact(user_id=BOB, username="bob", is_channel_member=True)
    made.assign_item(AssignItem(actor=actor(), stage=s, item=i, assignee=bob), T0 + timedelta(minutes=2))

    sev(made, "3", 3)
    assert titles(made) == [
        [("Assess", "open"), ("Page exec", "done"), ("Status page", "skipped")],
        [("Call vendor", "skipped"), ("War room", "skipped")],
    ]
    vendor = made.state.checklists[1].items[0]
    assert vendor.assignee_id == BOB, "a touched step keeps everything"
    assert vendor.touched
    assert vendor.skipped_reason == "only when SEV1"
    assert made.state.checklists[1].all_skipped
    assert made.state.checklists[1].open_count == 0
    event = made.state.timeline[-1]
    assert event.summary == "Severity SEV3: 3 skipped ('Status page', 'Call vendor', 'War room')"
    assert [entry["touched"] for entry in event.details["skipped"]] == [False, True, False]

    sev(made, "2", 4)
    assert titles(made)[0] == [("Assess", "open"), ("Page exec", "done"), ("Status page", "open")]
    assert made.state.timeline[-1].summary == "Severity SEV2: 1 back ('Status page')"

    sev(made, "1", 5)
    assert titles(made) == [
        [("Assess", "open"), ("Page exec", "done"), ("Status page", "open")],
        [("Call vendor", "open"), ("War room", "open")],
    ], "back, without duplicates"
    keys = [item.spec_key for stage in made.state.checklists for item in stage.items]
    assert len(keys) == len(set(keys))


def test_a_field_change_gains_and_skips_its_steps() -> None:
    made = incident("3")
    made.state.field_values["region"] = "EU-West"
    made.conditions_changed(T0 + timedelta(minutes=1), ALICE, "Field region EU-West")
    assert titles(made)[0] == [("Assess", "open"), ("Notify EU", "open")]
    assert made.state.timeline[-1].summary == "Field region EU-West: 1 step(s) added ('Notify EU')"
    made.state.field_values["region"] = "us-east"
    made.conditions_changed(T0 + timedelta(minutes=2), ALICE)
    assert titles(made)[0] == [("Assess", "open"), ("Notify EU", "skipped")]
    assert made.state.timeline[-1].summary == "Conditions changed: 1 skipped ('Notify EU')"
    count = len(made.state.timeline)
    made.conditions_changed(T0 + timedelta(minutes=3), ALICE)
    assert len(made.state.timeline) == count, "nothing changed: nothing on the timeline"


def test_gained_steps_go_to_their_playbook_place_among_items_added_by_hand() -> None:
    made = incident("2")
    assert titles(made)[0] == [("Assess", "open"), ("Status page", "open")]
    made.add_item(AddItem(actor=actor(), stage=0, title="By hand"), T0)
    sev(made, "1")
    assert [t for t, _ in titles(made)[0]] == ["Assess", "Page exec", "Status page", "By hand"]


def test_a_skipped_step_is_neither_open_nor_done_never_overdue_nor_anyones_todo() -> None:
    made = incident("1")
    s, i = item_of(made, "Page exec")
    made.assign_item(
        AssignItem(
            actor=actor(), stage=s, item=i, assignee=UserFact(user_id=BOB, username="bob", is_channel_member=True)
        ),
        T0,
    )
    assert [item.title for item in open_items_of(made.state, BOB)] == ["Page exec"]
    sev(made, "3")
    item = made.state.checklists[s].items[i]
    assert item.state == ItemState.SKIPPED
    assert open_items_of(made.state, BOB) == []
    assert due_dates.due_items(made.state, T0 + timedelta(hours=1)) == []
    assert due_dates.next_item_due(made.state) is None
    assert due_dates.open_assignees(made.state) == []
    assert made.state.checklists[0].open_count == 1  # Assess
    post = text.checklist_message(made.state)
    assert "[-] ~~Page exec~~ — @bob · *skipped (only when SEV1)*" in post
    assert "**Stage 2/2 Escalate** · skipped" in post
    assert "**Stage 1/2 Triage** · **active** · 0/1 done, 2 skipped" in post
    controls = text.checklist_controls(made.state)
    assert all("Page exec" not in button.name for control in controls for button in control.buttons or [])
    with pytest.raises(ApplicationError) as refused:
        made.check_set_item_due(SetItemDue(actor=actor(), stage=s, item=i, due="30m"))
    assert refused.value.type == Refusal.CONFLICT
    assert "is skipped (only when SEV1)" in refused.value.message


def test_a_person_may_check_or_open_a_skipped_step_which_is_then_theirs() -> None:
    made = incident("1")
    sev(made, "3")
    s, i = item_of(made, "Status page")
    with pytest.raises(ApplicationError) as refused:
        made.check_set_item_state(SetItemState(actor=actor(), stage=s, item=i, state=ItemState.SKIPPED))
    assert refused.value.type == Refusal.INVALID
    command = SetItemState(actor=actor(), stage=s, item=i, state=ItemState.OPEN)
    made.check_set_item_state(command)
    made.set_item_state(command, T0 + timedelta(minutes=2))
    item = made.state.checklists[s].items[i]
    assert (item.state, item.condition, item.skipped_reason, item.touched) == (ItemState.OPEN, None, None, True)
    sev(made, "4", 3)
    assert made.state.checklists[s].items[i].state == ItemState.OPEN, "conditions no longer apply to it"
    sev(made, "1", 4)
    assert [t for t, _ in titles(made)[0]].count("Status page") == 1, "and it is not gained twice"


def test_a_step_removed_by_hand_is_not_gained_again_and_an_ended_incident_waits_for_its_restart() -> None:
    made = incident("1")
    s, i = item_of(made, "Page exec")
    made.remove_item(RemoveItem(actor=actor(), stage=s, item=i), T0)
    sev(made, "3")
    sev(made, "1")
    assert "Page exec" not in [t for t, _ in titles(made)[0]]
    made.state.status = IncidentStatus.ENDED
    made.state.ended_at = T0
    sev(made, "3")
    assert titles(made)[1] == [("Call vendor", "open"), ("War room", "open")], "an ended incident's checklist stays"
    made.restart(RestartIncident(actor=actor()), T0 + timedelta(hours=1))
    assert titles(made)[1] == [("Call vendor", "skipped"), ("War room", "skipped")]
    assert made.state.timeline[-1].summary.startswith("Restarted: 3 skipped")


# ---------------------------------------------------------------------------- the property

CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("severity"), st.sampled_from(["1", "2", "3", "4"])),
        st.tuples(st.just("region"), st.sampled_from(["EU-West", "us-east", None])),
        st.tuples(st.just("check"), st.integers(0, 20)),
        st.tuples(st.just("open"), st.integers(0, 20)),
        st.tuples(st.just("assign"), st.integers(0, 20)),
        st.tuples(st.just("add"), st.integers(0, 1)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(start=st.sampled_from(["1", "2", "3", None]), changes=CHANGES)
def test_no_step_ever_disappears_none_twice_none_skipped_while_it_applies(
    start: str | None, changes: list[tuple[str, Any]]
) -> None:
    made = incident(start)
    state = made.state
    seen: dict[str, str] = {}  # item id -> title: every item ever seen stays
    bob = UserFact(user_id=BOB, username="bob", is_channel_member=True)
    for minute, (kind, value) in enumerate(changes, start=1):
        now = T0 + timedelta(minutes=minute)
        items = [(s, i, item) for s, stage in enumerate(state.checklists) for i, item in enumerate(stage.items)]
        by_hand = [item.model_copy() for _, _, item in items if item.spec_key is None]
        if kind == "severity":
            if state.severity is None or state.severity.level != int(value):
                sev(made, value, minute)
        elif kind == "region":
            if value is None:
                state.field_values.pop("region", None)
            else:
                state.field_values["region"] = value
            made.conditions_changed(now, ALICE)
        elif kind == "add":
            made.add_item(AddItem(actor=actor(), stage=value, title=f"by hand {minute}"), now)
        elif items:
            s, i, item = items[value % len(items)]
            if kind == "assign":
                made.assign_item(AssignItem(actor=actor(), stage=s, item=i, assignee=bob), now)
            else:
                target = ItemState.DONE if kind == "check" else ItemState.OPEN
                if item.state != target:
                    made.set_item_state(SetItemState(actor=actor(), stage=s, item=i, state=target), now)
        present = [item for stage in state.checklists for item in stage.items]
        if kind in ("severity", "region"):
            after = {item.id: item for item in present}
            assert all(after[item.id] == item for item in by_hand), "conditions never touch an item added by hand"
        for item in present:
            seen.setdefault(item.id, item.title)
        ids = {item.id for item in present}
        assert set(seen) <= ids, "no item ever disappears"
        keys = [item.spec_key for item in present if item.spec_key is not None]
        assert len(keys) == len(set(keys)), "no step twice"
        for item in present:
            if item.state == ItemState.SKIPPED:
                assert item.condition is not None
                assert not condition_holds(
                    item.condition, state.severity.level if state.severity else None, state.field_values
                ), "nothing is skipped while its condition holds"
            if item.spec_key is not None and item.condition is not None and item.state != ItemState.DONE:
                applies = condition_holds(
                    item.condition, state.severity.level if state.severity else None, state.field_values
                )
                assert applies == (item.state != ItemState.SKIPPED)
