"""Conditional steps: keeping an incident's checklist in step with its severity and fields.

Pure (no Temporal calls, no I/O), over the incident's state, like
`workflows.incident_due_dates`. `Incident.conditions_changed` (incident_rules.py) calls
`reconcile` after every change of severity or of a custom field, and records what it did.

**Which step is which.** A playbook step in an incident remembers its place in the playbook
snapshot (`ChecklistItem.spec_key`, "<stage>/<item>") and the condition it applies under (its
stage's `when` and its own, combined). Items a person or a rule added have no `spec_key`:
conditions never touch them.
**At the start** the checklist has only the steps that apply (`drop_inapplicable`).
**On every change** (`reconcile`): a step that now applies and is absent is gained, at its
playbook place among the stage's steps; a present step whose condition no longer holds is
marked skipped, keeping everything (assignee, due time, history) — except a done step, which
stays done; a skipped step whose condition holds again returns to the state it had. Nothing is
ever deleted, no step is gained twice, and a step a person removed by hand is not gained again
(`IncidentState.steps_removed`).
**By hand.** A person may check or open a skipped step (or reopen a done one that no longer
applies); the step then becomes the incident's own (its condition is dropped), like an item
added by hand, and later changes leave it be.
**Due times** of a gained step: its `after` counts from the moment it is gained when its
anchor has passed (`from: start`, or its stage is the active one), else from its stage's entry
as at the start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from models.conditions import StepCondition, combine, condition_holds
from models.incident import ChecklistItem, IncidentState, IncidentStatus, ItemState
from models.playbook import MAX_ITEMS_PER_STAGE, ChecklistItemSpec, StageSpec
from workflows import incident_due_dates as due_dates


def spec_key(stage_index: int, item_index: int) -> str:
    return f"{stage_index}/{item_index}"


def _spec_order(key: str | None) -> int | None:
    """The item index a spec key names (None: not a playbook step)."""
    if key is None:
        return None
    try:
        return int(key.split("/", 1)[1])
    except (IndexError, ValueError):
        return None


def effective_condition(stage: StageSpec, item: ChecklistItemSpec) -> StepCondition | None:
    """The condition an item applies under: its stage's and its own, both holding. (A playbook
    whose two never hold together is refused when saved; the item's own stands in then.)"""
    try:
        return combine(stage.when, item.when)
    except ValueError:
        return item.when


def holds(state: IncidentState, condition: StepCondition | None) -> bool:
    level = state.severity.level if state.severity is not None else None
    return condition_holds(condition, level, state.field_values)


def playbook_item(
    stage_index: int, item_index: int, stage: StageSpec, item: ChecklistItemSpec, new_id: Callable[[], str]
) -> ChecklistItem:
    """An incident's item for a playbook step (its due rule waits for its anchor)."""
    return ChecklistItem(
        id=new_id(),
        title=item.title,
        description=item.description,
        command=item.command,
        due_rule=item.due,
        spec_key=spec_key(stage_index, item_index),
        condition=effective_condition(stage, item),
    )


def drop_inapplicable(state: IncidentState) -> None:
    """At the start: the checklist has only the playbook steps whose conditions hold."""
    for stage in state.checklists:
        stage.items = [item for item in stage.items if item.spec_key is None or holds(state, item.condition)]


@dataclass
class StepChanges:
    """What one reconcile did, by item: (stage index, item)."""

    added: list[tuple[int, ChecklistItem]] = field(default_factory=list)
    skipped: list[tuple[int, ChecklistItem]] = field(default_factory=list)
    back: list[tuple[int, ChecklistItem]] = field(default_factory=list)
    # Steps that apply but whose stage is full (`MAX_ITEMS_PER_STAGE`): not added.
    full: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.skipped or self.back or self.full)


def _insert_at(items: list[ChecklistItem], stage_index: int, order: int) -> int:
    """Where a playbook step goes among a stage's items: after the present steps that precede it
    in the playbook, else before the first that follows it, else at the end."""
    after = None
    before = None
    prefix = f"{stage_index}/"
    for position, item in enumerate(items):
        if item.spec_key is None or not item.spec_key.startswith(prefix):
            continue
        present = _spec_order(item.spec_key)
        if present is None:
            continue
        if present < order:
            after = position
        elif before is None:
            before = position
    if after is not None:
        return after + 1
    return before if before is not None else len(items)


def skip_reason(condition: StepCondition | None) -> str:
    return f"only when {condition.words()}" if condition is not None else "its condition does not hold"


def reconcile(state: IncidentState, now: datetime, new_id: Callable[[], str]) -> StepChanges:
    """Gain the steps that now apply, skip those that no longer do, bring back those that apply
    again; what changed. Only while the incident is ongoing and has a playbook."""
    changes = StepChanges()
    playbook = state.playbook
    if playbook is None or state.status != IncidentStatus.ONGOING:
        return changes
    # Skip and bring back what is there.
    for stage_index, stage in enumerate(state.checklists):
        for item in stage.items:
            if item.spec_key is None or item.condition is None:
                continue
            applies = holds(state, item.condition)
            if item.state == ItemState.SKIPPED and applies:
                item.state = item.state_before_skip or ItemState.OPEN
                item.state_before_skip = None
                item.skipped_reason = None
                due_dates.mark_overdue(item)
                changes.back.append((stage_index, item))
            elif item.state not in (ItemState.SKIPPED, ItemState.DONE) and not applies:
                item.state_before_skip = item.state
                item.state = ItemState.SKIPPED
                item.skipped_reason = skip_reason(item.condition)
                due_dates.mark_overdue(item)
                changes.skipped.append((stage_index, item))
    # Gain what applies and is absent (never twice, never what a person removed).
    present = {item.spec_key for stage in state.checklists for item in stage.items if item.spec_key is not None}
    removed = set(state.steps_removed)
    for stage_index, stage_spec in enumerate(playbook.checklists[: len(state.checklists)]):
        stage = state.checklists[stage_index]
        for item_index, item_spec in enumerate(stage_spec.items):
            key = spec_key(stage_index, item_index)
            if key in present or key in removed:
                continue
            condition = effective_condition(stage_spec, item_spec)
            if condition is None or not holds(state, condition):
                continue
            if len(stage.items) >= MAX_ITEMS_PER_STAGE:
                changes.full.append((stage_index, item_spec.title))
                continue
            item = playbook_item(stage_index, item_index, stage_spec, item_spec, new_id)
            _anchor_gained(state, stage_index, item, now)
            stage.items.insert(_insert_at(stage.items, stage_index, item_index), item)
            present.add(key)
            changes.added.append((stage_index, item))
    return changes


def _anchor_gained(state: IncidentState, stage_index: int, item: ChecklistItem, now: datetime) -> None:
    """A gained step's due time: from now when its anchor has passed, else from its stage's entry."""
    rule = item.due_rule
    if rule is not None and (rule.from_ == "start" or stage_index == state.active_stage):
        due_dates.anchor(item, now)


def took_over(state: IncidentState, item: ChecklistItem) -> None:
    """A person sets a step's state by hand while it is skipped, or while its condition does not
    hold (reopening a done step): it is theirs now, conditions no longer apply to it."""
    if item.state == ItemState.SKIPPED or not holds(state, item.condition):
        item.condition = None
        item.skipped_reason = None
        item.state_before_skip = None
