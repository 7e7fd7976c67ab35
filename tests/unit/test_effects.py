"""Pure rules of side effects: which lane an effect waits in, and how long a retry waits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.common import RetryPolicy

from activities.incident_activities import retry_delay
from mattermost_client.gateway import MattermostFailure
from models.common import UserFact
from models.effects import (
    INCIDENT_CHANNEL_LANE,
    ChannelHeaderEffect,
    Effect,
    InviteEffect,
    PostEffect,
    RespondEffect,
    StatsEffect,
    lane_of,
)

HERE = "c" * 26
THERE = "d" * 26
USER = UserFact(user_id="u" * 26, username="bob")


@pytest.mark.parametrize(
    ("effect", "lane"),
    [
        (PostEffect(message="m"), INCIDENT_CHANNEL_LANE),
        (PostEffect(channel_id=HERE, message="m"), INCIDENT_CHANNEL_LANE),
        (InviteEffect(actor_id="a", users=[USER]), INCIDENT_CHANNEL_LANE),
        (PostEffect(channel_id=THERE, message="m"), f"channel:{THERE}"),
        (ChannelHeaderEffect(), "channel_header"),
        (StatsEffect(), "stats"),
        (RespondEffect(response_url="u", text="t"), "respond"),
    ],
)
def test_each_target_has_its_own_lane(effect: Effect, lane: str) -> None:
    assert lane_of(effect, HERE) == lane


POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=5)
)


@pytest.mark.parametrize(("attempt", "interval"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (30, 5.0)])
def test_backoff_is_exponential_capped_and_jittered_down_to_half(attempt: int, interval: float) -> None:
    low = retry_delay(None, attempt=attempt, policy=POLICY, draw=lambda a, b: a)
    high = retry_delay(None, attempt=attempt, policy=POLICY, draw=lambda a, b: b)
    assert low == timedelta(seconds=interval / 2)
    assert high == timedelta(seconds=interval)


def test_retry_after_is_honoured_never_shortened() -> None:
    assert retry_delay(7, attempt=9, policy=POLICY, draw=lambda a, b: a) == timedelta(seconds=7)
    assert retry_delay(7, attempt=9, policy=POLICY, draw=lambda a, b: b) == timedelta(seconds=7.7)


@pytest.mark.parametrize(
    ("status", "retryable", "may_have_landed"),
    [
        (None, True, False),
        (429, True, False),
        (500, True, False),
        (502, True, True),
        (503, True, False),
        (504, True, True),
        (400, False, False),
        (403, False, False),
        (404, False, False),
    ],
)
def test_which_failures_are_retried_and_which_may_have_landed(
    status: int | None, retryable: bool, may_have_landed: bool
) -> None:
    failure = MattermostFailure("x", status=status)
    assert (failure.retryable, failure.may_have_landed) == (retryable, may_have_landed)
    assert MattermostFailure("timed out", status=None, may_have_landed=True).may_have_landed
