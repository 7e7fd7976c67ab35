"""On-call schedules: who is on call at a moment, and when that changes.

A schedule belongs to a team and has one or more rotations and some overrides. Each
rotation hands its shift from one member to the next, in order, at its handoffs; the
people on call at a moment are, rotation by rotation, each rotation's current member (in
rotation order, each person once). An override active at that moment replaces them all
for its span (several active overrides: their people, in the schedule's order).

A rotation's handoffs: the first is its `handoff` (a weekday and a time, or a time: every
day) on or after its `start` date, in the schedule's time zone; the k-th after it is k
shifts later. Day and week shifts count local calendar days, so `Mon 09:00` stays 09:00
local across a daylight-saving change; hour shifts count absolute hours. Before the first
handoff the rotation's first member is on call, and the first handoff gives the shift to
the first member too (it begins their first shift), the next to the second, and so on.

Each schedule is a `ScheduleWorkflow` (`schedule_workflow_id`) that tells the people at
every handoff. Pure: no I/O, usable in workflows.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from models.common import MATTERMOST_ID, MattermostId, Model, first_repeat

NAME_MAX = 64
# A name people type after `/incident oncall` and `/incident page`: a letter or digit, then
# letters, digits, dots, dashes and underscores. Unique in the team, whatever the case.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
ROTATIONS_MAX = 10
MEMBERS_MAX = 50
OVERRIDES_MAX = 100
# What one team may have.
SCHEDULES_MAX = 100
SHIFT_MIN = timedelta(hours=1)
SHIFT_MAX = timedelta(weeks=8)
# How far `next_handoffs` looks ahead, and how many moments it weighs at most: a schedule
# whose people never change (one member) has no handoff, and the search must end.
HORIZON = timedelta(days=400)
CANDIDATES_MAX = 5000

# The years a schedule may speak of: far enough either way, and every computation stays
# within what datetimes can hold (year 9999), so no date can fail a workflow task.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

SHIFT = re.compile(r"^([1-9][0-9]{0,3})([hdw])\Z")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HANDOFF = re.compile(r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01][0-9]|2[0-3]):([0-5][0-9])\Z", re.IGNORECASE)


def schedule_workflow_id(schedule_id: str) -> str:
    return f"schedule-{schedule_id}"


def name_key(name: str) -> str:
    """What makes two schedule names the same name (case does not count)."""
    return name.casefold()


def in_years(moment: datetime) -> datetime:
    """`moment` in UTC (naive: taken as UTC) if a schedule may speak of it, else ValueError."""
    try:
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        moment = EARLIEST - timedelta(days=1)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be from {EARLIEST.year} to {LATEST.year - 1}")
    return moment


def _start(day: date) -> date:
    in_years(datetime.combine(day, time(), tzinfo=UTC))
    return day


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(
            "must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit, "
            "such as payments-primary (people type it in /incident oncall <name>)"
        )
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{value!r} is no IANA time zone; use a name such as Europe/Berlin, America/New_York or UTC"
        ) from None
    return value


def parse_shift(value: str) -> timedelta:
    """`12h`, `1d`, `2w`: a shift's length, from 1 hour to 8 weeks (ValueError otherwise)."""
    match = SHIFT.match(value)
    if match is None:
        raise ValueError(f"{value!r} is no shift: write a number and a unit, h (hours), d (days) or w (weeks), like 1w")
    length = timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])
    if not SHIFT_MIN <= length <= SHIFT_MAX:
        raise ValueError(f"{value!r} is out of range: a shift is from 1h to 8w")
    return length


def _shift(value: str) -> str:
    parse_shift(value)
    return value


def parse_handoff(value: str) -> tuple[int | None, time]:
    """`Mon 09:00` (weekly on that day: 0 is Monday) or `09:00` (every day): (weekday, time)."""
    match = HANDOFF.match(value)
    if match is None:
        raise ValueError(f"{value!r} is no handoff: write a time like 09:00, or a weekday and a time like Mon 09:00")
    day = match.group(1)
    weekday = None if day is None else WEEKDAYS.index(day.capitalize())
    return weekday, time(int(match.group(2)), int(match.group(3)))


def _not_a_number(value: object) -> object:
    """YAML reads an unquoted 10:30 as a number (630, base 60): say how to write it instead."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("is a number, not a time: write the handoff in quotes, like '10:30' or 'Mon 09:00'")
    return value


def _handoff(value: str) -> str:
    weekday, at = parse_handoff(value)
    return at.strftime("%H:%M") if weekday is None else f"{WEEKDAYS[weekday]} {at.strftime('%H:%M')}"


ScheduleName = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(_name)]
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_time_zone)]
Shift = Annotated[str, Field(min_length=2, max_length=8, examples=["1w", "1d", "12h"]), AfterValidator(_shift)]
HandoffTime = Annotated[
    str,
    BeforeValidator(_not_a_number),
    Field(min_length=5, max_length=9, examples=["Mon 09:00", "09:00"]),
    AfterValidator(_handoff),
]


class Rotation(Model):
    """People taking a shift in turn."""

    members: Annotated[list[MattermostId], Field(min_length=1, max_length=MEMBERS_MAX)] = Field(
        description="User ids, in the order they take the shift"
    )
    shift: Shift = Field(description="How long each shift is: a number and h, d or w, from 1h to 8w")
    handoff: HandoffTime = Field(
        default="Mon 09:00", description="When a shift begins: a weekday and a time (Mon 09:00) or a time (09:00)"
    )
    start: Annotated[date, AfterValidator(_start)] = Field(
        description="The day the rotation begins (its first handoff is on or after it)"
    )


class Override(Model):
    """Someone on call instead of everyone else, from `from` until `to`."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    user_id: MattermostId
    starts_at: AwareDatetime = Field(alias="from", description="When it begins (with a time zone offset)")
    ends_at: AwareDatetime = Field(alias="to", description="When it ends (with a time zone offset)")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return in_years(value)

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.starts_at >= self.ends_at:
            raise ValueError("an override's 'from' must be before its 'to'")
        return self


class ScheduleFields(Model):
    """What a team admin writes about a schedule (a YAML document's entry, a backstage form)."""

    name: ScheduleName = Field(description="Unique in the team (case aside); typed in /incident oncall <name>")
    time_zone: TimeZoneName = Field(default="UTC", description="An IANA time zone, such as Europe/Berlin")
    rotations: Annotated[list[Rotation], Field(min_length=1, max_length=ROTATIONS_MAX)]
    overrides: Annotated[list[Override], Field(max_length=OVERRIDES_MAX)] = Field(default_factory=list)
    channel_id: MattermostId | None = Field(default=None, description="A channel told at every handoff")

    def located_user_ids(self) -> list[tuple[str, str]]:
        """Every user id the schedule names, with where: `rotations[0].members[1]`, `overrides[2].user_id`."""
        located = [
            (f"rotations[{r}].members[{m}]", user_id)
            for r, rotation in enumerate(self.rotations)
            for m, user_id in enumerate(rotation.members)
        ]
        located += [(f"overrides[{o}].user_id", override.user_id) for o, override in enumerate(self.overrides)]
        return located

    def user_ids(self) -> list[str]:
        """Everyone the schedule names, in order, once each."""
        ids = [m for rotation in self.rotations for m in rotation.members]
        ids += [o.user_id for o in self.overrides]
        return list(dict.fromkeys(ids))


class ScheduleSpec(ScheduleFields):
    """A schedule as the REST API takes it: its fields and its team."""

    team_id: MattermostId


class Schedule(ScheduleSpec):
    """As stored: the spec with what the system owns."""

    id: str = Field(min_length=1, max_length=64)
    created_by: MattermostId | None = None
    updated_at: datetime | None = None


class Handoff(Model):
    """A moment the people on call change: who stops, who starts."""

    at: datetime
    outgoing: list[str]
    incoming: list[str]


class _RotationClock:
    """A rotation's handoffs in a time zone: `handoff_at(k)` and `index_at(moment)`."""

    def __init__(self, rotation: Rotation, zone: ZoneInfo) -> None:
        self.members = rotation.members
        self.zone = zone
        self.shift = parse_shift(rotation.shift)
        weekday, self.at_time = parse_handoff(rotation.handoff)
        first = rotation.start
        if weekday is not None:
            first += timedelta(days=(weekday - first.weekday()) % 7)
        self.first_day = first
        self.first = self._local(first)
        # Day and week shifts count local days; hour shifts count absolute time.
        self.days = self.shift.days if self.shift.seconds == 0 else None

    def _local(self, day: date) -> datetime:
        return datetime.combine(day, self.at_time, tzinfo=self.zone).astimezone(UTC)

    def handoff_at(self, k: int) -> datetime:
        if self.days is not None:
            return self._local(self.first_day + timedelta(days=k * self.days))
        return self.first + k * self.shift

    def index_at(self, moment: datetime) -> int:
        """The number of the last handoff at or before `moment` (-1: before the first)."""
        if moment < self.first:
            return -1
        if self.days is not None:
            local_day = moment.astimezone(self.zone).date()
            k = (local_day - self.first_day).days // self.days
        else:
            k = (moment - self.first) // self.shift
        while k > 0 and self.handoff_at(k) > moment:
            k -= 1
        while self.handoff_at(k + 1) <= moment:
            k += 1
        return k

    def member_at(self, moment: datetime) -> str:
        return self.members[max(self.index_at(moment), 0) % len(self.members)]

    def handoffs_after(self, moment: datetime) -> Iterator[datetime]:
        if len(set(self.members)) < 2:
            return
        k = self.index_at(moment) + 1
        while True:
            yield self.handoff_at(k)
            k += 1


def _clocks(schedule: ScheduleFields) -> list[_RotationClock]:
    zone = ZoneInfo(schedule.time_zone)
    return [_RotationClock(rotation, zone) for rotation in schedule.rotations]


def _oncall(schedule: ScheduleFields, clocks: list[_RotationClock], moment: datetime) -> list[str]:
    overriding = [o.user_id for o in schedule.overrides if o.starts_at <= moment < o.ends_at]
    if overriding:
        return list(dict.fromkeys(overriding))
    return list(dict.fromkeys(clock.member_at(moment) for clock in clocks))


def oncall_at(schedule: ScheduleFields, at: datetime) -> list[str]:
    """The user ids on call at `at`: each rotation's current member, in rotation order, once
    each; or, while overrides are active, their people instead."""
    return _oncall(schedule, _clocks(schedule), _aware(at))


def next_handoffs(schedule: ScheduleFields, after: datetime, count: int) -> list[Handoff]:
    """The next `count` moments strictly after `after` when the people on call change
    (rotation handoffs and overrides' starts and ends), within `HORIZON`."""
    after = _aware(after)
    clocks = _clocks(schedule)
    horizon = after + HORIZON
    streams: list[Iterator[datetime]] = [clock.handoffs_after(after) for clock in clocks]
    edges = sorted({t for o in schedule.overrides for t in (o.starts_at, o.ends_at) if after < t})
    streams.append(iter(edges))
    handoffs: list[Handoff] = []
    current = _oncall(schedule, clocks, after)
    last: datetime | None = None
    for weighed, moment in enumerate(heapq.merge(*streams)):
        if len(handoffs) >= count or moment > horizon or weighed >= CANDIDATES_MAX:
            break
        if moment == last:
            continue
        last = moment
        now = _oncall(schedule, clocks, moment)
        if set(now) != set(current):
            handoffs.append(
                Handoff(
                    at=moment,
                    outgoing=[u for u in current if u not in now],
                    incoming=[u for u in now if u not in current],
                )
            )
        current = now
    return handoffs


def local_label(moment: datetime, time_zone: str) -> str:
    """A moment as people of the schedule read it: `Mon 30 Mar 09:00 CEST`."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%a %d %b %H:%M %Z")


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ScheduleState(Model):
    """What a `ScheduleWorkflow` carries across continue-as-new."""

    schedule: Schedule
    version: int = 1
    deleted: bool = False
    # Handoffs at or before this moment were told, or came before the schedule (or its latest
    # change) existed: they are never told (again).
    told_until: datetime


class ChangeSchedule(Model):
    """The whole new schedule (its id and team as before), from someone the service let change it."""

    schedule: Schedule


class DeleteSchedule(Model):
    actor_id: MattermostId


class HandoffNotice(Model):
    """One handoff to tell: the people going off and coming on, and the schedule's channel."""

    schedule_id: str
    schedule_name: str
    time_zone: str
    handoff: Handoff
    oncall: list[str]
    next_at: datetime | None = None
    # Who is told: one person (a direct message) or the schedule's channel.
    user_id: MattermostId | None = None
    channel_id: MattermostId | None = None

    @property
    def dedupe_key(self) -> str:
        """The same notice to the same place is posted once, however often it is tried."""
        return f"{self.schedule_id}@{self.handoff.at.isoformat()}>{self.user_id or self.channel_id}"


class OncallPerson(Model):
    user_id: str
    username: str


class OncallView(Model):
    """Who is on call at `at`, and the next handoffs after it."""

    at: datetime
    oncall: list[OncallPerson]
    next_handoffs: list[Handoff]


# A person as a file names them: a username, with or without its @, or (as files written
# before usernames) a user id. Mattermost usernames are at most 22 characters, so a name
# of 26 lowercase letters and digits is an id, never a username.
PersonName = Annotated[str, Field(min_length=1, max_length=64)]


def as_user_id(name: str) -> str | None:
    """The user id `name` is, if it is one (else None: a username, to look up)."""
    bare = name.strip().lstrip("@")
    return bare if MATTERMOST_ID.fullmatch(bare) else None


def bare_username(name: str) -> str:
    """`@bob` and `bob` alike: `bob`."""
    return name.strip().lstrip("@")


class RotationDocument(Rotation):
    """A rotation as a file writes it: its members by username."""

    members: Annotated[list[PersonName], Field(min_length=1, max_length=MEMBERS_MAX)] = Field(
        description="Usernames (or user ids), in the order they take the shift"
    )


class OverrideDocument(Model):
    """An override as a file writes it: `user`, a username (`user_id`, which older files have, too)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    user: PersonName | None = None
    user_id: PersonName | None = None
    starts_at: AwareDatetime = Field(alias="from")
    ends_at: AwareDatetime = Field(alias="to")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return in_years(value)

    @model_validator(mode="after")
    def _one_person_in_order(self) -> OverrideDocument:
        if (self.user is None) == (self.user_id is None):
            raise ValueError("an override names one person: write user: <username>")
        if self.starts_at >= self.ends_at:
            raise ValueError("an override's 'from' must be before its 'to'")
        return self

    @property
    def person(self) -> str:
        return self.user or self.user_id or ""


class ScheduleDocument(Model):
    """A schedule as a file writes it (`ScheduleFields`, with people by username)."""

    name: ScheduleName
    time_zone: TimeZoneName = "UTC"
    rotations: Annotated[list[RotationDocument], Field(min_length=1, max_length=ROTATIONS_MAX)]
    overrides: Annotated[list[OverrideDocument], Field(max_length=OVERRIDES_MAX)] = Field(default_factory=list)
    channel_id: MattermostId | None = None

    @classmethod
    def of(cls, schedule: ScheduleFields, usernames: dict[str, str]) -> ScheduleDocument:
        """`schedule` with each person by username (`usernames`, by id; someone not in it stays an id)."""
        body = schedule.model_dump(include=set(ScheduleFields.model_fields))
        for rotation in body["rotations"]:
            rotation["members"] = [usernames.get(m, m) for m in rotation["members"]]
        body["overrides"] = [
            {"user": usernames.get(o.user_id, o.user_id), "from": o.starts_at, "to": o.ends_at}
            for o in schedule.overrides
        ]
        return cls.model_validate(body)

    def located_people(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Everyone the file names, with where: `("rotations", 0, "members", 1)`, `("overrides", 2, "user")`."""
        located: list[tuple[tuple[str | int, ...], str]] = [
            (("rotations", r, "members", m), name)
            for r, rotation in enumerate(self.rotations)
            for m, name in enumerate(rotation.members)
        ]
        located += [
            (("overrides", o, "user" if override.user is not None else "user_id"), override.person)
            for o, override in enumerate(self.overrides)
        ]
        return located

    def with_ids(self, ids: dict[str, str]) -> ScheduleFields:
        """The schedule as the API takes it: each person by id (`ids`, by the name the file gives)."""
        body = self.model_dump(by_alias=True, exclude_none=True)
        for rotation in body["rotations"]:
            rotation["members"] = [ids[m] for m in rotation["members"]]
        body["overrides"] = [{"user_id": ids[o.person], "from": o.starts_at, "to": o.ends_at} for o in self.overrides]
        return ScheduleFields.model_validate(body)


class SchedulesDocument(Model):
    """A team's schedules as a file (YAML), matched by name when applied."""

    schedules: Annotated[list[ScheduleDocument], Field(max_length=SCHEDULES_MAX)] = Field(default_factory=list)

    @field_validator("schedules")
    @classmethod
    def _one_per_name(cls, schedules: list[ScheduleDocument]) -> list[ScheduleDocument]:
        repeat = first_repeat([name_key(schedule.name) for schedule in schedules])
        if repeat:
            first, later = repeat
            raise ValueError(
                f"schedule {later + 1} has the same name as schedule {first + 1} ({schedules[later].name!r}); "
                "names are unique in a team"
            )
        return schedules


class ImportedSchedules(Model):
    """What an import did: the schedules made, changed and left as they were."""

    created: list[Schedule] = Field(default_factory=list)
    updated: list[Schedule] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
