"""Paging and escalation on the real stack, as Mattermost clients act: a page is a direct message
from the bot with *Acknowledge* and *Decline*, clicked in that direct message (the stand-in
posts the integration action to the API, as Mattermost does)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from models.incident import EventType, IncidentState
from models.incident_commands import EndIncident
from models.paging import EscalationPolicy, EscalationTier, PageStatus, PageTarget
from tests.harness import User, World, eventually, own_server, own_worker
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.incident_helpers import actor, messages, playbook, start, state, update
from tests.integration.slash_helpers import actions, click, command, control, start_incident
from tests.integration.test_alert_intake import make_integration, send, team_admin
from tests.integration.test_webhooks import hooked
from workflows.incident_workflow import IncidentWorkflow


def policy(*tiers: list[User], ack: str = "5s", repeat: int = 0) -> EscalationPolicy:
    return EscalationPolicy(
        tiers=[EscalationTier(targets=[PageTarget(user_id=u.id) for u in tier], ack_within=ack) for tier in tiers],
        repeat=repeat,
    )


def page_posts(world: World, user: User) -> list[dict[str, Any]]:
    """The bot's pages in `user`'s direct channel with it (posts with the page's buttons, or edited)."""
    channel = world.standin.direct_channel(world.stack.bot["id"], user.id)
    if channel is None:
        return []
    return [p for p in world.standin.posts(channel["id"]) if "You are paged" in p["message"]]


async def paged(world: World, user: User, count: int = 1) -> dict[str, Any]:
    """The newest page `user` got, once they got `count`."""
    await world.standin.wait_for(lambda: len(page_posts(world, user)) >= count)
    return page_posts(world, user)[-1]


async def until(handle: WorkflowHandle[Any, Any], done: Any, what: str) -> IncidentState:
    return await eventually(lambda: state(handle), done, what=what)


async def replayed_click(world: World, user: User, post: dict[str, Any], label: str, *, trigger_id: str) -> Any:
    """What Mattermost posts to the integration's URL for a click on `post` (its context as the
    bot made it), sent by hand so that it can be sent again with the same trigger id."""
    action = actions(post)[control(post, label)]
    body = {
        "user_id": user.id,
        "user_name": user.username,
        "channel_id": post["channel_id"],
        "team_id": "",
        "post_id": post["id"],
        "trigger_id": trigger_id,
        "type": "button",
        "context": action["integration"]["context"],
    }
    async with world.api(None) as api:
        answer = await api.post("/mattermost/action", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def events(current: IncidentState, kind: EventType) -> list[str]:
    return [e.summary for e in current.timeline if e.type == kind]


async def test_tier_one_unanswered_then_tier_two_acknowledges_in_the_direct_message(world: World) -> None:
    bob, carol = world.bob, world.carol
    handle = await start(world, book=playbook(world, escalation=policy([bob], [carol])))
    first = await paged(world, bob)
    assert {"Acknowledge", "Decline"} == {a["name"] for a in actions(first).values()}
    assert "Primary DB down" in first["message"]
    # Nobody clicks: after ack_within, carol is paged.
    second = await paged(world, carol)
    await click(world, carol, second["id"], control(second, "Acknowledge"))
    current = await until(
        handle, lambda s: carol.id in s.member_ids and not s.outbox, "carol acknowledged and was added"
    )
    assert events(current, EventType.PAGE_ACKNOWLEDGED) == [f"@{carol.username} acknowledged the page"]
    assert [p.status for p in current.pages] == [PageStatus.EXPIRED, PageStatus.ACKNOWLEDGED]
    assert current.escalation is not None
    assert current.escalation.outcome == "acknowledged"
    # Both direct messages say who acknowledged, and have no buttons any more.
    await world.standin.wait_for(
        lambda: (
            "Acknowledged by @" in page_posts(world, bob)[-1]["message"]
            and "You acknowledged" in page_posts(world, carol)[-1]["message"]
        )
    )
    assert not actions(page_posts(world, bob)[-1])
    assert not actions(page_posts(world, carol)[-1])
    channel = messages(world, current.channel_id or "")
    assert any(f"@{carol.username} acknowledged" in m for m in channel)
    # The click sent again, as Mattermost replays it (the same trigger id), twice: applied once.
    for _ in range(2):
        replay = await replayed_click(world, carol, second, "Acknowledge", trigger_id="replayed-trigger")
        assert "Already acknowledged" in str(replay.get("ephemeral_text")), replay
    after = await state(handle)
    assert len(events(after, EventType.PAGE_ACKNOWLEDGED)) == 1
    assert [p.status for p in after.pages] == [PageStatus.EXPIRED, PageStatus.ACKNOWLEDGED]


async def test_decline_moves_on_at_once_and_exhaustion_tells_the_channel(world: World) -> None:
    bob, carol = world.bob, world.carol
    handle = await start(world, book=playbook(world, escalation=policy([bob], [carol], ack="1h")))
    first = await paged(world, bob)
    await click(world, bob, first["id"], control(first, "Decline"))
    # Declined: carol is paged at once (the tier's hour is not waited out).
    second = await paged(world, carol)
    await click(world, carol, second["id"], control(second, "Decline"))
    current = await until(
        handle, lambda s: bool(events(s, EventType.ESCALATION_EXHAUSTED)) and not s.outbox, "nobody acknowledged"
    )
    assert events(current, EventType.ESCALATION_EXHAUSTED) == [
        f"Nobody acknowledged: tried @{bob.username}, @{carol.username}"
    ]
    assert any("Nobody acknowledged" in m for m in messages(world, current.channel_id or ""))
    await world.standin.wait_for(lambda: "Declined" in page_posts(world, bob)[-1]["message"])


async def test_someone_outside_the_team_is_unreachable_and_the_next_tier_is_paged_at_once(world: World) -> None:
    outsider = world.new_user("eve", in_team=False)
    carol = world.carol
    handle = await start(world, book=playbook(world, escalation=policy([outsider], [carol], ack="1h")))
    await paged(world, carol)
    current = await until(handle, lambda s: bool(events(s, EventType.PAGE_UNREACHABLE)), "the page failed")
    assert events(current, EventType.PAGE_UNREACHABLE) == [
        f"Could not page @{outsider.username}: @{outsider.username} is not in the incident's team"
    ]
    assert page_posts(world, outsider) == []


async def test_the_end_cancels_open_pages(world: World) -> None:
    bob = world.bob
    handle = await start(world, book=playbook(world, escalation=policy([bob], ack="1h")))
    await paged(world, bob)
    await until(handle, lambda s: bool(s.pages) and s.pages[0].posts != [], "the page was sent")
    await update(handle, EndIncident(actor=actor(world.alice)))
    await world.standin.wait_for(lambda: "Cancelled" in page_posts(world, bob)[-1]["message"])
    current = await state(handle)
    assert current.pages[0].status == PageStatus.CANCELLED


async def test_page_by_slash_and_rest_and_only_the_paged_person_may_answer(world: World) -> None:
    alice, bob, carol = world.alice, world.bob, world.carol
    handle = await start(world, book=playbook(world))
    current = await until(handle, lambda s: s.channel_id is not None and not s.outbox, "the channel")
    channel_id = current.channel_id or ""
    reply = await world.slash(alice, f"page @{bob.username} the replica is lagging", channel_id=channel_id)
    assert reply["text"] == f"Paging @{bob.username}."
    page = await paged(world, bob)
    assert "Reason: the replica is lagging" in page["message"]
    async with world.api(alice) as api:
        made = await api.post(f"/api/v1/incidents/{current.id}/pages", json={"user_id": carol.id, "reason": "help"})
        assert made.status_code == 200, made.text
        shown = made.json()["incident"]["pages"]
        assert [(p["target"]["user_id"], p["status"]) for p in shown] == [(bob.id, "open"), (carol.id, "open")]
        pages = (await state(handle)).pages
        # Alice was not paged: she may not answer bob's page (it does not exist for her).
        refused = await api.post(f"/api/v1/incidents/{current.id}/pages/{pages[0].id}/acknowledge")
        assert refused.status_code == 404, refused.text
    async with world.api(bob) as api:
        acked = await api.post(f"/api/v1/incidents/{current.id}/pages/{pages[0].id}/acknowledge")
        assert acked.status_code == 200, acked.text
        again = await api.post(f"/api/v1/incidents/{current.id}/pages/{pages[0].id}/acknowledge")
        assert again.status_code == 409
        assert again.json()["message"] == f"Already acknowledged by @{bob.username}."
    await paged(world, carol)
    await until(handle, lambda s: bob.id in s.member_ids, "bob added")
    # The backstage's incident page shows who was paged and who acknowledged.
    backstage = await sign_in(world, alice)
    shown = text(await backstage.get(f"/backstage/incidents/{current.id}"))
    assert f"@{bob.username} · paged" in shown
    assert f"acknowledged by @{bob.username}" in shown
    assert f"@{carol.username} · paged" in shown


async def test_a_playbook_escalation_through_rest_and_yaml_pages_when_a_person_starts_it(world: World) -> None:
    bob, dave = world.bob, world.dave
    escalation = {"tiers": [{"targets": [{"user_id": bob.id}], "ack_within": "1h"}], "repeat": 1}
    api = world.api(world.alice)
    wrong = {"tiers": [{"targets": [{"user_id": bob.id}], "ack_within": "1s"}]}
    refused = await api.post(
        "/api/v1/playbooks",
        json={"team_id": world.team_id, "title": "Too quick", "checklists": [{"title": "S"}], "escalation": wrong},
    )
    assert refused.status_code == 422, refused.text
    nowhere = {"tiers": [{"targets": [{"schedule_id": "nosuchschedule"}], "ack_within": "5m"}]}
    refused = await api.post(
        "/api/v1/playbooks",
        json={"team_id": world.team_id, "title": "Nowhere", "checklists": [{"title": "S"}], "escalation": nowhere},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"] == {
        "escalation.tiers[0].targets[0].schedule_id": "no on-call schedule nosuchschedule in this team"
    }
    book = await world.create_playbook(world.alice, "Paged outage", escalation=escalation)
    assert book["escalation"]["tiers"][0]["ack_within"] == "1h"
    exported = (await api.get(f"/api/v1/playbooks/{book['id']}/export")).text
    assert f"user: {bob.username}" in exported
    imported = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.replace("title: Paged outage", "title: Paged outage 2").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["escalation"] == book["escalation"]
    # A person starts an incident from it: tier 1 is paged at once, by name.
    await start_incident(world, world.alice, "Paged outage", "Checkout slow")
    page = await paged(world, bob)
    assert "Checkout slow" in page["message"]
    assert page_posts(world, dave) == []


async def _now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.slow
async def test_worker_and_temporal_down_across_the_deadline_escalate_exactly_once(world: World, tmp_path: Path) -> None:
    bob, carol = world.bob, world.carol
    db = tmp_path / "temporal.db"
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        handle = await start(world, client=client, book=playbook(world, escalation=policy([bob], [carol], ack="5s")))
        before = await until(handle, lambda s: bool(s.pages) and s.pages[0].sent, "bob paged")
    assert before.escalation is not None
    assert before.escalation.due_at is not None
    due = before.escalation.due_at
    # Everything is down past the deadline (and past what would have been the next one).
    await eventually(_now, lambda now: now > due + timedelta(seconds=7), timeout=30, what="the deadline to pass")
    async with own_server(db_file=db) as (_, client), own_worker(world, client):
        back = client.get_workflow_handle_for(IncidentWorkflow.run, handle.id)
        after = await until(back, lambda s: len(s.pages) >= 2 and s.pages[1].sent, "carol paged")
        assert [p.target.user_id for p in after.pages] == [bob.id, carol.id]
        assert len(events(after, EventType.ESCALATED)) == 1
        # Carol's own tier then runs its whole time: nobody acknowledged, told once.
        done = await until(back, lambda s: bool(events(s, EventType.ESCALATION_EXHAUSTED)), "nobody acknowledged")
    assert len(done.pages) == 2
    assert len(page_posts(world, carol)) == 1
    assert len(events(done, EventType.ESCALATION_EXHAUSTED)) == 1


async def test_the_backstage_editor_keeps_and_edits_the_escalation(world: World) -> None:
    bob, carol = world.bob, world.carol
    escalation = {"tiers": [{"targets": [{"user_id": bob.id}], "ack_within": "5m"}], "repeat": 0}
    book = await world.create_playbook(world.alice, "Paged in the editor", escalation=escalation)
    page = await sign_in(world, world.alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert shown.status_code == 200
    assert f"user: {bob.username}" in shown.text
    form = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "Paged in the editor",
        "members": world.alice.username,
        "reminder_minutes": "0",
        "checklists[0].title": "Only",
        "checklists[0].items[0].title": "One",
        "escalation": f"escalation:\n  tiers:\n    - targets: [{{user: {bob.username}}}]\n      ack_within: 5m\n",
    }
    # The policy as the editor shows it, sent back unchanged, is the playbook as it is.
    same = await page.post(url, data=form)
    assert same.status_code == 409
    assert "Nothing to change" in text(same)
    api = world.api(world.alice)
    unknown = form | {"escalation": form["escalation"].replace(bob.username, "nobody-like-this")}
    refused = await page.post(url, data=unknown)
    assert refused.status_code == 422
    assert "no user @nobody-like-this" in text(refused)
    form["escalation"] = form["escalation"].replace(bob.username, carol.username).replace("5m", "1h")
    saved = await page.post(url, data=form)
    assert saved.status_code == 303, text(saved)
    stored = (await api.get(f"/api/v1/playbooks/{book['id']}")).json()
    assert stored["escalation"]["tiers"] == [
        {"targets": [{"user_id": carol.id, "schedule_id": None}], "ack_within": "1h"}
    ]


async def make_schedule(world: World, name: str, members: list[User]) -> dict[str, Any]:
    spec = {
        "team_id": world.team_id,
        "name": name,
        "rotations": [{"members": [m.id for m in members], "shift": "1w", "start": "2026-01-01"}],
    }
    made = await world.api(team_admin(world)).post("/api/v1/schedules", json=spec)
    assert made.status_code == 201, made.text
    schedule: dict[str, Any] = made.json()
    return schedule


async def test_a_schedule_is_paged_by_name_and_by_the_escalation_whoever_is_on_call(world: World) -> None:
    alice, dave = world.alice, world.dave
    schedule = await make_schedule(world, "db-primary", [dave])
    handle = await start(world, book=playbook(world))
    current = await until(handle, lambda s: s.channel_id is not None and not s.outbox, "the channel")
    reply = await world.slash(alice, "page db-primary disk full", channel_id=current.channel_id or "")
    assert reply["text"] == "Paging schedule db-primary."
    unknown = await world.slash(alice, "page no-such-schedule", channel_id=current.channel_id or "")
    assert unknown["text"].startswith("There is no schedule no-such-schedule in this team.")
    page = await paged(world, dave)
    assert "Reason: disk full" in page["message"]
    await click(world, dave, page["id"], control(page, "Acknowledge"))
    done = await until(handle, lambda s: dave.id in s.member_ids, "dave acknowledged and was added")
    assert events(done, EventType.PAGE_ACKNOWLEDGED) == [
        f"@{dave.username} acknowledged the page to schedule db-primary"
    ]
    # The playbook's escalation names the schedule by id (a schedule of the team: saved), and pages
    # whoever is on call when it pages.
    by_schedule = {"tiers": [{"targets": [{"schedule_id": schedule["id"]}], "ack_within": "1h"}]}
    await world.create_playbook(world.alice, "Paged by schedule", escalation=by_schedule)
    other = await start(
        world,
        book=playbook(world, escalation=EscalationPolicy(tiers=[EscalationTier(
            targets=[PageTarget(schedule_id=schedule["id"])], ack_within="1h")])),
    )  # fmt: skip
    await paged(world, dave, count=2)
    sent = await until(other, lambda s: bool(s.pages) and s.pages[0].sent, "the schedule paged")
    assert sent.pages[0].user_ids == [dave.id]


async def test_a_deactivated_person_is_unreachable_and_the_next_tier_is_paged_at_once(world: World) -> None:
    gone, carol = world.new_user("frank"), world.carol
    world.standin.deactivate_user(gone.id)
    handle = await start(world, book=playbook(world, escalation=policy([gone], [carol], ack="1h")))
    await paged(world, carol)
    current = await until(handle, lambda s: bool(events(s, EventType.PAGE_UNREACHABLE)), "the page failed")
    assert events(current, EventType.PAGE_UNREACHABLE) == [
        f"Could not page @{gone.username}: @{gone.username} is deactivated"
    ]
    assert page_posts(world, gone) == []


async def test_a_deleted_page_is_left_alone_when_the_pages_are_edited(world: World) -> None:
    bob, carol = world.bob, world.carol
    handle = await start(world, book=playbook(world, escalation=policy([bob, carol], ack="1h")))
    bobs = await paged(world, bob)
    carols = await paged(world, carol)
    driver = world.driver(world.admin)  # a system admin tidying up
    try:
        await driver.posts.delete_post(bobs["id"])
    finally:
        await driver.close()
    await click(world, carol, carols["id"], control(carols, "Acknowledge"))
    done = await until(handle, lambda s: carol.id in s.member_ids and not s.outbox, "carol acknowledged")
    await world.standin.wait_for(lambda: "You acknowledged" in page_posts(world, carol)[-1]["message"])
    assert not [e for e in done.timeline if e.type == EventType.EFFECT_FAILED]
    assert page_posts(world, bob) == []


async def test_an_incident_opened_by_an_alert_pages_tier_one_at_once(world: World) -> None:
    bob = world.bob
    tess = team_admin(world)
    escalation = {"tiers": [{"targets": [{"user_id": bob.id}], "ack_within": "1h"}]}
    book = await world.create_playbook(tess, "Alerted and paged", escalation=escalation)
    integration = await make_integration(world, tess, "generic", playbook_id=book["id"])
    fired = await send(world, integration, {"title": "Payments slow", "group_key": "pay", "severity": "critical"})
    assert fired.status_code in (200, 201, 202), fired.text
    page = await paged(world, bob)
    assert "Payments slow" in page["message"]
    assert "Severity: **critical**" in page["message"]


async def test_a_playbook_rule_pages_and_round_trips_through_yaml(world: World) -> None:
    bob = world.bob
    rules = [
        {
            "name": "wake the dba",
            "when": {"incident_started": True},
            "then": [{"type": "page", "user_ids": [bob.id], "reason": "DB"}],
        }
    ]
    book = await world.create_playbook(world.alice, "Ruled and paged", rules=rules)
    api = world.api(world.alice)
    exported = (await api.get(f"/api/v1/playbooks/{book['id']}/export")).text
    assert "type: page" in exported
    assert f"- {bob.username}" in exported
    imported = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.replace("title: Ruled and paged", "title: Ruled and paged 2").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["rules"] == book["rules"]
    await start_incident(world, world.alice, "Ruled and paged", "Replica lag")
    page = await paged(world, bob)
    assert "Reason: DB" in page["message"]
    assert "Paged by the playbook's rules." in page["message"]


async def test_the_backstage_page_button_pages_a_person_or_a_schedule_by_name(world: World) -> None:
    alice, bob, dave = world.alice, world.bob, world.dave
    await make_schedule(world, "db-oncall", [dave])
    handle = await start(world, book=playbook(world))
    current = await until(handle, lambda s: s.channel_id is not None and not s.outbox, "the channel")
    page = await sign_in(world, alice)
    url = f"/backstage/incidents/{current.id}"
    shown = await page.get(url)
    assert 'id="page-who"' in shown.text
    form = {"csrf_token": csrf(shown), "request_key": "page-1", "form": "page", "user_id": f"@{bob.username}"}
    form["reason"] = "replica lag"
    assert (await page.post(f"{url}/commands/page", data=form)).status_code == 303
    # The same form again (a double click): one page.
    assert (await page.post(f"{url}/commands/page", data=form)).status_code == 303
    by_name = form | {"request_key": "page-2", "user_id": "db-oncall", "reason": ""}
    assert (await page.post(f"{url}/commands/page", data=by_name)).status_code == 303
    unknown = form | {"request_key": "page-3", "user_id": "no-such-schedule"}
    refused = await page.post(f"{url}/commands/page", data=unknown)
    # Refused on the page, saying what was wrong; nothing paged.
    assert refused.status_code == 422
    assert "There is no schedule no-such-schedule in this team." in text(refused)
    assert 'aria-invalid="true"' in refused.text
    assert "Reason: replica lag" in (await paged(world, bob))["message"]
    await paged(world, dave)
    done = await until(handle, lambda s: len(s.pages) >= 2 and all(p.sent for p in s.pages), "both pages sent")
    assert [p.label for p in done.pages] == [f"@{bob.username}", "schedule db-oncall"]
    assert len(done.pages) == 2
    shown_after = text(await page.get(url))
    assert f"@{bob.username}" in shown_after
    assert "schedule db-oncall" in shown_after


async def test_webhooks_get_paged_and_acknowledged_signed(world: World) -> None:
    bob = world.bob
    async with hooked(world, ["incident.paged", "incident.acknowledged"]) as hook:
        await command(world, world.alice, f"page @{bob.username} the replica is lagging", hook.incident)
        page = await paged(world, bob)
        await click(world, bob, page["id"], control(page, "Acknowledge"))
        await hook.receiver.wait_for(lambda r: len(r.deliveries) >= 2, what="both events")
        seen = [delivery.payload for delivery in hook.receiver.deliveries]
        assert [p["type"] for p in seen] == ["incident.paged", "incident.acknowledged"]
        assert [p["seq"] for p in seen] == [1, 2]
        assert hook.receiver.bad_signatures == 0
        assert seen[0]["actor"]["id"] == world.alice.id
        assert seen[0]["data"]["target"] == {"user_id": bob.id}
        assert seen[1]["actor"]["id"] == bob.id
        assert seen[1]["data"]["page_id"] == seen[0]["data"]["page_id"]
