"""Notes on the timeline (the rule, without Temporal): who may add them, when, and what they record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from models.incident import NOTE_MAX, EventType
from models.incident_commands import AddNote, EndIncident
from tests.unit.test_incident_rules import CAROL, T0, actor, incident, refusal


def test_a_note_is_recorded_on_the_timeline_and_not_posted() -> None:
    made = incident()
    note = AddNote(actor=actor(), text="Rolled back deploy 4412 @channel")
    made.check_add_note(note)
    assert made.add_note(note, T0 + timedelta(minutes=3)) == "Note added to the timeline."
    event = made.state.timeline[-1]
    assert (event.type, event.actor_id, event.at) == (EventType.NOTE_ADDED, actor().user_id, T0 + timedelta(minutes=3))
    # What people typed is relayed: a channel-wide mention in a note notifies no one.
    assert event.summary == "@alice noted: Rolled back deploy 4412 @\u2060channel"
    assert made.state.outbox == []


def test_a_note_is_taken_after_the_end_for_the_retrospective() -> None:
    made = incident()
    made.end(EndIncident(actor=actor()), T0 + timedelta(hours=1))
    note = AddNote(actor=actor(), text="Root cause: an expired certificate")
    made.check_add_note(note)
    made.add_note(note, T0 + timedelta(hours=2))
    assert made.state.timeline[-1].type == EventType.NOTE_ADDED


def test_only_members_of_the_incident_channel_add_notes() -> None:
    made = incident()
    outsider = AddNote(actor=actor(CAROL, "carol", member=False), text="I was here")
    # A private incident does not exist for them; a public one says who may add notes.
    assert refusal(lambda: made.check_add_note(outsider)).type == "NotFound"
    made.state.is_public = True
    error = refusal(lambda: made.check_add_note(outsider))
    assert error.type == "Forbidden"
    assert error.message.startswith("Only members of the incident channel can add notes.")


@pytest.mark.parametrize("text", ["", "   ", "n" * (NOTE_MAX + 1)])
def test_an_empty_or_overlong_note_is_refused_by_its_model(text: str) -> None:
    with pytest.raises(ValidationError):
        AddNote(actor=actor(), text=text)
