"""The incident at any moment: its state rebuilt from what its history recorded.

An incident's workflow history holds everything that changed it: each run's start input
(a continued or restarted run's carries the incident as it was), every command it accepted
(with the time of the workflow task that ran it, the `workflow.now()` its handler saw), every
signal, every activity result, every operator's cancellation, and the workflow tasks in which
its timers did what was due. `replay` re-applies these, in the order the workflow saw them,
through the same rules the workflow runs (`workflows.incident_rules.Incident`: its `check_*`
and change methods and its `timed_work`; the activity outcomes of `workflows.incident_outcomes`),
so the state after a step is the state the live workflow had then.

Pure and deterministic: no Temporal calls, no I/O. `service.incident_history` reads and
decodes the history into `Step`s; this module only applies them. Ids the rules make
(`workflow.uuid4()`) come out the same: each run's random generator is seeded as Temporal
seeds the workflow's (`run_seed`).

The same engine runs a recorded incident's commands against a different start (a proposed
playbook, `replay(..., start_with=...)`, `follow_resumes=False`): a command the rules refuse
there is reported as such and changes nothing, as a refused update would.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from models import effects
from models.activity_io import AddMembersResult, ChannelRef, ClearButtons, PostMessage, PostRef
from models.command_table import COMMANDS
from models.incident import IncidentStart, IncidentState, IncidentStatus
from models.incident_alerts import ReceiveAlerts
from models.incident_commands import IncidentCommand
from models.paging import PageDelivery, SendPage
from models.webhooks import Forwarded, ForwardEvents, WebhookGaveUp
from workflows import incident_outcomes as outcomes
from workflows.incident_rules import Incident, check_start, new_incident
from workflows.incident_workflow import WEBHOOK_EVENTS_PATCH

RULES = {spec.name: spec.rule for spec in COMMANDS}

# ---------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class RunStarted:
    """A run of the incident's workflow began (the first, a continuation or a restart)."""

    at: datetime
    start: IncidentStart
    # The run's random seed (`run_seed`) and the patches its history has markers of.
    seed: int
    patches: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UpdateAccepted:
    """A command (an Update) the workflow accepted and ran in the workflow task at `at`."""

    at: datetime
    name: str
    command: Any


@dataclass(frozen=True)
class SignalReceived:
    at: datetime
    name: str
    payload: Any


@dataclass(frozen=True)
class ActivityFinished:
    """An effect's activity came back: its `result`, or the `failure` (as Temporal reports its cause)."""

    at: datetime
    activity: str
    input: Any
    result: Any = None
    failure: BaseException | None = None


@dataclass(frozen=True)
class CancelRequested:
    """An operator's cancellation request (the Web UI's *Request Cancellation*), with its reason."""

    at: datetime
    reason: str


@dataclass(frozen=True)
class TaskEnded:
    """A workflow task at `at` ends: its main loop, if it ran (`woke`), did what was due then."""

    at: datetime
    woke: bool = True


Step = RunStarted | UpdateAccepted | SignalReceived | ActivityFinished | CancelRequested | TaskEnded


@dataclass
class Replayed:
    """One step re-applied: the refusal of a command the rules refused (it changed nothing), and
    the incident after it (the engine's own object, changed by later steps: copy it to keep it)."""

    step: Step
    refusal: str | None
    state: IncidentState


def run_seed(run_id: str) -> int:
    """The seed of a run's `workflow.random()`: Temporal's core hashes the run id (its
    `original_execution_run_id`) with SipHash-1-3, keys 0, as Rust hashes a `str` (its bytes,
    then 0xff)."""
    return _siphash13(run_id.encode() + b"\xff")


_MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def _siphash13(data: bytes) -> int:
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def sip_round() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)

    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v3 ^= m
        sip_round()
        v0 ^= m
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[whole:], "little")
    v3 ^= last
    sip_round()
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        sip_round()
    return (v0 ^ v1 ^ v2 ^ v3) & _MASK


# ---------------------------------------------------------------------------- the engine


@dataclass
class Replay:
    """The incident as the steps applied so far left it.

    `follow_resumes`: a continued or restarted run starts from the state its start input carries
    (the recorded incident); without it, the incident goes on from its own state (a dry run).
    `start_with`: what the first run starts from instead of its recorded start input.
    """

    follow_resumes: bool = True
    start_with: Callable[[IncidentStart], IncidentStart] | None = None
    incident: Incident | None = None
    # What could not be matched to the incident's effects (a history this code does not explain).
    unexplained: list[str] = field(default_factory=list)
    _now: datetime | None = None
    _start: IncidentStart | None = None
    _refused: bool = False
    _opened: bool = False
    _cancellation_taken: bool = False
    _random: random.Random = field(default_factory=random.Random)

    @property
    def state(self) -> IncidentState | None:
        return self.incident.state if self.incident is not None else None

    def _new_id(self) -> str:
        # `workflow.uuid4()`, as `IncidentWorkflow._new_id` makes it.
        return uuid.UUID(bytes=self._random.getrandbits(128).to_bytes(16, "big"), version=4).hex[:12]

    def _clock(self) -> datetime:
        assert self._now is not None
        return self._now

    def apply(self, step: Step) -> str | None:
        """Apply one step; the refusal of a command the rules refused (then nothing changed)."""
        self._now = step.at
        if isinstance(step, RunStarted):
            self._run_started(step)
            return None
        incident = self.incident
        if incident is None:
            self.unexplained.append(f"{type(step).__name__} before any run started")
            return None
        if isinstance(step, UpdateAccepted):
            return self._update(incident, step)
        if isinstance(step, SignalReceived):
            if step.name == "webhook_failed" and isinstance(step.payload, WebhookGaveUp):
                incident.webhook_failed(step.at, step.payload)
        elif isinstance(step, ActivityFinished):
            self._activity(incident, step)
        elif isinstance(step, CancelRequested):
            if not self._cancellation_taken and not self._refused:
                self._cancellation_taken = True
                incident.end_by_operator(step.at, step.reason)
        elif self._opened and not self._refused:
            # The main loop does what is due, again and again, until nothing is.
            while step.woke and incident.timed_work(step.at):
                pass
            _drop_idle_clears(incident.state)
        return None

    # ------------------------------------------------------------------ runs

    def _run_started(self, step: RunStarted) -> None:
        start = step.start
        if self.start_with is not None and self._start is None:
            start = self.start_with(start)
        self._random = random.Random(step.seed)  # noqa: S311 - the workflow's own generator, seeded alike
        self._cancellation_taken = False
        keep_own = self.incident is not None and not self.follow_resumes
        self._start = start
        if start.resume is not None:
            state = self.incident.state if keep_own and self.incident else start.resume.model_copy(deep=True)
            self._refused = False
            self._opened = True
        else:
            self._opened = False
            refusal: ApplicationError | None = None
            try:
                check_start(start)
            except ApplicationError as refused:
                refusal = refused
            state = new_incident(start, step.at, self._new_id)
            self._refused = refusal is not None
            if refusal is not None:
                state.status = IncidentStatus.REFUSED
                state.failure = refusal.message
                state.reminder_due_at = None
        self.incident = Incident(state, self._new_id, self._clock)
        if start.resume is None and not self._refused and WEBHOOK_EVENTS_PATCH in step.patches:
            self.incident.start_emitting()

    # ------------------------------------------------------------------ commands

    def _update(self, incident: Incident, step: UpdateAccepted) -> str | None:
        if self._refused or step.name == "open_incident":
            return None  # the start's answer changes nothing
        command = step.command
        try:
            if step.name == "receive_alerts" and isinstance(command, ReceiveAlerts):
                incident.check_receive_alerts(command)
                incident.receive_alerts(command, step.at)
                return None
            rule = RULES.get(step.name)
            if rule is None or not isinstance(command, IncidentCommand):
                self.unexplained.append(f"update {step.name}")
                return None
            # `IncidentWorkflow._check`, then `_apply`: a request already applied is not again.
            if incident.applied(command) is not None:
                return None
            getattr(incident, f"check_{rule}")(command)
            message = getattr(incident, rule)(command, step.at)
            incident.remember(command, message)
            incident.cancel_auto_end(command.actor, step.at)
        except ApplicationError as refusal:
            return refusal.message
        except Exception as error:  # a rule failing on a command: the update failed, as it did live
            return f"This command cannot be applied to this incident ({type(error).__name__})."
        return None

    # ------------------------------------------------------------------ effects

    def _pending(self, state: IncidentState, seq: int) -> effects.PendingEffect | None:
        return next((p for p in state.outbox if p.seq == seq), None)

    def _first(self, state: IncidentState, kind: type[Any]) -> effects.PendingEffect | None:
        return next((p for p in state.outbox if isinstance(p.effect, kind)), None)

    def _activity(self, incident: Incident, step: ActivityFinished) -> None:
        state = incident.state
        now = step.at
        name = step.activity
        failure = step.failure
        if name == "create_incident_channel":
            self._opened = True
            start = self._start
            assert start is not None
            if failure is not None or not isinstance(step.result, ChannelRef):
                reason = outcomes.failure_reason(failure, state.config.effect_give_up_seconds)
                incident.start_failed(now, reason, start.response_url)
            else:
                incident.channel_ready(now, step.result.channel_id, step.result.name, start.invited, start.response_url)
            return
        pending = self._effect_of(state, step)
        if pending is None:
            self.unexplained.append(f"activity {name} at {now.isoformat()}")
            return
        effect = pending.effect
        lane = effects.lane_of(effect, state.channel_id)
        done = {pending.seq}
        if isinstance(effect, effects.PageEffect):
            # Its failure is the page's outcome: the lane carried it out either way.
            delivery = step.result if isinstance(step.result, PageDelivery) else None
            incident.page_delivered(
                effect.page_id, outcomes.page_outcome(delivery, failure, state.config.effect_give_up_seconds), now
            )
            failure = None
        elif failure is None and not self._succeeded(incident, pending, step, done):
            return  # more of the effect to come (buttons on other posts)
        if failure is not None:
            what = outcomes.describe(state, effect)
            waiting = max((p.seq for p in state.outbox), default=0)
            if not outcomes.effect_failed(incident, lane, what, failure, now, waiting_after_seq=waiting):
                return  # the lane waits for the channel: the effect stays queued
        else:
            incident.effect_carried_out(now, lane)
        state.outbox = [p for p in state.outbox if p.seq not in done]

    def _succeeded(
        self, incident: Incident, pending: effects.PendingEffect, step: ActivityFinished, done: set[int]
    ) -> bool:
        """Apply a successful activity's result; whether its effect is complete (`done`: the seqs it did)."""
        state = incident.state
        effect = pending.effect
        result = step.result
        if isinstance(effect, effects.PostEffect) and isinstance(step.input, PostMessage):
            if isinstance(result, PostRef):
                outcomes.post_made(incident, effect, step.input.channel_id, result, step.at)
        elif isinstance(effect, effects.ChannelHeaderEffect | effects.StatsEffect):
            # Rendered from the state when carried out: it did every one queued before it.
            done.update(p.seq for p in state.outbox if p.effect.kind == effect.kind)
        elif isinstance(effect, effects.ChecklistEffect) and isinstance(step.input, PostMessage):
            if isinstance(result, PostRef):
                outcomes.checklist_posted(incident, pending.seq, step.input.channel_id, result, step.at)
            # Every edit queued before it is done by it (superseded).
            done.update(
                p.seq for p in state.outbox if isinstance(p.effect, effects.ChecklistEffect) and p.seq <= pending.seq
            )
        elif isinstance(effect, effects.ClearButtonsEffect) and isinstance(step.input, ClearButtons):
            outcomes.buttons_cleared(state, step.input.post_id)
            if any(name.startswith(effect.post_name) for name in state.post_ids):
                return False
        elif isinstance(effect, effects.InviteEffect) and isinstance(result, AddMembersResult):
            outcomes.members_added(incident, effect, result, step.at)
        elif isinstance(effect, effects.DirectMessageEffect) and isinstance(result, PageDelivery):
            outcomes.direct_message_sent(incident, effect, result, step.at)
        elif isinstance(effect, effects.WebhookEffect) and isinstance(step.input, ForwardEvents):
            if isinstance(result, Forwarded):
                outcomes.webhooks_handed(state, result)
            numbers = {event.number for event in step.input.events}
            done.update(
                p.seq
                for p in state.outbox
                if isinstance(p.effect, effects.WebhookEffect) and p.effect.event.number in numbers
            )
        return True

    def _effect_of(self, state: IncidentState, step: ActivityFinished) -> effects.PendingEffect | None:
        """The queued effect the activity carried out: by the seq its dedupe key carries, else the
        first of its kind (a lane carries out its effects in order)."""
        given = step.input
        if isinstance(given, SendPage):
            key = given.dedupe_key.removeprefix(f"{state.id}:")
            if key.startswith("page:"):
                page_id = key.removeprefix("page:")
                return next(
                    (
                        p
                        for p in state.outbox
                        if isinstance(p.effect, effects.PageEffect) and p.effect.page_id == page_id
                    ),
                    None,
                )
            return self._pending(state, _seq(key))
        if isinstance(given, PostMessage):  # a post, or the live checklist's edit
            return self._pending(state, _seq(given.dedupe_key.rsplit(":", 1)[-1]))
        kinds: dict[str, type[Any]] = {
            "clear_buttons": effects.ClearButtonsEffect,
            "add_channel_members": effects.InviteEffect,
            "set_channel_header": effects.ChannelHeaderEffect,
            "report_incident_facts": effects.StatsEffect,
            "forward_webhook_events": effects.WebhookEffect,
            "edit_pages": effects.PageEditEffect,
            "respond_to_command": effects.RespondEffect,
        }
        kind = kinds.get(step.activity)
        if kind is None:
            return None
        found = self._first(state, kind)
        if found is None and kind in (effects.ChannelHeaderEffect, effects.StatsEffect):
            # One carried out while more of its kind were queued did those too: this one is the same.
            return effects.PendingEffect(seq=-1, effect=kind())
        return found


def _drop_idle_clears(state: IncidentState) -> None:
    """A lane reaching "take the buttons off the reminders" with no reminder remembered is done
    with it at once, without an activity (`IncidentWorkflow._carry_out`)."""
    for pending in list(state.outbox):
        effect = pending.effect
        if not isinstance(effect, effects.ClearButtonsEffect):
            continue
        ahead = any(
            p.seq < pending.seq and effects.lane_of(p.effect, state.channel_id) == effects.INCIDENT_CHANNEL_LANE
            for p in state.outbox
        )
        if not ahead and not any(name.startswith(effect.post_name) for name in state.post_ids):
            state.outbox.remove(pending)


def _seq(text: str) -> int:
    return int(text) if text.isdigit() else -1


# ---------------------------------------------------------------------------- reading it


def replay(
    steps: Iterable[Step],
    *,
    follow_resumes: bool = True,
    start_with: Callable[[IncidentStart], IncidentStart] | None = None,
) -> Iterator[Replayed]:
    """Each step re-applied in order, with its refusal and the incident after it."""
    engine = Replay(follow_resumes=follow_resumes, start_with=start_with)
    for step in steps:
        refusal = engine.apply(step)
        if engine.state is not None:
            yield Replayed(step=step, refusal=refusal, state=engine.state)


def replayed_until(steps: Iterable[Step], at: datetime) -> Replay:
    """Every step at or before `at` applied: its `state` is the incident as it stood then (None
    before its start), its `unexplained` what the history held that the code did not expect."""
    engine = Replay()
    for step in steps:
        if step.at > at:
            break
        engine.apply(step)
    return engine


def state_at(steps: Iterable[Step], at: datetime) -> IncidentState | None:
    """The incident as it stood at `at` (every step at or before it applied); None before its start."""
    return replayed_until(steps, at).state
