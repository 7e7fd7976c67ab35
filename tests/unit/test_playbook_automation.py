"""The playbook's rules, "when -> then", without Temporal: validation, firing once per
condition, timers armed only while their condition holds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from models import incident_commands as cmd
from models.common import Actor, UserFact
from models.effects import InviteEffect, PostEffect, WebhookEffect
from models.incident import EventType, IncidentStart, IncidentStatus, ItemState
from models.playbook import Playbook, PlaybookFacts, PlaybookSpec, describe_changes
from models.playbook_automation import describe_rule, duration_seconds
from service.errors import validation_fields
from workflows import incident_automation as automation
from workflows.incident_rules import Incident, new_incident
from workflows.playbook_rules import check_spec

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE = "a" * 26
BOB = "b" * 26
CAROL = "c" * 26
TEAM = "t" * 26
CHANNEL = "x" * 26
STAGES: list[dict[str, Any]] = [
    {"title": "Triage", "items": [{"title": "Page DBA"}, {"title": "Logs"}]},
    {"title": "Mitigation", "items": [{"title": "Fail over"}]},
    {"title": "Review", "items": []},
]


def rule(name: str, when: dict[str, Any], *then: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "when": when, "then": list(then) or [{"type": "post", "message": f"{name} says hi"}]}


def spec(*rules: dict[str, Any], **fields: Any) -> PlaybookSpec:
    return PlaybookSpec.model_validate({"title": "DB", "checklists": STAGES, "rules": list(rules), **fields})


def playbook(*rules: dict[str, Any]) -> Playbook:
    return Playbook(
        **spec(*rules, member_ids=[ALICE]).model_dump(),
        id="pb1",
        team_id=TEAM,
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )


def actor(user_id: str = ALICE, name: str = "alice") -> Actor:
    return Actor(user_id=user_id, username=name, is_channel_member=True, is_team_member=True)


def incident(*rules: dict[str, Any], webhooks: bool = False) -> Incident:
    """An incident of a playbook with `rules`, its channel ready (start rules have fired)."""
    ids = (f"id{n}" for n in itertools.count())
    start = IncidentStart(
        id="inc1",
        team_id=TEAM,
        name="DB down",
        reporter=actor(),
        playbook=playbook(*rules),
        rule_users=[UserFact(user_id=CAROL, username="carol")],
    )
    state = new_incident(start, T0, lambda: next(ids))
    made = Incident(state, lambda: next(ids))
    if webhooks:
        made.start_emitting()
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down", [], None)
    return made


def fired(made: Incident) -> list[str]:
    return [e.details["rule"] for e in made.state.timeline if e.type == EventType.RULE_FIRED]


def posts(made: Incident) -> list[str]:
    return [p.effect.message for p in made.state.outbox if isinstance(p.effect, PostEffect)]


def move(made: Incident, stage: int, at: datetime) -> None:
    made.change_stage(cmd.ChangeStage(actor=actor(), stage=stage, force=True), at)


def update(made: Incident, at: datetime, status: str | None = None) -> None:
    made.post_status_update(cmd.PostStatusUpdate(actor=actor(), message="news", status=status), at)


def check(made: Incident, stage: int, item: int, at: datetime, state: str = "done") -> None:
    made.set_item_state(cmd.SetItemState(actor=actor(), stage=stage, item=item, state=state), at)


def end(made: Incident, at: datetime) -> None:
    made.end(cmd.EndIncident(actor=actor(), confirmed=True), at)


def tick(made: Incident, at: datetime) -> bool:
    """What the workflow does when a timer is due (`_timed_work`)."""
    return made.fire_due_rules(at)


# ---------------------------------------------------------------------------- validation


def problems(*rules: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        spec(*rules)
    return validation_fields(caught.value.errors())


def test_unknown_stage_is_a_field_error_naming_the_rule() -> None:
    found = problems(rule("nudge", {"stage_entered": "Triage"}), rule("page on sev1", {"stage_entered": "Nope"}))
    assert found == {"rules": "Rule 2 (page on sev1): stage 'Nope' is not a stage of this playbook"}


def test_unknown_item_and_add_items_stage_are_field_errors() -> None:
    found = problems(
        rule("a", {"item_checked": {"stage": "triage", "item": "Nothing"}}),
        rule("b", {"incident_started": True}, {"type": "add_items", "stage": "Later", "items": ["x"]}),
    )
    assert found["rules"] == (
        "Rule 1 (a): stage 'triage' has no item 'Nothing'; Rule 2 (b): stage 'Later' is not a stage of this playbook"
    )


def test_bad_duration_is_a_field_error_at_its_place() -> None:
    found = problems(rule("slow", {"stage_entered": "Triage", "after": "5x"}))
    assert found == {"rules[0].when.after": "must be a duration such as 30s, 5m, 2h, 1d or 1h30m"}
    found = problems(rule("slow", {"no_status_update_for": "31d"}))
    assert found == {"rules[0].when.no_status_update_for": "must be at least 1s and at most 30d"}
    assert duration_seconds("1h30m") == 5400


def test_duplicate_names_are_refused_case_insensitively() -> None:
    found = problems(rule("Nudge", {"incident_started": True}), rule("nudge", {"status_set": "resolved"}))
    assert found == {"rules": "Rule 2 (nudge): Rule 1 has the same name; give every rule its own name"}


def test_when_takes_exactly_one_condition_and_after_only_with_start_or_stage() -> None:
    assert (
        "give exactly one of"
        in problems(rule("x", {"incident_started": True, "status_set": "resolved"}))["rules[0].when"]
    )
    assert "give exactly one of" in problems(rule("x", {}))["rules[0].when"]
    found = problems(rule("x", {"status_set": "resolved", "after": "5m"}))
    assert found == {"rules[0].when": "after goes with incident_started or stage_entered only"}


def test_actions_are_checked_by_their_type() -> None:
    found = problems(
        rule("x", {"incident_started": True}, {"type": "webhook", "event_type": "incident.started"}),
    )
    assert "outside the incident. namespace" in found["rules[0].then[0].webhook.event_type"]
    found = problems(rule("x", {"incident_started": True}, {"type": "sms", "who": "everyone"}))
    assert list(found) == ["rules[0].then[0]"]
    found = problems(rule("x", {"incident_started": True}, {"type": "page", "who": "everyone"}))
    assert sorted(found) == ["rules[0].then[0].page.user_ids", "rules[0].then[0].page.who"]


def test_people_and_channels_the_rules_name_are_checked_like_the_playbooks_own() -> None:
    made = spec(
        rule(
            "escalate",
            {"status_set": "identified"},
            {"type": "invite", "user_ids": [BOB, CAROL]},
            {"type": "announce", "channel_id": CHANNEL},
            {"type": "set_reminder", "after": "10s"},
        )
    )
    with pytest.raises(ApplicationError) as caught:
        check_spec(made, PlaybookFacts(users={BOB: UserFact(user_id=BOB, username="bob", is_team_member=False)}))
    assert caught.value.details[0]["fields"] == {
        "rules[0].then[0].user_ids[0]": "Rule 1 (escalate): @bob is not a member of this team",
        "rules[0].then[0].user_ids[1]": f"Rule 1 (escalate): no user has the id {CAROL}",
        "rules[0].then[1].channel_id": f"Rule 1 (escalate): no channel {CHANNEL} that you can see in this team",
        "rules[0].then[2].after": "Rule 1 (escalate): A reminder interval must be off (0) or between 1m and 7d "
        "(60 to 604800 seconds).",
    }


def test_rules_are_described_in_words_and_in_the_edit_history() -> None:
    one = spec(rule("nudge", {"stage_entered": "Mitigation", "after": "30m"}, {"type": "post", "message": "Still?"}))
    assert describe_rule(one.rules[0]) == "When stage Mitigation is entered, after 30m → post 'Still?'"
    assert "rules: 0 -> 1" in describe_changes(spec(), one)


# ---------------------------------------------------------------------------- each when, once


def test_incident_started_fires_once_when_the_channel_is_ready() -> None:
    made = incident(rule("hello", {"incident_started": True}, {"type": "post", "message": "Welcome @channel"}))
    assert fired(made) == ["hello"]
    assert posts(made)[-1] == "Welcome @\u2060channel"  # relayed: no channel-wide mention
    entry = made.state.timeline[-1]
    assert entry.summary == "Rule 'hello' fired (the incident started): posted a message"
    assert entry.actor_id == "system"
    made.run_rules(automation.on_start(made.state), T0)
    assert fired(made) == ["hello"]


def test_stage_entered_fires_per_entry_and_for_the_first_stage_at_the_start() -> None:
    made = incident(rule("triage", {"stage_entered": "Triage"}), rule("mitigate", {"stage_entered": "mitigation"}))
    assert fired(made) == ["triage"]
    move(made, 1, T0 + timedelta(minutes=1))
    assert fired(made) == ["triage", "mitigate"]
    move(made, 0, T0 + timedelta(minutes=2))
    move(made, 1, T0 + timedelta(minutes=3))
    # Entered again: a new entry, a new firing.
    assert fired(made) == ["triage", "mitigate", "triage", "mitigate"]


def test_status_set_fires_for_that_status_only() -> None:
    made = incident(rule("fixed", {"status_set": "resolved"}, {"type": "set_reminder", "after": "2h"}))
    update(made, T0 + timedelta(minutes=1), "investigating")
    update(made, T0 + timedelta(minutes=2))
    assert fired(made) == []
    update(made, T0 + timedelta(minutes=3), "resolved")
    assert fired(made) == ["fixed"]
    assert made.state.reminder_seconds == 7200
    assert made.state.reminder_due_at == T0 + timedelta(minutes=3, hours=2)


def test_item_checked_fires_once_per_item_and_adds_items() -> None:
    made = incident(
        rule(
            "paged",
            {"item_checked": {"stage": "triage", "item": "page dba"}},
            {"type": "add_items", "stage": "Review", "items": ["Write postmortem", "Thank the DBA"]},
        )
    )
    check(made, 0, 1, T0)  # another item
    check(made, 0, 0, T0, "in_progress")
    assert fired(made) == []
    check(made, 0, 0, T0 + timedelta(minutes=1))
    check(made, 0, 0, T0 + timedelta(minutes=2), "open")
    check(made, 0, 0, T0 + timedelta(minutes=3))
    assert fired(made) == ["paged"]
    assert [i.title for i in made.state.checklists[2].items] == ["Write postmortem", "Thank the DBA"]
    added = [e for e in made.state.timeline if e.type == EventType.ITEM_ADDED]
    assert [e.summary for e in added] == [
        "Rule 'paged' added **Write postmortem** to stage 'Review'",
        "Rule 'paged' added **Thank the DBA** to stage 'Review'",
    ]


# ---------------------------------------------------------------------------- each then


def test_invite_skips_people_already_in_and_names_the_others() -> None:
    made = incident(rule("crowd", {"status_set": "identified"}, {"type": "invite", "user_ids": [ALICE, CAROL]}))
    update(made, T0, "identified")
    [invite] = [
        p.effect for p in made.state.outbox if isinstance(p.effect, InviteEffect) and p.effect.actor_id == "system"
    ]
    assert [u.user_id for u in invite.users] == [CAROL]
    assert made.state.timeline[-1].summary.endswith("added @carol to the incident")


def test_announce_posts_in_the_channel_and_keeps_it_informed() -> None:
    made = incident(rule("tell", {"incident_started": True}, {"type": "announce", "channel_id": CHANNEL}))
    [told] = [
        p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect) and p.effect.channel_id == CHANNEL
    ]
    assert told.message.startswith("#### :rotating_light: Incident: DB down")
    assert "Announced by the playbook's rule 'tell'" in told.message
    assert CHANNEL in made.state.announced_channel_ids


def test_webhook_sends_an_event_of_the_rules_own_type() -> None:
    made = incident(
        rule("freeze", {"incident_started": True}, {"type": "webhook", "event_type": "deploy.freeze"}), webhooks=True
    )
    events = [p.effect.event for p in made.state.outbox if isinstance(p.effect, WebhookEffect)]
    assert [(e.type, e.data) for e in events][-1] == ("deploy.freeze", {"rule": "freeze"})


def test_a_playbook_without_rules_adds_nothing() -> None:
    made = incident()
    before = len(made.state.outbox)
    move(made, 1, T0)
    update(made, T0, "resolved")
    assert fired(made) == []
    assert automation.next_rule_due(made.state) is None
    assert not tick(made, T0 + timedelta(days=40))
    assert made.state.rule_firings == []
    assert len(made.state.outbox) > before  # the commands' own effects only


# ---------------------------------------------------------------------------- timers


def due(made: Incident) -> datetime | None:
    timer = automation.next_rule_due(made.state)
    return timer.due if timer is not None else None


def test_a_stage_timer_fires_once_after_its_time() -> None:
    made = incident(rule("slow", {"stage_entered": "Mitigation", "after": "30m"}))
    assert due(made) is None  # not in that stage: nothing armed
    entered = T0 + timedelta(minutes=5)
    move(made, 1, entered)
    assert due(made) == entered + timedelta(minutes=30)
    assert not tick(made, entered + timedelta(minutes=29))
    assert tick(made, entered + timedelta(minutes=31))
    assert not tick(made, entered + timedelta(minutes=60))
    assert fired(made) == ["slow"]
    assert due(made) is None
    assert (
        made.state.timeline[-1].summary == "Rule 'slow' fired (stage Mitigation was entered 30m ago): posted a message"
    )


def test_a_stage_timer_is_called_off_when_the_stage_is_left() -> None:
    made = incident(rule("slow", {"stage_entered": "Mitigation", "after": "30m"}))
    move(made, 1, T0)
    move(made, 2, T0 + timedelta(minutes=10))
    assert due(made) is None
    assert not tick(made, T0 + timedelta(hours=1))
    # Entered again: counted from the new entry.
    move(made, 1, T0 + timedelta(hours=2))
    assert due(made) == T0 + timedelta(hours=2, minutes=30)


def test_a_quiet_period_fires_once_and_a_status_update_starts_a_new_one() -> None:
    made = incident(rule("quiet", {"no_status_update_for": "1h"}))
    assert due(made) == T0 + timedelta(hours=1)
    update(made, T0 + timedelta(minutes=50))  # before the quiet period elapsed: called off
    assert not tick(made, T0 + timedelta(hours=1, minutes=1))
    assert due(made) == T0 + timedelta(hours=1, minutes=50)
    assert tick(made, T0 + timedelta(hours=2))
    assert not tick(made, T0 + timedelta(hours=5))  # once per quiet period
    update(made, T0 + timedelta(hours=6))
    assert tick(made, T0 + timedelta(hours=7))
    assert fired(made) == ["quiet", "quiet"]


def test_an_ended_incident_has_no_rule_timers_and_a_restart_counts_from_the_restart() -> None:
    made = incident(rule("later", {"incident_started": True, "after": "1h"}))
    assert due(made) == T0 + timedelta(hours=1)
    end(made, T0 + timedelta(minutes=10))
    assert made.state.status == IncidentStatus.ENDED
    assert due(made) is None
    assert not tick(made, T0 + timedelta(hours=2))
    restarted = T0 + timedelta(hours=3)
    made.restart(cmd.RestartIncident(actor=actor()), restarted)
    assert due(made) == restarted + timedelta(hours=1)
    assert tick(made, restarted + timedelta(hours=1))
    end(made, restarted + timedelta(hours=2))
    made.restart(cmd.RestartIncident(actor=actor()), restarted + timedelta(hours=3))
    assert due(made) is None  # it fired: never again
    assert fired(made) == ["later"]


def test_the_firing_keys_are_bounded() -> None:
    made = incident(rule("any", {"status_set": "monitoring"}))
    for n in range(510):
        update(made, T0 + timedelta(seconds=n), "monitoring")
    assert len(made.state.rule_firings) == 500
    assert made.state.rule_firings[-1] == "any@update:510"


# ---------------------------------------------------------------------------- property

RULES = [
    rule("start", {"incident_started": True}),
    rule("start-later", {"incident_started": True, "after": "20m"}),
    rule("mitigation", {"stage_entered": "Mitigation"}),
    rule("mitigation-later", {"stage_entered": "Mitigation", "after": "15m"}),
    rule("resolved", {"status_set": "resolved"}),
    rule("paged", {"item_checked": {"stage": "Triage", "item": "Page DBA"}}),
    rule("quiet", {"no_status_update_for": "30m"}),
]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("stage"), st.integers(0, 2)),
        st.tuples(st.just("update"), st.sampled_from([None, "investigating", "resolved"])),
        st.tuples(st.just("check"), st.integers(0, 1)),
        st.tuples(st.just("uncheck"), st.integers(0, 1)),
        st.tuples(st.just("wait"), st.integers(1, 3600)),
        st.tuples(st.just("end"), st.none()),
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_no_key_fires_twice_and_nothing_fires_while_ended(steps: list[tuple[str, Any]]) -> None:
    made = incident(*RULES)
    state = made.state
    now = T0
    for kind, value in steps:
        ended = state.status != IncidentStatus.ONGOING
        before = len(state.rule_firings)
        if kind == "wait":
            # What the workflow does: wake at each due time on the way, then at the end of the wait.
            until = now + timedelta(seconds=value)
            while (timer := automation.next_rule_due(state)) is not None and timer.due <= until:
                now = max(now, timer.due)
                assert tick(made, now)
            now = until
            tick(made, now)
        elif kind == "restart":
            if ended:
                made.restart(cmd.RestartIncident(actor=actor()), now)
        elif ended:
            pass  # every other command is refused once the incident has ended
        elif kind == "stage" and value != state.active_stage:
            move(made, value, now)
        elif kind == "update":
            update(made, now, value)
        elif kind in ("check", "uncheck"):
            target = ItemState.DONE if kind == "check" else ItemState.OPEN
            if state.checklists[0].items[value].state != target:
                check(made, 0, value, now, target.value)
        elif kind == "end":
            end(made, now)
        if ended and kind != "restart":
            assert len(state.rule_firings) == before, "nothing fires while the incident is ended"
        assert len(state.rule_firings) == len(set(state.rule_firings)), "a condition instance fired twice"
        # Every armed timer is due in the future or fires at once: none is left behind.
        assert all(t.due > now for t in automation.armed_timers(state)) or kind != "wait"
    recorded = [e.details["key"] for e in state.timeline if e.type == EventType.RULE_FIRED]
    assert recorded == state.rule_firings
    assert all(e.at <= now for e in state.timeline)
