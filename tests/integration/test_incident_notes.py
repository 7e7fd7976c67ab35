"""Notes on the timeline: `/incident note`, REST and the backstage send the same command."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from models.incident import NOTE_MAX, EventType
from tests.harness import World
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import Started, bot_posts, command, outage, settled, state


async def test_a_note_goes_on_the_timeline_from_every_face_and_not_to_the_channel(world: World) -> None:
    incident = await outage(world)
    await settled(world, incident.id)
    posted = bot_posts(world, incident.channel_id)

    typed = await command(world, world.alice, "note Rolled back deploy 4412\nerrors @channel are down", incident)
    assert re.fullmatch(r"Note e[0-9]+ added to the timeline\.", typed), typed
    async with world.api(world.alice) as api:
        sent = await api.post(f"/api/v1/incidents/{incident.id}/notes", json={"text": "  Vendor paged  "})
    assert sent.status_code == 200, sent.text
    assert re.fullmatch(r"Note e[0-9]+ added to the timeline\.", sent.json()["message"])
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
        assert empty.startswith(
            "Write the note (after `--at HH:MM` to back-date it).\nUsage: `/incident note [--at <HH:MM>] <text...>`"
        ), empty

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


def note_id(message: str) -> str:
    found = re.search(r"Note (e[0-9]+) ", message)
    assert found, message
    return found[1]


async def test_a_back_dated_note_sits_at_its_time_and_its_author_edits_and_deletes_it(world: World) -> None:
    incident: Started = await outage(world)
    started = (await settled(world, incident.id)).started_at
    base = f"/api/v1/incidents/{incident.id}"
    async with world.api(world.alice) as api:
        # REST: an ISO time within the incident's span; before the start and in the future are refused.
        at = started + timedelta(milliseconds=1)
        sent = await api.post(f"{base}/notes", json={"text": "Pager fired", "at": at.isoformat()})
        assert sent.status_code == 200, sent.text
        first = note_id(sent.json()["message"])
        early = await api.post(f"{base}/notes", json={"text": "x", "at": (started - timedelta(hours=1)).isoformat()})
        assert early.status_code == 422
        assert "is before the incident started" in early.json()["message"]
        assert "give a time after its start, or leave the time out" in early.json()["message"]
        future = await api.post(
            f"{base}/notes", json={"text": "x", "at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
        )
        assert future.status_code == 422
        assert "is in the future" in future.json()["message"]
    # Slash: a time of day (the stand-in's users have no time zone: UTC), the most recent one: the
    # start's minute began before the start, so it is refused; an ISO time is taken too.
    clock = f"{started:%H:%M}"
    if started.second or started.microsecond:
        refused = await command(world, world.alice, f"note --at {clock} Started looking", incident)
        assert refused.startswith(f"{clock} UTC is before the incident started"), refused
    await command(world, world.alice, "update investigating Looking into it", incident)
    updated = next(e.at for e in (await settled(world, incident.id)).timeline if e.type == EventType.STATUS_UPDATE)
    between = started + (updated - started) / 2
    typed = await command(world, world.alice, f"note --at {between.isoformat()} Started looking", incident)
    assert typed.endswith(f"added to the timeline at {between:%H:%M} UTC."), typed
    current = await settled(world, incident.id)
    times = [e.at for e in current.timeline]
    assert times == sorted(times)
    kinds = [e.type for e in current.timeline]
    # The back-dated note sits before the update it was written after.
    assert kinds[: kinds.index(EventType.STATUS_UPDATE)].count(EventType.NOTE_ADDED) == 2
    placed = current.event(first)
    assert placed is not None
    assert placed.at == at

    # Bob may not change Alice's note; Alice edits it (same id and place), then deletes it.
    async with world.api(world.alice) as api:
        assert (await api.post(f"{base}/members", json={"user_ids": [world.bob.id]})).status_code == 200
    await settled(world, incident.id)
    bobs = await command(world, world.bob, f"noteedit {first} Mine now", incident)
    assert bobs.startswith("Only its author can edit a note;"), bobs
    async with world.api(world.alice) as api:
        edited = await api.put(f"{base}/notes/{first}", json={"text": "Pager fired at the DBA"})
        assert (edited.status_code, edited.json()["message"]) == (200, f"Note {first} edited."), edited.text
    deleted = await command(world, world.alice, f"notedelete {first}", incident)
    assert deleted == f"Note {first} deleted."
    after = await settled(world, incident.id)
    gone = after.event(first)
    assert gone is not None
    assert gone.at == at
    assert "Pager fired" not in after.model_dump_json()
    kinds = [e.type for e in after.timeline[-2:]]
    assert kinds == [EventType.NOTE_EDITED, EventType.NOTE_DELETED]
    listed = await command(world, world.alice, "timeline", incident)
    assert f"| {first} |" in listed


async def test_any_event_is_starred_as_a_key_moment_from_every_face(world: World) -> None:
    incident = await outage(world)
    current = await settled(world, incident.id)
    created = current.timeline[0].id
    base = f"/api/v1/incidents/{incident.id}"
    async with world.api(world.alice) as api:
        starred = await api.post(f"{base}/timeline/{created}/star")
        assert (starred.status_code, starred.json()["message"]) == (200, f"Event {created} is a key moment.")
        again = await api.post(f"{base}/timeline/{created}/star")
        assert again.status_code == 409
        assert again.json()["message"] == f"Event {created} is already a key moment."
        unstarred = await api.delete(f"{base}/timeline/{created}/star")
        assert unstarred.status_code == 200, unstarred.text
        bad = await api.post(f"{base}/timeline/e999999/star")
        assert bad.status_code == 404
    typed = await command(world, world.alice, f"star {created}", incident)
    assert typed == f"Event {created} is a key moment."
    assert f"| {created} ★ |" in await command(world, world.alice, "timeline", incident)
    # The backstage: a star button on every event, an unstar on key moments.
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident.id}"
    shown = await page.get(url)
    assert f'id="unstar-{created}"' in shown.text
    second = (await settled(world, incident.id)).timeline[1].id
    assert f'id="star-{second}"' in shown.text
    form = {"csrf_token": csrf(shown), "request_key": "star-1", "form": f"star-{second}", "event_id": second}
    clicked = await page.post(f"{url}/commands/star_event", data=form)
    assert clicked.status_code == 303
    assert (await settled(world, incident.id)).key_moments == [created, second]
    stars = [e.type for e in (await state(world, incident.id)).timeline if e.type.startswith("key_moment")]
    assert stars == [
        EventType.KEY_MOMENT_STARRED,
        EventType.KEY_MOMENT_UNSTARRED,
        EventType.KEY_MOMENT_STARRED,
        EventType.KEY_MOMENT_STARRED,
    ]
    assert "Key moment" in text(await page.get(url))
