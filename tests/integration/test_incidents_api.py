"""`/api/v1/incidents` through HTTP with real tokens issued by the stand-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.harness import User, World, eventually
from tests.integration.rest_helpers import unauthenticated
from tests.integration.test_playbooks import create as create_playbook
from tests.integration.test_playbooks import listed as playbooks_listed


async def start(world: World, user: User, **body: Any) -> dict[str, Any]:
    response = await world.api(user).post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "Primary DB down", **body}
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


async def ready(world: World, user: User, incident_id: str) -> dict[str, Any]:
    """The incident once its channel exists (it appears moments after the start)."""

    async def fetch() -> dict[str, Any]:
        response = await world.api(user).get(f"/api/v1/incidents/{incident_id}")
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        return record

    return await eventually(fetch, lambda r: r["channel_id"] is not None and len(r["timeline"]) >= 1)


async def playbook(world: World, user: User, **fields: Any) -> dict[str, Any]:
    book = await create_playbook(world, user, **fields)
    await playbooks_listed(world, user, 1)
    return book


async def test_authentication(world: World) -> None:
    for path in ("/api/v1/incidents", "/api/v1/stats", "/api/v1/incidents/abc"):
        assert (await unauthenticated(world, path))["error"] == "unauthorized", path
    malformed = await unauthenticated(world, "/api/v1/incidents", "Basic abc")
    assert "Bearer" in malformed["message"]


async def test_revoked_token_stops_working(world: World) -> None:
    api = world.api(world.alice)
    assert (await api.get("/api/v1/incidents", params={"team_id": world.team_id})).status_code == 200
    driver = world.driver(world.admin)
    tokens = await driver.users.get_user_access_tokens_for_user(world.alice.id)
    for token in tokens:
        await driver.users.revoke_user_access_token(token_id=token["id"])
    await driver.close()

    async def status() -> int:
        return (await api.get("/api/v1/incidents", params={"team_id": world.team_id})).status_code

    await eventually(status, lambda code: code == 401, what="the revoked token to be refused")


async def test_start_returns_the_incident_and_the_channel_follows(world: World) -> None:
    book = await playbook(world, world.alice, member_ids=[world.bob.id], default_commander_id=world.bob.id)
    started = await start(world, world.alice, playbook_id=book["id"], description="Writes fail")
    assert started["status"] == "ongoing"
    assert started["playbook_id"] == book["id"]
    assert started["playbook_version"] == 1
    assert started["commander_id"] == world.bob.id
    assert started["reporter_id"] == world.alice.id
    assert started["description"] == "Writes fail"
    record = await ready(world, world.alice, started["id"])
    assert record["channel_name"].startswith("inc-primary-db-down-")
    assert [s["title"] for s in record["checklists"]] == ["Triage", "Mitigate"]
    assert record["checklists"][0]["items"][0]["command"] == "/page dba"
    by_channel = await world.api(world.bob).get(f"/api/v1/incidents/by-channel/{record['channel_id']}")
    assert by_channel.status_code == 200
    assert by_channel.json()["id"] == started["id"]
    not_incident = await world.api(world.alice).get(f"/api/v1/incidents/by-channel/{world.town_square['id']}")
    assert not_incident.status_code == 404


async def test_start_refusals(world: World) -> None:
    book = await playbook(world, world.alice)
    api = world.api(world.carol)
    not_member = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "x", "playbook_id": book["id"]}
    )
    assert not_member.status_code == 404
    assert not_member.json()["message"] == "Playbook not found."
    outsider = await world.api(world.mallory).post("/api/v1/incidents", json={"team_id": world.team_id, "name": "x"})
    assert outsider.status_code == 404
    assert outsider.json()["message"] == "Team not found."
    bad = await api.post("/api/v1/incidents", json={"team_id": world.team_id, "name": "", "description": "x" * 1025})
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"name", "description"}
    commander = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "x", "commander_id": world.mallory.id}
    )
    assert commander.status_code == 422
    assert commander.json()["fields"]["commander_id"] == (
        f"@{world.mallory.username} is not in this team and cannot be the commander."
    )
    multibyte = await api.post("/api/v1/incidents", json={"team_id": world.team_id, "name": "データベース" * 10})
    assert multibyte.status_code == 201


async def cache_expired(world: World) -> None:
    """Wait until facts the API cached (roles, memberships) have expired."""
    changed = datetime.now(UTC)
    ttl = timedelta(seconds=world.stack.settings.auth_cache_seconds)
    await eventually(_now, lambda now: now > changed + ttl, what="the API's fact cache to expire")


async def _now() -> datetime:
    return datetime.now(UTC)


async def test_starter_without_channel_permission_gets_no_incident(world: World) -> None:
    standin = world.standin
    role = await world.driver(world.admin).roles.get_role_by_name("team_user")
    standin.set_role_permissions("team_user", [p for p in role["permissions"] if p != "create_private_channel"])
    try:
        await cache_expired(world)
        refused = await world.api(world.carol).post(
            "/api/v1/incidents", json={"team_id": world.team_id, "name": "Cannot"}
        )
    finally:
        standin.set_role_permissions("team_user", role["permissions"])
        await cache_expired(world)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("You cannot create private channels in this team")
    listed = await world.api(world.carol).get("/api/v1/incidents", params={"team_id": world.team_id})
    assert listed.json()["total_count"] == 0


async def test_private_incidents_are_invisible_to_non_members(world: World) -> None:
    private = await start(world, world.alice)
    public_book = await playbook(world, world.alice, title="Public", create_public_incident=True)
    public = await start(world, world.alice, playbook_id=public_book["id"], name="Public one")
    await ready(world, world.alice, private["id"])
    public_record = await ready(world, world.alice, public["id"])
    hidden = await world.api(world.carol).get(f"/api/v1/incidents/{private['id']}")
    assert hidden.status_code == 404
    assert hidden.json() == {"error": "not_found", "message": "Incident not found.", "fields": {}}
    end_hidden = await world.api(world.carol).post(f"/api/v1/incidents/{private['id']}/end")
    assert end_hidden.status_code == 404
    assert (await world.api(world.carol).get(f"/api/v1/incidents/{public['id']}")).status_code == 200
    assert (await world.api(world.mallory).get(f"/api/v1/incidents/{public['id']}")).status_code == 404
    assert (await world.api(world.admin).get(f"/api/v1/incidents/{private['id']}")).status_code == 200
    # Carol sees the public incident but is not in its channel: she may not change it.
    forbidden = await world.api(world.carol).post(f"/api/v1/incidents/{public['id']}/end")
    assert forbidden.status_code == 403
    assert forbidden.json()["message"] == "Only members of the incident channel can end this incident."
    by_channel = await world.api(world.carol).get(f"/api/v1/incidents/by-channel/{public_record['channel_id']}")
    assert by_channel.status_code == 200


async def test_actions_and_their_refusals(world: World) -> None:
    book = await playbook(world, world.alice, member_ids=[world.bob.id])
    incident = await start(world, world.alice, playbook_id=book["id"])
    await ready(world, world.alice, incident["id"])
    api = world.api(world.alice)
    base = f"/api/v1/incidents/{incident['id']}"

    async def post(path: str, body: Any = None, method: str = "POST") -> httpx.Response:
        return await api.request(method, base + path, json=body)

    refused = await post("/stage", {"direction": "next"})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "confirmation_required",
        "message": "Stage 'Triage' still has 2 open item(s). Move on anyway?",
        "fields": {},
    }
    both = await post("/stage", {"direction": "next", "stage": 1})
    assert both.status_code == 422
    done = await post("/checklists/0/items/0/state", {"state": "done"}, method="PUT")
    assert done.status_code == 200, done.text
    assert done.json()["message"] == "Marked 'Page the DBA' as done."
    assert done.json()["incident"]["checklists"][0]["items"][0]["state"] == "done"
    assert (await post("/checklists/0/items/0/state", {"state": "done"}, method="PUT")).status_code == 409
    assert (await post("/checklists/0/items/9/state", {"state": "done"}, method="PUT")).status_code == 422
    assert (await post("/checklists/0/items/0/state", {"state": "finished"}, method="PUT")).status_code == 422
    added = await post("/checklists/0/items", {"title": "Call vendor", "position": 0})
    assert [i["title"] for i in added.json()["incident"]["checklists"][0]["items"]] == [
        "Call vendor",
        "Page the DBA",
        "Logs",
    ]
    edited = await post("/checklists/0/items/0", {"title": "Call the vendor"}, method="PUT")
    assert edited.json()["incident"]["checklists"][0]["items"][0]["title"] == "Call the vendor"
    moved = await post("/checklists/0/items/0/move", {"to_position": 2})
    assert moved.json()["incident"]["checklists"][0]["items"][2]["title"] == "Call the vendor"
    removed = await post("/checklists/0/items/2", method="DELETE")
    assert len(removed.json()["incident"]["checklists"][0]["items"]) == 2
    not_member = await post("/checklists/0/items/1/assignee", {"assignee_id": world.bob.id}, method="PUT")
    assert not_member.status_code == 422
    assert not_member.json()["message"].startswith(f"@{world.bob.username} must be part of this channel")
    invited = await post("/members", {"user_ids": [world.bob.id]})
    assert invited.status_code == 200
    assert invited.json()["message"] == f"Adding @{world.bob.username}."
    await eventually(lambda: _record(api, base), lambda r: world.bob.id in r["member_ids"])
    assigned = await post("/checklists/0/items/1/assignee", {"assignee_id": world.bob.id}, method="PUT")
    assert assigned.json()["incident"]["checklists"][0]["items"][1]["assignee_id"] == world.bob.id
    commander = await post("/commander", {"user_id": world.bob.id})
    assert commander.json()["incident"]["commander_id"] == world.bob.id
    same = await post("/commander", {"user_id": world.bob.id})
    assert same.status_code == 409
    assert same.json()["message"] == f"@{world.bob.username} is already the commander."
    unknown = await post("/commander", {"user_id": "z" * 26})
    assert unknown.status_code == 422
    stage = await post("/stage", {"direction": "next", "force": True})
    assert stage.json()["incident"]["active_stage"] == 1
    update = await post("/status-updates", {"message": "Failing over", "status": "identified"})
    assert update.json()["incident"]["status_updates"][0]["status"] == "identified"
    reminder = await post("/reminder", {"seconds": 900})
    assert reminder.json()["incident"]["reminder_seconds"] == 900
    snoozed = await post("/reminder/snooze", {"seconds": 3600})
    assert snoozed.json()["message"] == f"Reminder snoozed for 1h by @{world.alice.username}."
    announced = await post("/announcements", {"channel_ids": [world.channels["off-topic"]["id"]]})
    assert announced.json()["message"] == "Announced in ~off-topic."
    ended = await post("/end")
    assert ended.json()["incident"]["status"] == "ended"
    assert ended.json()["incident"]["time_to_resolution_seconds"] is not None
    again = await post("/end")
    assert again.status_code == 409
    after_end = await post("/stage", {"direction": "prev"})
    assert after_end.status_code == 409, after_end.text
    assert after_end.json()["message"] == "This incident has ended. Restart it first to make changes."
    restarted = await post("/restart")
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["incident"]["status"] == "ongoing"
    assert restarted.json()["incident"]["time_to_resolution_seconds"] is None
    twice = await post("/restart")
    assert twice.status_code == 409
    timeline = (await api.get(f"{base}/timeline", params={"type": ["ended", "restarted"]})).json()
    # The same list shape as every other list.
    assert [e["type"] for e in timeline["items"]] == ["ended", "restarted"]
    assert (timeline["total_count"], timeline["page"], timeline["has_more"]) == (2, 0, False)
    newest = (await api.get(f"{base}/timeline", params={"per_page": 1, "direction": "desc"})).json()
    assert [e["type"] for e in newest["items"]] == ["restarted"]
    assert newest["has_more"] is True
    bad_type = await api.get(f"{base}/timeline", params={"type": "exploded"})
    assert bad_type.status_code == 422


async def _record(api: httpx.AsyncClient, base: str) -> dict[str, Any]:
    record: dict[str, Any] = (await api.get(base)).json()
    return record


async def test_idempotency_key_applies_a_resent_request_once(world: World) -> None:
    incident = await start(world, world.alice)
    await ready(world, world.alice, incident["id"])
    api = world.api(world.alice)
    base = f"/api/v1/incidents/{incident['id']}"
    headers = {"Idempotency-Key": "update-1"}
    first = await api.post(f"{base}/status-updates", json={"message": "Once"}, headers=headers)
    second = await api.post(f"{base}/status-updates", json={"message": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert len(second.json()["incident"]["status_updates"]) == 1
    body = {"team_id": world.team_id, "name": "Only one"}
    created = [await api.post("/api/v1/incidents", json=body, headers={"Idempotency-Key": "start-1"}) for _ in range(2)]
    assert created[0].json()["id"] == created[1].json()["id"]


async def test_running_an_item_command_runs_it_in_the_channel(world: World) -> None:
    book = await playbook(
        world, world.alice, checklists=[{"title": "Triage", "items": [{"title": "Look", "command": "/incident info"}]}]
    )
    incident = await start(world, world.alice, playbook_id=book["id"])
    record = await ready(world, world.alice, incident["id"])
    ran = await world.api(world.alice).post(f"/api/v1/incidents/{incident['id']}/checklists/0/items/0/run")
    assert ran.status_code == 200, ran.text
    assert ran.json()["incident"]["checklists"][0]["items"][0]["command_last_run"] is not None
    replies = world.standin.ephemeral_posts(user_id=world.alice.id, channel_id=record["channel_id"])
    assert replies[-1]["post"]["message"].startswith("#### Incident: Primary DB down")
    no_command = await world.api(world.alice).post(f"/api/v1/incidents/{incident['id']}/checklists/0/items/5/run")
    assert no_command.status_code == 422


async def test_list_filters_sorts_and_pages(world: World) -> None:
    book = await playbook(world, world.alice, member_ids=[world.bob.id], create_public_incident=True)
    first = await start(world, world.alice, name="Alpha outage", playbook_id=book["id"])
    second = await start(world, world.bob, name="Bravo latency", playbook_id=book["id"])
    third = await start(world, world.alice, name="Charlie private")
    for item in (first, second, third):
        await ready(world, world.alice if item is not second else world.bob, item["id"])
    await world.api(world.alice).post(f"/api/v1/incidents/{first['id']}/end")
    api = world.api(world.alice)

    async def names(**params: Any) -> list[str]:
        response = await api.get("/api/v1/incidents", params={"team_id": world.team_id, **params})
        assert response.status_code == 200, response.text
        return [i["name"] for i in response.json()["items"]]

    await eventually(lambda: names(status="ended"), lambda found: found == ["Alpha outage"], what="ended list")
    assert await names() == ["Charlie private", "Bravo latency", "Alpha outage"]
    assert await names(status="ongoing") == ["Charlie private", "Bravo latency"]
    assert await names(sort="name") == ["Alpha outage", "Bravo latency", "Charlie private"]
    assert await names(sort="name", direction="desc") == ["Charlie private", "Bravo latency", "Alpha outage"]
    by_duration = (await api.get("/api/v1/incidents", params={"team_id": world.team_id, "sort": "duration"})).json()
    durations = [i["duration_seconds"] for i in by_duration["items"]]
    assert durations == sorted(durations, reverse=True)
    assert (await names(sort="ended_at", direction="asc"))[0] == "Alpha outage"  # the only ended one
    assert await names(commander_id=world.bob.id) == ["Bravo latency"]
    assert await names(member_id=world.bob.id) == ["Bravo latency"]
    assert await names(playbook_id=book["id"], sort="name") == ["Alpha outage", "Bravo latency"]
    assert await names(search="LATENCY") == ["Bravo latency"]
    started = (await api.get(f"/api/v1/incidents/{second['id']}")).json()["started_at"]
    assert await names(started_after=started) == ["Charlie private", "Bravo latency"]
    assert await names(started_before=started) == ["Alpha outage"]
    page = (await api.get("/api/v1/incidents", params={"team_id": world.team_id, "per_page": 2, "page": 1})).json()
    assert (page["total_count"], page["page"], page["per_page"], page["has_more"]) == (3, 1, 2, False)
    assert [i["name"] for i in page["items"]] == ["Alpha outage"]
    # Carol is in the team, not in the private incident's channel.
    carol = world.api(world.carol)
    seen = (await carol.get("/api/v1/incidents", params={"team_id": world.team_id})).json()
    assert sorted(i["name"] for i in seen["items"]) == ["Alpha outage", "Bravo latency"]
    invalid = await api.get("/api/v1/incidents", params={"team_id": world.team_id, "status": "closed"})
    assert invalid.status_code == 422
    assert "status" in invalid.json()["fields"]
    outsider = await world.api(world.mallory).get("/api/v1/incidents", params={"team_id": world.team_id})
    assert outsider.status_code == 404


async def test_running_incident_keeps_its_playbook_snapshot(world: World) -> None:
    book = await playbook(world, world.alice)
    running = await start(world, world.alice, playbook_id=book["id"])
    await ready(world, world.alice, running["id"])
    edited = {
        "title": book["title"],
        "checklists": [{"title": "Only stage", "items": [{"title": "New step"}]}],
        "member_ids": book["member_ids"],
        "version": 1,
    }
    assert (await world.api(world.alice).put(f"/api/v1/playbooks/{book['id']}", json=edited)).status_code == 200
    record = (await world.api(world.alice).get(f"/api/v1/incidents/{running['id']}")).json()
    assert record["playbook_version"] == 1
    assert [s["title"] for s in record["checklists"]] == ["Triage", "Mitigate"]
    newer = await start(world, world.alice, playbook_id=book["id"])
    assert newer["playbook_version"] == 2
    assert [s["title"] for s in newer["checklists"]] == ["Only stage"]


async def test_hostile_ids_and_names_are_refused_cleanly(world: World) -> None:
    """Found by fuzzing the OpenAPI document: odd ids must be 422/404, never a server error."""
    api = world.api(world.alice)
    for path in ("/api/v1/incidents", "/api/v1/playbooks", "/api/v1/stats"):
        response = await api.get(path, params={"team_id": "../../users/me\x00"})
        assert response.status_code == 422, (path, response.text)
        assert "team_id" in response.json()["fields"]
    for path in ("/api/v1/incidents/..%2F..%2Fx", "/api/v1/playbooks/%E2%80%AEzz", "/api/v1/incidents/by-channel/x"):
        response = await api.get(path)
        assert response.status_code in (404, 422), (path, response.text)
    record = await start(world, world.alice)
    await ready(world, world.alice, record["id"])
    channel = (await api.get(f"/api/v1/incidents/{record['id']}")).json()["channel_id"]
    # The channel exists before its members are added, and membership is cached briefly: a
    # command typed by someone not yet known as a member is (rightly) "only from within the
    # incident's channel". Refused either way, so asking again changes nothing.
    await world.standin.wait_for(lambda: world.alice.id in world.standin.channel_members(channel))
    reply = await eventually(
        lambda: world.slash(world.alice, "add @../../teams", channel_id=channel),
        lambda r: "within the incident's channel" not in r["text"],
        what="alice known as a member",
    )
    assert reply["text"].startswith("There is no user @../../teams.")
    reply = await world.slash(world.alice, "announce ~../../x", channel_id=channel)
    assert reply["text"].startswith("There is no channel ~../../x that you can see")
