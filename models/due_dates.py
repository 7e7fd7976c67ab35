"""Due dates of checklist items: what a playbook declares, what people type, and the time it means.

A playbook's item may be due `after` a duration counted `from` the incident's start or from
its stage's entry (`ItemDue`); an incident's item gets its concrete due time when that
anchor happens (`workflows.incident_due_dates`). People set one on an incident's item with
`/incident due <stage> <item> 30m|14:30|none`, REST or the backstage (`DueWords`): a
duration from now, a time of day (the next one, in the person's Mattermost time zone, else
UTC), or none. Pure: no I/O (time zones come from the `tzdata` package, as schedules' do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, Field

from models.common import Model
from models.playbook_automation import DURATION_MAX_SECONDS, DURATION_MIN_SECONDS, Duration, duration_seconds

# What a due time may be typed as, said wherever one is refused (slash, REST, the backstage).
DUE_HINT = "give a duration from now (30m, 2h, 1d), a time of day (14:30) or none"
DUE_WORDS_MAX = 32
_DURATION = re.compile(r"(?:[0-9]{1,7}[smhd])+", re.ASCII)
# A time of day as people type it (14:30, 9:05), for due times and notes' times.
CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", re.ASCII)
# An IANA zone name as Mattermost stores it (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `UTC`).
_ZONE = re.compile(r"[A-Za-z0-9_+\-]{1,32}(?:/[A-Za-z0-9_+\-]{1,32}){0,3}", re.ASCII)


class ItemDue(Model):
    """A playbook item's due time: `after` this long, counted `from` the incident's start or
    from the first time the item's stage becomes active (the default)."""

    # `from` is a Python keyword: the field is `from_`, read and written as `from`.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    after: Duration = Field(description="How long after its anchor the item is due: 30s to 30d, such as 30m or 1h30m")
    from_: Literal["start", "stage"] = Field(
        default="stage",
        alias="from",
        description="The anchor: `start` (the incident's start) or `stage` (the first time the item's stage "
        "becomes active; entering it again later changes nothing)",
    )

    @property
    def seconds(self) -> int:
        return duration_seconds(self.after)

    def words(self) -> str:
        """In words: `30m after the start`, `1h after its stage is entered`."""
        anchor = "the start" if self.from_ == "start" else "its stage is entered"
        return f"{self.after} after {anchor}"


@dataclass(frozen=True)
class DueText:
    """What was typed, read: `in` a duration from now, `at` a time of day, or `none` (clear)."""

    kind: Literal["in", "at", "none"]
    seconds: int = 0
    hour: int = 0
    minute: int = 0


def read_due(typed: str) -> DueText:
    """`30m`, `1h30m`, `14:30`, `none` (any case, surrounding spaces ignored); a ValueError
    saying what may be typed otherwise."""
    text = typed.strip().lower()
    if text == "none":
        return DueText("none")
    if len(text) <= DUE_WORDS_MAX and _DURATION.fullmatch(text):
        seconds = duration_seconds(text)
        if not DURATION_MIN_SECONDS <= seconds <= DURATION_MAX_SECONDS:
            raise ValueError(f"a due time from now is at least 1s and at most 30d; {DUE_HINT}")
        return DueText("in", seconds=seconds)
    clock = CLOCK.fullmatch(text)
    if clock:
        return DueText("at", hour=int(clock[1]), minute=int(clock[2]))
    raise ValueError(DUE_HINT)


def _due_words(value: str) -> str:
    read_due(value)
    return value.strip()


# A due time as people type it (the REST body's `due`, the slash command's word, the backstage's input).
DueWords = Annotated[str, AfterValidator(_due_words)]


def zone_of(name: str) -> tzinfo | None:
    """The time zone a Mattermost user set (None: none, or not one Python knows)."""
    if not name or len(name) > 64 or not _ZONE.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def mattermost_time_zone(user: dict[str, object]) -> str:
    """The time zone a Mattermost user record names (automatic or manual, as the user chose);
    empty when it names none that is known."""
    setting = user.get("timezone")
    if not isinstance(setting, dict):
        return ""
    automatic = str(setting.get("useAutomaticTimezone", "")).lower() == "true"
    name = str(setting.get("automaticTimezone" if automatic else "manualTimezone") or "")
    return name if zone_of(name) is not None else ""


@dataclass(frozen=True)
class DueTime:
    """When a typed due time falls, and how to say it back."""

    at: datetime
    # "in 30m, at 09:30 UTC", "at 14:30 today (Europe/Berlin; 12:30 UTC)".
    words: str


def due_time(text: DueText, now: datetime, time_zone: str) -> DueTime:
    """The moment `text` names at `now`: a duration from now, or the next time of day in
    `time_zone` (today, or tomorrow once it has passed), else in UTC."""
    now = now.astimezone(UTC)
    if text.kind == "in":
        at = now + timedelta(seconds=text.seconds)
        return DueTime(at, f"in {_compact(text.seconds)}, at {utc_clock(at, now)}")
    zone = zone_of(time_zone)
    candidate = time_of_day(time(text.hour, text.minute), now, zone or UTC, ahead=True)
    when = "today" if candidate.date() == now.astimezone(zone or UTC).date() else "tomorrow"
    at = candidate.astimezone(UTC)
    shown = f"{text.hour:02}:{text.minute:02}"
    if zone is None:
        return DueTime(at, f"at {shown} UTC {when} (your Mattermost time zone is not set, so times of day are UTC)")
    return DueTime(at, f"at {shown} {when} ({time_zone}; {at:%H:%M} UTC)")


def time_of_day(wanted: time, now: datetime, zone: tzinfo, *, ahead: bool) -> datetime:
    """`wanted` in `zone` on `now`'s day there, or the next day's when it is not after now
    (`ahead`: the next such time), or the day before's when it is after now (else: the most
    recent such time, not after now)."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), wanted, tzinfo=zone)
    if ahead and candidate <= local:
        return datetime.combine(local.date() + timedelta(days=1), wanted, tzinfo=zone)
    if not ahead and candidate > local:
        return datetime.combine(local.date() - timedelta(days=1), wanted, tzinfo=zone)
    return candidate


def utc_clock(when: datetime, now: datetime) -> str:
    """`09:30 UTC`, or with its day when it is not today's (`Jan 06 09:30 UTC`)."""
    when = when.astimezone(UTC)
    return f"{when:%H:%M} UTC" if when.date() == now.astimezone(UTC).date() else f"{when:%b %d %H:%M} UTC"


def _compact(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"
