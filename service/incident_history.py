"""An incident's recorded history, read back: every run of its workflow, decoded into the steps
`workflows.incident_rebuild` re-applies (the incident at any moment, the dry run of a playbook).

Each step carries the time of the workflow task that ran it, the `workflow.now()` the live
workflow saw: a command runs in the task whose completion is followed by its
`WorkflowExecutionUpdateAccepted` event; a signal, an activity's result or a cancellation
request is delivered to the next task that starts after it was recorded. Within a task the
workflow's SDK applies signals and updates first, then activity results, then its main loop runs
(what is due); the steps follow that order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from models.activity_io import (
    AddMembers,
    AddMembersResult,
    ChannelRef,
    ClearButtons,
    CreateChannel,
    EditPost,
    PostMessage,
    PostRef,
    RespondToCommand,
    SetChannelHeader,
)
from models.command_table import COMMANDS
from models.common import Actor
from models.incident import IncidentStart, IncidentState, incident_workflow_id
from models.incident_alerts import ReceiveAlerts
from models.incident_commands import OpenIncident
from models.paging import EditPages, PageDelivery, SendPage
from models.stats import IncidentFacts
from models.webhooks import Forwarded, ForwardEvents, WebhookGaveUp
from service import incident_access as incidents
from service.container import Services
from service.errors import invalid
from service.temporal_calls import quote
from service.time_bounds import time_bound
from service.unavailability import rpc_error
from workflows.incident_rebuild import (
    ActivityFinished,
    CancelRequested,
    RunStarted,
    SignalReceived,
    Step,
    TaskEnded,
    UpdateAccepted,
    replayed_until,
    run_seed,
)

UPDATE_INPUTS: dict[str, type[Any]] = {
    **{spec.name: spec.command for spec in COMMANDS},
    "open_incident": OpenIncident,
    "receive_alerts": ReceiveAlerts,
}
SIGNAL_INPUTS: dict[str, type[Any]] = {"webhook_failed": WebhookGaveUp}
# Each activity's input and result types (None: its result changes nothing).
ACTIVITY_IO: dict[str, tuple[type[Any], type[Any] | None]] = {
    "create_incident_channel": (CreateChannel, ChannelRef),
    "add_channel_members": (AddMembers, AddMembersResult),
    "post_message": (PostMessage, PostRef),
    "edit_post": (EditPost, PostRef),
    "clear_buttons": (ClearButtons, None),
    "set_channel_header": (SetChannelHeader, None),
    "respond_to_command": (RespondToCommand, None),
    "send_page": (SendPage, PageDelivery),
    "edit_pages": (EditPages, None),
    "forward_webhook_events": (ForwardEvents, Forwarded),
    "report_incident_facts": (IncidentFacts, None),
}
# The activities whose input the rebuild reads (the others are told apart by their type alone).
INPUT_READ = frozenset(
    {"create_incident_channel", "post_message", "edit_post", "clear_buttons", "send_page", "forward_webhook_events"}
)
PATCH_MARKER = "core_patch"
# The one timer of the workflow that is not its main loop's (a lane gathering changes): see `woke`.
LANE_TIMER = "gather changes"

logger = logging.getLogger(__name__)


async def incident_at(svc: Services, actor: Actor, incident_id: str, at: datetime) -> IncidentState:
    """The incident as it stood at `at`, rebuilt from its history with today's code, for who may
    see it (anyone else: 404, before any history is read). A time before its start, or to come,
    is 422."""
    access = await incidents.load(svc, actor, incident_id)
    return await rebuilt_at(svc, access.state, at)


async def rebuilt_at(svc: Services, current: IncidentState, at: datetime) -> IncidentState:
    """The incident (`current`: as it is now, which the caller may see) as it stood at `at`."""
    incident_id = current.id
    at = time_bound(at) or at
    started = current.started_at
    if at < started:
        raise invalid(
            f"The incident started at {started.isoformat()}: ask for a time from then on.",
            {"as_of": f"before the incident started ({started.isoformat()})"},
        )
    if at > datetime.now(UTC):
        raise invalid("That time is still to come: ask for a time up to now.", {"as_of": "in the future"})
    try:
        histories = await fetch_histories(svc.temporal, incident_id, rpc_timeout=svc.rpc_timeout, at=at)
    except RPCError as error:
        raise rpc_error(error) from None
    steps = await incident_steps(histories, svc.temporal.data_converter)
    if not steps:
        return current
    # The start's own moment (`requested_at`) may come a moment before its first workflow task.
    engine = replayed_until(steps, max(at, steps[0].at))
    if engine.unexplained:
        # The rebuild still answers (the state as the current code makes it), but it may differ
        # from what the incident showed then: said, so a drift between code and history is seen.
        logger.warning(
            "incident %s rebuilt at %s with %d unexpected step(s) in its history: %s",
            incident_id,
            at.isoformat(),
            len(engine.unexplained),
            "; ".join(engine.unexplained[:5]),
        )
    return engine.state if engine.state is not None else current


async def fetch_histories(
    client: Client, incident_id: str, *, rpc_timeout: Any = None, at: datetime | None = None
) -> list[WorkflowHistory]:
    """Every run of the incident's workflow, oldest first (continuations and restarts included);
    with `at`, only the run the incident was in at `at`: each later run starts from the whole
    state its predecessor left (`IncidentStart.resume`), so the runs before it change nothing."""
    workflow_id = incident_workflow_id(incident_id)
    listing = client.list_workflows(f"WorkflowId = {quote(workflow_id)}", rpc_timeout=rpc_timeout)
    found = {run.run_id: run.start_time async for run in listing}
    # Visibility lags a moment behind: the latest run (a restart just now) is asked for directly.
    latest = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout)
    found.setdefault(latest.run_id, latest.start_time)
    runs = sorted(found, key=lambda run_id: found[run_id]) if at is None else runs_in_force(found, at)
    # The runs' histories are read at once (a long incident has several).
    return list(
        await asyncio.gather(
            *(
                client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history(rpc_timeout=rpc_timeout)
                for run_id in runs
            )
        )
    )


def runs_in_force(started: dict[str, datetime], at: datetime) -> list[str]:
    """Of the runs (each run id with its start), the one the incident was in at `at`: the last
    started by then (the first, for a moment before any)."""
    runs = sorted(started, key=lambda run_id: started[run_id])
    return [run_id for run_id in runs if started[run_id] <= at][-1:] or runs[:1]


@dataclass
class _Task:
    """What one workflow task of a run saw: delivered before it started, and the updates it ran."""

    at: datetime
    delivered: list[Step] = field(default_factory=list)
    updates: list[Step] = field(default_factory=list)
    completed: bool = False
    # Its main loop's timer fired, or it started or cancelled one: the loop ran (see `woke`).
    timer_seen: bool = False


class _RunReader:
    def __init__(self, converter: DataConverter) -> None:
        self.converter = converter
        self.steps: list[Step] = []
        self.start: IncidentStart | None = None
        self.seed = 0
        self.patches: set[str] = set()
        self.scheduled: dict[int, tuple[str, list[Payload]]] = {}
        # Recorded since the last task started: delivered to the next one.
        self.waiting: list[Step] = []
        self.task: _Task | None = None
        self.tasks: list[_Task] = []
        # The main loop's timers by their started event (their summaries say which they are).
        self.loop_timers: set[int] = set()
        self.loop_timer_fired = False
        # A timer without a summary (recorded before they had them): every task counts as woken.
        self.timers_unnamed = False

    async def one(self, value: Sequence[Payload], kind: type[Any]) -> Any:
        decoded = await self.converter.decode(list(value), [kind])
        return decoded[0] if decoded else None

    async def read(self, history: WorkflowHistory) -> list[Step]:
        for event in history.events:
            await self._event(event)
        first = True
        steps: list[Step] = []
        for task in self.tasks:
            if not task.completed:
                continue
            if first:
                if self.start is None:
                    return []
                steps.append(RunStarted(at=task.at, start=self.start, seed=self.seed, patches=frozenset(self.patches)))
                first = False
            signals = [s for s in task.delivered if isinstance(s, SignalReceived)]
            others = [s for s in task.delivered if not isinstance(s, SignalReceived | CancelRequested)]
            cancels = [s for s in task.delivered if isinstance(s, CancelRequested)]
            steps.extend([*signals, *task.updates, *others, *cancels, TaskEnded(at=task.at, woke=self._woke(task))])
        return steps

    def _woke(self, task: _Task) -> bool:
        """Whether the workflow's main loop ran in the task (and so did what was due then).

        It runs when what it waits for changes: its timer fires, or something else ends the wait
        (its timer is then cancelled), and each time it waits again with a timer (started). A
        command, a signal, a cancellation and the channel's opening always wake it. A task that
        only carried an activity's result to a lane did not, unless one of its timers says so:
        something due then is done at the later task the live workflow did it in."""
        if self.timers_unnamed or task.timer_seen or task.updates:
            return True
        return any(
            isinstance(step, SignalReceived | CancelRequested)
            or (isinstance(step, ActivityFinished) and step.activity == "create_incident_channel")
            for step in task.delivered
        )

    async def _event(self, event: HistoryEvent) -> None:
        # One dictionary look-up per event: most events (task scheduling, activity starts) say nothing.
        handler = _HANDLERS.get(event.event_type)
        if handler is not None:
            await handler(self, event)

    async def _started(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.start = await self.one(attrs.input.payloads, IncidentStart)
        self.seed = run_seed(attrs.original_execution_run_id)

    async def _task_started(self, event: HistoryEvent) -> None:
        at = _time(event)
        self.task = _Task(at=at, timer_seen=self.loop_timer_fired)
        self.loop_timer_fired = False
        self.tasks.append(self.task)
        for step in self.waiting:
            self.task.delivered.append(_at(step, at))
        self.waiting = []

    async def _task_completed(self, event: HistoryEvent) -> None:
        if self.task is not None:
            self.task.completed = True

    async def _task_lost(self, event: HistoryEvent) -> None:
        # Its work was thrown away: what it was given goes to the next task.
        if self.task is not None:
            self.tasks.remove(self.task)
            self.waiting = [*self.task.delivered, *self.waiting]
            self.task = None

    async def _update_accepted(self, event: HistoryEvent) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        name = request.input.name
        command = await self.one(request.input.args.payloads, UPDATE_INPUTS.get(name, dict))
        if self.task is not None:
            self.task.updates.append(UpdateAccepted(at=self.task.at, name=name, command=command))

    async def _signaled(self, event: HistoryEvent) -> None:
        attrs = event.workflow_execution_signaled_event_attributes
        payload = await self.one(attrs.input.payloads, SIGNAL_INPUTS.get(attrs.signal_name, dict))
        self.waiting.append(SignalReceived(at=_time(event), name=attrs.signal_name, payload=payload))

    async def _cancel_requested(self, event: HistoryEvent) -> None:
        reason = event.workflow_execution_cancel_requested_event_attributes.cause
        self.waiting.append(CancelRequested(at=_time(event), reason=reason))

    async def _activity_scheduled(self, event: HistoryEvent) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        self.scheduled[event.event_id] = (attrs.activity_type.name, list(attrs.input.payloads))

    async def _activity_completed(self, event: HistoryEvent) -> None:
        done = event.activity_task_completed_event_attributes
        await self._finished(done.scheduled_event_id, _time(event), result=done.result.payloads)

    async def _activity_failed(self, event: HistoryEvent) -> None:
        failed = event.activity_task_failed_event_attributes
        failure = await self.converter.decode_failure(failed.failure)
        await self._finished(failed.scheduled_event_id, _time(event), failure=failure)

    async def _activity_timed_out(self, event: HistoryEvent) -> None:
        timed_out = event.activity_task_timed_out_event_attributes
        failure = await self.converter.decode_failure(timed_out.failure)
        await self._finished(timed_out.scheduled_event_id, _time(event), failure=failure)

    async def _timer_started(self, event: HistoryEvent) -> None:
        metadata = event.user_metadata
        summary = await self.one([metadata.summary], str) if metadata.HasField("summary") else None
        if summary is None:
            self.timers_unnamed = True
        elif summary != LANE_TIMER:
            self.loop_timers.add(event.event_id)
            if self.task is not None:
                self.task.timer_seen = True

    async def _timer_canceled(self, event: HistoryEvent) -> None:
        if event.timer_canceled_event_attributes.started_event_id in self.loop_timers and self.task is not None:
            self.task.timer_seen = True

    async def _timer_fired(self, event: HistoryEvent) -> None:
        if event.timer_fired_event_attributes.started_event_id in self.loop_timers:
            self.loop_timer_fired = True

    async def _marker(self, event: HistoryEvent) -> None:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == PATCH_MARKER and "patch-data" in marker.details:
            data = await self.one(marker.details["patch-data"].payloads, dict)
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                self.patches.add(data["id"])

    async def _finished(
        self, scheduled_id: int, at: datetime, *, result: Sequence[Payload] = (), failure: BaseException | None = None
    ) -> None:
        name, given = self.scheduled.get(scheduled_id, ("", []))
        kinds = ACTIVITY_IO.get(name)
        if kinds is None:
            return  # statistics and the like: nothing of the incident depends on them
        input_kind, result_kind = kinds
        value = await self.one(given, input_kind) if name in INPUT_READ else None
        outcome = await self.one(result, result_kind) if result and result_kind is not None else None
        step = ActivityFinished(at=at, activity=name, input=value, result=outcome, failure=failure)
        self.waiting.append(step)


_Handler = Callable[[_RunReader, HistoryEvent], Awaitable[None]]
_HANDLERS: dict[int, _Handler] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: _RunReader._started,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: _RunReader._task_started,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: _RunReader._task_completed,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: _RunReader._task_lost,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: _RunReader._task_lost,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: _RunReader._update_accepted,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: _RunReader._signaled,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: _RunReader._cancel_requested,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: _RunReader._activity_scheduled,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: _RunReader._activity_completed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: _RunReader._activity_failed,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: _RunReader._activity_timed_out,
    EventType.EVENT_TYPE_TIMER_STARTED: _RunReader._timer_started,
    EventType.EVENT_TYPE_TIMER_CANCELED: _RunReader._timer_canceled,
    EventType.EVENT_TYPE_TIMER_FIRED: _RunReader._timer_fired,
    EventType.EVENT_TYPE_MARKER_RECORDED: _RunReader._marker,
}


def _time(event: HistoryEvent) -> datetime:
    """`workflow.now()` at the event: its time in nanoseconds, as a float of seconds (its rounding too)."""
    return datetime.fromtimestamp(event.event_time.ToNanoseconds() / 1e9, UTC)


def _at(step: Step, at: datetime) -> Step:
    """The step as the task that ran it saw it: at the task's time."""
    return replace(step, at=at)


async def incident_steps(histories: Sequence[WorkflowHistory], converter: DataConverter) -> list[Step]:
    """The steps of every run, oldest first: what `workflows.incident_rebuild` re-applies."""
    steps: list[Step] = []
    for history in histories:
        steps.extend(await _RunReader(converter).read(history))
    return steps
