"""Severity without Temporal: reading what people type, the team's levels, the incident's rules
(a refused change changes nothing), where the incident shows it, and the statistics by severity."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from api.slash.slash_replies import incident_list
from models.common import Actor
from models.effects import ChannelHeaderEffect, ChecklistEffect, PostEffect, StatsEffect, WebhookEffect
from models.incident import EventType, IncidentStart, IncidentStatus
from models.incident_commands import SetSeverity, SeverityFields
from models.incident_views import stats_facts, summarize
from models.playbook import Playbook, PlaybookFacts, PlaybookSpec, StageSpec
from models.refusals import Refusal
from models.severity import (
    DEFAULT_LEVELS,
    NO_SEVERITY,
    SEVERITY_TEXT_MAX,
    Severity,
    SeverityLevelSpec,
    SeverityLevelsSpec,
    SeverityUnknown,
    numbered,
    parse_severity,
)
from models.stats import FactsStatus, IncidentFacts, StatsShardStart, StatsWindow, compute, record_facts, slice_of
from models.team_settings import SetSeverityLevels, TeamSettings
from models.webhooks import INCIDENT_EVENTS
from workflows import incident_messages as text
from workflows.incident_rules import WEBHOOK_EVENTS, Incident, check_start, new_incident, start_severity
from workflows.playbook_rules import check_spec
from workflows.team_settings_workflow import check_set_severity_levels

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "a" * 26
BOB = "b" * 26
TEAM = "t" * 26
LEVELS = list(DEFAULT_LEVELS)
NAMED = numbered([SeverityLevelSpec(name=n) for n in ("Critical", "Major", "Minor", "Low")])
SEV0 = numbered([SeverityLevelSpec(name=n) for n in ("SEV0", "SEV1", "SEV2")])
DEFAULTS = "1 SEV1, 2 SEV2, 3 SEV3, 4 SEV4"


def actor(user_id: str = ALICE, name: str = "alice", *, member: bool = True, admin: bool = False) -> Actor:
    return Actor(user_id=user_id, username=name, is_channel_member=member, is_system_admin=admin, is_team_member=True)


# ---------------------------------------------------------------------------- reading what people type


@pytest.mark.parametrize(
    ("typed", "levels", "level"),
    [
        ("2", LEVELS, 2),
        ("sev2", LEVELS, 2),
        ("SEV2", LEVELS, 2),
        (" Sev 2 ", LEVELS, 2),
        ("sev-2", LEVELS, 2),
        ("sev_4", LEVELS, 4),
        ("1", NAMED, 1),
        ("critical", NAMED, 1),
        ("MAJOR", NAMED, 2),
        ("sev3", NAMED, 3),  # the team's names are its own: sev<n> still means level n
        ("sev0", SEV0, 1),  # a team naming levels SEV0... : the names win
        ("SEV1", SEV0, 2),
        ("3", SEV0, 3),  # a number is always the level's place
    ],
)
def test_a_level_is_named_by_its_number_sev_n_or_its_name(typed: str, levels: Any, level: int) -> None:
    assert parse_severity(typed, levels).level == level


@pytest.mark.parametrize(
    ("typed", "levels", "said"),
    [
        ("", LEVELS, f"Give a severity: a level's number or name (this team's levels are {DEFAULTS})."),
        ("5", LEVELS, f"There is no severity level 5 in this team: this team's levels are {DEFAULTS}."),
        ("0", LEVELS, f"There is no severity level 0 in this team: this team's levels are {DEFAULTS}."),
        (
            "critical",
            LEVELS,
            "There is no severity 'critical' in this team: this team's levels are 1 SEV1, 2 SEV2, 3 SEV3, 4 SEV4. "
            "Give a level's number or name, e.g. `4` or `SEV4`.",
        ),
        ("sev5", NAMED, "There is no severity 'sev5' in this team: this team's levels are 1 Critical, 2 Major, "
         "3 Minor, 4 Low. Give a level's number or name, e.g. `4` or `Low`."),
        ("sev3", SEV0, "There is no severity 'sev3' in this team: this team's levels are 1 SEV0, 2 SEV1, 3 SEV2. "
         "Give a level's number or name, e.g. `3` or `SEV2`."),
        ("99999999999999999999", LEVELS, "There is no severity level 99999999 in this team: this team's levels are "
         "1 SEV1, 2 SEV2, 3 SEV3, 4 SEV4."),
    ],
)  # fmt: skip
def test_anything_else_is_refused_listing_the_levels(typed: str, levels: Any, said: str) -> None:
    with pytest.raises(SeverityUnknown) as refused:
        parse_severity(typed, levels)
    assert str(refused.value) == said


@settings(max_examples=500)
@given(typed=st.text(max_size=200), names=st.sampled_from([LEVELS, NAMED, SEV0, []]))
def test_any_text_names_a_level_or_is_refused_with_a_sentence(typed: str, names: Any) -> None:
    try:
        found = parse_severity(typed, names)
    except SeverityUnknown as refused:
        message = str(refused)
        assert message.startswith(("There is no severity", "Give a severity"))
        assert len(message) < 600
    else:
        assert found in names


@given(typed=st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats()))
def test_the_fields_take_a_number_or_a_text_and_refuse_the_rest(typed: Any) -> None:
    try:
        fields = SeverityFields(severity=typed)
    except ValidationError:
        return
    assert isinstance(fields.severity, str)
    assert 1 <= len(fields.severity) <= SEVERITY_TEXT_MAX
    assert not isinstance(typed, bool)


# ---------------------------------------------------------------------------- the team's levels


def test_the_defaults_are_four_levels_the_most_severe_first() -> None:
    assert [(v.level, v.name) for v in DEFAULT_LEVELS] == [(1, "SEV1"), (2, "SEV2"), (3, "SEV3"), (4, "SEV4")]
    assert all(v.description and v.colour.startswith("#") for v in DEFAULT_LEVELS)
    assert TeamSettings(team_id=TEAM).severity_levels == LEVELS


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ([{"name": "One"}], "at least 2"),
        ([{"name": f"L{n}"} for n in range(11)], "at most 10"),
        ([{"name": "High"}, {"name": " HIGH "}], "give every level its own name"),
        ([{"name": "Sev 1"}, {"name": "sev_1"}], "give every level its own name"),
        ([{"name": "12"}, {"name": "Low"}], "cannot be a number alone"),
        ([{"name": "1 2"}, {"name": "Low"}], "cannot be a number alone"),
        ([{"name": "**bold**"}, {"name": "Low"}], "may only use letters"),
        ([{"name": "@here"}, {"name": "Low"}], "may only use letters"),
        ([{"name": "High", "colour": "#12345"}, {"name": "Low"}], "must be a colour"),
        ([{"name": "High", "colour": "url(x)"}, {"name": "Low"}], "must be a colour"),
        ([{"name": "x" * 33}, {"name": "Low"}], "at most 32"),
    ],
)
def test_levels_that_cannot_be_are_refused(levels: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SeverityLevelsSpec.model_validate({"levels": levels})


def test_only_admins_change_the_levels_from_the_version_they_saw() -> None:
    settings_ = TeamSettings(team_id=TEAM, version=3)
    change = SetSeverityLevels(actor=actor(), levels=NAMED, expected_version=3, at=T0)
    with pytest.raises(ApplicationError) as refused:
        check_set_severity_levels(settings_, change)
    assert refused.value.type == Refusal.FORBIDDEN
    check_set_severity_levels(settings_, change.model_copy(update={"is_team_admin": True}))
    check_set_severity_levels(
        settings_, change.model_copy(update={"actor": actor(admin=True), "expected_version": None})
    )
    with pytest.raises(ApplicationError) as stale:
        check_set_severity_levels(settings_, change.model_copy(update={"is_team_admin": True, "expected_version": 2}))
    assert stale.value.type == Refusal.CONFLICT
    shuffled = [NAMED[1], NAMED[0]]
    with pytest.raises(ApplicationError) as unordered:
        check_set_severity_levels(settings_, change.model_copy(update={"is_team_admin": True, "levels": shuffled}))
    assert unordered.value.type == Refusal.INVALID


def test_a_playbook_default_is_a_level_of_the_team() -> None:
    spec = PlaybookSpec(title="P", checklists=[StageSpec(title="T")], default_severity=5)
    with pytest.raises(ApplicationError) as refused:
        check_spec(spec, PlaybookFacts(severity_level_count=4))
    assert refused.value.details[0]["fields"] == {
        "default_severity": "the team has no severity level 5: its levels are 1 to 4"
    }
    check_spec(spec, PlaybookFacts(severity_level_count=5))
    with pytest.raises(ValidationError):
        PlaybookSpec(title="P", checklists=[StageSpec(title="T")], default_severity=11)


# ---------------------------------------------------------------------------- the incident


def playbook(default_severity: int | None = None) -> Playbook:
    return Playbook(
        id="pb1",
        team_id=TEAM,
        title="Outage",
        checklists=[StageSpec(title="Triage")],
        member_ids=[ALICE],
        broadcast_channel_ids=["x" * 26],
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=ALICE,
        default_severity=default_severity,
    )


def start(**fields: Any) -> IncidentStart:
    values: dict[str, Any] = {
        "id": "inc1",
        "team_id": TEAM,
        "name": "Checkout down",
        "reporter": actor(),
        "reporter_permissions": ["create_private_channel"],
        "playbook": playbook(),
    }
    return IncidentStart.model_validate(values | fields)


def incident(**fields: Any) -> Incident:
    ids = (f"id{n}" for n in itertools.count())
    state = new_incident(start(**fields), T0, lambda: next(ids))
    made = Incident(state, lambda: next(ids))
    made.channel_ready(T0, "c" * 26, "inc-checkout-down-inc1", [], None)
    made.start_emitting()
    state.outbox.clear()
    return made


def test_an_incident_starts_with_the_asked_level_else_the_playbook_default_else_none() -> None:
    assert start_severity(start(severity="sev2", severity_levels=LEVELS)) == Severity(level=2, name="SEV2")
    with_default = {"playbook": playbook(default_severity=3), "severity_levels": LEVELS}
    assert start_severity(start(**with_default)) == Severity(level=3, name="SEV3")
    assert start_severity(start(**with_default, severity="1")) == Severity(level=1, name="SEV1")
    # An alert's choice the team no longer has, or a default it no longer has, is passed over.
    assert start_severity(start(**with_default, severity="sev9")) == Severity(level=3, name="SEV3")
    assert start_severity(start(playbook=playbook(default_severity=4), severity_levels=SEV0)) is None
    assert start_severity(start()) is None
    made = incident(severity="sev2", severity_levels=LEVELS)
    created = made.state.timeline[0]
    assert created.summary.endswith(", severity **SEV2**")
    assert created.details["severity"] == 2
    assert "severity" not in incident().state.timeline[0].details, "an incident without one records what it did"


def test_a_person_start_naming_no_level_is_refused() -> None:
    with pytest.raises(ApplicationError) as refused:
        check_start(start(severity="critical", severity_levels=LEVELS))
    assert refused.value.type == Refusal.INVALID
    assert refused.value.details[0] == {"field": "severity"}
    check_start(start(severity="SEV4", severity_levels=LEVELS))


def set_severity(severity: str, who: Actor | None = None, levels: Any = LEVELS) -> SetSeverity:
    return SetSeverity(actor=who or actor(), severity=severity, levels=levels)


def test_refused_changes_change_nothing_and_say_why() -> None:
    made = incident(severity="3", severity_levels=LEVELS)
    before = made.state.model_copy(deep=True)
    cases = [
        (set_severity("sev9"), Refusal.INVALID, "There is no severity 'sev9' in this team"),
        (set_severity("3"), Refusal.CONFLICT, "The severity is already SEV3."),
        (set_severity("1", actor(BOB, "bob", member=False)), Refusal.NOT_FOUND, "There is no incident here"),
    ]
    for command, kind, said in cases:
        with pytest.raises(ApplicationError) as refused:
            made.check_set_severity(command)
        assert refused.value.type == kind
        assert refused.value.message.startswith(said)
    assert made.state == before


def test_a_change_is_on_the_timeline_announced_shown_counted_and_sent_to_webhooks() -> None:
    made = incident(severity="3", severity_levels=LEVELS)
    made.check_set_severity(set_severity("sev1"))
    assert made.set_severity(set_severity("sev1"), T0 + timedelta(minutes=5)) == "Severity set to SEV1."
    state = made.state
    assert state.severity == Severity(level=1, name="SEV1")
    event = state.timeline[-1]
    assert event.type == EventType.SEVERITY_CHANGED
    assert event.summary == "@alice changed the severity from **SEV3** to **SEV1**"
    assert event.details == {"from": 3, "from_name": "SEV3", "to": 1, "to_name": "SEV1"}
    effects = [p.effect for p in state.outbox]
    posts = [e for e in effects if isinstance(e, PostEffect)]
    assert posts[0].message == event.summary
    assert posts[0].channel_id is None, "in the incident channel"
    assert posts[1].channel_id == "x" * 26
    assert posts[1].message.endswith("severity from **SEV3** to **SEV1** by @alice.")
    assert any(isinstance(e, ChecklistEffect) for e in effects)
    assert any(isinstance(e, ChannelHeaderEffect) for e in effects)
    assert any(isinstance(e, StatsEffect) for e in effects)
    hooks = [e.event for e in effects if isinstance(e, WebhookEffect)]
    assert [h.type for h in hooks] == ["incident.severity_changed"]
    assert hooks[0].data["to"] == 1
    assert hooks[0].incident["severity"] == {"level": 1, "name": "SEV1"}
    assert WEBHOOK_EVENTS[EventType.SEVERITY_CHANGED] == "incident.severity_changed"
    assert set(WEBHOOK_EVENTS.values()) <= set(INCIDENT_EVENTS), "a subscription may name every event"
    assert stats_facts(state).severity == 1
    assert summarize(state).severity == Severity(level=1, name="SEV1")


def test_an_ended_incident_is_corrected_without_telling_the_broadcast_channels() -> None:
    made = incident()
    made.state.status = IncidentStatus.ENDED
    made.check_set_severity(set_severity("Sev 2"))
    made.set_severity(set_severity("Sev 2"), T0)
    posts = [p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect)]
    assert [p.channel_id for p in posts] == [None]
    assert posts[0].message == "@alice set the severity to **SEV2**"


def test_where_the_incident_shows_its_severity() -> None:
    plain = incident().state
    graded = incident(severity="2", severity_levels=LEVELS).state
    assert "Severity" not in text.channel_header(plain, "")
    assert text.channel_header(graded, "").startswith(":red_circle: Ongoing · Severity **SEV2** · Commander @alice")
    assert "**Severity:**" not in text.checklist_message(plain)
    assert ":red_circle: **Ongoing** · **Severity:** SEV2 · **Commander:**" in text.checklist_message(graded)
    assert "**Status:** ongoing · **Severity:** SEV2 · **Commander:**" in text.current_details(
        graded, in_reopen_window=False
    )
    listed = incident_list([summarize(graded), summarize(plain)], {ALICE: "alice"}, T0, total=2)
    lines = listed.splitlines()
    assert lines[2:4] == ["| Incident | Severity | Commander | Duration | Stage |", "|---|---|---|---|---|"]
    assert lines[4].startswith("| Checkout down (~inc-checkout-down-inc1) | SEV2 | @alice |")
    assert lines[5].startswith("| Checkout down (~inc-checkout-down-inc1) | — | @alice |")
    unchanged = incident_list([summarize(plain)], {ALICE: "alice"}, T0, total=1)
    assert "| Incident | Commander | Duration | Stage |\n|---|---|---|---|\n" in unchanged


# ---------------------------------------------------------------------------- statistics


def facts(n: int, severity: int | None, *, ttr: int | None = None, ack: int | None = None) -> IncidentFacts:
    started = T0 + timedelta(hours=n)
    ended = ttr is not None
    return IncidentFacts(
        incident_id=f"inc{n}",
        team_id=TEAM,
        playbook_id=None,
        status=FactsStatus.ENDED if ended else FactsStatus.ONGOING,
        started_at=started,
        ended_at=started + timedelta(seconds=ttr) if ttr is not None else None,
        time_to_resolution_seconds=ttr,
        time_to_acknowledge_seconds=ack,
        is_public=True,
        severity=severity,
    )


def test_statistics_break_down_by_severity_exactly_and_filter_by_it() -> None:
    shard = StatsShardStart(team_id=TEAM, month="2026-03")
    reports = [
        facts(0, 1, ttr=600, ack=30),
        facts(1, 1, ttr=1800, ack=90),
        facts(2, 1, ttr=3000),
        facts(3, 2, ttr=100),
        facts(4, 2),
        facts(5, None, ttr=50, ack=10),
    ]
    for report in reports:
        record_facts(shard, report)
    data = slice_of(shard, StatsWindow())
    stats = compute(TEAM, StatsWindow(), data, T0 + timedelta(days=1), {1: "Critical", 2: "Major"})
    rows = {row.level: row for row in stats.by_severity}
    assert list(rows) == [1, 2, None]
    first = rows[1]
    assert (first.name, first.count, first.ongoing, first.ended) == ("Critical", 3, 0, 3)
    assert first.time_to_resolution_seconds.model_dump() == {
        "count": 3,
        "mean": 1800.0,
        "median": 1800.0,
        "p90": 3000.0,
    }
    assert first.time_to_acknowledge_seconds.model_dump() == {"count": 2, "median": 60.0}
    assert (rows[2].count, rows[2].ongoing, rows[2].time_to_resolution_seconds.median) == (2, 1, 100.0)
    assert (rows[None].name, rows[None].count) == (None, 1)
    only = slice_of(shard, StatsWindow(severity=2))
    assert only.total == 2
    assert list(only.by_severity) == [2]
    assert slice_of(shard, StatsWindow(severity=NO_SEVERITY)).total == 1
    # Reported again with another severity (changed since): the latest report wins.
    record_facts(shard, facts(4, 1))
    assert slice_of(shard, StatsWindow(severity=1)).total == 4
    # Merged across shards, and through the query's JSON.
    again = type(data).model_validate_json(data.model_dump_json())
    assert again == data
    assert data.merge(data).by_severity[1].resolved == [600, 1800, 3000, 600, 1800, 3000]


def test_records_from_before_severity_read_as_without_one() -> None:
    old = StatsShardStart.model_validate(
        {"team_id": TEAM, "month": "2026-03", "records": {"old": [-1, 1_772_442_000_000, None, None, None, [], 1]}}
    )
    assert len(old.records["old"]) == 13
    assert old.records["old"][11] is None
    assert list(slice_of(old, StatsWindow()).by_severity) == [NO_SEVERITY]
