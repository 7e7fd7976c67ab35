"""`ScheduleWorkflow`: an on-call schedule is a long-lived entity workflow, one per schedule.

The service starts it with the schedule and changes it with Updates whose validators refuse
what cannot be done (a change of id or team, a deleted schedule): no trace in history, so the
history is the audit log of every change. The main loop sleeps on a durable timer until the
next handoff (`models.schedules.next_handoffs`), then tells the people going off and coming
on by direct message, and the schedule's channel if it has one. A change wakes the loop,
which computes the next handoff again; handoffs before the change are not told. After an
outage only the latest handoff missed is told (who is on call now), never a backlog. The
memo holds the schedule, so the service lists a team's schedules without asking each
workflow; deleting completes the workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.schedule_activities import ScheduleActivities
    from models import search_attributes as sa
    from models.refusals import invalid, not_found
    from models.schedules import (
        ChangeSchedule,
        DeleteSchedule,
        Handoff,
        HandoffNotice,
        Schedule,
        ScheduleState,
        next_handoffs,
        oncall_at,
    )

SCHEDULE_MEMO = "schedule"
NOT_FOUND = "Schedule not found."
# A handoff told later than this after it happened is not worth telling any more.
TELL_WITHIN = timedelta(hours=1)
# The longest the loop sleeps without looking ahead again.
LOOK_AGAIN = timedelta(days=7)
# How many missed handoffs one wake-up looks through after an outage (only the latest is told).
MISSED_LOOKUP = 500


@workflow.defn
class ScheduleWorkflow:
    @workflow.init
    def __init__(self, start: ScheduleState) -> None:
        self.state = start
        self._memo: dict[str, Any] = {}
        self._team_set = False

    @workflow.run
    async def run(self, start: ScheduleState) -> None:
        while not self.state.deleted:
            self._refresh_view()
            version = self.state.version
            upcoming = next_handoffs(self.state.schedule, self.state.told_until, 1)
            # The search ahead is bounded (`models.schedules.HORIZON`, `CANDIDATES_MAX`): look
            # again at least every `LOOK_AGAIN`, which is well within what one search covers.
            look_again = workflow.now() + LOOK_AGAIN
            due = upcoming[0].at if upcoming and upcoming[0].at <= look_again else None
            if due is not None and due <= workflow.now():
                await self._tell_due_handoffs()
                continue
            try:
                await workflow.wait_condition(
                    self._changed_since(version),
                    timeout=(due or look_again) - workflow.now(),
                    timeout_summary=f"next handoff at {due.isoformat()}" if due else "look for the next handoff again",
                )
            except TimeoutError:
                if self.state.version == version and not self.state.deleted:
                    await self._tell_due_handoffs()
                continue
            if workflow.info().is_continue_as_new_suggested() and not self.state.deleted:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _changed_since(self, version: int) -> Callable[[], bool]:
        return lambda: (
            self.state.deleted or self.state.version != version or workflow.info().is_continue_as_new_suggested()
        )

    async def _tell_due_handoffs(self) -> None:
        now = workflow.now()
        schedule = self.state.schedule
        missed = [h for h in next_handoffs(schedule, self.state.told_until, MISSED_LOOKUP) if h.at <= now]
        self.state.told_until = now
        if not missed or now - missed[-1].at > TELL_WITHIN:
            return
        latest = missed[-1]
        if len(missed) > 1:
            # Everyone who went off since the first missed handoff, and whoever is on now.
            before = oncall_at(schedule, missed[0].at - timedelta(microseconds=1))
            after = oncall_at(schedule, latest.at)
            latest = Handoff(
                at=latest.at,
                outgoing=[u for u in before if u not in after],
                incoming=[u for u in after if u not in before],
            )
        await self._tell(latest)

    async def _tell(self, handoff: Handoff) -> None:
        schedule = self.state.schedule
        following = next_handoffs(schedule, handoff.at, 1)
        notice = HandoffNotice(
            schedule_id=schedule.id,
            schedule_name=schedule.name,
            time_zone=schedule.time_zone,
            handoff=handoff,
            oncall=oncall_at(schedule, handoff.at),
            next_at=following[0].at if following else None,
        )
        targets = [notice.model_copy(update={"user_id": u}) for u in dict.fromkeys(handoff.outgoing + handoff.incoming)]
        if schedule.channel_id:
            targets.append(notice.model_copy(update={"channel_id": schedule.channel_id}))
        # Each place in its own activity: one refusing (a deactivated user) holds back no other.
        outcomes = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    ScheduleActivities.tell_handoff,
                    target,
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=TELL_WITHIN,
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                    summary=f"tell {'channel' if target.channel_id else 'user'} "
                    f"{target.channel_id or target.user_id} of the handoff",
                )
                for target in targets
            ),
            return_exceptions=True,
        )
        for target, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                workflow.logger.warning(
                    "handoff of %s not told to %s: %s", schedule.id, target.user_id or target.channel_id, outcome
                )

    def _refresh_view(self) -> None:
        schedule = self.state.schedule
        if not self._team_set:
            # Once a run: a schedule never changes team (the update's validator refuses it).
            workflow.upsert_search_attributes([sa.SCHEDULE_TEAM_ID.value_set(schedule.team_id)])
            self._team_set = True
        memo = {SCHEDULE_MEMO: schedule.model_dump(mode="json")}
        if memo != self._memo:
            workflow.upsert_memo(memo)
            self._memo = memo
        now = workflow.now()
        upcoming = next_handoffs(schedule, now, 1)
        following = (
            f"next handoff {upcoming[0].at.isoformat()}: {', '.join(upcoming[0].incoming)} on"
            if upcoming
            else "no handoff ahead"
        )
        workflow.set_current_details(
            f"**{schedule.name}** ({schedule.time_zone}, version {self.state.version}) · "
            f"{len(schedule.rotations)} rotations · on call: {', '.join(oncall_at(schedule, now))} · {following}"
        )

    @workflow.query
    def schedule(self) -> Schedule | None:
        """The schedule as it stands; None once deleted."""
        return None if self.state.deleted else self.state.schedule

    def _check(self) -> None:
        if self.state.deleted:
            raise not_found(NOT_FOUND)

    @workflow.update
    def update_schedule(self, change: ChangeSchedule) -> Schedule:
        self.state.schedule = change.schedule
        self.state.version += 1
        # The new spec's handoffs count from now: nothing before the change is told.
        self.state.told_until = max(self.state.told_until, workflow.now())
        self._refresh_view()
        return self.state.schedule

    @update_schedule.validator
    def _check_update(self, change: ChangeSchedule) -> None:
        self._check()
        current = self.state.schedule
        if change.schedule.id != current.id:
            raise invalid("A schedule's id cannot change.", "id")
        if change.schedule.team_id != current.team_id:
            raise invalid("A schedule cannot move to another team; create one there instead.", "team_id")

    @workflow.update
    def delete_schedule(self, command: DeleteSchedule) -> Schedule:
        self.state.deleted = True
        return self.state.schedule

    @delete_schedule.validator
    def _check_delete(self, command: DeleteSchedule) -> None:
        self._check()
