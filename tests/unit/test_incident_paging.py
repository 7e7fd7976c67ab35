"""Paging and escalation inside the incident, without Temporal (`workflows.incident_paging`)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from models import incident_commands as cmd
from models.common import Actor, UserFact
from models.effects import PAGING_LANE, InviteEffect, PageEditEffect, PageEffect, WebhookEffect, lane_of
from models.incident import EventType, IncidentStart, IncidentStatus
from models.paging import (
    PAGES_KEPT,
    EscalationPolicy,
    EscalationTier,
    PageDelivery,
    PagePost,
    PageStatus,
    PageTarget,
    ScheduleFact,
)
from models.playbook import Playbook, StageSpec
from models.playbook_automation import RuleSpec, describe_action
from workflows import incident_messages as text
from workflows.incident_paging import escalation_due_at, page_message
from workflows.incident_rules import Incident, new_incident

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ALICE, BOB, CAROL, DAVE = ("a" * 26, "b" * 26, "c" * 26, "d" * 26)
TEAM = "t" * 26
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAVE: "dave"}


def actor(user_id: str = ALICE, *, member: bool = False) -> Actor:
    return Actor(user_id=user_id, username=NAMES[user_id], is_channel_member=member, is_team_member=True)


def policy(*tiers: list[str], ack: str = "30s", repeat: int = 0) -> EscalationPolicy:
    return EscalationPolicy(
        tiers=[EscalationTier(targets=[PageTarget(user_id=u) for u in tier], ack_within=ack) for tier in tiers],
        repeat=repeat,
    )


def incident(escalation: EscalationPolicy | None = None) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    book = Playbook(
        id="pb1",
        team_id=TEAM,
        title="Database outage",
        checklists=[StageSpec(title="Triage")],
        escalation=escalation,
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )
    start = IncidentStart(id="inc1", team_id=TEAM, name="DB down", reporter=actor(member=True), playbook=book)
    state = new_incident(start, T0, lambda: next(ids))
    state.emits_webhooks = True
    state.usernames.update(NAMES)
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down", [], None)
    return made


def delivered(made: Incident, *, unreachable: tuple[str, ...] = ()) -> None:
    """What the paging lane's activity answers for every page not yet sent."""
    for page in made.state.pages:
        if page.sent:
            continue
        if page.target.user_id in unreachable:
            made.page_delivered(page.id, PageDelivery(problems=[f"@{NAMES[page.target.user_id]} is deactivated"]), T0)
        else:
            user = page.target.user_id or DAVE
            post = PagePost(user_id=user, channel_id="dm" + user[:24], post_id="post" + page.id)
            made.page_delivered(page.id, PageDelivery(posts=[post]), T0)


def open_to(made: Incident) -> list[str]:
    return [p.target.user_id or "" for p in made.state.pages if p.status == PageStatus.OPEN]


def ack(made: Incident, user_id: str, at: datetime = T0) -> str:
    page = next(p for p in reversed(made.state.pages) if user_id in p.user_ids)
    command = cmd.AcknowledgePage(actor=actor(user_id), page_id=page.id)
    made.check_acknowledge_page(command)
    return made.acknowledge_page(command, at)


def decline(made: Incident, user_id: str, at: datetime = T0) -> str:
    page = next(p for p in reversed(made.state.pages) if user_id in p.user_ids)
    command = cmd.DeclinePage(actor=actor(user_id), page_id=page.id)
    made.check_decline_page(command)
    return made.decline_page(command, at)


def refusal(call: object) -> ApplicationError:
    assert callable(call)
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value


def test_the_policy_is_validated_and_ack_within_bounded() -> None:
    assert policy([BOB], ack="5m").tiers[0].ack_within_seconds == 300
    for wrong in ("5", "4s", "25h", "soon"):
        with pytest.raises(ValidationError):
            policy([BOB], ack=wrong)
    with pytest.raises(ValidationError):
        PageTarget(user_id=BOB, schedule_id="s1")
    with pytest.raises(ValidationError):
        EscalationPolicy(tiers=[], repeat=0)
    with pytest.raises(ValidationError):
        policy([BOB], repeat=6)


def test_a_playbook_incident_pages_tier_one_at_once_and_waits_its_ack_within() -> None:
    made = incident(policy([BOB], [CAROL]))
    state = made.state
    assert open_to(made) == [BOB]
    assert escalation_due_at(state) == T0 + timedelta(seconds=30)
    assert any(isinstance(p.effect, PageEffect) for p in state.outbox)
    assert all(
        lane_of(p.effect, state.channel_id) == PAGING_LANE for p in state.outbox if isinstance(p.effect, PageEffect)
    )
    paged = [e for e in state.timeline if e.type == EventType.PAGED]
    assert [e.summary for e in paged] == ["Paging @bob (tier 1)"]
    events = [p.effect.event.type for p in state.outbox if isinstance(p.effect, WebhookEffect)]
    assert "incident.paged" in events
    assert "Paging" in text.checklist_message(state)
    assert "@bob (tier 1)" in text.checklist_message(state)


def test_without_an_acknowledgement_the_next_tier_then_the_next_round_then_nobody() -> None:
    made = incident(policy([BOB], [CAROL], repeat=1))
    delivered(made)
    assert not made.escalate_if_due(T0 + timedelta(seconds=29))
    assert made.escalate_if_due(T0 + timedelta(seconds=30))
    assert open_to(made) == [CAROL]
    assert made.state.pages[0].status == PageStatus.EXPIRED
    assert not made.escalate_if_due(T0 + timedelta(seconds=30))  # computed again: nothing twice
    made.escalate_if_due(T0 + timedelta(seconds=60))
    assert open_to(made) == [BOB]  # round 2
    assert made.state.pages[-1].round == 1
    made.escalate_if_due(T0 + timedelta(seconds=90))
    made.escalate_if_due(T0 + timedelta(seconds=120))
    state = made.state
    assert state.escalation is not None
    assert state.escalation.done
    assert state.escalation.outcome == "exhausted"
    assert escalation_due_at(state) is None
    assert len(state.pages) == 4
    last = state.timeline[-1]
    assert last.type == EventType.ESCALATION_EXHAUSTED
    assert last.summary == "Nobody acknowledged: tried @bob, @carol"
    assert not made.escalate_if_due(T0 + timedelta(days=1))


def test_a_restart_of_the_workers_long_after_the_deadline_escalates_once() -> None:
    made = incident(policy([BOB], [CAROL]))
    assert made.escalate_if_due(T0 + timedelta(hours=3))
    assert not made.escalate_if_due(T0 + timedelta(hours=3))
    assert open_to(made) == [CAROL]
    assert len(made.state.pages) == 2


def test_acknowledging_stops_the_escalation_invites_and_edits_every_open_page() -> None:
    made = incident(policy([BOB, CAROL], [DAVE]))
    delivered(made)
    made.state.outbox.clear()
    answer = ack(made, CAROL, T0 + timedelta(seconds=5))
    assert answer == "Acknowledged: you are being added to the incident channel."
    state = made.state
    assert state.escalation is not None
    assert state.escalation.outcome == "acknowledged"
    assert escalation_due_at(state) is None
    carol = next(p for p in state.pages if p.target.user_id == CAROL)
    bob = next(p for p in state.pages if p.target.user_id == BOB)
    assert carol.status == PageStatus.ACKNOWLEDGED
    assert carol.acted_by == CAROL
    assert bob.status == PageStatus.EXPIRED
    assert bob.acted_by == CAROL
    edits = [p.effect for p in state.outbox if isinstance(p.effect, PageEditEffect)]
    assert edits
    assert set(edits[0].page_ids) == {carol.id, bob.id}
    invites = [p.effect for p in state.outbox if isinstance(p.effect, InviteEffect)]
    assert [u.user_id for u in invites[0].users] == [CAROL]
    assert state.timeline[-1].type == EventType.PAGE_ACKNOWLEDGED
    events = [p.effect.event.type for p in state.outbox if isinstance(p.effect, WebhookEffect)]
    assert "incident.acknowledged" in events
    assert "Acknowledged by @carol" in page_message(state, bob, BOB)
    assert "You acknowledged" in page_message(state, carol, CAROL)
    assert not made.escalate_if_due(T0 + timedelta(hours=1))
    assert "acknowledged by @carol" in text.checklist_message(state)


def test_an_acknowledged_page_answers_again_and_changes_nothing() -> None:
    made = incident(policy([BOB]))
    delivered(made)
    ack(made, BOB)
    before = made.state.model_copy(deep=True)
    page = made.state.pages[0]
    again = refusal(lambda: made.check_acknowledge_page(cmd.AcknowledgePage(actor=actor(BOB), page_id=page.id)))
    assert again.message == "Already acknowledged by @bob."
    declined = refusal(lambda: made.check_decline_page(cmd.DeclinePage(actor=actor(BOB), page_id=page.id)))
    assert declined.message == "Already acknowledged by @bob."
    assert made.state == before


def test_only_the_person_paged_may_answer_and_others_learn_nothing() -> None:
    made = incident(policy([BOB]))
    delivered(made)
    page = made.state.pages[0]
    for who in (ALICE, CAROL):
        error = refusal(
            lambda who=who: made.check_acknowledge_page(cmd.AcknowledgePage(actor=actor(who), page_id=page.id))
        )
        assert error.type == "NotFound"
    unknown = refusal(lambda: made.check_acknowledge_page(cmd.AcknowledgePage(actor=actor(BOB), page_id="nope")))
    assert unknown.message == forbidden_or_missing()
    # Bob is not in the incident's channel (nor may see the private incident), yet answers his page.
    made.check_acknowledge_page(cmd.AcknowledgePage(actor=actor(BOB, member=False), page_id=page.id))


def forbidden_or_missing() -> str:
    return "There is no such page for you. Only the person paged can answer a page."


def test_declining_moves_on_at_once_when_the_tier_has_nobody_left_waiting() -> None:
    made = incident(policy([BOB, CAROL], [DAVE]))
    delivered(made)
    assert decline(made, BOB) == "Declined."
    assert open_to(made) == [CAROL]
    assert decline(made, CAROL) == "Declined: the next person is being paged."
    assert open_to(made) == [DAVE]
    assert escalation_due_at(made.state) == T0 + timedelta(seconds=30)


def test_an_unreachable_person_is_recorded_and_escalates_at_once() -> None:
    made = incident(policy([BOB], [CAROL]))
    delivered(made, unreachable=(BOB,))
    bob = made.state.pages[0]
    assert bob.status == PageStatus.UNREACHABLE
    assert bob.problem == "@bob is deactivated"
    assert any(e.type == EventType.PAGE_UNREACHABLE and "Could not page @bob" in e.summary for e in made.state.timeline)
    assert open_to(made) == [CAROL]


def test_everyone_unreachable_ends_in_nobody_acknowledged() -> None:
    made = incident(policy([BOB], [CAROL]))
    delivered(made, unreachable=(BOB, CAROL))
    delivered(made, unreachable=(BOB, CAROL))
    assert made.state.timeline[-1].summary == "Nobody acknowledged: tried @bob, @carol"


def test_the_end_cancels_open_pages_and_the_escalation() -> None:
    made = incident(policy([BOB], [CAROL]))
    delivered(made)
    made.state.outbox.clear()
    made.end(cmd.EndIncident(actor=actor(member=True)), T0 + timedelta(seconds=3))
    state = made.state
    assert state.pages[0].status == PageStatus.CANCELLED
    assert escalation_due_at(state) is None
    edits = [p.effect for p in state.outbox if isinstance(p.effect, PageEditEffect)]
    assert edits[0].page_ids == [state.pages[0].id]
    assert "Cancelled" in page_message(state, state.pages[0], BOB)
    late = refusal(lambda: ack(made, BOB))
    assert late.type == "Conflict"
    assert not made.escalate_if_due(T0 + timedelta(hours=1))


def test_page_by_hand_refuses_bots_outsiders_and_oneself_and_needs_membership() -> None:
    made = incident()
    bot = UserFact(user_id=BOB, username="bob", is_bot=True)
    outsider = UserFact(user_id=BOB, username="bob", is_team_member=False)
    member = actor(member=True)
    assert refusal(lambda: made.check_page(cmd.PageSomeone(actor=member, target=bot))).message == (
        "@bob is a bot and cannot be paged."
    )
    assert refusal(lambda: made.check_page(cmd.PageSomeone(actor=member, target=outsider))).message == (
        "@bob is not in this team; only team members can be paged."
    )
    me = UserFact(user_id=ALICE, username="alice")
    assert refusal(lambda: made.check_page(cmd.PageSomeone(actor=member, target=me))).message == (
        "You cannot page yourself."
    )
    stranger = actor(CAROL, member=False)
    assert refusal(
        lambda: made.check_page(cmd.PageSomeone(actor=stranger, target=UserFact(user_id=BOB, username="bob")))
    ).type in (
        "NotFound",
        "Forbidden",
    )


def test_page_by_hand_sends_one_page_and_an_acknowledgement_of_it_is_recorded() -> None:
    made = incident()
    command = cmd.PageSomeone(
        actor=actor(member=True), target=UserFact(user_id=BOB, username="bob"), reason="disk full"
    )
    made.check_page(command)
    assert made.page(command, T0) == "Paging @bob."
    assert made.state.timeline[-1].summary == "@alice is paging @bob: disk full"
    delivered(made)
    assert "Reason: disk full" in page_message(made.state, made.state.pages[0], BOB)
    ack(made, BOB)
    assert made.state.escalation is None
    schedule = cmd.PageSomeone(actor=actor(member=True), target=ScheduleFact(schedule_id="s1", name="db-primary"))
    made.page(schedule, T0)
    assert made.state.pages[-1].label == "schedule db-primary"
    assert made.state.pages[-1].user_ids == []  # who is on call is known once it is sent


def test_pages_are_bounded() -> None:
    made = incident()
    for _n in range(PAGES_KEPT + 5):
        made.page(cmd.PageSomeone(actor=actor(member=True), target=UserFact(user_id=BOB, username="bob")), T0)
    assert len(made.state.pages) == PAGES_KEPT
    assert len(text.checklist_message(made.state)) < text.POST_MESSAGE_MAX


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["ack", "decline", "deadline", "deliver", "unreachable", "end"]),
        st.sampled_from([BOB, CAROL, DAVE]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_any_sequence_acknowledges_at_most_once_and_pages_nobody_after_an_ack_or_the_end(
    events: list[tuple[str, str]],
) -> None:
    made = incident(policy([BOB], [CAROL, DAVE], ack="10s", repeat=2))
    now = T0
    stopped_at: int | None = None
    for kind, who in events:
        now += timedelta(seconds=4)
        if kind == "deadline":
            now += timedelta(seconds=10)
            made.escalate_if_due(now)
        elif kind == "deliver":
            delivered(made)
        elif kind == "unreachable":
            delivered(made, unreachable=(BOB, CAROL, DAVE))
        elif kind == "end":
            if made.state.status == IncidentStatus.ONGOING:
                made.end(cmd.EndIncident(actor=actor(member=True)), now)
        else:
            page = next((p for p in reversed(made.state.pages) if who in p.user_ids), None)
            if page is None:
                continue
            command_type = cmd.AcknowledgePage if kind == "ack" else cmd.DeclinePage
            command = command_type(actor=actor(who), page_id=page.id)
            check = made.check_acknowledge_page if kind == "ack" else made.check_decline_page
            try:
                check(command)  # type: ignore[arg-type]
            except ApplicationError:
                continue
            if kind == "ack":
                made.acknowledge_page(command, now)  # type: ignore[arg-type]
            else:
                made.decline_page(command, now)  # type: ignore[arg-type]
        escalation = made.state.escalation
        if stopped_at is None and escalation is not None and escalation.done:
            stopped_at = len(made.state.pages)
        acknowledged = [p for p in made.state.pages if p.status == PageStatus.ACKNOWLEDGED]
        assert len(acknowledged) <= 1
        if stopped_at is not None:
            assert len(made.state.pages) == stopped_at, "nothing is paged once the escalation stopped"
            assert escalation_due_at(made.state) is None
        if made.state.status != IncidentStatus.ONGOING:
            assert not any(p.status == PageStatus.OPEN for p in made.state.pages)
    acks = [e for e in made.state.timeline if e.type == EventType.PAGE_ACKNOWLEDGED]
    assert len(acks) <= 1


def test_a_playbook_rule_pages_people() -> None:
    rule = RuleSpec.model_validate(
        {"name": "wake the dba", "when": {"incident_started": True}, "then": [{"type": "page", "user_ids": [BOB]}]}
    )
    assert describe_action(rule.then[0], NAMES) == "page @bob"
    ids = (f"id{n}" for n in itertools.count())
    book = Playbook(
        id="pb1",
        team_id=TEAM,
        title="Database outage",
        checklists=[StageSpec(title="Triage")],
        rules=[rule],
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
    )
    start = IncidentStart(id="inc1", team_id=TEAM, name="DB down", reporter=actor(member=True), playbook=book)
    state = new_incident(start, T0, lambda: next(ids))
    state.usernames.update(NAMES)
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "chan" + "0" * 22, "inc-db-down", [], None)
    assert open_to(made) == [BOB]
    assert made.state.pages[0].reason == "rule wake the dba"
    assert "Paging @bob: rule wake the dba" in [e.summary for e in made.state.timeline]
    assert any("fired (the incident started): paged @bob" in e.summary for e in made.state.timeline)
    assert "Paged by the playbook's rules." in page_message(made.state, made.state.pages[0], BOB)


def test_an_acknowledgement_and_the_deadline_in_the_same_second_have_one_outcome() -> None:
    due = T0 + timedelta(seconds=30)
    # The acknowledgement first: the deadline then finds nothing to do.
    first = incident(policy([BOB], [CAROL]))
    delivered(first)
    ack(first, BOB, due)
    assert not first.escalate_if_due(due)
    assert [p.target.user_id for p in first.state.pages] == [BOB]
    # The deadline first: carol is paged, then bob's acknowledgement (of his expired page) stops it all.
    second = incident(policy([BOB], [CAROL]))
    delivered(second)
    assert second.escalate_if_due(due)
    delivered(second)
    ack(second, BOB, due)
    state = second.state
    assert [p.status for p in state.pages] == [PageStatus.ACKNOWLEDGED, PageStatus.EXPIRED]
    assert state.pages[1].acted_by == BOB
    assert escalation_due_at(state) is None
    for made in (first, second):
        assert len([e for e in made.state.timeline if e.type == EventType.PAGE_ACKNOWLEDGED]) == 1
