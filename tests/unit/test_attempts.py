"""What a retried activity waits for before it changes anything in Mattermost (activities/attempts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.attempts import earlier_changes_land_by
from models.activity_io import AttemptRecord

BEGAN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def record(attempt: int, *, ended: bool, land_by: datetime | None = None, timeout: float = 10.0) -> AttemptRecord:
    return AttemptRecord(attempt=attempt, changes_land_by=land_by, ended=ended, request_timeout=timeout)


def land_by(previous: AttemptRecord | None, attempt: int = 2, timeout: float = 10.0) -> datetime | None:
    return earlier_changes_land_by(previous, attempt=attempt, began_at=BEGAN, request_timeout=timeout)


def test_a_first_attempt_and_a_retry_after_an_attempt_that_ended_answered_wait_for_nothing() -> None:
    assert land_by(None, attempt=1) is None
    # A 503 or a refusal is an answer: nothing of that attempt can land later.
    assert land_by(record(1, ended=True)) is None
    assert land_by(record(1, ended=True, land_by=BEGAN - timedelta(seconds=1))) is None


def test_a_retry_waits_for_a_change_an_ended_attempt_left_unanswered() -> None:
    later = BEGAN + timedelta(seconds=7)
    assert land_by(record(1, ended=True, land_by=later)) == later


def test_after_an_attempt_that_did_not_end_a_retry_assumes_a_request_sent_as_it_began() -> None:
    # Its worker died: its last record may be seconds old and say nothing was sent.
    assert land_by(record(1, ended=False)) == BEGAN + timedelta(seconds=10)
    assert land_by(record(1, ended=False, land_by=BEGAN + timedelta(seconds=19))) == BEGAN + timedelta(seconds=10)
    # The slower of the two workers' request timeouts bounds it.
    assert land_by(record(1, ended=False, timeout=30)) == BEGAN + timedelta(seconds=30)
    # No record at all, or only an older attempt's (the previous one died before its first heartbeat).
    assert land_by(None) == BEGAN + timedelta(seconds=10)
    assert land_by(record(1, ended=True), attempt=3) == BEGAN + timedelta(seconds=10)
