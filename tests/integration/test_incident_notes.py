"""Notes on the timeline: `/incident note`, REST and the backstage send the same command."""

from __future__ import annotations

from models.incident import NOTE_MAX, EventType
from tests.harness import World
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import bot_posts, command, outage, settled, state


async def test_a_note_goes_on_the_timeline_from_every_face_and_not_to_the_channel(world: World) -> None:
    incident = await outage(world)
    await settled(world, incident.id)
    posted = bot_posts(world, incident.channel_id)

    typed = await command(world, world.alice, "note Rolled back deploy 4412\nerrors @channel are down", incident)
    assert typed == "Note added to the timeline."
    async with world.api(world.alice) as api:
        sent = await api.post(f"/api/v1/incidents/{incident.id}/notes", json={"text": "  Vendor paged  "})
    assert sent.status_code == 200, sent.text
    assert sent.json()["message"] == "Note added to the timeline."
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident.id}"
    shown = await page.get(url)
    assert 'action="/backstage/incidents/' + incident.id + '/commands/add_note"' in shown.text
    assert '<input type="hidden" name="back" value="timeline-title">' in shown.text
    form = {"csrf_token": csrf(shown), "request_key": "note-1", "form": "note", "back": "timeline-title"}
    form["text"] = "Failover done"
    clicked = await page.post(f"{url}/commands/add_note", data=form)
    assert clicked.status_code == 303
    assert clicked.headers["location"].endswith("#timeline-title")
    # The same form sent again (a double click) notes once.
    assert (await page.post(f"{url}/commands/add_note", data=form)).status_code == 303

    after = await settled(world, incident.id)
    notes = [e for e in after.timeline if e.type == EventType.NOTE_ADDED]
    assert [e.summary for e in notes] == [
        # Kept as typed, lines and all; a channel-wide mention notifies no one.
        "@" + world.alice.username + " noted: Rolled back deploy 4412\nerrors @\u2060channel are down",
        "@" + world.alice.username + " noted: Vendor paged",
        "@" + world.alice.username + " noted: Failover done",
    ]
    assert {e.actor_id for e in notes} == {world.alice.id}
    assert bot_posts(world, incident.channel_id) == posted, "a note is not posted to the channel"
    timeline = text(await page.get(url, params={"kind": "notes"}))
    assert "noted: Failover done" in timeline
    assert "noted: Vendor paged" in timeline


async def test_notes_are_taken_after_the_end_refused_alike_and_hidden_from_outsiders(world: World) -> None:
    incident = await outage(world)
    await settled(world, incident.id)
    base = f"/api/v1/incidents/{incident.id}"
    too_long = "n" * (NOTE_MAX + 1)
    async with world.api(world.alice) as api:
        # One declaration of the limit: the same words through slash and REST.
        typed = (await command(world, world.alice, f"note {too_long}", incident)).split("\nUsage:")[0]
        refused = await api.post(f"{base}/notes", json={"text": too_long})
        assert refused.status_code == 422
        assert refused.json()["message"] == typed
        empty = await command(world, world.alice, "note", incident)
        assert empty.startswith("Write the note.\nUsage: `/incident note <text...>`"), empty

        assert (await api.post(f"{base}/end")).status_code == 200
        later = await api.post(f"{base}/notes", json={"text": "Root cause: an expired certificate"})
        assert later.status_code == 200, later.text
    # Carol is in the team, not in the private incident's channel: for her it does not exist.
    async with world.api(world.carol) as api:
        hidden = await api.post(f"{base}/notes", json={"text": "Was I here?"})
        missing = await api.post("/api/v1/incidents/zzzzzzzzzz/notes", json={"text": "Was I here?"})
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    assert hidden.status_code == 404
    notes = [e.summary for e in (await state(world, incident.id)).timeline if e.type == EventType.NOTE_ADDED]
    assert notes == ["@" + world.alice.username + " noted: Root cause: an expired certificate"]
