"""Custom fields without Temporal: reading a value (every face's parser), the playbook's
declarations, the start's and `set_field`'s rules (a refused change changes nothing), where the
incident shows its fields, the list filter's words, and the statistics by field value."""

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
from models.custom_fields import (
    FieldSpec,
    FieldType,
    FieldValueError,
    field_terms,
    parse_field_filter,
    parse_field_value,
    read_field,
)
from models.effects import ChecklistEffect, PostEffect, StatsEffect, WebhookEffect
from models.incident import EventType, IncidentStart, IncidentStatus
from models.incident_commands import FieldValueFields, SetField
from models.incident_views import stats_facts, summarize, to_view
from models.playbook import Playbook, PlaybookSpec, StageSpec, describe_changes
from models.refusals import Refusal
from models.stats import FactsStatus, IncidentFacts, StatsShardStart, StatsWindow, compute, record_facts, slice_of
from models.webhooks import INCIDENT_EVENTS
from workflows import incident_messages as text
from workflows.incident_rules import WEBHOOK_EVENTS, Incident, check_start, new_incident

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "a" * 26
BOB = "b" * 26
CAROL = "c" * 26
TEAM = "t" * 26

REGION = FieldSpec(name="region", label="Region", type=FieldType.SELECT, options=["eu-west", "us-east"], required=True)
IMPACT = FieldSpec(name="impact", type=FieldType.NUMBER, min=0, max=100)
SUMMARY = FieldSpec(name="summary", type=FieldType.TEXT, max_length=20)
OWNER = FieldSpec(name="owner", type=FieldType.USER)
FIELDS = [REGION, IMPACT, SUMMARY, OWNER]
PEOPLE = [
    UserFact(user_id=BOB, username="bob"),
    UserFact(user_id=CAROL, username="carol", is_team_member=False),
    UserFact(user_id="d" * 26, username="deploybot", is_bot=True),
]


# ---------------------------------------------------------------------------- reading a value


@pytest.mark.parametrize(
    ("spec", "typed", "value"),
    [
        (REGION, "eu-west", "eu-west"),
        (REGION, "  EU-West ", "eu-west"),
        (IMPACT, "42", "42"),
        (IMPACT, " 042.50 ", "42.5"),
        (IMPACT, "-0", "0"),
        (IMPACT, "100", "100"),
        (IMPACT, "0.000", "0"),
        (SUMMARY, "  Disk full  ", "Disk full"),
        (OWNER, "@Bob", "bob"),
        (OWNER, "bob", "bob"),
        (IMPACT, "none", ""),
        (SUMMARY, "", ""),
        (OWNER, None, ""),
    ],
)
def test_a_value_is_read_to_its_canonical_text(spec: FieldSpec, typed: str | None, value: str) -> None:
    assert parse_field_value(spec, typed) == value


@pytest.mark.parametrize(
    ("spec", "typed", "said"),
    [
        (REGION, "mars", "'mars' is not an option of field 'region': choose one of eu-west, us-east."),
        (REGION, "none", "Field 'region' is required and cannot be cleared: give it one of eu-west, us-east."),
        (REGION, None, "Field 'region' is required and cannot be cleared: give it one of eu-west, us-east."),
        (IMPACT, "lots", "'lots' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100."),
        (IMPACT, "101", "'101' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100."),
        (IMPACT, "1e3", "'1e3' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100."),
        (IMPACT, "NaN", "'NaN' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100."),
        (SUMMARY, "x" * 21, "Field 'summary' takes at most 20 characters; this value has 21."),
        (OWNER, "@bob smith", "'@bob smith' is not a username: field 'owner' takes a person, as @username."),
    ],
)
def test_a_value_the_field_cannot_take_is_refused_saying_what_it_takes(
    spec: FieldSpec, typed: str | None, said: str
) -> None:
    with pytest.raises(FieldValueError) as refused:
        parse_field_value(spec, typed)
    assert str(refused.value) == said


@settings(max_examples=400)
@given(typed=st.one_of(st.none(), st.text(max_size=300)), spec=st.sampled_from(FIELDS))
def test_any_text_gives_a_value_or_a_refusal_with_a_sentence(typed: str | None, spec: FieldSpec) -> None:
    try:
        value = parse_field_value(spec, typed)
    except FieldValueError as refused:
        said = str(refused)
        assert said.endswith(".")
        assert said[0].isupper() or said[0] == "'"
        return
    assert isinstance(value, str)
    assert value == value.strip()
    if value and spec.type == FieldType.SELECT:
        assert value in spec.options
    if value and spec.type == FieldType.NUMBER:
        assert 0 <= float(value) <= 100
        assert parse_field_value(spec, value) == value, "canonical text reads as itself"
    if spec.type == FieldType.TEXT:
        assert len(value) <= spec.max_length


def test_a_user_field_names_a_person_of_the_team() -> None:
    assert read_field(OWNER, "@bob", PEOPLE) == BOB
    assert read_field(OWNER, BOB, PEOPLE) == BOB, "the dialog's user select sends the id"
    for typed, said in (
        ("@zed", "There is no user @zed: field 'owner' takes a person, as @username."),
        ("carol", "@carol is not in this team: field 'owner' takes a person of the team."),
        ("deploybot", "@deploybot is a bot: field 'owner' takes a person."),
    ):
        with pytest.raises(FieldValueError) as refused:
            read_field(OWNER, typed, PEOPLE)
        assert str(refused.value) == said


@pytest.mark.parametrize(
    "typed",
    [
        "region",
        "=eu",
        "Region=eu-west",
        "region=",
        "region=eu'west",
        "region=eu\\west",
        "region=x' OR IncidentTeamId != '",
        "region=" + "x" * 65,
        "region=a\nb",
        "region=@all",
        "1region=eu",
    ],
)
def test_a_field_filter_is_name_equals_an_option_and_nothing_else(typed: str) -> None:
    with pytest.raises(FieldValueError):
        parse_field_filter(typed)


def test_a_field_filter_reads_names_and_options() -> None:
    assert parse_field_filter(" region=EU-West ") == ("region", "EU-West")
    assert parse_field_filter("tier=Gold (paid)") == ("tier", "Gold (paid)")


def test_the_value_body_takes_text_numbers_and_null() -> None:
    assert FieldValueFields(value=42).value == "42"
    assert FieldValueFields(value=2.5).value == "2.5"
    assert FieldValueFields(value=None).value is None
    with pytest.raises(ValidationError):
        FieldValueFields(value=True)
    with pytest.raises(ValidationError):
        FieldValueFields(value="x" * 4001)


# ---------------------------------------------------------------------------- the playbook's declarations


def test_a_playbook_declares_each_field_once_and_its_edits_are_summarised() -> None:
    with pytest.raises(ValidationError) as refused:
        PlaybookSpec(title="P", checklists=[StageSpec(title="T")], fields=[REGION, REGION])
    assert "field 'region' is declared twice" in str(refused.value)
    for bad in (
        {"name": "Region"},
        {"name": "x", "type": "select"},
        {"name": "x", "options": ["a"]},
        {"name": "x", "type": "number", "min": 5, "max": 1},
        {"name": "x", "type": "select", "options": ["A", "a"]},
        {"name": "x", "type": "select", "options": ["a=b"]},
    ):
        with pytest.raises(ValidationError):
            FieldSpec.model_validate(bad)
    before = PlaybookSpec(title="P", checklists=[StageSpec(title="T")], fields=[REGION, IMPACT])
    after = before.model_copy(update={"fields": [REGION.model_copy(update={"options": ["eu-west"]}), OWNER]})
    assert describe_changes(before, after) == [
        "field 'owner' added (user)",
        "field 'impact' removed",
        "field 'region' changed",
    ]


# ---------------------------------------------------------------------------- the incident


def actor(user_id: str = ALICE, name: str = "alice", *, member: bool = True) -> Actor:
    return Actor(user_id=user_id, username=name, is_channel_member=member, is_team_member=True)


def playbook(fields: list[FieldSpec] | None = None) -> Playbook:
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
        fields=FIELDS if fields is None else fields,
    )


def start(**fields: Any) -> IncidentStart:
    values: dict[str, Any] = {
        "id": "inc1",
        "team_id": TEAM,
        "name": "Checkout down",
        "reporter": actor(),
        "reporter_permissions": ["create_private_channel"],
        "playbook": playbook(),
        "fields": {"region": "EU-west"},
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


def test_a_start_gives_every_required_field_a_value_the_field_takes() -> None:
    check_start(start(fields={"region": "eu-west", "impact": "5", "owner": "@bob"}, field_users=PEOPLE))
    cases = [
        ({}, "fields.region", "Field 'region' is required: give it one of eu-west, us-east when you start"),
        ({"region": "mars"}, "fields.region", "'mars' is not an option of field 'region'"),
        ({"region": "eu-west", "impact": "900"}, "fields.impact", "'900' is not a number from 0 to 100"),
        ({"region": "eu-west", "color": "red"}, "fields.color", "There is no field 'color': this incident's fields "
         "are region, impact, summary, owner."),
        ({"region": "eu-west", "owner": "@zed"}, "fields.owner", "There is no user @zed"),
    ]  # fmt: skip
    for given_fields, field, said in cases:
        with pytest.raises(ApplicationError) as refused:
            check_start(start(fields=given_fields, field_users=PEOPLE))
        assert refused.value.type == Refusal.INVALID
        assert refused.value.details[0] == {"field": field}
        assert refused.value.message.startswith(said), refused.value.message
    with pytest.raises(ApplicationError) as blank:
        check_start(start(playbook=None, fields={"region": "eu-west"}))
    assert blank.value.message == "There is no field 'region': this incident's playbook declares no fields."


def test_an_incident_starts_with_its_values_and_an_alert_start_keeps_what_it_can() -> None:
    made = incident(fields={"owner": "bob", "region": "us-EAST", "impact": "7.50"}, field_users=PEOPLE)
    state = made.state
    assert state.field_values == {"region": "us-east", "impact": "7.5", "owner": BOB}, "in the playbook's order"
    assert state.timeline[0].details["fields"] == state.field_values
    assert state.usernames[BOB] == "bob"
    # An alert's start is never refused for a field: what can be read is kept.
    from models.incident_alerts import AlertSource

    source = AlertSource(
        integration_id="int1", integration_name="Prometheus", kind="alertmanager", group_key="g", first_alert_at=T0
    )
    alerted = start(source=source, fields={"region": "mars", "summary": "Disk full", "color": "red"})
    check_start(alerted)
    assert incident(source=source, fields=alerted.fields).state.field_values == {"summary": "Disk full"}


def set_field(name: str, value: str | None, who: Actor | None = None, users: list[UserFact] | None = None) -> SetField:
    return SetField(actor=who or actor(), name=name, value=value, users=users or [])


def test_refused_changes_change_nothing_and_say_why() -> None:
    made = incident()
    before = made.state.model_copy(deep=True)
    cases = [
        (set_field("color", "red"), Refusal.INVALID, "There is no field 'color': this incident's fields are region,"),
        (set_field("region", "mars"), Refusal.INVALID, "'mars' is not an option of field 'region'"),
        (set_field("region", "none"), Refusal.INVALID, "Field 'region' is required and cannot be cleared"),
        (set_field("region", "EU-WEST"), Refusal.CONFLICT, "Field 'region' is already eu-west."),
        (set_field("impact", "none"), Refusal.CONFLICT, "Field 'impact' has no value."),
        (set_field("owner", "@zed"), Refusal.INVALID, "There is no user @zed"),
        (set_field("impact", "3", actor(BOB, "bob", member=False)), Refusal.NOT_FOUND, "There is no incident here"),
    ]
    for command, kind, said in cases:
        with pytest.raises(ApplicationError) as refused:
            made.check_set_field(command)
        assert refused.value.type == kind, said
        assert refused.value.message.startswith(said), refused.value.message
    assert made.state == before


def test_a_change_is_on_the_timeline_announced_shown_counted_and_sent_to_webhooks() -> None:
    made = incident()
    command = set_field("region", "us-east")
    made.check_set_field(command)
    assert made.set_field(command, T0 + timedelta(minutes=5)) == "Field 'region' set to us-east."
    state = made.state
    assert state.field_values["region"] == "us-east"
    event = state.timeline[-1]
    assert event.type == EventType.FIELD_CHANGED
    assert event.summary == "@alice changed **Region** from **eu-west** to **us-east**"
    assert event.details == {"field": "region", "type": "select", "from": "eu-west", "to": "us-east"}
    effects = [p.effect for p in state.outbox]
    posts = [e for e in effects if isinstance(e, PostEffect)]
    assert posts[0].message == event.summary
    assert posts[1].channel_id == "x" * 26
    assert any(isinstance(e, ChecklistEffect) for e in effects)
    assert any(isinstance(e, StatsEffect) for e in effects)
    hooks = [e.event for e in effects if isinstance(e, WebhookEffect)]
    assert [h.type for h in hooks] == ["incident.field_changed"]
    assert hooks[0].data["to"] == "us-east"
    assert WEBHOOK_EVENTS[EventType.FIELD_CHANGED] in INCIDENT_EVENTS
    assert stats_facts(state).fields == {"region": "us-east"}
    assert summarize(state).fields == {"region": "us-east"}
    # A person, and clearing.
    owner = set_field("owner", "@bob", users=PEOPLE[:1])
    made.check_set_field(owner)
    assert made.set_field(owner, T0 + timedelta(minutes=6)) == "Field 'owner' set to @bob."
    assert to_view(state, T0).field_usernames == {"owner": "bob"}
    assert made.set_field(set_field("owner", "none"), T0 + timedelta(minutes=7)) == "Field 'owner' cleared."
    assert "owner" not in state.field_values
    assert state.timeline[-1].summary == "@alice cleared **owner** (was @bob)"


def test_an_ended_incident_is_corrected_without_telling_the_broadcast_channels() -> None:
    made = incident()
    made.state.status = IncidentStatus.ENDED
    made.check_set_field(set_field("impact", "12"))
    made.set_field(set_field("impact", "12"), T0)
    posts = [p.effect for p in made.state.outbox if isinstance(p.effect, PostEffect)]
    assert [p.channel_id for p in posts] == [None]


def test_where_the_incident_shows_its_fields() -> None:
    made = incident(fields={"region": "eu-west", "summary": "@all disk full", "owner": "bob"}, field_users=PEOPLE)
    state = made.state
    line = text.fields_line(state)
    assert line.startswith("**Region:** eu-west · **summary:** ")
    assert "@all" not in line, "mentions typed into a field are neutralised"
    assert line.endswith("**owner:** @bob")
    assert line in text.checklist_message(state)
    listing = text.fields_listing(state)
    assert listing[1] == "- `impact`: *(no value)* — a number from 0 to 100"
    assert field_terms(FIELDS, state.field_values) == ["region=eu-west"]


# ---------------------------------------------------------------------------- statistics


def facts(n: int, fields: dict[str, str], *, ttr: int | None = None, ack: int | None = None) -> IncidentFacts:
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
        fields=fields,
    )


def test_statistics_break_down_by_field_value_exactly_and_filter_by_it() -> None:
    shard = StatsShardStart(team_id=TEAM, month="2026-03")
    eu, us = {"region": "eu-west"}, {"region": "us-east"}
    for report in (
        facts(0, eu | {"tier": "gold"}, ttr=600, ack=30),
        facts(1, eu, ttr=1800, ack=90),
        facts(2, eu, ttr=3000),
        facts(3, us | {"tier": "gold"}, ttr=100),
        facts(4, us),
        facts(5, {}, ttr=50),
    ):
        record_facts(shard, report)
    data = slice_of(shard, StatsWindow())
    stats = compute(TEAM, StatsWindow(), data, T0 + timedelta(days=1))
    rows = {(row.field, row.value): row for row in stats.by_field}
    assert list(rows) == [("region", "eu-west"), ("region", "us-east"), ("tier", "gold")]
    first = rows["region", "eu-west"]
    assert (first.count, first.ongoing, first.ended) == (3, 0, 3)
    assert first.time_to_resolution_seconds.model_dump() == {
        "count": 3,
        "mean": 1800.0,
        "median": 1800.0,
        "p90": 3000.0,
    }
    assert first.time_to_acknowledge_seconds.model_dump() == {"count": 2, "median": 60.0}
    assert (rows["region", "us-east"].count, rows["region", "us-east"].ongoing) == (2, 1)
    # Filters: all must hold, whatever the case of the value; an unknown value counts nothing.
    assert slice_of(shard, StatsWindow(fields=["region=EU-WEST"])).total == 3
    assert slice_of(shard, StatsWindow(fields=["region=eu-west", "tier=gold"])).total == 1
    assert slice_of(shard, StatsWindow(fields=["region=mars"])).total == 0
    # Reported again with another value (changed since): the latest report wins.
    record_facts(shard, facts(4, eu))
    assert slice_of(shard, StatsWindow(fields=["region=eu-west"])).total == 4
    again = type(data).model_validate_json(data.model_dump_json())
    assert again == data
    assert data.merge(data).by_field["tier=gold"].count == 4


def test_records_from_before_fields_read_as_without_any() -> None:
    twelve: list[object] = [-1, 1_772_442_000_000, None, None, None, [], 1, -1, None, None, [], 2]
    old = StatsShardStart.model_validate({"team_id": TEAM, "month": "2026-03", "records": {"old": twelve}})
    assert old.records["old"][12] == []
    assert slice_of(old, StatsWindow()).by_field == {}
    assert slice_of(old, StatsWindow(fields=["region=eu-west"])).total == 0
