"""The incident at any moment, checked against the truth: every recorded incident history
(tests/histories) rebuilt with today's code equals the live incident as it was recorded.

Three witnesses of the live state, all made while recording (tests/histories/record.py):
- the states sampled from the live workflow (`live-states/<name>.json`, each distinct state with
  the times just before and after it was read): the rebuild at that time is that state;
- every command's answer (its `CommandResult` in the history): the incident's view after it;
- each run's end (its result, or the state a continuation or restart carried on from).

Compared: the whole `IncidentState` but its outbox (the side effects still to be carried out):
the history does not record when an effect needing no activity was dropped (a superseded
checklist edit, a reminder's buttons already gone), and nothing of the incident depends on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

import payload_sealing
from models.incident import IncidentStart, IncidentState
from models.incident_commands import CommandResult
from models.incident_views import to_view
from service.incident_history import incident_steps, runs_in_force
from tests.histories import RECORDING_SIGNING_SECRET
from workflows.incident_rebuild import Replay, RunStarted, Step, UpdateAccepted, replay, state_at

HERE = Path(__file__).parent / "histories"
LIVE_STATES = HERE / "live-states"
# Not rebuilt exactly (see the module's docstring).
OPERATIONAL = {"outbox"}


def _incidents(where: Path) -> dict[str, list[WorkflowHistory]]:
    runs: dict[str, list[WorkflowHistory]] = {}
    for path in sorted(where.glob("*.json")):
        history = WorkflowHistory.from_json(path.name, path.read_text())
        kind = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        if kind == "IncidentWorkflow":
            runs.setdefault(path.name.split(".")[0], []).append(history)
    return runs


INCIDENTS = _incidents(HERE)
EARLIER = _incidents(HERE / "recorded-before-the-refactor")
CONVERTER = payload_sealing.data_converter(RECORDING_SIGNING_SECRET)


def _compared(state: IncidentState | dict[str, Any]) -> dict[str, Any]:
    dumped = state.model_dump(mode="json") if isinstance(state, IncidentState) else state
    return {key: value for key, value in dumped.items() if key not in OPERATIONAL}


async def _steps(name: str, histories: dict[str, list[WorkflowHistory]]) -> list[Step]:
    return await incident_steps(histories[name], CONVERTER)


def test_every_incident_recording_has_its_live_states() -> None:
    assert {"incident-full-lifecycle", "incident-continued-as-new", "incident-restarted"} <= set(INCIDENTS)
    assert {path.stem for path in LIVE_STATES.glob("*.json")} == set(INCIDENTS), "run `make histories`"


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_the_rebuilt_incident_is_the_live_one_at_every_sampled_moment(name: str) -> None:
    steps = await _steps(name, INCIDENTS)
    samples = json.loads((LIVE_STATES / f"{name}.json").read_text())
    assert samples
    # The incident after every workflow task (all steps at or before each time), in order.
    moments: list[tuple[datetime, dict[str, Any]]] = []
    engine = Replay()
    for index, step in enumerate(steps):
        engine.apply(step)
        last_at_this_time = index + 1 == len(steps) or steps[index + 1].at > step.at
        if last_at_this_time and engine.state is not None:
            moments.append((step.at, _compared(engine.state)))
    assert not engine.unexplained
    for sample in samples:
        at, until = datetime.fromisoformat(sample["at"]), datetime.fromisoformat(sample["until"])
        live = _compared(sample["state"])
        # As it stood at `at`, or after a task that started while the query was on its way.
        before = [state for when, state in moments if when <= at][-1:]
        during = [state for when, state in moments if at < when <= until]
        assert live in before + during, f"{name}: the rebuilt incident differs from the live one at {at}"


@pytest.mark.parametrize("name", sorted(name for name, runs in INCIDENTS.items() if len(runs) > 1))
async def test_the_run_in_force_alone_rebuilds_the_incident_as_all_runs_do(name: str) -> None:
    """`GET ?as_of=` reads only the run the incident was in then (`runs_in_force`): each run starts
    from the state its predecessor left, so the earlier runs change nothing of it."""
    runs = {history.workflow_id + str(index): history for index, history in enumerate(INCIDENTS[name])}
    started = {key: history.events[0].event_time.ToDatetime(tzinfo=UTC) for key, history in runs.items()}
    every = await incident_steps(list(runs.values()), CONVERTER)
    moments = sorted({step.at for step in every})
    for at in moments:
        alone = await incident_steps([runs[key] for key in runs_in_force(started, at)], CONVERTER)
        assert alone, at
        expected = state_at(every, at)
        rebuilt = state_at(alone, max(at, alone[0].at))
        assert expected is not None
        assert rebuilt is not None
        assert _compared(rebuilt) == _compared(expected), f"{name}: the run in force differs at {at}"


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_every_command_answered_with_the_rebuilt_incident(name: str) -> None:
    answers = [
        event.workflow_execution_update_completed_event_attributes.outcome
        for history in INCIDENTS[name]
        for event in history.events
        if event.HasField("workflow_execution_update_completed_event_attributes")
    ]
    views = [
        (await CONVERTER.decode(list(outcome.success.payloads), [CommandResult]))[0].incident.model_dump(mode="json")
        for outcome in answers
        if outcome.HasField("success")
    ]
    rebuilt = [
        to_view(replayed.state, replayed.step.at).model_dump(mode="json")
        for replayed in replay(await _steps(name, INCIDENTS))
        if isinstance(replayed.step, UpdateAccepted) and replayed.refusal is None
    ]
    assert rebuilt == views


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_each_run_ends_as_the_rebuilt_incident(name: str) -> None:
    """A run's result (or the state its continuation started from) is the rebuilt incident then."""
    steps = await _steps(name, INCIDENTS)
    ends: list[IncidentState] = []
    for history in INCIDENTS[name]:
        last = history.events[-1]
        if last.HasField("workflow_execution_completed_event_attributes"):
            payloads = last.workflow_execution_completed_event_attributes.result.payloads
            ends.append((await CONVERTER.decode(list(payloads), [IncidentState]))[0])
    carried = [step.start.resume for step in steps if isinstance(step, RunStarted) and step.start.resume]
    engine = Replay(follow_resumes=False)  # the runs after the first go on from the rebuilt state
    rebuilt_ends: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, RunStarted) and engine.state is not None:
            rebuilt_ends.append(_compared(engine.state))
        engine.apply(step)
    assert engine.state is not None
    rebuilt_ends.append(_compared(engine.state))
    assert [_compared(state) for state in carried] == rebuilt_ends[: len(carried)]
    if ends:
        assert _compared(ends[-1]) == rebuilt_ends[-1]


@pytest.mark.parametrize("name", sorted(EARLIER))
async def test_histories_recorded_by_earlier_code_rebuild(name: str) -> None:
    steps = await _steps(name, EARLIER)
    engine = Replay()
    for step in steps:
        engine.apply(step)
    assert engine.state is not None
    assert not engine.unexplained


async def test_before_its_start_there_is_no_incident_and_after_each_step_the_state_of_then() -> None:
    steps = await _steps("incident-full-lifecycle", INCIDENTS)
    first = steps[0]
    assert isinstance(first, RunStarted)
    assert isinstance(first.start, IncidentStart)
    assert state_at(steps, first.at.replace(year=first.at.year - 1)) is None
    started = state_at(steps, first.at)
    assert started is not None
    assert started.status == "ongoing"
    assert started.channel_id is None
    ended = state_at(steps, steps[-1].at)
    assert ended is not None
    assert ended.status == "ended"


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_the_same_start_replays_every_command_without_a_refusal(name: str) -> None:
    """The dry run's ground (issue 24, item 5): the recorded commands against an incident built again
    from the same start, going on from its own state across runs, are all taken."""
    steps = await _steps(name, INCIDENTS)
    replayed = list(replay(steps, follow_resumes=False, start_with=lambda start: start.model_copy(deep=True)))
    assert [r.refusal for r in replayed if r.refusal is not None] == []
