"""One attempt of an activity: kept alive while it waits on Mattermost, and honest about the
changes it may have left in flight.

Temporal notices that a worker died mid-attempt only when the attempt times out, and one
attempt may need several Mattermost calls and waits (ACTIVITY_TIMEOUT_SECONDS, a minute). So
every attempt heartbeats while it runs, and effects are scheduled with a short heartbeat
timeout (ACTIVITY_HEARTBEAT_SECONDS): a dead worker's attempt is retried within seconds.

A retry that quick can meet a request the dead attempt sent that Mattermost has not carried
out yet: a post it would make a second time, an older edit that would land over a newer one.
So each heartbeat carries the attempt's `AttemptRecord`, and the next attempt waits until no
change an earlier one asked for can still land before it looks for an earlier post again or
changes anything itself (`EffectAttempt.outwait_earlier`, `EffectAttempt.change`).

Temporal sends the newest heartbeat only every 0.8 heartbeat timeouts, so the last record of
a worker that died may be seconds old and miss a request sent since. An attempt that fails
says so in its last record, which Temporal receives before the failure, and the next attempt
trusts it; after one that did not end, the next attempt takes the worst case: a request the
dead worker abandoned just before the next attempt began, landing within one request timeout
(the bound docs/reliability.md sets for every abandoned post), unless its record shows it
was waiting for earlier changes until past its own deadline: such an attempt sends nothing
(it ends just before its deadline instead), and the next one waits for the same moment (an
attempt shorter than a request timeout would otherwise wait longer than it lives, attempt
after attempt). Most attempts are over within
milliseconds and send no heartbeat at all (a success has no next attempt to tell).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from mattermost_client.gateway import MattermostFailure
from models.activity_io import AttemptRecord

T = TypeVar("T")

# Heartbeats per heartbeat timeout: Temporal forwards one every 0.8 timeouts, so it always has a recent one.
BEATS_PER_TIMEOUT = 4
# An attempt that cannot outwait earlier changes within its own deadline ends this long
# before it, so that its last record reaches Temporal before the attempt times out.
END_BEFORE_DEADLINE_SECONDS = 0.5

_current: ContextVar[EffectAttempt] = ContextVar("effect_attempt")


def earlier_changes_land_by(
    previous: AttemptRecord | None, *, attempt: int, began_at: datetime, request_timeout: float
) -> datetime | None:
    """Until when a change an earlier attempt asked for may land, if that is after `began_at`.

    `previous` is the last record Temporal got from an earlier attempt (None: none came).
    """
    if attempt == 1:
        return None
    if previous is not None and previous.attempt == attempt - 1 and previous.ended:
        land_by = previous.changes_land_by
    elif previous is not None and previous.attempt == attempt - 1 and _outlived(previous):
        # It was still waiting for earlier changes when it timed out: it sent nothing, and
        # what it waited for is what is left to wait for (an attempt shorter than a request
        # timeout would otherwise wait longer than it lives, attempt after attempt).
        land_by = previous.waiting_until
    else:
        # The previous attempt did not end, and its last record may miss a request sent since.
        # Every request of an earlier attempt was abandoned before this one began (by a worker
        # that died, or by its own timeout before its attempt ended): it lands within one
        # request timeout of that, or never.
        timeout = max(request_timeout, previous.request_timeout if previous else 0.0)
        land_by = began_at + timedelta(seconds=timeout)
    return land_by if land_by is not None and land_by > began_at else None


def _outlived(record: AttemptRecord) -> bool:
    """The attempt would have waited for earlier changes beyond its own deadline."""
    return record.waiting_until is not None and record.deadline is not None and record.waiting_until >= record.deadline


class EffectAttempt:
    """The running attempt of an activity (see the module's docstring)."""

    def __init__(
        self,
        *,
        attempt: int,
        request_timeout: float,
        earlier_land_by: datetime | None,
        deadline: datetime | None = None,
        heartbeats: bool = False,
    ) -> None:
        self.attempt = attempt
        self.request_timeout = request_timeout
        # When Temporal times the attempt out (None: it sets no start-to-close timeout).
        self.deadline = deadline
        self.heartbeats = heartbeats
        self._earlier_land_by = earlier_land_by
        # When each change this attempt sent and got no answer to may still land.
        self._unanswered: list[datetime] = []
        self.ended = False

    def record(self) -> AttemptRecord:
        pending = [when for when in (self._earlier_land_by, *self._unanswered) if when is not None]
        return AttemptRecord(
            attempt=self.attempt,
            changes_land_by=max(pending, default=None),
            ended=self.ended,
            request_timeout=self.request_timeout,
            waiting_until=self._earlier_land_by,
            deadline=self.deadline,
        )

    def beat(self) -> None:
        activity.heartbeat(self.record())

    async def outwait_earlier(self) -> bool:
        """Wait until no change an earlier attempt asked for can still land; whether one could
        have landed since this attempt began (a post it looked for may be there now)."""
        land_by = self._earlier_land_by
        if land_by is None:
            return False
        if self.heartbeats:
            self.beat()  # on record at once: it waits, and has sent nothing
        if self.deadline is not None and land_by >= self.deadline:
            # It cannot wait that long: it waits what it may and ends without sending anything
            # (never after its deadline, when Temporal has already handed the effect to the
            # next attempt), and the next attempt waits for the rest.
            ending = (self.deadline - _now()).total_seconds() - END_BEFORE_DEADLINE_SECONDS
            await asyncio.sleep(max(0.0, ending))
            raise ApplicationError(
                f"Waiting until {land_by.isoformat()} for an earlier attempt's changes to land", type="StillWaiting"
            )
        await asyncio.sleep(max(0.0, (land_by - _now()).total_seconds()))
        self._earlier_land_by = None
        return True

    async def change(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a request that changes something in Mattermost (a post, an edit): after any
        earlier attempt's changes (so they land in order), and on the record until answered."""
        await self.outwait_earlier()
        land_by = _now() + timedelta(seconds=2 * self.request_timeout)
        self._unanswered.append(land_by)
        try:
            result = await send()
        except MattermostFailure as failure:
            if not failure.may_have_landed:
                self._unanswered.remove(land_by)
            raise
        self._unanswered.remove(land_by)
        return result

    async def keep_beating(self, interval: float) -> None:
        # Not at once: most attempts are over within milliseconds and need no heartbeat at all.
        while True:
            await asyncio.sleep(interval)
            self.beat()


def current_attempt() -> EffectAttempt:
    """The running activity's attempt, set by the worker's `EffectAttempts` interceptor."""
    return _current.get()


class EffectAttempts(Interceptor):
    """The worker's interceptor: every activity runs as an `EffectAttempt`, heartbeating."""

    def __init__(self, *, request_timeout: float) -> None:
        self._request_timeout = request_timeout

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Attempting(next, self._request_timeout)


class _Attempting(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, request_timeout: float) -> None:
        super().__init__(next)
        self._request_timeout = request_timeout

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        began = _now()
        attempt = EffectAttempt(
            attempt=info.attempt,
            request_timeout=self._request_timeout,
            earlier_land_by=earlier_changes_land_by(
                _record(info.heartbeat_details),
                attempt=info.attempt,
                began_at=began,
                request_timeout=self._request_timeout,
            ),
            deadline=began + info.start_to_close_timeout if info.start_to_close_timeout else None,
            heartbeats=bool(info.heartbeat_timeout),
        )
        token = _current.set(attempt)
        timeout = info.heartbeat_timeout
        beating = (
            asyncio.create_task(attempt.keep_beating(timeout.total_seconds() / BEATS_PER_TIMEOUT)) if timeout else None
        )
        try:
            return await super().execute_activity(input)
        except BaseException:
            if beating is not None:
                # Its last word, which Temporal receives before the failure: the next attempt
                # trusts it (a success has no next attempt). Without a heartbeat timeout (an
                # activity scheduled by a workflow that sets none) there is no heartbeat at all.
                attempt.ended = True
                attempt.beat()
            raise
        finally:
            if beating is not None:
                beating.cancel()
                await asyncio.wait([beating])
            _current.reset(token)


def _record(details: Sequence[Any]) -> AttemptRecord | None:
    """The earlier attempt's record; None when there is none, or it is not one (an older worker's)."""
    if not details:
        return None
    try:
        return AttemptRecord.model_validate(details[0])
    except ValidationError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)
