"""Dry-run a playbook change (`workflows.incident_dry_run`), checked against the recorded incidents
(tests/histories): the playbook's own spec changes nothing; a changed one says what it changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models.incident import EventType
from models.incident_commands import AddNote, EditNote
from models.playbook import PlaybookSpec
from service.incident_history import incident_steps
from tests.test_rebuild import CONVERTER, INCIDENTS
from workflows.incident_dry_run import WAKE_GRACE, dry_run
from workflows.incident_rebuild import Replay, RunStarted, Step, UpdateAccepted


async def _steps(name: str) -> list[Step]:
    return await incident_steps(INCIDENTS[name], CONVERTER)


def _spec(steps: list[Step]) -> PlaybookSpec | None:
    first = steps[0]
    assert isinstance(first, RunStarted)
    playbook = first.start.playbook
    if playbook is None:
        return None
    return PlaybookSpec.model_validate(playbook.model_dump(include=set(PlaybookSpec.model_fields)))


@pytest.mark.parametrize("name", sorted(INCIDENTS))
async def test_the_playbooks_own_spec_changes_nothing(name: str) -> None:
    steps = await _steps(name)
    spec = _spec(steps)
    if spec is None:
        pytest.skip("no playbook")
    report = dry_run(steps, spec)
    assert report.what_differs == []
    assert not report.differences
    assert report.refused == []
    assert report.rule_firings.recorded == report.rule_firings.proposed


async def _lifecycle() -> tuple[list[Step], dict[str, Any]]:
    """The full lifecycle: stages Triage (Page DBA, Logs) and Mitigate (Fail over), a reminder
    every second; items checked, the stage moved on, the failover's command run, then the end."""
    steps = await _steps("incident-full-lifecycle")
    spec = _spec(steps)
    assert spec is not None
    return steps, spec.model_dump()


async def test_a_removed_stage_refuses_the_commands_given_on_it_and_says_why() -> None:
    steps, spec = await _lifecycle()
    spec["checklists"] = spec["checklists"][:1]
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    assert report.differences
    refused = {r.command: r for r in report.refused}
    assert refused["run_item_command"].reason == "The proposed playbook has no stage 'Mitigate'."
    assert refused["run_item_command"].target == "stage 'Mitigate', step 'Fail over'"
    assert refused["run_item_command"].actor
    assert refused["change_stage"].reason == "Stage 'Triage' is already the last stage."
    assert refused["change_stage"].target == "next from stage 'Triage'"
    assert [(s.stage, s.item) for s in report.steps_never_done.proposed] == [("Triage", "Logs")]


async def test_a_stage_and_a_step_put_first_keep_the_commands_on_what_they_were_given_for() -> None:
    steps, spec = await _lifecycle()
    spec["checklists"] = [{"title": "Assess", "items": [{"title": "Look around"}]}, *spec["checklists"]]
    spec["checklists"][1]["items"].insert(0, {"title": "Read the runbook"})
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    # Each command finds its stage and step again by title (checks, the assignment, the step added,
    # renamed, moved and removed, the failover's command): every one is taken, none shifted.
    assert report.refused == []
    never = [(s.stage, s.item) for s in report.steps_never_done.proposed]
    assert never == [
        ("Assess", "Look around"),
        ("Triage", "Read the runbook"),
        ("Triage", "Logs"),
        ("Mitigate", "Fail over"),
    ]
    # "Next" is relative: from the new first stage it leads to Triage, and Mitigate is never reached.
    assert (report.stages_never_reached.recorded, report.stages_never_reached.proposed) == ([], ["Mitigate"])
    assert report.what_differs == ["Other steps would be left not done", "Other stages would never be reached"]


async def test_an_added_step_is_never_done() -> None:
    steps, spec = await _lifecycle()
    spec["checklists"][0]["items"].append({"title": "Write the customer note"})
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    assert report.refused == []
    added = [s for s in report.steps_never_done.proposed if s.item == "Write the customer note"]
    assert [(s.stage, s.state.value) for s in added] == [("Triage", "open")]
    assert report.differences


async def test_an_added_rule_lists_its_firings() -> None:
    steps, spec = await _lifecycle()
    spec["rules"] = [
        {"name": "mitigation note", "when": {"stage_entered": "Mitigate"}, "then": [{"type": "post", "message": "Go"}]},
        {
            "name": "a second in",
            "when": {"incident_started": True, "after": "1s"},
            "then": [{"type": "post", "message": "1s"}],
        },
    ]
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    assert report.rule_firings.recorded == []
    fired = {f.rule: f for f in report.rule_firings.proposed}
    assert set(fired) == {"mitigation note", "a second in"}
    assert "rule firing(s) instead of 0" in " ".join(report.what_differs)


async def test_a_timer_rule_fires_at_its_time_between_the_recorded_commands() -> None:
    steps, spec = await _lifecycle()
    spec["rules"] = [
        {
            "name": "a second in",
            "when": {"incident_started": True, "after": "1s"},
            "then": [{"type": "post", "message": "1s"}],
        }
    ]
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    first = steps[0]
    assert isinstance(first, RunStarted)
    [firing] = report.rule_firings.proposed
    started = first.start.requested_at or first.at
    assert started + timedelta(seconds=1) <= firing.at <= started + timedelta(seconds=1) + WAKE_GRACE


async def test_no_reminder_interval_means_no_reminders() -> None:
    steps, spec = await _lifecycle()
    assert spec["reminder_timer_default_seconds"] == 1
    spec["reminder_timer_default_seconds"] = 0
    report = dry_run(steps, PlaybookSpec.model_validate(spec))
    assert report.reminders.recorded >= 1
    assert report.reminders.proposed < report.reminders.recorded
    assert report.differences


async def test_a_later_due_time_is_not_found_overdue() -> None:
    """The recorded incident's first step was due 2s after the start and found overdue; with 1h it is not."""
    steps = await _steps("incident-with-due-dates")
    spec = _spec(steps)
    assert spec is not None
    changed = spec.model_dump()
    changed["checklists"][0]["items"][0]["due"] = {"after": "1h", "from": "start"}
    report = dry_run(steps, PlaybookSpec.model_validate(changed))
    assert (report.overdue_nudges.recorded, report.overdue_nudges.proposed) == (1, 0)
    assert report.what_differs == ["0 overdue step notice(s) instead of 1"]


async def test_a_note_edited_later_is_found_again_when_the_proposal_numbers_events_otherwise() -> None:
    """A note, then its edit by its event id: with a rule that fires at the start (one more event
    before the note), the edit still names the note, not whatever event has its number."""
    steps, spec = await _lifecycle()
    index, first = next((i, s) for i, s in enumerate(steps) if isinstance(s, UpdateAccepted))
    actor = first.command.actor
    note = UpdateAccepted(at=first.at, name="add_note", command=AddNote(actor=actor, text="Replica lag seen"))
    engine = Replay()
    for step in [*steps[:index], note]:
        engine.apply(step)
    assert engine.state is not None
    noted = engine.state.timeline[-1]
    assert noted.type == EventType.NOTE_ADDED
    edit = UpdateAccepted(
        at=first.at, name="edit_note", command=EditNote(actor=actor, note_id=noted.id, text="Replica lag: 40s")
    )
    with_note = [*steps[:index], note, edit, *steps[index:]]
    assert dry_run(with_note, PlaybookSpec.model_validate(spec)).refused == []
    spec["rules"] = [{"name": "hello", "when": {"incident_started": True}, "then": [{"type": "post", "message": "Hi"}]}]
    report = dry_run(with_note, PlaybookSpec.model_validate(spec))
    assert [f.rule for f in report.rule_firings.proposed] == ["hello"]
    assert report.refused == []
