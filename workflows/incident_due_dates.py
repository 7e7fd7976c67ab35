"""When the incident's items are due, which are overdue now, and who has open items: the one
place that decides it.

Pure (no Temporal calls, no I/O), over the incident's state and the time, like
`workflows.incident_automation`, so a worker restart computes the same answers. `Incident`
(incident_rules.py) anchors the playbook's due times at their moments (the start, a stage's
first entry), sets them by command, and nudges; the workflow waits for `next_item_due`.

**One timer for every due date.** The timer is derived, never stored: `next_item_due` is the
earliest due time among the open items not yet found overdue for it, so 200 dated items are
one wait in the workflow's main loop, which checking, removing or re-dating an item moves,
and which an ended incident (or one without due dates) does not have at all.
**Once per item and due time.** An item found overdue remembers the due time it was found at
(`ChecklistItem.overdue_for`): computed again after a restart, it is not due any more; a new
due time is due again.
**Anchors.** An item declared `from: start` is due that long after the incident's start; one
declared `from: stage` (the default) that long after the first time its stage becomes active
(the first stage: at the start). Entering the stage again later changes nothing: the
playbook's due time is used up once anchored (`ChecklistItem.due_rule` is then None), and one
set or cleared by hand replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.incident import ChecklistItem, IncidentState, IncidentStatus, ItemState


@dataclass(frozen=True)
class DueItem:
    """An open item whose due time has come, where it is, and who is told."""

    stage: int
    item: int
    entry: ChecklistItem


def is_open(item: ChecklistItem) -> bool:
    """Neither done nor skipped (`workflows.incident_conditions`): a skipped step is never overdue."""
    return item.state not in (ItemState.DONE, ItemState.SKIPPED)


def waits_for_due_time(item: ChecklistItem) -> bool:
    """Open, dated, and not yet found overdue for this due time."""
    return is_open(item) and item.due_at is not None and item.overdue_for != item.due_at


def next_item_due(state: IncidentState) -> datetime | None:
    """The earliest due time still to come for the ongoing incident's open items (None: none;
    always so for an incident without due dates, which therefore waits on no timer for them)."""
    if state.status != IncidentStatus.ONGOING:
        return None
    due = [item.due_at for stage in state.checklists for item in stage.items if waits_for_due_time(item)]
    return min((at for at in due if at is not None), default=None)


def due_items(state: IncidentState, now: datetime) -> list[DueItem]:
    """The open items whose due time has come by `now` and that were not found overdue for it."""
    if state.status != IncidentStatus.ONGOING:
        return []
    return [
        DueItem(stage_index, item_index, item)
        for stage_index, stage in enumerate(state.checklists)
        for item_index, item in enumerate(stage.items)
        if waits_for_due_time(item) and item.due_at is not None and item.due_at <= now
    ]


def mark_overdue(item: ChecklistItem) -> None:
    """Keep `ChecklistItem.overdue` true exactly while the item is open and was found overdue for
    its due time (called whenever its state, due time or finding changes)."""
    item.overdue = is_open(item) and item.due_at is not None and item.overdue_for == item.due_at


def open_assignees(state: IncidentState) -> list[str]:
    """Everyone with an open item assigned in the ongoing incident, sorted (none once it ended)."""
    if state.status != IncidentStatus.ONGOING:
        return []
    return sorted(
        {item.assignee_id for stage in state.checklists for item in stage.items if item.assignee_id and is_open(item)}
    )


def anchor_at_start(state: IncidentState, started: datetime) -> None:
    """The incident starts: items due `from: start`, and the first stage's items due `from: stage`
    (the first stage is entered as the incident starts), get their due times."""
    for index, stage in enumerate(state.checklists):
        for item in stage.items:
            rule = item.due_rule
            if rule is not None and (rule.from_ == "start" or index == state.active_stage):
                anchor(item, started)


def anchor_stage_entry(state: IncidentState, entered: datetime) -> None:
    """The active stage was just entered: its items due `from: stage` get their due times (the
    first entry only: each playbook due time is used once)."""
    for item in state.checklists[state.active_stage].items:
        if item.due_rule is not None and item.due_rule.from_ == "stage":
            anchor(item, entered)


def anchor(item: ChecklistItem, at: datetime) -> None:
    """The item's playbook due time counts from `at`: it is due that long after (used up once)."""
    assert item.due_rule is not None
    item.due_at = at + timedelta(seconds=item.due_rule.seconds)
    item.due_rule = None
    item.overdue_for = None
    mark_overdue(item)
