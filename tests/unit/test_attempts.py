"""What a retried activity waits for before it changes anything in Mattermost (activities/attempts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.attempts import EffectAttempt, earlier_changes_land_by
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


def test_after_an_attempt_that_timed_out_still_waiting_a_retry_waits_for_the_same_moment() -> None:
    """Defect: with ACTIVITY_TIMEOUT_SECONDS (3 s) shorter than a request timeout (10 s), every retry
    after a killed worker waited 10 s, timed out at 3 s, and the next one assumed a request sent as it
    began: attempt 27 of a checklist edit was still waiting, and the incident's channel lane with it."""
    earlier = BEGAN + timedelta(seconds=7)
    waited = AttemptRecord(
        attempt=1,
        ended=False,
        request_timeout=10.0,
        waiting_until=earlier,
        deadline=BEGAN - timedelta(seconds=1),
    )
    # It could not have sent anything: it would have waited past its own deadline.
    assert land_by(waited) == earlier
    # One that could have finished waiting before its deadline may have sent something since.
    sent = waited.model_copy(update={"deadline": earlier + timedelta(seconds=1)})
    assert land_by(sent) == BEGAN + timedelta(seconds=10)
    # A record without a deadline (an older worker's) proves nothing.
    assert land_by(waited.model_copy(update={"deadline": None})) == BEGAN + timedelta(seconds=10)


async def test_an_attempt_that_cannot_outwait_earlier_changes_before_its_deadline_ends_sending_nothing() -> None:
    """It never sends after its deadline, when Temporal has handed the effect to the next attempt,
    which then waits for the same moment (so a retry never races a late send of this one)."""
    now = datetime.now(UTC)
    earlier = now + timedelta(seconds=10)
    attempt = EffectAttempt(
        attempt=2, request_timeout=10.0, earlier_land_by=earlier, deadline=now + timedelta(seconds=0.5)
    )
    sent: list[str] = []

    async def post() -> str:
        sent.append("post")
        return "posted"

    with pytest.raises(ApplicationError) as ended:
        await attempt.change(post)
    assert ended.value.type == "StillWaiting"
    assert sent == []
    attempt.ended = True  # as the worker's interceptor marks a failing attempt
    last = attempt.record()
    assert (last.waiting_until, last.changes_land_by) == (earlier, earlier)
    assert (
        earlier_changes_land_by(last, attempt=3, began_at=now + timedelta(seconds=1), request_timeout=10.0) == earlier
    )
