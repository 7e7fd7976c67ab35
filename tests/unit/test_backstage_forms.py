"""The backstage's pure parts: a form's fields read into a command's values, the timeline's
kinds, and the playbook editor's field names."""

from __future__ import annotations

from api.backstage.command_forms import form_values
from api.backstage.incident_pages import KIND_OF, PageView, timeline_view
from api.backstage.playbook_pages import field_label
from models.command_table import BY_NAME
from models.incident import EventType, TimelineEvent
from service.command_runner import ChannelRef, UserRef
from tests.unit.test_incident_rules import T0

BOB_ID = "b" * 26


def test_people_and_channels_are_references_by_id_or_as_typed() -> None:
    invite = form_values(BY_NAME["invite_members"], {"user_ids": ["@Bob carol,  " + BOB_ID]})
    assert invite == {
        "users": [
            UserRef(username="bob", field="user_ids[0]"),
            UserRef(username="carol", field="user_ids[1]"),
            UserRef(user_id=BOB_ID, field="user_ids[2]"),
        ]
    }
    # A multiple choice posts the field once per chosen channel.
    announce = form_values(BY_NAME["announce"], {"channel_ids": [BOB_ID, "~ops"]})
    assert announce["channels"] == [
        ChannelRef(channel_id=BOB_ID, field="channel_ids[0]"),
        ChannelRef(name="ops", field="channel_ids[1]"),
    ]
    commander = form_values(BY_NAME["change_commander"], {"user_id": [BOB_ID]})
    assert commander == {"commander": UserRef(user_id=BOB_ID, field="user_id")}
    # Nobody: an assignee may be nobody (unassigns); a commander is left out, for the model to say so.
    assert form_values(BY_NAME["assign_item"], {"stage": ["0"], "item": ["1"], "assignee_id": [""]}) == {
        "stage": "0",
        "item": "1",
        "assignee": None,
    }
    assert form_values(BY_NAME["change_commander"], {"user_id": [""]}) == {}


def test_empty_inputs_are_empty_text_or_the_default_and_minutes_are_seconds() -> None:
    edit = form_values(
        BY_NAME["edit_item"], {"stage": ["0"], "item": ["2"], "title": ["Call"], "description": [""], "command": [""]}
    )
    # Cleared text is sent as empty (the item's description and command are removed)...
    assert edit == {"stage": "0", "item": "2", "title": "Call", "description": "", "command": ""}
    # ...while an empty choice is the default (no status change).
    update = form_values(BY_NAME["post_status_update"], {"status": [""], "message": ["Better"]})
    assert update == {"message": "Better"}
    assert form_values(BY_NAME["set_reminder"], {"minutes": ["45"]}) == {"seconds": "2700"}
    assert form_values(BY_NAME["snooze_reminder"], {"seconds": ["1800"]}) == {"seconds": "1800"}
    # Not a number of minutes: passed on for the command's model to refuse, naming the field.
    assert form_values(BY_NAME["set_reminder"], {"minutes": ["soon"]}) == {"seconds": "soon"}
    # Fields the service fills, and fields the command does not have, are never taken from a form.
    sneaky = {"actor": ["x"], "channel_id": ["y"], "request": ["z"], "confirmed": ["1"], "colour": ["red"]}
    assert form_values(BY_NAME["end_incident"], sneaky) == {"confirmed": "1"}


def test_every_timeline_event_has_one_kind_and_the_timeline_is_newest_first() -> None:
    assert set(KIND_OF) == set(EventType)
    events = [
        TimelineEvent(at=T0, actor_id="a", type=EventType.CREATED, summary="started"),
        TimelineEvent(at=T0, actor_id="a", type=EventType.STATUS_UPDATE, summary="update 1"),
        TimelineEvent(at=T0, actor_id="a", type=EventType.ITEM_STATE_CHANGED, summary="checked"),
        TimelineEvent(at=T0, actor_id="a", type=EventType.STATUS_UPDATE, summary="update 2"),
    ]
    assert [e.summary for e in timeline_view(events, "all")] == ["update 2", "checked", "update 1", "started"]
    assert [e.summary for e in timeline_view(events, "updates")] == ["update 2", "update 1"]
    assert PageView(kind="updates", editing="").query(edit="x1") == "?kind=updates&edit=x1"
    assert PageView().query() == ""


def test_the_editor_names_fields_as_people_read_them() -> None:
    assert field_label("checklists[1].items[0].command") == "Stage 2, item 1, slash command"
    assert field_label("checklists[0].title") == "Stage 1, title"
    assert field_label("checklists[2].items") == "Stage 3, items"
    assert field_label("default_commander") == "Default commander"
    assert field_label("something_else") == "something_else"
