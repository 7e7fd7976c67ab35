"""When a back-dated note happened: what people type (`--at 14:30`, REST's ISO time) and the moment it means.

`/incident note --at 14:30 <text>` (and the backstage's time input) names a time of day in the
caller's Mattermost time zone (`Actor.time_zone`, else UTC, as `/incident due ... 14:30` reads
it: `models.due_dates`): the most recent such moment not after now. REST's `at` is an ISO 8601
time (a time without an offset is UTC). The incident's rule refuses a moment before its start
or in the future (`Incident.check_add_note`). Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

from pydantic import AfterValidator

from models.due_dates import CLOCK, time_of_day, zone_of

NOTE_TIME_MAX = 40
# What a note's time may be typed as, said wherever one is refused.
NOTE_TIME_HINT = "give a time of day (14:30, in your Mattermost time zone) or an ISO time (2026-01-05T14:30:00Z)"


def _read(typed: str) -> time | datetime:
    text = typed.strip()
    clock = CLOCK.fullmatch(text)
    if clock:
        return time(int(clock[1]), int(clock[2]))
    if len(text) > NOTE_TIME_MAX or not text[:4].isdigit():
        raise ValueError(NOTE_TIME_HINT)
    try:
        moment = datetime.fromisoformat(text)
        # A time at the calendar's edge with an offset has no UTC time (year 1 at +05:00).
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(NOTE_TIME_HINT) from None


def _note_time(value: str) -> str:
    _read(value)
    return value.strip()


# A note's time as people give it (the REST body's `at`, the slash command's `--at`, the backstage's input).
NoteTime = Annotated[str, AfterValidator(_note_time)]


def note_moment(typed: str, now: datetime, time_zone: str) -> datetime:
    """The moment (UTC) `typed` names at `now`: a time of day is the most recent one not after
    now in `time_zone` (else UTC); an ISO time is itself."""
    read = _read(typed)
    if isinstance(read, datetime):
        return read
    return time_of_day(read, now, zone_of(time_zone) or UTC, ahead=False).astimezone(UTC)
