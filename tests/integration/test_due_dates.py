"""Due dates and `/incident todo` on the real stack: one durable timer for every due date (read
from the workflow's history), a nudge that crosses a worker and server restart once, the
direct message read through the stand-in, `/incident due` through slash, REST and the
backstage in the same words, and the open items listed across incidents as access allows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHandle

from models.due_dates import ItemDue
from models.incident import EventType, IncidentState
from models.incident_commands import SetItemState
from models.playbook import ChecklistItemSpec, StageSpec
from tests.harness import User, World, eventually, own_server, own_worker
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.incident_helpers import actor, playbook, settled, start, state, update
from tests.integration.slash_helpers import (
    Started,
    checklist_post,
    command,
    create_playbook,
    start_incident,
)
from tests.integration.slash_helpers import settled as settled_here
from workflows.incident_workflow import IncidentWorkflow


async def pending_timers(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, float]]:
    """The workflow's timers started and neither fired nor cancelled: their labels and durations."""
    started: dict[int, tuple[str, float]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == HistoryEventType.EVENT_TYPE_TIMER_STARTED:
            summary = json.loads(event.user_metadata.summary.data) if event.user_metadata.HasField("summary") else ""
            timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            started[event.event_id] = (summary, timeout.total_seconds())
        elif event.event_type == HistoryEventType.EVENT_TYPE_TIMER_FIRED:
            started.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif event.event_type == HistoryEventType.EVENT_TYPE_TIMER_CANCELED:
            started.pop(event.timer_canceled_event_attributes.started_event_id, None)
    return list(started.values())


def nudges(world: World, user: User) -> list[str]:
    """The bot's overdue nudges in `user`'s direct channel with it, as the stand-in has them."""
    channel = world.standin.direct_channel(world.stack.bot["id"], user.id)
    if channel is None:
        return []
    return [p["message"] for p in world.standin.posts(channel["id"]) if p["message"].startswith("**Overdue**")]


def events(current: IncidentState, kind: EventType) -> list[str]:
    return [e.summary for e in current.timeline if e.type == kind]


async def _now() -> datetime:
    return datetime.now(UTC)


def clock_in(minutes: int) -> str:
    """A time of day `minutes` from now (UTC), as people type it: today's, unless that is past midnight."""
    return f"{datetime.now(UTC) + timedelta(minutes=minutes):%H:%M}"


# ---------------------------------------------------------------------------- one timer


async def test_two_hundred_dated_items_wait_on_one_timer_which_checking_moves(world: World) -> None:
    items = [ChecklistItemSpec(title=f"Step {n}", due=ItemDue(after=f"{60 + n}m")) for n in range(200)]
    handle = await start(world, book=playbook(world, checklists=[StageSpec(title="Many", items=items)]))
    current = await settled(handle)
    dated = current.checklists[0].items
    assert all(item.due_at == current.started_at + timedelta(minutes=60 + n) for n, item in enumerate(dated))
    [(label, seconds)] = await pending_timers(handle)
    assert label == "due items"
    assert 59 * 60 < seconds <= 60 * 60
    # Checking the earliest item moves the one timer to the next due time; still one timer.
    await update(handle, SetItemState(actor=actor(world.alice), stage=0, item=0, state="done"))
    await settled(handle)
    [(label, seconds)] = await pending_timers(handle)
    assert label == "due items"
    assert 60 * 60 < seconds <= 61 * 60


async def test_an_incident_without_due_dates_waits_on_no_timer(world: World) -> None:
    handle = await start(world, book=playbook(world))
    await settled(handle)
    assert await pending_timers(handle) == []


# ---------------------------------------------------------------------------- across a restart


@pytest.mark.slow
async def test_a_due_time_crossing_a_worker_and_server_restart_nudges_once(world: World, tmp_path: Path) -> None:
    book = playbook(
        world,
        checklists=[StageSpec(title="Triage", items=[ChecklistItemSpec(title="Page DBA", due=ItemDue(after="8s"))])],
    )
    db = tmp_path / "temporal.db"
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        handle = await start(world, client=client, book=book)
        before = await eventually(
            lambda: state(handle), lambda s: s.channel_id is not None and not s.outbox, what="the incident to settle"
        )
    due = before.checklists[0].items[0].due_at
    assert due is not None
    assert not events(before, EventType.ITEM_OVERDUE)
    # Everything is down when the item falls due, and for a while after.
    await eventually(_now, lambda now: now > due + timedelta(seconds=4), timeout=30, what="the due time to pass")
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        back = client.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
        after = await eventually(
            lambda: state(back),
            lambda s: bool(events(s, EventType.ITEM_OVERDUE)) and not s.outbox,
            what="the overdue item to be nudged",
        )
        assert await pending_timers(back) == []  # nothing else is due
    assert events(after, EventType.ITEM_OVERDUE) == [
        f"**Page DBA** (stage 1/1 Triage) is overdue: it was due at {due:%H:%M} UTC; telling @{world.alice.username}"
    ]
    # The commander (nobody is assigned) is told once, in a direct message from the bot.
    [told] = nudges(world, world.alice)
    assert "**Overdue** in incident **Primary DB down**" in told
    assert "**Page DBA** (stage 1/1 Triage, item 1)" in told


# ---------------------------------------------------------------------------- every face, the same words


async def backstage_command(page: httpx.AsyncClient, incident_id: str, name: str, fields: dict[str, str]) -> str:
    url = f"/backstage/incidents/{incident_id}"
    shown = await page.get(url)
    answer = await page.post(
        f"{url}/commands/{name}",
        data={"csrf_token": csrf(shown), "request_key": f"{name}-{fields}", "form": "due-0-0", **fields},
    )
    assert answer.status_code == 303, text(answer)
    return text(await page.get(answer.headers["location"]))


async def test_due_through_slash_rest_and_the_backstage_in_the_same_words(world: World) -> None:
    alice, bob = world.alice, world.bob
    await create_playbook(world, alice)
    incident = await start_incident(world, alice, "Database outage", "Primary DB down")
    at = clock_in(120)
    # Alice set no time zone in Mattermost: 14:30 is read in UTC, and the answer says so.
    said = await command(world, alice, f"due 1 1 {at}", incident)
    assert said.startswith(f"Item 'Page the DBA' is due at {at} UTC ")
    assert said.endswith("(your Mattermost time zone is not set, so times of day are UTC).")
    api = world.api(alice)
    rest = await api.put(f"/api/v1/incidents/{incident.id}/checklists/0/items/0/due", json={"due": at})
    assert rest.status_code == 200, rest.text
    assert rest.json()["message"] == said
    page = await sign_in(world, alice)
    shown = await backstage_command(page, incident.id, "set_item_due", {"stage": "0", "item": "0", "due": at})
    assert said in shown
    # Bob's Mattermost time zone is Berlin: his time of day is Berlin's.
    world.standin.set_time_zone(bob.id, "Europe/Berlin")
    invited = await api.post(f"/api/v1/incidents/{incident.id}/members", json={"user_ids": [bob.id]})
    assert invited.status_code == 200, invited.text
    await eventually(lambda: settled_here(world, incident.id), lambda s: bob.id in s.member_ids)
    berlin = await command(world, bob, "due 1 2 23:59", incident)
    assert berlin.startswith("Item 'Read the logs' is due at 23:59 ")
    assert "(Europe/Berlin; " in berlin
    # Clearing, in each face: the same sentence.
    cleared = "Item 'Page the DBA' no longer has a due time."
    assert await command(world, alice, "due 1 1 none", incident) == cleared
    await command(world, alice, "due 1 1 30m", incident)
    rest = await api.put(f"/api/v1/incidents/{incident.id}/checklists/0/items/0/due", json={"due": None})
    assert rest.json()["message"] == cleared
    await command(world, alice, "due 1 1 30m", incident)
    assert cleared in await backstage_command(
        page, incident.id, "set_item_due", {"stage": "0", "item": "0", "due": "none"}
    )
    # Garbage is refused, saying what to type, the same way everywhere, and changes nothing.
    before = await settled_here(world, incident.id)
    typed = await command(world, alice, "due 1 1 soon", incident)
    refused = await api.put(f"/api/v1/incidents/{incident.id}/checklists/0/items/0/due", json={"due": "soon"})
    assert refused.status_code == 422
    assert typed.split("\nUsage:")[0] == refused.json()["message"]
    assert "a time of day (14:30)" in typed
    assert (await settled_here(world, incident.id)).timeline == before.timeline
    # Every change is on the timeline: three times Page the DBA at {at}, Read the logs, then
    # cleared, set and cleared twice.
    changes = events(await settled_here(world, incident.id), EventType.ITEM_DUE_CHANGED)
    assert len(changes) == 9
    assert changes[0].startswith(f"@{alice.username} set **Page the DBA** (stage 1/3 Triage) due at {at} UTC")
    assert changes[-1] == f"@{alice.username} cleared the due time of **Page the DBA** (stage 1/3 Triage)"


async def test_an_overdue_item_is_flagged_everywhere_and_its_assignee_told_once(world: World) -> None:
    alice, bob = world.alice, world.bob
    await create_playbook(world, alice)
    incident = await start_incident(world, alice, "Database outage", "Primary DB down")
    api = world.api(alice)
    await api.post(f"/api/v1/incidents/{incident.id}/members", json={"user_ids": [bob.id]})
    await eventually(lambda: settled_here(world, incident.id), lambda s: bob.id in s.member_ids)
    assigned = await command(world, alice, f"assign 1 1 @{bob.username}", incident)
    assert assigned.startswith("Assigned")
    await command(world, alice, "due 1 1 1s", incident)
    await command(world, alice, "due 1 2 2h", incident)
    await world.standin.wait_for(lambda: bool(nudges(world, bob)))
    [told] = nudges(world, bob)
    assert "**Page the DBA** (stage 1/3 Triage, item 1): due at" in told
    assert nudges(world, alice) == []
    # The checklist post, /incident info, the REST record and the backstage flag it.
    await world.standin.wait_for(lambda: "**overdue**" in checklist_post(world, incident)["message"])
    assert "Page the DBA — @" in checklist_post(world, incident)["message"]
    info = await command(world, alice, "info", incident)
    assert ":warning: **overdue**" in info
    assert "Read the logs · *due" in info
    record = (await api.get(f"/api/v1/incidents/{incident.id}")).json()
    first, second = record["checklists"][0]["items"]
    assert first["overdue"] is True
    assert first["due_at"] is not None
    assert second["overdue"] is False
    page = await sign_in(world, alice)
    assert "Overdue: was due" in text(await page.get(f"/backstage/incidents/{incident.id}"))
    # Checking it off clears the flag; nobody is told again.
    await command(world, bob, "check 1 1", incident)
    await world.standin.wait_for(lambda: "**overdue**" not in checklist_post(world, incident)["message"])
    assert len(nudges(world, bob)) == 1
    current = await settled_here(world, incident.id)
    assert len(events(current, EventType.ITEM_OVERDUE)) == 1


# ---------------------------------------------------------------------------- /incident todo


async def incident_with(world: World, title: str, *, public: bool, items: list[str]) -> Started:
    """Alice's incident from a playbook of its own (one stage of `items`), with bob in its channel."""
    stage = {"title": "Work", "items": [{"title": t} for t in items]}
    await create_playbook(world, world.alice, title, checklists=[stage], create_public_incident=public)
    incident = await start_incident(world, world.alice, title, f"{title} incident")
    api = world.api(world.alice)
    await api.post(f"/api/v1/incidents/{incident.id}/members", json={"user_ids": [world.bob.id]})
    await eventually(lambda: settled_here(world, incident.id), lambda s: world.bob.id in s.member_ids)
    return incident


async def todo(world: World, user: User) -> str:
    reply = await world.slash(user, "todo")
    assert reply["response_type"] == "ephemeral"
    said: str = reply["text"]
    return said


async def test_todo_lists_my_open_items_across_incidents_i_can_see(world: World) -> None:
    alice, bob, carol = world.alice, world.bob, world.carol
    public = await incident_with(world, "Public", public=True, items=["Rotate keys", "Write summary"])
    private = await incident_with(world, "Secret", public=False, items=["Call legal"])
    for incident, number, due in ((public, 1, "1s"), (public, 2, None), (private, 1, "2h")):
        await command(world, alice, f"assign 1 {number} @{bob.username}", incident)
        if due:
            await command(world, alice, f"due 1 {number} {due}", incident)
    await world.standin.wait_for(lambda: bool(nudges(world, bob)))
    listed = await eventually(
        lambda: todo(world, bob),
        lambda said: all(t in said for t in ("Rotate keys", "Write summary", "Call legal")),
        what="bob's three open items in /incident todo",
    )
    assert listed.index("Rotate keys") < listed.index("Call legal") < listed.index("Write summary")
    assert ":warning: **overdue** since" in listed
    assert f"/channels/{public.channel_name})" in listed
    assert "(stage 1 Work, item 1)" in listed
    rest = await eventually(
        lambda: world.api(bob).get("/api/v1/me/todo"),
        lambda answer: answer.json()["total_count"] == 3,
        what="bob's open items through REST",
    )
    found = rest.json()["items"]
    assert [(i["title"], i["overdue"], i["incident_id"]) for i in found] == [
        ("Rotate keys", True, public.id),
        ("Call legal", False, private.id),
        ("Write summary", False, public.id),
    ]
    page = await sign_in(world, bob)
    mine = text(await page.get("/backstage/todo"))
    assert "Rotate keys" in mine
    assert "Call legal" in mine
    # Carol has nothing assigned; she sees nothing (and never the private incident).
    assert await todo(world, carol) == "You have no open items assigned to you in the ongoing incidents you can see."
    assert (await world.api(carol).get("/api/v1/me/todo")).json()["items"] == []
    # Bob is taken out of the private channel outside this tool: its items are no longer his to see.
    world.standin.remove_channel_member(private.channel_id, bob.id)
    gone = await eventually(
        lambda: todo(world, bob), lambda said: "Call legal" not in said, what="the private item gone"
    )
    assert "Rotate keys" in gone
    assert "Call legal" not in text(await page.get("/backstage/todo"))
    assert [i["title"] for i in (await world.api(bob).get("/api/v1/me/todo")).json()["items"]] == [
        "Rotate keys",
        "Write summary",
    ]
    # Done items and ended incidents leave the list.
    await command(world, bob, "check 1 1", public)
    ended = await world.api(alice).post(f"/api/v1/incidents/{public.id}/end")
    assert ended.status_code == 200, ended.text
    await eventually(lambda: todo(world, bob), lambda said: "Write summary" not in said, what="the ended incident gone")


# ---------------------------------------------------------------------------- the playbook's `due`


async def test_a_playbook_due_through_json_yaml_and_the_backstage_editor(world: World) -> None:
    alice = world.alice
    api = world.api(alice)
    stage = {"title": "Triage", "items": [{"title": "Page", "due": {"after": "soon"}}]}
    bad = await api.post("/api/v1/playbooks", json={"team_id": world.team_id, "title": "Due", "checklists": [stage]})
    assert bad.status_code == 422, bad.text
    assert "checklists[0].items[0].due.after" in bad.json()["fields"]
    dated = [{"title": "Page", "due": {"after": "30m", "from": "start"}}, {"title": "Logs"}]
    book = await world.create_playbook(alice, "Due", checklists=[{"title": "Triage", "items": dated}])
    assert book["checklists"][0]["items"][0]["due"] == {"after": "30m", "from": "start"}
    assert book["checklists"][0]["items"][1]["due"] is None
    # YAML: written with the item, read back the same, a bad one refused naming its line.
    exported = (await api.get(f"/api/v1/playbooks/{book['id']}/export")).text
    assert "due:\n" in exported
    assert "after: 30m\n" in exported
    assert "from: start\n" in exported
    assert exported.count("due:") == 1
    imported = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.replace("title: Due", "title: Due copy").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["checklists"] == book["checklists"]
    refused = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.replace("after: 30m", "after: later").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert refused.status_code == 422
    assert refused.json()["fields"]["checklists[0].items[0].due.after"].startswith("line ")
    # The backstage editor: the due time beside each item, a bad one shown beside its input.
    page = await sign_in(world, alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert 'name="checklists[0].items[0].due.after" value="30m"' in shown.text
    form = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "Due",
        "members": alice.username,
        "reminder_minutes": "0",
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page",
        "checklists[0].items[0].due.after": "whenever",
        "checklists[0].items[0].due.from": "start",
        "checklists[0].items[1].title": "Logs",
        "checklists[0].items[1].due.after": "",
        "checklists[0].items[1].due.from": "stage",
    }
    wrong = await page.post(url, data=form)
    assert wrong.status_code == 422
    assert "Stage 1, item 1, due after" in text(wrong)
    saved = await page.post(
        url, data=form | {"checklists[0].items[0].due.after": "1h", "checklists[0].items[1].due.after": "5m"}
    )
    assert saved.status_code == 303, text(saved)
    stored = (await api.get(f"/api/v1/playbooks/{book['id']}")).json()["checklists"][0]["items"]
    assert [item["due"] for item in stored] == [{"after": "1h", "from": "start"}, {"after": "5m", "from": "stage"}]
