"""Time bounds given in query strings (`started_after`, `since`, ...).

A time without an offset is taken as UTC, like every time this API writes. Times are
clamped to a range where the arithmetic around them cannot overflow and that Temporal's
visibility store accepts: nothing happened before 1970, and a bound after year 9000
selects the same incidents as none.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def time_bound(value: datetime | None) -> datetime | None:
    """`value` in UTC (naive: taken as UTC), clamped to [EARLIEST, LATEST]."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        # Only the first and last day of the calendar, with an offset, leave its range.
        return EARLIEST if value.year < 5000 else LATEST
    return min(max(value, EARLIEST), LATEST)
