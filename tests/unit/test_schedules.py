"""On-call schedules as pure logic: what a schedule accepts, who is on call at a moment,
and the handoffs, across daylight-saving changes in both directions and with overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.schedules import (
    Override,
    Rotation,
    ScheduleDocument,
    SchedulesDocument,
    ScheduleSpec,
    as_user_id,
    bare_username,
    in_years,
    next_handoffs,
    oncall_at,
    parse_handoff,
    parse_shift,
    schedule_workflow_id,
)

pytestmark = pytest.mark.fast

TEAM = "t" * 26
A, B, C, D = ("a" * 26, "b" * 26, "c" * 26, "d" * 26)


def spec(*rotations: Rotation, time_zone: str = "UTC", overrides: list[Override] | None = None) -> ScheduleSpec:
    return ScheduleSpec(
        team_id=TEAM, name="primary", time_zone=time_zone, rotations=list(rotations), overrides=overrides or []
    )


def rotation(
    members: list[str], shift: str = "1w", handoff: str = "Mon 09:00", start: date = date(2026, 3, 2)
) -> Rotation:
    return Rotation(members=members, shift=shift, handoff=handoff, start=start)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_workflow_id() -> None:
    assert schedule_workflow_id("abc") == "schedule-abc"


@pytest.mark.parametrize(
    ("text", "hours"), [("1h", 1), ("8h", 8), ("12h", 12), ("1d", 24), ("2d", 48), ("1w", 168), ("8w", 8 * 168)]
)
def test_shift_lengths(text: str, hours: int) -> None:
    assert parse_shift(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["", "0h", "1m", "30m", "9w", "57d", "1 w", "w", "1W", "-1d", "01d", "1.5d", "1d "])
def test_bad_shifts_are_refused_with_the_fix(text: str) -> None:
    with pytest.raises(ValueError, match=r"shift|range"):
        parse_shift(text)


def test_handoffs_parse() -> None:
    assert parse_handoff("Mon 09:00") == (0, datetime(2000, 1, 1, 9).time())
    assert parse_handoff("sun 23:59") == (6, datetime(2000, 1, 1, 23, 59).time())
    assert parse_handoff("09:30") == (None, datetime(2000, 1, 1, 9, 30).time())
    assert rotation([A], handoff="fri 17:00").handoff == "Fri 17:00"
    for bad in ["9:00", "24:00", "Monday 09:00", "Mon09:00", "Mon 9", ""]:
        with pytest.raises(ValueError, match="handoff"):
            parse_handoff(bad)


def test_an_unquoted_yaml_time_is_told_to_be_quoted() -> None:
    errors = field_errors(body(rotations=[{"members": [A], "shift": "1d", "handoff": 630, "start": "2026-03-02"}]))
    assert errors[0][0] == ("rotations", 0, "handoff")
    assert "in quotes" in errors[0][1]


def field_errors(body: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        ScheduleSpec.model_validate(body)
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "team_id": TEAM,
        "name": "payments-primary",
        "time_zone": "Europe/Berlin",
        "rotations": [{"members": [A, B], "shift": "1w", "handoff": "Mon 09:00", "start": "2026-03-02"}],
        "overrides": [{"user_id": C, "from": "2026-03-10T00:00:00+01:00", "to": "2026-03-11T00:00:00+01:00"}],
    }
    base.update(changes)
    return base


@pytest.mark.parametrize("moment", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "1999-12-31T23:59:59Z"])
def test_dates_out_of_the_years_are_refused_never_overflow(moment: str) -> None:
    override = [{"user_id": C, "from": moment, "to": "2026-03-11T00:00:00Z"}]
    assert "must be from 2000 to 2199" in field_errors(body(overrides=override))[0][1]
    with pytest.raises(ValueError, match="from 2000 to 2199"):
        in_years(datetime.fromisoformat(moment))
    rotations = [{"members": [A], "shift": "1w", "start": moment[:10]}]
    assert field_errors(body(rotations=rotations))[0][0] == ("rotations", 0, "start")


def test_a_spec_reads_and_writes_from_and_to() -> None:
    schedule = ScheduleSpec.model_validate(body())
    assert schedule.overrides[0].starts_at == at("2026-03-09T23:00:00+00:00")
    dumped = schedule.model_dump(mode="json")
    assert dumped["overrides"][0] == {"user_id": C, "from": "2026-03-09T23:00:00Z", "to": "2026-03-10T23:00:00Z"}
    assert ScheduleSpec.model_validate(dumped) == schedule
    assert schedule.user_ids() == [A, B, C]


def test_bad_specs_name_their_field() -> None:
    errors = field_errors(body(time_zone="Mars/Olympus"))
    assert errors[0][0] == ("time_zone",)
    assert "IANA time zone" in errors[0][1]
    errors = field_errors(body(rotations=[{"members": [A], "shift": "30m", "start": "2026-03-02"}]))
    assert errors[0][0] == ("rotations", 0, "shift")
    errors = field_errors(body(rotations=[]))
    assert errors[0][0] == ("rotations",)
    errors = field_errors(body(rotations=[{"members": [], "shift": "1d", "start": "2026-03-02"}]))
    assert errors[0][0] == ("rotations", 0, "members")
    errors = field_errors(body(name="has space"))
    assert errors[0][0] == ("name",)
    naive = [{"user_id": C, "from": "2026-03-10T00:00:00", "to": "2026-03-11T00:00:00+01:00"}]
    assert field_errors(body(overrides=naive))[0][0] == ("overrides", 0, "from")
    backwards = [{"user_id": C, "from": "2026-03-11T00:00:00Z", "to": "2026-03-10T00:00:00Z"}]
    assert "before its 'to'" in field_errors(body(overrides=backwards))[0][1]
    too_many = [{"user_id": C, "from": "2026-03-10T00:00:00Z", "to": "2026-03-11T00:00:00Z"}] * 101
    assert field_errors(body(overrides=too_many))[0][0] == ("overrides",)


def test_a_file_names_people_by_username_or_by_id() -> None:
    assert as_user_id(A) == A
    assert as_user_id("@" + A) == A
    for name in ("bob", "@bob", "a" * 22, "A" * 26, "a" * 27, ""):
        assert as_user_id(name) is None, name
    assert bare_username("@bob") == bare_username("bob") == "bob"


def test_a_schedule_is_written_by_username_and_read_back_by_id() -> None:
    schedule = ScheduleSpec.model_validate(
        body(rotations=[{"members": [A, B, D], "shift": "1w", "start": "2026-03-02"}])
    )
    names = {A: "alice", B: "bob", C: "carol"}  # D: nobody Mattermost knows, so it stays an id
    document = ScheduleDocument.of(schedule, names)
    written = document.model_dump(mode="json", exclude_none=True)
    assert written["rotations"][0]["members"] == ["alice", "bob", D]
    assert written["overrides"] == [{"user": "carol", "from": "2026-03-09T23:00:00Z", "to": "2026-03-10T23:00:00Z"}]
    assert "team_id" not in written
    read = ScheduleDocument.model_validate(written)
    assert read.located_people() == [
        (("rotations", 0, "members", 0), "alice"),
        (("rotations", 0, "members", 1), "bob"),
        (("rotations", 0, "members", 2), D),
        (("overrides", 0, "user"), "carol"),
    ]
    ids = {"alice": A, "bob": B, D: D, "carol": C}
    assert ScheduleSpec(**dict(read.with_ids(ids)), team_id=TEAM) == schedule


def test_a_file_written_before_usernames_is_read_as_it_was() -> None:
    older = body()
    del older["team_id"]
    read = ScheduleDocument.model_validate(older)
    assert read.located_people() == [
        (("rotations", 0, "members", 0), A),
        (("rotations", 0, "members", 1), B),
        (("overrides", 0, "user_id"), C),
    ]
    assert ScheduleSpec(**dict(read.with_ids({A: A, B: B, C: C})), team_id=TEAM) == ScheduleSpec.model_validate(body())


def test_a_document_override_names_one_person_in_order() -> None:
    when = {"from": "2026-03-10T00:00:00Z", "to": "2026-03-11T00:00:00Z"}
    for override, words in [
        ({**when}, "names one person"),
        ({"user": "bob", "user_id": B, **when}, "names one person"),
        ({"user": "bob", "from": when["to"], "to": when["from"]}, "before its 'to'"),
        ({"user": "", **when}, "at least 1 character"),
    ]:
        with pytest.raises(ValidationError, match=words):
            ScheduleDocument.model_validate({"name": "x", "rotations": body()["rotations"], "overrides": [override]})
    with pytest.raises(ValidationError, match="same name as schedule 1"):
        SchedulesDocument.model_validate(
            {"schedules": [{"name": n, "rotations": body()["rotations"]} for n in ("db", "DB")]}
        )


def test_weekly_rotation_in_order() -> None:
    schedule = spec(rotation([A, B, C], start=date(2026, 3, 4)))  # a Wednesday: first handoff Mon 9th
    assert oncall_at(schedule, at("2026-03-01T00:00:00+00:00")) == [A]  # before the start
    assert oncall_at(schedule, at("2026-03-09T08:59:59+00:00")) == [A]  # before the first handoff
    assert oncall_at(schedule, at("2026-03-09T09:00:00+00:00")) == [A]  # the first handoff begins A's shift
    assert oncall_at(schedule, at("2026-03-16T09:00:00+00:00")) == [B]
    assert oncall_at(schedule, at("2026-03-23T10:00:00+00:00")) == [C]
    assert oncall_at(schedule, at("2026-03-30T10:00:00+00:00")) == [A]
    handoffs = next_handoffs(schedule, at("2026-03-01T00:00:00+00:00"), 3)
    assert [(h.at, h.outgoing, h.incoming) for h in handoffs] == [
        (at("2026-03-16T09:00:00+00:00"), [A], [B]),
        (at("2026-03-23T09:00:00+00:00"), [B], [C]),
        (at("2026-03-30T09:00:00+00:00"), [C], [A]),
    ]


def test_weekly_handoff_stays_local_across_spring_forward_in_berlin() -> None:
    # Europe/Berlin moves from +01:00 to +02:00 on Sunday 29 March 2026.
    schedule = spec(rotation([A, B], start=date(2026, 3, 16)), time_zone="Europe/Berlin")
    handoffs = next_handoffs(schedule, at("2026-03-17T00:00:00+00:00"), 3)
    assert [h.at for h in handoffs] == [
        at("2026-03-23T09:00:00+01:00"),
        at("2026-03-30T09:00:00+02:00"),  # still 09:00 local, an hour earlier in UTC
        at("2026-04-06T09:00:00+02:00"),
    ]
    assert oncall_at(schedule, at("2026-03-30T06:59:00+00:00")) == [B]
    assert oncall_at(schedule, at("2026-03-30T07:00:00+00:00")) == [A]


def test_weekly_handoff_stays_local_across_fall_back_in_new_york() -> None:
    # America/New_York moves from -04:00 to -05:00 on Sunday 1 November 2026.
    schedule = spec(rotation([A, B], start=date(2026, 10, 19)), time_zone="America/New_York")
    handoffs = next_handoffs(schedule, at("2026-10-20T00:00:00+00:00"), 2)
    assert [h.at for h in handoffs] == [at("2026-10-26T09:00:00-04:00"), at("2026-11-02T09:00:00-05:00")]
    assert oncall_at(schedule, at("2026-11-02T13:59:00+00:00")) == [B]
    assert oncall_at(schedule, at("2026-11-02T14:00:00+00:00")) == [A]


def test_daily_handoff_across_fall_back_in_berlin() -> None:
    # Europe/Berlin moves from +02:00 to +01:00 on Sunday 25 October 2026.
    schedule = spec(rotation([A, B], shift="1d", handoff="08:00", start=date(2026, 10, 23)), time_zone="Europe/Berlin")
    handoffs = next_handoffs(schedule, at("2026-10-23T12:00:00+00:00"), 4)
    assert [h.at for h in handoffs] == [
        at("2026-10-24T08:00:00+02:00"),
        at("2026-10-25T08:00:00+01:00"),  # a 25-hour day: the handoff stays 08:00 local
        at("2026-10-26T08:00:00+01:00"),
        at("2026-10-27T08:00:00+01:00"),
    ]


def test_hour_shifts_count_absolute_time_across_a_change() -> None:
    # 12-hour shifts from 08:00 local on 28 March in Berlin: the change makes the local times slide.
    schedule = spec(rotation([A, B], shift="12h", handoff="08:00", start=date(2026, 3, 28)), time_zone="Europe/Berlin")
    handoffs = next_handoffs(schedule, at("2026-03-28T07:30:00+00:00"), 3)
    assert [h.at for h in handoffs] == [
        at("2026-03-28T20:00:00+01:00"),
        at("2026-03-29T08:00:00+01:00"),  # = 09:00 local summer time, 12 hours after
        at("2026-03-29T20:00:00+01:00"),
    ]


def test_several_rotations_each_give_their_member_once() -> None:
    primary = rotation([A, B], start=date(2026, 3, 2))
    secondary = rotation([B, C], start=date(2026, 3, 2))
    schedule = spec(primary, secondary)
    assert oncall_at(schedule, at("2026-03-03T00:00:00+00:00")) == [A, B]
    assert oncall_at(schedule, at("2026-03-10T00:00:00+00:00")) == [B, C]
    handoff = next_handoffs(schedule, at("2026-03-03T00:00:00+00:00"), 1)[0]
    assert (handoff.at, handoff.outgoing, handoff.incoming) == (at("2026-03-09T09:00:00+00:00"), [A], [C])


def test_overrides_replace_everyone_for_their_span_and_are_handoffs() -> None:
    override = Override(user_id=C, starts_at=at("2026-03-04T12:00:00+00:00"), ends_at=at("2026-03-05T12:00:00+00:00"))
    schedule = spec(rotation([A, B], start=date(2026, 3, 2)), rotation([D]), overrides=[override])
    assert oncall_at(schedule, at("2026-03-04T11:59:00+00:00")) == [A, D]
    assert oncall_at(schedule, at("2026-03-04T12:00:00+00:00")) == [C]
    assert oncall_at(schedule, at("2026-03-05T12:00:00+00:00")) == [A, D]
    handoffs = next_handoffs(schedule, at("2026-03-03T00:00:00+00:00"), 3)
    assert [(h.at, h.outgoing, h.incoming) for h in handoffs] == [
        (at("2026-03-04T12:00:00+00:00"), [A, D], [C]),
        (at("2026-03-05T12:00:00+00:00"), [C], [A, D]),
        (at("2026-03-09T09:00:00+00:00"), [A], [B]),
    ]


def test_a_schedule_that_never_changes_has_no_handoffs() -> None:
    assert next_handoffs(spec(rotation([A]), rotation([A, A])), at("2026-03-03T00:00:00+00:00"), 5) == []


# Property tests: any schedule, any moment.
members = st.lists(st.sampled_from([A, B, C, D]), min_size=1, max_size=4)
rotations = st.builds(
    Rotation,
    members=members,
    shift=st.sampled_from(["1h", "5h", "12h", "1d", "3d", "1w", "2w"]),
    handoff=st.sampled_from(["Mon 09:00", "Sun 02:30", "02:30", "00:00", "23:15", "Wed 01:45"]),
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)),
)
moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
overrides = st.builds(
    lambda user, start, hours: Override(user_id=user, starts_at=start, ends_at=start + timedelta(hours=hours)),
    st.sampled_from([A, B, C, D]),
    moments,
    st.integers(min_value=1, max_value=200),
)
schedules = st.builds(
    lambda rs, zone, os: spec(*rs, time_zone=zone, overrides=os),
    st.lists(rotations, min_size=1, max_size=3),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]),
    st.lists(overrides, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(schedule=schedules, moment=moments)
def test_oncall_is_always_people_of_the_schedule(schedule: ScheduleSpec, moment: datetime) -> None:
    people = oncall_at(schedule, moment)
    assert people
    assert set(people) <= set(schedule.user_ids())
    assert len(people) == len(set(people))


@settings(max_examples=150, deadline=None)
@given(schedule=schedules, moment=moments)
def test_handoffs_increase_and_change_who_is_on_call(schedule: ScheduleSpec, moment: datetime) -> None:
    handoffs = next_handoffs(schedule, moment, 6)
    times = [h.at for h in handoffs]
    assert all(moment < t for t in times)
    assert times == sorted(set(times))
    for handoff in handoffs:
        before = oncall_at(schedule, handoff.at - timedelta(microseconds=1))
        after = oncall_at(schedule, handoff.at)
        assert set(handoff.incoming) <= set(after)
        assert set(handoff.outgoing) <= set(before)
        assert not set(handoff.outgoing) & set(after)
        assert set(before) != set(after)


@settings(max_examples=100, deadline=None)
@given(schedule=schedules, moment=moments)
def test_nothing_changes_between_handoffs(schedule: ScheduleSpec, moment: datetime) -> None:
    handoffs = next_handoffs(schedule, moment, 1)
    if not handoffs:
        return
    last = handoffs[0].at - timedelta(microseconds=1)
    now = set(oncall_at(schedule, moment))
    for fraction in (0.25, 0.5, 0.75):
        assert set(oncall_at(schedule, moment + (last - moment) * fraction)) == now
    assert set(oncall_at(schedule, last)) == now


# Hostile input: any text is a shift, a handoff or a ValueError; any body a schedule or a ValidationError.
@settings(max_examples=300)
@given(text=st.text(max_size=20))
def test_any_text_is_a_shift_or_a_value_error(text: str) -> None:
    try:
        length = parse_shift(text)
    except ValueError:
        return
    assert timedelta(hours=1) <= length <= timedelta(weeks=8)


@settings(max_examples=300)
@given(text=st.text(max_size=20))
def test_any_text_is_a_handoff_or_a_value_error(text: str) -> None:
    try:
        weekday, moment = parse_handoff(text)
    except ValueError:
        return
    assert weekday is None or 0 <= weekday <= 6
    assert moment.second == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    time_zone=st.text(max_size=70) | st.sampled_from(["Europe/Berlin", "../etc/passwd", "Europe", "UTC\x00"]),
    shift=st.text(max_size=8) | json_values,
    handoff=st.text(max_size=10) | json_values,
    start=st.text(max_size=12) | json_values,
    overrides=json_values,
)
def test_any_body_is_a_schedule_or_a_validation_error(
    time_zone: str, shift: Any, handoff: Any, start: Any, overrides: Any
) -> None:
    try:
        spec = ScheduleSpec.model_validate(
            body(
                time_zone=time_zone,
                rotations=[{"members": [A], "shift": shift, "handoff": handoff, "start": start}],
                overrides=overrides,
            )
        )
    except ValidationError:
        return
    assert oncall_at(spec, datetime(2026, 3, 1, tzinfo=UTC)) == [A] or spec.overrides
