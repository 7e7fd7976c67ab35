"""Replay the saved histories of representative workflows against today's code.

A change that would break workflows already running (a nondeterministic change)
fails here. See tests/histories/record.py for how the histories were made.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import payload_sealing
from tests.histories import RECORDING_SIGNING_SECRET
from worker import WORKFLOWS

HERE = Path(__file__).parent / "histories"
# Recorded by `make histories` from today's code.
HISTORIES = sorted(HERE.glob("*.json"))
# Recorded before the restructuring of issue 18 ("one declaration per command") and kept as
# they were: workflows started by that code must go on under today's.
EARLIER = sorted((HERE / "recorded-before-the-refactor").glob("*.json"))


def test_there_are_histories_of_every_workflow() -> None:
    names = {path.name.split(".")[0] for path in HISTORIES}
    assert {
        "incident-full-lifecycle",
        "incident-restarted",
        "incident-reopened",
        "incident-failed-start",
        "incident-continued-as-new",
        "incident-cancelled",
        "playbook-edited-archived",
        "playbook-refused",
        "incident-stats",
        "command-outcome",
        "signed-out-sessions",
        "incident-with-webhooks",
        "webhook-subscriptions",
        "incident-webhooks",
        "schedule-handoffs",
        "incident-paged",
        "incident-with-due-dates",
        "incident-with-severity",
        "incident-with-retrospective",
        "team-settings",
    } <= names
    assert len(EARLIER) == 9, "the histories recorded before the refactor are kept"
    first_events = [WorkflowHistory.from_json(p.name, p.read_text()).events[0] for p in HISTORIES]
    types = {event.workflow_execution_started_event_attributes.workflow_type.name for event in first_events}
    assert types == {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "text"),
    [(p.name, p.read_text()) for p in [*HISTORIES, *EARLIER]],
    ids=[p.relative_to(HERE).as_posix() for p in [*HISTORIES, *EARLIER]],
)
async def test_history_replays(name: str, text: str) -> None:
    history = WorkflowHistory.from_json(name.rsplit(".", 2)[0], text)
    # The codec opens what it sealed (webhook secrets) with the key the recording used.
    converter = payload_sealing.data_converter(RECORDING_SIGNING_SECRET)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=converter)
    await replayer.replay_workflow(history)
