"""When the playbook's rules fire: the one place that decides it.

Pure (no Temporal calls, no I/O), over the incident's state and the time, so a worker
restart computes the same answers. `Incident` (incident_rules.py) asks at its moments (the
channel is ready, a stage is entered, a status update is posted, an item is checked) and
carries out what fires; the workflow waits for `next_rule_due` and then asks `due_firings`.

Once per condition: every firing has a key, "<rule>@<condition instance>" (the start, the
n-th stage entry, the n-th status update, the item's id, the quiet period since the n-th
status update of the n-th period), remembered in `IncidentState.rule_firings`; a key
remembered is never fired again, so a repeated event or a timer computed again after a
restart fires nothing. Timers hold only while the incident is ongoing and their condition
holds (still in the stage, no status update since): nothing is armed otherwise, so a timer
is called off by the very change that ends its condition, and an ended incident has none.
A timer counts from the later of its anchor (the start, the stage's entry, the last status
update) and the current period's start, so after a restart a timer that had not fired
counts again from the restart, and one that fired does not fire again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.incident import RULE_FIRINGS_KEPT, ChecklistItem, IncidentState, IncidentStatus
from models.playbook_automation import RuleSpec, RuleWhen


@dataclass(frozen=True)
class Firing:
    """A rule that fires now, for one instance of its condition (`key`), and why, in words."""

    rule: RuleSpec
    key: str
    why: str


@dataclass(frozen=True)
class Timer:
    """A timer rule armed now: when it fires, and the firing it will be."""

    due: datetime
    firing: Firing


def rules_of(state: IncidentState) -> list[RuleSpec]:
    return state.playbook.rules if state.playbook is not None else []


def has_fired(state: IncidentState, key: str) -> bool:
    return key in state.rule_firings


def remember(state: IncidentState, key: str) -> None:
    state.rule_firings.append(key)
    del state.rule_firings[:-RULE_FIRINGS_KEPT]


def _fresh(state: IncidentState, firings: list[Firing]) -> list[Firing]:
    return [f for f in firings if not has_fired(state, f.key)]


def _immediate(state: IncidentState) -> list[tuple[RuleSpec, RuleWhen]]:
    if state.status != IncidentStatus.ONGOING:
        return []
    return [(rule, rule.when) for rule in rules_of(state) if rule.when.delay_seconds is None]


def _active_stage_title(state: IncidentState) -> str:
    return state.checklists[state.active_stage].title


def on_start(state: IncidentState) -> list[Firing]:
    """The incident started (its channel is ready): `incident_started`, and `stage_entered` of
    the first stage, which the incident enters as it starts."""
    firings = []
    for rule, when in _immediate(state):
        if when.incident_started:
            firings.append(Firing(rule, f"{rule.name}@start", "the incident started"))
        elif when.stage_entered is not None and when.stage_entered.casefold() == _active_stage_title(state).casefold():
            firings.append(
                Firing(rule, f"{rule.name}@stage:{state.stage_entries}", f"stage {when.stage_entered} was entered")
            )
    return _fresh(state, firings)


def on_stage_entered(state: IncidentState) -> list[Firing]:
    """The active stage was just entered (`IncidentState.stage_entries` counts this entry)."""
    title = _active_stage_title(state).casefold()
    firings = [
        Firing(rule, f"{rule.name}@stage:{state.stage_entries}", f"stage {when.stage_entered} was entered")
        for rule, when in _immediate(state)
        if when.stage_entered is not None and when.stage_entered.casefold() == title
    ]
    return _fresh(state, firings)


def on_status_update(state: IncidentState, status: str | None) -> list[Firing]:
    """A status update was just posted (`IncidentState.status_updates_posted` counts it)."""
    if status is None:
        return []
    firings = [
        Firing(rule, f"{rule.name}@update:{state.status_updates_posted}", f"the status was set to {status}")
        for rule, when in _immediate(state)
        if when.status_set == status
    ]
    return _fresh(state, firings)


def on_item_checked(state: IncidentState, stage: int, item: ChecklistItem) -> list[Firing]:
    """An item was just marked done: once per item, however often it is checked again."""
    stage_title = state.checklists[stage].title.casefold()
    firings = [
        Firing(rule, f"{rule.name}@item:{item.id}", f"item {item.title!r} was checked")
        for rule, when in _immediate(state)
        if when.item_checked is not None
        and when.item_checked.stage.casefold() == stage_title
        and when.item_checked.item.casefold() == item.title.casefold()
    ]
    return _fresh(state, firings)


def armed_timers(state: IncidentState) -> list[Timer]:
    """Every timer rule whose condition holds now and that has not fired for it, with its due time."""
    if state.status != IncidentStatus.ONGOING or state.playbook is None or not state.playbook.rules:
        return []
    period_start = state.periods[-1].started_at
    last_update = state.status_updates[-1].at if state.status_updates else state.started_at
    timers = []
    for rule in rules_of(state):
        when = rule.when
        delay = when.delay_seconds
        if delay is None:
            continue
        if when.no_status_update_for is not None:
            anchor, key = last_update, f"quiet:{len(state.periods)}:{state.status_updates_posted}"
            why = f"no status update for {when.no_status_update_for}"
        elif when.incident_started:
            anchor, key, why = state.started_at, "start", f"the incident started {when.after} ago"
        elif when.stage_entered is not None and when.stage_entered.casefold() == _active_stage_title(state).casefold():
            anchor = state.stage_entered_at or state.started_at
            key, why = f"stage:{state.stage_entries}", f"stage {when.stage_entered} was entered {when.after} ago"
        else:
            continue  # the condition does not hold: nothing is armed
        firing = Firing(rule, f"{rule.name}@{key}", why)
        if not has_fired(state, firing.key):
            timers.append(Timer(max(anchor, period_start) + timedelta(seconds=delay), firing))
    return timers


def next_rule_due(state: IncidentState) -> Timer | None:
    """The earliest armed timer (None: none; always so for a playbook without rules)."""
    return min(armed_timers(state), key=lambda timer: timer.due, default=None)


def due_firings(state: IncidentState, now: datetime) -> list[Firing]:
    """The timer rules due by `now`, in the playbook's order."""
    return [timer.firing for timer in armed_timers(state) if timer.due <= now]
