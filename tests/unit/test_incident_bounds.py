"""An incident's state stays well under the 2 MB Temporal refuses for one payload (continue-as-new
carries it whole, queries return it), whatever people type into it."""

from __future__ import annotations

from datetime import timedelta

from models import incident_commands as cmd
from models.incident import NOTE_MAX, STATUS_MESSAGE_MAX
from tests.unit.test_incident_rules import T0, actor, incident
from workflows.incident_rules import STATUS_UPDATES_KEPT, TIMELINE_MAX_BYTES, event_size


def test_hundreds_of_the_longest_notes_and_updates_keep_the_state_bounded() -> None:
    made = incident()
    for n in range(600):
        note = cmd.AddNote(actor=actor(), text=f"{n} " + "n" * (NOTE_MAX - 8))
        made.check_add_note(note)
        made.add_note(note, T0 + timedelta(seconds=n))
        update = cmd.PostStatusUpdate(actor=actor(), message=f"{n} " + "u" * (STATUS_MESSAGE_MAX - 8))
        made.check_post_status_update(update)
        made.post_status_update(update, T0 + timedelta(seconds=n))
        made.state.outbox.clear()  # carried out (the outbox drains; only the kept state grows)
    state = made.state
    assert len(state.model_dump_json()) < 1_000_000
    assert state.timeline_bytes == sum(map(event_size, state.timeline))
    assert state.timeline_bytes <= TIMELINE_MAX_BYTES
    notes = [e.summary for e in state.timeline if e.summary.startswith("@alice noted:")]
    assert notes[-1].startswith("@alice noted: 599 ")  # the newest are kept
    assert len(state.status_updates) == STATUS_UPDATES_KEPT
    assert state.status_updates[-1].message.startswith("599 ")
    assert state.first_status_update_at == T0
