"""Dry-run a playbook change against one past incident: its recorded history replayed twice.

Once as recorded (`Replay()`: the incident as it was), and once from a start that carries the
proposed playbook instead (`Replay(follow_resumes=False, start_with=...)`: the same id, team,
people and times). Every recorded step (each run's start, the commands with the times they ran,
signals, activity results, cancellations, the workflow tasks in which timers did what was due)
is applied to both, in order, through the real rules (`workflows.incident_rules.Incident`).

What the proposal changes:
- A command is translated to what it meant in the recorded incident: a stage and a step are
  named by position, so each is found again in the proposed incident by its title (the k-th
  stage, or step of its stage, with that title); a step's id and a timeline event's id (a note,
  a key moment) by the event or step it named. One that names a stage or step the proposed
  incident does not have is refused, saying so; any other refusal is the rules' own.
- Timers: what the proposed incident has due (its status update reminder, playbook rules'
  `after:` and `no_status_update_for`, escalation, steps' due times, the retrospective's
  reminder) is done at its time between the recorded steps, as the workflow's main loop would,
  unless a recorded workflow task woke for it just then (within `WAKE_GRACE`: the live timer's
  own task, which the recorded history has) — then that task does it, as it did live.

Pure and deterministic: no Temporal calls, no I/O. Effects the proposed incident queues stay in
its outbox and are dropped (no Mattermost call, no write): this is a report, nothing else.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from models.common import UserFact
from models.incident import EventType, IncidentStart, IncidentState, IncidentStatus, ItemState, TimelineEvent
from models.incident_commands import AddItem, ChangeStage, EventRef, IncidentCommand, ItemRef, NoteRef, SetItemState
from models.paging import policy_user_ids
from models.playbook import PlaybookSpec
from models.playbook_automation import rule_user_ids
from models.playbook_dry_run import (
    Count,
    IncidentDryRun,
    OpenStep,
    OpenSteps,
    RefusedCommand,
    RuleFiring,
    RuleFirings,
    Stages,
)
from workflows.incident_outcomes import next_wake
from workflows.incident_rebuild import Replay, Step, TaskEnded, UpdateAccepted

# How late after a timer's due time the live workflow's task for it may start (a busy worker).
WAKE_GRACE = timedelta(seconds=5)


def proposed_start(start: IncidentStart, spec: PlaybookSpec, people: Iterable[UserFact] = ()) -> IncidentStart:
    """The recorded start with the proposed playbook as its snapshot (the playbook's identity kept).

    The people the proposal invites or names in its rules and escalation are taken from the
    recorded start where it had them, else from `people` (facts read now)."""
    recorded = start.playbook
    if recorded is None:
        return start
    playbook = recorded.with_spec(spec)
    known = {fact.user_id: fact for fact in [*people, *start.invited, *start.rule_users]}
    named = [*rule_user_ids(spec.rules), *policy_user_ids(spec.escalation)]
    return start.model_copy(
        update={
            "playbook": playbook,
            "invited": _facts(start.invited, spec.invited_user_ids, known),
            "rule_users": _facts(start.rule_users, named, known),
        }
    )


def _facts(recorded: list[UserFact], wanted: Iterable[str], known: dict[str, UserFact]) -> list[UserFact]:
    ids = list(dict.fromkeys(wanted))
    if set(ids) == {fact.user_id for fact in recorded}:
        return recorded
    return [known[user_id] for user_id in ids if user_id in known]


# ---------------------------------------------------------------------------- watching an incident


@dataclass
class _Watch:
    """What one replay did: every timeline event as it was added, the stages it reached."""

    numbered: int = 0
    reminders: int = 0
    overdue: int = 0
    firings: list[RuleFiring] = field(default_factory=list)
    reached: set[int] = field(default_factory=set)

    def after(self, state: IncidentState | None) -> list[TimelineEvent]:
        """The events added since the last call (in order), counted."""
        if state is None:
            return []
        added = _added(state, self.numbered)
        self.numbered = max(self.numbered, state.events_numbered)
        self.reached.add(state.active_stage)
        for event in added:
            if event.type == EventType.REMINDER_SENT:
                self.reminders += 1
            elif event.type == EventType.ITEM_OVERDUE:
                self.overdue += 1
            elif event.type == EventType.RULE_FIRED:
                self.firings.append(
                    RuleFiring(at=event.at, rule=str(event.details.get("rule", "")), summary=event.summary)
                )
        return added


def _number(event: TimelineEvent) -> int:
    return int(event.id[1:]) if event.id[1:].isdigit() else 0


def _added(state: IncidentState, since: int) -> list[TimelineEvent]:
    """The events numbered after `since`: from the timeline's end (where they are added, but for
    a back-dated note), as far back as needed."""
    wanted = state.events_numbered - since
    if wanted <= 0:
        return []
    found: list[TimelineEvent] = []
    for event in reversed(state.timeline):
        if _number(event) > since:
            found.append(event)
            if len(found) == wanted:
                break
    return sorted(found, key=_number)


# ---------------------------------------------------------------------------- translating commands


class _Missing(Exception):
    """The command names what the proposed incident does not have."""


def _stage_index(recorded: IncidentState, proposed: IncidentState, index: int) -> int:
    stages = recorded.checklists
    if index >= len(stages):
        return index  # not there when recorded either: the rules say so
    title = stages[index].title
    nth = sum(1 for stage in stages[:index] if stage.title == title)
    same = [i for i, stage in enumerate(proposed.checklists) if stage.title == title]
    if nth >= len(same):
        raise _Missing(f"The proposed playbook has no stage {title!r}.")
    return same[nth]


def _item_index(recorded: IncidentState, proposed: IncidentState, stage: int, mapped: int, item: int) -> int:
    if stage >= len(recorded.checklists) or item >= len(recorded.checklists[stage].items):
        return item
    items = recorded.checklists[stage].items
    title = items[item].title
    nth = sum(1 for other in items[:item] if other.title == title)
    same = [i for i, other in enumerate(proposed.checklists[mapped].items) if other.title == title]
    if nth >= len(same):
        raise _Missing(f"Stage {proposed.checklists[mapped].title!r} of the proposed playbook has no step {title!r}.")
    return same[nth]


def _target(recorded: IncidentState, command: IncidentCommand) -> str:
    """What the command was given for in the recorded incident, in words."""
    stage: int | None = None
    item: int | None = None
    if isinstance(command, SetItemState):
        stage, item = (recorded.active_stage if command.stage is None else command.stage), command.item
    elif isinstance(command, ItemRef):
        stage, item = command.stage, command.item
    elif isinstance(command, AddItem):
        stage = command.stage
    elif isinstance(command, ChangeStage):
        if command.stage is None:
            return f"{command.direction} from stage {recorded.checklists[recorded.active_stage].title!r}"
        stage = command.stage
    if stage is None or stage >= len(recorded.checklists):
        return ""
    said = f"stage {recorded.checklists[stage].title!r}"
    items = recorded.checklists[stage].items
    if item is not None and item < len(items):
        said += f", step {items[item].title!r}"
    return said


def translate(command: Any, recorded: IncidentState, proposed: IncidentState, events: dict[str, str]) -> Any:
    """The command as it would have been given in the proposed incident (`_Missing`: it cannot be)."""
    changes: dict[str, Any] = {}
    if isinstance(command, SetItemState):
        given = recorded.active_stage if command.stage is None else command.stage
        stage = _stage_index(recorded, proposed, given)
        item = _item_index(recorded, proposed, given, stage, command.item)
        # "The active stage" stays so where it means the same stage.
        changes["stage"] = None if command.stage is None and stage == proposed.active_stage else stage
        changes["item"] = item
        if (
            command.item_id is not None
            and stage < len(proposed.checklists)
            and item < len(proposed.checklists[stage].items)
        ):
            changes["item_id"] = proposed.checklists[stage].items[item].id
        if command.from_stage is not None:
            changes["from_stage"] = _stage_index(recorded, proposed, command.from_stage)
    elif isinstance(command, ItemRef):
        stage = _stage_index(recorded, proposed, command.stage)
        changes["stage"] = stage
        changes["item"] = _item_index(recorded, proposed, command.stage, stage, command.item)
    elif isinstance(command, AddItem):
        changes["stage"] = _stage_index(recorded, proposed, command.stage)
    elif isinstance(command, ChangeStage):
        if command.stage is not None:
            changes["stage"] = _stage_index(recorded, proposed, command.stage)
        if command.from_stage is not None:
            changes["from_stage"] = _stage_index(recorded, proposed, command.from_stage)
    elif isinstance(command, NoteRef | EventRef):
        name = "note_id" if isinstance(command, NoteRef) else "event_id"
        given_id = getattr(command, name)
        if given_id in events:
            changes[name] = events[given_id]
        elif recorded.event(given_id) is not None:
            raise _Missing("The timeline event it names did not happen with the proposed playbook.")
    return command.model_copy(update=changes) if changes else command


# ---------------------------------------------------------------------------- the dry run


@dataclass
class _Run:
    recorded: Replay
    proposed: Replay
    # The times of the recorded workflow tasks that did what was due (sorted).
    woke: list[datetime]
    seen: _Watch = field(default_factory=_Watch)
    would: _Watch = field(default_factory=_Watch)
    events: dict[str, str] = field(default_factory=dict)

    def tick_until(self, until: datetime, *, inclusive: bool) -> None:
        """Do what the proposed incident has due before `until` (at `until` too, if `inclusive`),
        at its time, unless a recorded task woke for it."""
        done: datetime | None = None
        while (state := self.proposed.state) is not None:
            due = next_wake(state)
            if due is None or due > until or (due == until and not inclusive):
                return
            if done is not None and due <= done:
                return  # nothing it could do: it would wait for something else
            at = bisect.bisect_left(self.woke, due)
            if at < len(self.woke) and self.woke[at] <= due + WAKE_GRACE:
                return  # the recorded task that woke for it does it, after the steps before it
            self.proposed.apply(TaskEnded(at=due))
            self.would.after(self.proposed.state)
            done = due

    def step(self, step: Step) -> tuple[str | None, str | None]:
        """Apply one recorded step to both; the refusals (as recorded, as proposed)."""
        recorded_state, proposed_state = self.recorded.state, self.proposed.state
        given: Step = step
        missing: str | None = None
        if isinstance(step, UpdateAccepted) and recorded_state is not None and proposed_state is not None:
            try:
                given = replace(step, command=translate(step.command, recorded_state, proposed_state, self.events))
            except _Missing as why:
                missing = str(why)
        refused_then = self.recorded.apply(step)
        refused_now = missing if missing is not None else self.proposed.apply(given)
        self.events.update(_paired(self.seen.after(self.recorded.state), self.would.after(self.proposed.state)))
        return refused_then, refused_now


def _paired(recorded: list[TimelineEvent], proposed: list[TimelineEvent]) -> dict[str, str]:
    """The events one step added to both incidents, paired by type in order (recorded id -> proposed id)."""
    pairs: dict[str, str] = {}
    for kind in dict.fromkeys(event.type for event in recorded):
        mine = [e.id for e in recorded if e.type == kind]
        theirs = [e.id for e in proposed if e.type == kind]
        pairs.update(zip(mine, theirs, strict=False))
    return pairs


def dry_run(steps: Sequence[Step], spec: PlaybookSpec, *, people: Iterable[UserFact] = ()) -> IncidentDryRun:
    """One past incident (its recorded steps, `service.incident_history`) run with the proposed playbook."""
    facts = list(people)
    run = _Run(
        recorded=Replay(),
        proposed=Replay(follow_resumes=False, start_with=lambda start: proposed_start(start, spec, facts)),
        woke=sorted(step.at for step in steps if isinstance(step, TaskEnded) and step.woke),
    )
    refused: list[RefusedCommand] = []
    for step in steps:
        run.tick_until(step.at, inclusive=False)
        target = ""
        if isinstance(step, UpdateAccepted) and run.recorded.state is not None:
            command = step.command
            target = _target(run.recorded.state, command) if isinstance(command, IncidentCommand) else ""
        refused_then, refused_now = run.step(step)
        if refused_now is not None and refused_then is None and isinstance(step, UpdateAccepted):
            actor = getattr(step.command, "actor", None)
            refused.append(
                RefusedCommand(
                    at=step.at,
                    command=step.name,
                    target=target,
                    actor_id=actor.user_id if actor is not None else "",
                    actor=actor.username if actor is not None else "",
                    reason=refused_now,
                )
            )
    if steps:
        run.tick_until(steps[-1].at, inclusive=True)
    return _report(run, refused)


def _open_steps(state: IncidentState | None) -> list[OpenStep]:
    if state is None:
        return []
    return [
        OpenStep(stage=stage.title, item=item.title, state=item.state)
        for stage in state.checklists
        for item in stage.items
        if item.state != ItemState.DONE
    ]


def _unreached(state: IncidentState | None, reached: set[int]) -> list[str]:
    if state is None:
        return []
    return [stage.title for index, stage in enumerate(state.checklists) if index not in reached]


def _report(run: _Run, refused: list[RefusedCommand]) -> IncidentDryRun:
    recorded, proposed = run.recorded.state, run.proposed.state
    start_refused = proposed.failure if proposed is not None and proposed.status == IncidentStatus.REFUSED else None
    if recorded is not None and recorded.status == IncidentStatus.REFUSED:
        start_refused = None  # refused as recorded too
    steps = OpenSteps(recorded=_open_steps(recorded), proposed=_open_steps(proposed))
    stages = Stages(recorded=_unreached(recorded, run.seen.reached), proposed=_unreached(proposed, run.would.reached))
    reminders = Count(recorded=run.seen.reminders, proposed=run.would.reminders)
    overdue = Count(recorded=run.seen.overdue, proposed=run.would.overdue)
    firings = RuleFirings(recorded=run.seen.firings, proposed=run.would.firings)
    differs: list[str] = []
    if start_refused is not None:
        differs.append(f"The proposed playbook would not start it: {start_refused}")
    if refused:
        differs.append(f"{len(refused)} command(s) would be refused")
    if steps.recorded != steps.proposed:
        differs.append("Other steps would be left not done")
    if stages.recorded != stages.proposed:
        differs.append("Other stages would never be reached")
    if reminders.recorded != reminders.proposed:
        differs.append(f"{reminders.proposed} status update reminder(s) instead of {reminders.recorded}")
    if overdue.recorded != overdue.proposed:
        differs.append(f"{overdue.proposed} overdue step notice(s) instead of {overdue.recorded}")
    if [f.rule for f in firings.recorded] != [f.rule for f in firings.proposed]:
        differs.append(f"{len(firings.proposed)} rule firing(s) instead of {len(firings.recorded)}")
    shown = recorded or proposed
    return IncidentDryRun(
        incident_id=shown.id if shown is not None else "",
        name=shown.name if shown is not None else "",
        ended_at=recorded.ended_at if recorded is not None else None,
        start_refused=start_refused,
        refused=refused,
        steps_never_done=steps,
        stages_never_reached=stages,
        reminders=reminders,
        overdue_nudges=overdue,
        rule_firings=firings,
        differences=bool(differs),
        what_differs=differs,
    )
