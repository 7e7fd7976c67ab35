"""`IncidentWebhooksWorkflow`: delivers one incident's events to the subscriptions that want them.

Started by the incident's webhooks lane (signal-with-start, `activities.webhook_activities`)
when the first subscription wants one of its events. Each subscription has a lane of its own
here: its events go out in `seq` order (1, 2, 3... per incident and subscription, no gaps),
one at a time, each tried until the receiver accepts it (2xx), refuses it (another 4xx: on
the incident's timeline), or `give_up_seconds` pass (on the timeline too). Between attempts
a durable timer waits (exponential backoff with jitter, at least the receiver's Retry-After),
so a worker or Temporal restart loses nothing; an attempt whose worker died is noticed by its
heartbeat and tried again with the same `webhook-id`. A lane never holds back another lane,
the incident, or its Mattermost posts. Each delivery, as it stands, is reported to the
subscription's owner (its deliveries list). The last `EVENTS_KEPT` delivered events stay for
redelivery; the workflow closes `keep_seconds` after its last delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from models.incident import incident_workflow_id
    from models.refusals import conflict, not_found
    from models.webhooks import (
        EVENTS_KEPT,
        AttemptOutcome,
        DeliverWebhook,
        DeliveryAttempt,
        DeliveryRecord,
        DeliveryReport,
        DeliveryState,
        EventsArrived,
        IncidentWebhooksState,
        Lane,
        Redeliver,
        WebhookEvent,
        WebhookGaveUp,
        event_body,
    )
    from workflows.incident_messages import format_duration

# By name: the activity lives in activities/webhook_delivery.py.
DELIVER_ACTIVITY = "deliver_webhook"
# How long an attempt may go without a heartbeat (its worker died) before it counts as failed.
ATTEMPT_HEARTBEAT_SECONDS = 10.0
ERROR_KEPT = 300


def retry_delay(attempts: int, initial: float, ceiling: float, jitter: float, retry_after: float | None) -> float:
    """Seconds until the next attempt: `initial` doubling per attempt up to `ceiling`, times
    `jitter` (0.8 to 1.2: receivers coming back are not hit by every lane at once), and never
    sooner than the receiver's Retry-After."""
    delay = min(ceiling, initial * 2.0 ** max(0, attempts - 1)) * jitter
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@workflow.defn
class IncidentWebhooksWorkflow:
    @workflow.init
    def __init__(self, start: IncidentWebhooksState) -> None:
        self.state = start
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Deliveries this run told the owner about while they waited (a new run tells them again:
        # the owner replaces a delivery's earlier report).
        self._announced: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, start: IncidentWebhooksState) -> None:
        while True:
            self._reap()
            if self._should_continue_as_new() and not self._tasks:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.state)
            for lane in self._startable():
                self._tasks[lane] = asyncio.create_task(self._drive(lane))
            if self._tasks or self._startable():
                await workflow.wait_condition(
                    lambda: (
                        any(t.done() for t in self._tasks.values())
                        or bool(self._startable())
                        or (self._should_continue_as_new() and not self._tasks)
                    )
                )
                continue
            try:
                await workflow.wait_condition(
                    lambda: bool(self._startable()) or self._should_continue_as_new(),
                    timeout=self.state.config.keep_seconds,
                    timeout_summary="keep delivered events for redelivery",
                )
            except TimeoutError:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._startable():
                    return

    def _should_continue_as_new(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    def _startable(self) -> list[str]:
        if self._should_continue_as_new():
            return []
        return [sid for sid, lane in self.state.lanes.items() if lane.queue and sid not in self._tasks]

    def _reap(self) -> None:
        for sid, task in list(self._tasks.items()):
            if task.done():
                del self._tasks[sid]
                task.result()  # a bug fails the workflow task (retried), never passes silently

    # ------------------------------------------------------------------ events in

    @workflow.signal
    def events_arrived(self, arrived: EventsArrived) -> None:
        """Events of the incident, in order, and the subscriptions that want each (a repeat is ignored)."""
        self.state.config = arrived.config
        now = workflow.now()
        for item in arrived.events:
            event = item.event
            if event.number <= self.state.last_number:
                continue
            self.state.last_number = event.number
            self.state.events[event.id] = event
            for sid, owner in item.targets.items():
                lane = self.state.lanes.get(sid)
                if lane is None:
                    # A run started again for the incident goes on counting where the last one stopped.
                    first = arrived.handed_before.get(sid, 0) + 1
                    lane = self.state.lanes[sid] = Lane(subscription_id=sid, owner_workflow_id=owner, next_seq=first)
                lane.owner_workflow_id = owner
                record = DeliveryRecord(
                    delivery_id=event.id,
                    event_id=event.id,
                    type=event.type,
                    incident_id=self.state.incident_id,
                    seq=lane.next_seq,
                    created_at=now,
                )
                lane.next_seq += 1
                lane.queue.append(record)

    # ------------------------------------------------------------------ one lane

    async def _drive(self, sid: str) -> None:
        """Deliver the lane's events in order until it is empty (or it is time to continue as new)."""
        while not self._should_continue_as_new():
            lane = self.state.lanes.get(sid)
            if lane is None or not lane.queue:
                return
            await self._announce(lane)
            record = lane.queue[0]
            due = record.next_attempt_at
            if due is not None and due > workflow.now():
                with contextlib.suppress(TimeoutError):  # the usual end: it is time to try again
                    await workflow.wait_condition(
                        lambda: self._should_continue_as_new() or bool(self._unannounced(sid)),
                        timeout=(due - workflow.now()).total_seconds(),
                        timeout_summary=f"retry {record.type} #{record.seq} to webhook {sid}",
                    )
                continue
            event = self.state.events.get(record.event_id)
            if event is None:  # cannot happen: an event stays while a lane holds it
                lane.queue.pop(0)
                continue
            attempt = await self._attempt(lane, record, event)
            await self._settle(lane, record, event, attempt)

    def _unannounced(self, sid: str) -> list[DeliveryRecord]:
        lane = self.state.lanes.get(sid)
        if lane is None:
            return []
        return [r for r in lane.queue if (sid, r.delivery_id) not in self._announced]

    async def _announce(self, lane: Lane) -> None:
        """Tell the owner of the deliveries that wait in the lane (its list shows them pending)."""
        for record in self._unannounced(lane.subscription_id):
            self._announced.add((lane.subscription_id, record.delivery_id))
            await self._report(lane, record)

    async def _attempt(self, lane: Lane, record: DeliveryRecord, event: WebhookEvent) -> DeliveryAttempt:
        config = self.state.config
        try:
            result: DeliveryAttempt = await workflow.execute_activity(
                DELIVER_ACTIVITY,
                DeliverWebhook(
                    owner_workflow_id=lane.owner_workflow_id,
                    subscription_id=lane.subscription_id,
                    event_id=event.id,
                    body=event_body(event, record.seq),
                ),
                result_type=DeliveryAttempt,
                start_to_close_timeout=timedelta(seconds=config.attempt_timeout_seconds + 15),
                heartbeat_timeout=timedelta(seconds=ATTEMPT_HEARTBEAT_SECONDS),
                # One attempt: the retries are this workflow's (durable timers, on the record).
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"{record.type} #{record.seq} to webhook {lane.subscription_id}",
            )
        except ActivityError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
            return DeliveryAttempt(outcome=AttemptOutcome.RETRY, error=f"the attempt failed: {message}")
        return result

    async def _settle(self, lane: Lane, record: DeliveryRecord, event: WebhookEvent, attempt: DeliveryAttempt) -> None:
        now = workflow.now()
        record.attempts += 1
        record.last_attempt_at = now
        record.last_status = attempt.status
        record.last_error = attempt.error[:ERROR_KEPT]
        record.next_attempt_at = None
        if attempt.outcome == AttemptOutcome.GONE:
            # The subscription was deleted: nothing more goes to it.
            del self.state.lanes[lane.subscription_id]
            self._forget_unqueued()
            return
        if attempt.outcome == AttemptOutcome.ACCEPTED:
            record.state = DeliveryState.DELIVERED
            record.delivered_at = now
        elif attempt.outcome == AttemptOutcome.REFUSED:
            record.state = DeliveryState.REFUSED
        elif now - record.created_at >= timedelta(seconds=self.state.config.give_up_seconds):
            record.state = DeliveryState.GAVE_UP
        else:
            record.next_attempt_at = now + timedelta(seconds=self._delay(record, attempt, now))
            await self._report(lane, record)
            return
        lane.queue.pop(0)
        self._announced.discard((lane.subscription_id, record.delivery_id))
        lane.done.append(record)
        del lane.done[:-EVENTS_KEPT]
        self._keep(event.id)
        await self._report(lane, record)
        if record.state in (DeliveryState.REFUSED, DeliveryState.GAVE_UP):
            await self._tell_incident(lane, record, attempt)

    def _delay(self, record: DeliveryRecord, attempt: DeliveryAttempt, now: datetime) -> float:
        config = self.state.config
        jitter = 0.8 + 0.4 * workflow.random().random()
        delay = retry_delay(
            record.attempts, config.retry_initial_seconds, config.retry_max_seconds, jitter, attempt.retry_after_seconds
        )
        # The last try comes when the give-up time is reached, not after it.
        left = (record.created_at + timedelta(seconds=config.give_up_seconds) - now).total_seconds()
        return max(0.5, min(delay, left))

    def _keep(self, event_id: str) -> None:
        """A delivered event stays for redelivery (the newest EVENTS_KEPT) once no lane waits on it."""
        if self._queued(event_id):
            return
        if event_id not in self.state.kept:
            self.state.kept.append(event_id)
        self._forget_unqueued()

    def _queued(self, event_id: str) -> bool:
        return any(r.event_id == event_id for lane in self.state.lanes.values() for r in lane.queue)

    def _forget_unqueued(self) -> None:
        kept = self.state.kept[-EVENTS_KEPT:]
        self.state.kept = kept
        wanted = set(kept) | {r.event_id for lane in self.state.lanes.values() for r in lane.queue}
        self.state.events = {eid: e for eid, e in self.state.events.items() if eid in wanted}

    async def _report(self, lane: Lane, record: DeliveryRecord) -> None:
        """Tell the owner how the delivery stands (its deliveries list); an owner gone is no matter."""
        handle = workflow.get_external_workflow_handle(lane.owner_workflow_id)
        with contextlib.suppress(FailureError):
            await handle.signal(
                "record_delivery", DeliveryReport(subscription_id=lane.subscription_id, record=record.model_copy())
            )

    async def _tell_incident(self, lane: Lane, record: DeliveryRecord, attempt: DeliveryAttempt) -> None:
        refused = record.state == DeliveryState.REFUSED
        if refused:
            status = f"answered {attempt.status}" if attempt.status else "refused it"
            reason = f"{status}{': ' + attempt.error if attempt.error else ''}; it is not sent again"
        else:
            within = format_duration(self.state.config.give_up_seconds)
            last = f"{record.last_status} {record.last_error}" if record.last_status else record.last_error
            reason = f"no answer accepted it within {within} ({record.attempts} attempts; last: {last.strip()})"
        failure = WebhookGaveUp(
            subscription_id=lane.subscription_id,
            url=attempt.url,
            event_id=record.event_id,
            type=record.type,
            reason=reason,
            refused=refused,
        )
        handle = workflow.get_external_workflow_handle(incident_workflow_id(self.state.incident_id))
        with contextlib.suppress(FailureError):  # the incident's run has closed: the deliveries list has it
            await handle.signal("webhook_failed", failure)

    # ------------------------------------------------------------------ redelivery

    @workflow.update
    def redeliver(self, request: Redeliver) -> int:
        """Queue again one delivered event (`only`), or it and every later one of this incident:
        the same ids and seqs, after what waits. How many were queued."""
        lane = self.state.lanes[request.subscription_id]
        start = next(r for r in lane.done if r.event_id == request.event_id)
        chosen = [start] if request.only else [r for r in lane.done if r.seq >= start.seq]
        chosen = sorted(
            (r for r in {r.event_id: r for r in chosen}.values() if r.event_id in self.state.events),
            key=lambda r: r.seq,
        )
        now = workflow.now()
        for earlier in chosen:
            lane.redeliveries += 1
            lane.queue.append(
                DeliveryRecord(
                    delivery_id=f"{earlier.event_id}#{lane.redeliveries}",
                    event_id=earlier.event_id,
                    type=earlier.type,
                    incident_id=earlier.incident_id,
                    seq=earlier.seq,
                    created_at=now,
                    redelivery=True,
                )
            )
        return len(chosen)

    @redeliver.validator
    def _check_redeliver(self, request: Redeliver) -> None:
        lane = self.state.lanes.get(request.subscription_id)
        if lane is None:
            raise not_found("This webhook has no deliveries of this incident.")
        found = next((r for r in lane.done if r.event_id == request.event_id), None)
        if found is None:
            if any(r.event_id == request.event_id for r in lane.queue):
                raise conflict("This event is still being delivered; it cannot be redelivered before it is done.")
            raise not_found(f"This event is no longer kept; the newest {EVENTS_KEPT} of each incident are.")
        if request.event_id not in self.state.events:
            raise not_found(f"This event is no longer kept; the newest {EVENTS_KEPT} of each incident are.")
