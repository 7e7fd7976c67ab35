"""Notes on the timeline (the rule, without Temporal): who may add them, when, and what they record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from models.incident import NOTE_MAX, EventType, IncidentState
from models.incident_commands import (
    AddNote,
    DeleteNote,
    EditNote,
    EndIncident,
    PostStatusUpdate,
    StarEvent,
    UnstarEvent,
)
from models.note_times import note_moment
from tests.unit.test_incident_rules import BOB, CAROL, T0, actor, incident, refusal
from workflows.incident_rules import Incident


def test_a_note_is_recorded_on_the_timeline_and_not_posted() -> None:
    made = incident()
    note = AddNote(actor=actor(), text="Rolled back deploy 4412 @channel")
    made.check_add_note(note)
    event_id = f"e{made.state.events_numbered + 1}"
    assert made.add_note(note, T0 + timedelta(minutes=3)) == f"Note {event_id} added to the timeline."
    event = made.state.timeline[-1]
    assert event.id == event_id
    assert event.details == {"text": "Rolled back deploy 4412 @channel"}
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


# ---------------------------------------------------------------------------- back-dated notes


def noted(made: Incident, command: AddNote, now: datetime) -> str:
    made.check_add_note(command)
    return made.add_note(command, now)


def test_a_back_dated_note_takes_its_place_on_the_timeline_by_its_time() -> None:
    now = T0 + timedelta(hours=1)
    made = incident()
    made._clock = lambda: now
    made.post_status_update(PostStatusUpdate(actor=actor(), message="Looking"), T0 + timedelta(minutes=30))
    said = noted(made, AddNote(actor=actor(), text="The pager went off", at="09:10"), now)
    assert said.endswith("added to the timeline at 09:10 UTC.")
    times = [e.at for e in made.state.timeline]
    assert times == sorted(times)
    note = next(e for e in made.state.timeline if e.type == EventType.NOTE_ADDED)
    assert note.at == T0 + timedelta(minutes=10)
    assert note.details["written_at"] == now.isoformat()
    # An ISO time is itself (REST's `at`).
    noted(made, AddNote(actor=actor(), text="iso", at="2026-01-05T09:20:00+00:00"), now)
    assert made.state.event(f"e{made.state.events_numbered}").at == T0 + timedelta(minutes=20)  # type: ignore[union-attr]


def test_a_time_of_day_is_the_callers_and_the_most_recent_one() -> None:
    now = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    # 10:15 in Berlin (UTC+1) is 09:15 UTC: earlier today.
    assert note_moment("10:15", now, "Europe/Berlin") == datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
    # 23:50 UTC has not come yet today: yesterday's.
    assert note_moment("23:50", now, "") == datetime(2026, 1, 4, 23, 50, tzinfo=UTC)
    assert note_moment("2026-01-05T09:00", now, "Europe/Berlin") == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "says"),
    [
        ("08:59", "is before the incident started (09:00 UTC); give a time after its start"),
        ("2026-01-05T08:00:00Z", "is before the incident started"),
        ("2026-01-05T11:00:00Z", "is in the future; give a time that has passed"),
    ],
)
def test_a_note_before_the_start_or_in_the_future_is_refused_and_changes_nothing(at: str, says: str) -> None:
    made = incident()
    made._clock = lambda: T0 + timedelta(hours=1)
    before = made.state.model_copy(deep=True)
    error = refusal(lambda: made.check_add_note(AddNote(actor=actor(), text="x", at=at)))
    assert error.type == "Invalid"
    assert says in error.message
    assert made.state == before


@pytest.mark.parametrize("at", ["25:00", "yesterday", "9", "2026-13-01T00:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_that_is_no_time_is_refused_by_the_model(at: str) -> None:
    with pytest.raises(ValidationError, match="give a time of day"):
        AddNote(actor=actor(), text="x", at=at)
    assert AddNote(actor=actor(), text="x", at=" ").at is None


# ---------------------------------------------------------------------------- editing and deleting


def test_only_its_author_edits_or_deletes_a_note() -> None:
    made = incident()
    noted(made, AddNote(actor=actor(), text="first"), T0 + timedelta(minutes=1))
    note_id = made.state.timeline[-1].id
    bob = actor(BOB, "bob")
    for check in (
        lambda: made.check_edit_note(EditNote(actor=bob, note_id=note_id, text="mine now")),
        lambda: made.check_delete_note(DeleteNote(actor=bob, note_id=note_id)),
    ):
        error = refusal(check)
        assert error.type == "Forbidden"
        assert error.message.startswith("Only its author can")
    assert (
        "edit a note" in refusal(lambda: made.check_edit_note(EditNote(actor=bob, note_id=note_id, text="x"))).message
    )
    # Not a note, or no such event.
    assert refusal(lambda: made.check_delete_note(DeleteNote(actor=actor(), note_id="e1"))).type == "NotFound"
    assert refusal(lambda: made.check_delete_note(DeleteNote(actor=actor(), note_id="e999"))).type == "NotFound"


def test_an_edit_keeps_the_notes_id_and_place_and_is_on_the_timeline() -> None:
    made = incident()
    noted(made, AddNote(actor=actor(), text="first"), T0 + timedelta(minutes=1))
    note = made.state.timeline[-1]
    edit = EditNote(actor=actor(), note_id=note.id, text="second @channel")
    made.check_edit_note(edit)
    assert made.edit_note(edit, T0 + timedelta(minutes=5)) == f"Note {note.id} edited."
    assert made.state.event(note.id) is note
    assert note.at == T0 + timedelta(minutes=1)
    assert note.summary == "@alice noted: second @\u2060channel"
    assert note.details["text"] == "second @channel"
    assert note.details["edited_at"] == (T0 + timedelta(minutes=5)).isoformat()
    last = made.state.timeline[-1]
    assert (last.type, last.details) == (EventType.NOTE_EDITED, {"note_id": note.id, "before": "first"})
    # The same text again changes nothing.
    assert refusal(lambda: made.check_edit_note(edit)).type == "Conflict"


def test_a_deleted_notes_text_is_gone_from_the_timeline() -> None:
    made = incident()
    noted(made, AddNote(actor=actor(), text="secret"), T0 + timedelta(minutes=1))
    note_id = made.state.timeline[-1].id
    edit = EditNote(actor=actor(), note_id=note_id, text="still secret")
    made.check_edit_note(edit)
    made.edit_note(edit, T0 + timedelta(minutes=2))
    delete = DeleteNote(actor=actor(), note_id=note_id)
    made.check_delete_note(delete)
    assert made.delete_note(delete, T0 + timedelta(minutes=3)) == f"Note {note_id} deleted."
    assert "secret" not in made.state.model_dump_json()
    assert made.state.timeline[-1].type == EventType.NOTE_DELETED
    assert refusal(lambda: made.check_delete_note(delete)).type == "Conflict"


# ---------------------------------------------------------------------------- key moments


def last_type(made: Incident) -> EventType:
    return made.state.timeline[-1].type


def test_members_star_any_event_as_a_key_moment_and_unstar_it() -> None:
    made = incident()
    first = made.state.timeline[0].id
    star = StarEvent(actor=actor(), event_id=first)
    made.check_star_event(star)
    assert made.star_event(star, T0 + timedelta(minutes=1)) == f"Event {first} is a key moment."
    assert made.state.key_moments == [first]
    assert last_type(made) == EventType.KEY_MOMENT_STARRED
    assert refusal(lambda: made.check_star_event(star)).message == f"Event {first} is already a key moment."
    unstar = UnstarEvent(actor=actor(), event_id=first)
    made.check_unstar_event(unstar)
    made.unstar_event(unstar, T0 + timedelta(minutes=2))
    assert made.state.key_moments == []
    assert last_type(made) == EventType.KEY_MOMENT_UNSTARRED
    assert refusal(lambda: made.check_unstar_event(unstar)).type == "Conflict"
    made.state.is_public = True
    outsider = StarEvent(actor=actor(CAROL, "carol", member=False), event_id=first)
    assert refusal(lambda: made.check_star_event(outsider)).type == "Forbidden"
    assert refusal(lambda: made.check_star_event(StarEvent(actor=actor(), event_id="e999"))).type == "NotFound"


def test_events_recorded_before_ids_are_numbered_when_loaded() -> None:
    made = incident()
    dumped = made.state.model_dump(mode="json")
    for event in dumped["timeline"]:
        del event["id"]
    del dumped["events_numbered"]
    loaded = IncidentState.model_validate(dumped)
    assert [e.id for e in loaded.timeline] == [f"e{n}" for n in range(1, len(loaded.timeline) + 1)]
    assert loaded.events_numbered == len(loaded.timeline)
    # Once numbered, the ids stay.
    assert IncidentState.model_validate(loaded.model_dump(mode="json")) == loaded


def test_a_key_moment_that_leaves_the_bounded_timeline_is_no_longer_one() -> None:
    made = incident()
    first = made.state.timeline[0].id
    made.star_event(StarEvent(actor=actor(), event_id=first), T0)
    for n in range(200):
        made.add_note(AddNote(actor=actor(), text="n" * NOTE_MAX), T0 + timedelta(seconds=n))
    assert made.state.event(first) is None
    assert made.state.key_moments == []
