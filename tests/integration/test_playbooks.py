"""Playbooks through the HTTP API: team-scoped, member-only, versioned, stored in Temporal."""

from __future__ import annotations

from typing import Any

from tests.harness import User, World, eventually
from tests.integration.rest_helpers import unauthenticated


def spec(title: str = "Database outage", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "description": "When the primary database is down",
        "checklists": [
            {"title": "Triage", "items": [{"title": "Page the DBA", "command": "/page dba"}, {"title": "Logs"}]},
            {"title": "Mitigate", "items": [{"title": "Fail over"}]},
        ],
    }
    body.update(fields)
    return body


async def create(world: World, user: User, **fields: Any) -> dict[str, Any]:
    response = await world.api(user).post("/api/v1/playbooks", json={"team_id": world.team_id, **spec(**fields)})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listed(world: World, user: User, expected: int, **params: Any) -> dict[str, Any]:
    """The list once visibility shows `expected` playbooks (it is eventually consistent)."""

    async def fetch() -> dict[str, Any]:
        response = await world.api(user).get("/api/v1/playbooks", params={"team_id": world.team_id, **params})
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    return await eventually(fetch, lambda page: page["total_count"] == expected, what=f"{expected} playbooks")


async def test_create_makes_the_creator_a_member(world: World) -> None:
    playbook = await create(world, world.alice, member_ids=[world.bob.id], reminder_timer_default_seconds=900)
    assert playbook["member_ids"] == [world.alice.id, world.bob.id]
    assert playbook["version"] == 1
    assert playbook["created_by"] == world.alice.id
    assert playbook["team_id"] == world.team_id
    assert playbook["checklists"][0]["items"][0] == {
        "title": "Page the DBA",
        "description": "",
        "command": "/page dba",
        "due": None,
        "when": None,
    }
    fetched = await world.api(world.bob).get(f"/api/v1/playbooks/{playbook['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == playbook


async def test_authentication_is_required(world: World) -> None:
    assert (await unauthenticated(world, "/api/v1/playbooks"))["error"] == "unauthorized"
    bad = await unauthenticated(world, "/api/v1/playbooks", "Bearer nope")
    assert "Mattermost does not accept this token" in bad["message"]


async def test_validation_errors_name_each_field_and_create_nothing(world: World) -> None:
    api = world.api(world.alice)
    private = await world.driver(world.bob).channels.create_channel(
        team_id=world.team_id, name="bobs-room", display_name="Bob's room", type="P"
    )
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        (spec(title=""), {"title": "String should have at least 1 character"}),
        (spec(title="x" * 65), {"title": "String should have at most 64 characters"}),
        (spec(checklists=[]), {"checklists": "List should have at least 1 item after validation, not 0"}),
        (spec(checklists=[{"title": "  ", "items": []}]), {"checklists[0].title": "String should have at least 1"}),
        (
            spec(checklists=[{"title": "Triage", "items": [{"title": ""}]}]),
            {"checklists[0].items[0].title": "String should have at least 1 character"},
        ),
        (
            spec(checklists=[{"title": "Triage"}, {"title": "triage"}]),
            {"checklists": "stage 2 has the same title as stage 1"},
        ),
        (spec(member_ids=["z" * 26]), {"member_ids[1]": "no user has the id " + "z" * 26}),
        (spec(invited_user_ids=[world.mallory.id]), {"invited_user_ids[0]": "is not a member of this team"}),
        (spec(default_commander_id=world.mallory.id), {"default_commander_id": "is not a member of this team"}),
        (spec(broadcast_channel_ids=[private["id"]]), {"broadcast_channel_ids[0]": "that you can see in this team"}),
        (spec(channel_name_template="INC-{name}"), {"channel_name_template": "may only use lowercase letters"}),
        (spec(channel_name_template="inc-{who}"), {"channel_name_template": "unknown placeholder {who}"}),
        (spec(member_ids=["short"]), {"member_ids[0]": "must be a 26-character Mattermost id"}),
    ]
    for body, expected in cases:
        response = await api.post("/api/v1/playbooks", json={"team_id": world.team_id, **body})
        assert response.status_code == 422, (body, response.text)
        error = response.json()
        assert error["error"] == "validation_error"
        for field, fragment in expected.items():
            assert fragment in error["fields"].get(field, ""), (field, error)
    assert (await listed(world, world.alice, 0))["items"] == []


async def test_list_sorts_pages_and_shows_only_my_playbooks(world: World) -> None:
    one_stage = [{"title": "Only", "items": [{"title": f"step {n}"} for n in range(5)]}]
    three_stages = [{"title": f"S{n}", "items": [{"title": "x"}]} for n in range(3)]
    await create(world, world.alice, title="Bravo")
    await create(world, world.alice, title="alpha", checklists=one_stage, member_ids=[world.bob.id])
    await create(world, world.alice, title="Charlie", checklists=three_stages)
    await create(world, world.bob, title="Delta (bob only)")

    page = await listed(world, world.alice, 3)
    assert [p["title"] for p in page["items"]] == ["alpha", "Bravo", "Charlie"]
    assert page["items"][0]["stage_count"] == 1
    assert page["items"][0]["step_count"] == 5
    desc = await listed(world, world.alice, 3, sort="title", direction="desc")
    assert [p["title"] for p in desc["items"]] == ["Charlie", "Bravo", "alpha"]
    by_stages = await listed(world, world.alice, 3, sort="stages", direction="desc")
    assert [p["title"] for p in by_stages["items"]] == ["Charlie", "Bravo", "alpha"]
    by_steps = await listed(world, world.alice, 3, sort="steps")  # ties are broken by title
    assert [p["title"] for p in by_steps["items"]] == ["Bravo", "Charlie", "alpha"]
    recent = await listed(world, world.alice, 3, sort="updated_at")
    assert [p["title"] for p in recent["items"]] == ["Charlie", "alpha", "Bravo"]

    first = await listed(world, world.alice, 3, per_page=2)
    assert (len(first["items"]), first["has_more"], first["page"], first["per_page"]) == (2, True, 0, 2)
    second = await listed(world, world.alice, 3, per_page=2, page=1)
    assert ([p["title"] for p in second["items"]], second["has_more"]) == (["Charlie"], False)

    bob = await listed(world, world.bob, 2)
    assert sorted(p["title"] for p in bob["items"]) == ["Delta (bob only)", "alpha"]
    assert (await listed(world, world.carol, 0))["items"] == []
    admin = await listed(world, world.admin, 4)
    assert len(admin["items"]) == 4

    bad = await world.api(world.alice).get("/api/v1/playbooks", params={"team_id": world.team_id, "sort": "size"})
    assert bad.status_code == 422
    assert "sort" in bad.json()["fields"]


async def test_non_members_and_other_teams_get_not_found(world: World) -> None:
    playbook = await create(world, world.alice)
    for user in (world.carol, world.mallory):
        for method, path in (
            ("GET", f"/api/v1/playbooks/{playbook['id']}"),
            ("PUT", f"/api/v1/playbooks/{playbook['id']}"),
            ("DELETE", f"/api/v1/playbooks/{playbook['id']}"),
            ("GET", f"/api/v1/playbooks/{playbook['id']}/history"),
            ("GET", f"/api/v1/playbooks/{playbook['id']}/export"),
        ):
            body = {**spec(), "version": 1} if method == "PUT" else None
            response = await world.api(user).request(method, path, json=body)
            assert response.status_code == 404, (user.username, method, path, response.text)
            assert response.json() == {"error": "not_found", "message": "Playbook not found.", "fields": {}}
    unknown = await world.api(world.alice).get("/api/v1/playbooks/nosuchthing")
    assert unknown.status_code == 404
    outsider = await world.api(world.mallory).get("/api/v1/playbooks", params={"team_id": world.team_id})
    assert outsider.status_code == 404
    assert outsider.json()["message"] == "Team not found."
    create_elsewhere = await world.api(world.mallory).post(
        "/api/v1/playbooks", json={"team_id": world.team_id, **spec()}
    )
    assert create_elsewhere.status_code == 404


async def test_update_is_versioned_and_stale_versions_conflict(world: World) -> None:
    playbook = await create(world, world.alice, member_ids=[world.bob.id])
    api = world.api(world.bob)
    edited = {**spec(title="Database outage v2"), "member_ids": [world.alice.id, world.bob.id], "version": 1}
    updated = await api.put(f"/api/v1/playbooks/{playbook['id']}", json=edited)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["version"], updated.json()["title"]) == (2, "Database outage v2")
    assert updated.json()["updated_at"] > playbook["updated_at"]

    stale = await world.api(world.alice).put(
        f"/api/v1/playbooks/{playbook['id']}", json={**edited, "title": "Lost edit", "version": 1}
    )
    assert stale.status_code == 409
    assert "you edited version 1, but it is now at version 2" in stale.json()["message"]
    same = await api.put(f"/api/v1/playbooks/{playbook['id']}", json={**edited, "version": 2})
    assert same.status_code == 409
    assert same.json()["message"] == "Nothing to change: the playbook already looks like that."
    nobody = await api.put(f"/api/v1/playbooks/{playbook['id']}", json={**edited, "member_ids": [], "version": 2})
    assert nobody.status_code == 422
    assert nobody.json()["message"] == "A playbook needs at least one member."
    invalid = await api.put(f"/api/v1/playbooks/{playbook['id']}", json={**edited, "title": "", "version": 2})
    assert invalid.status_code == 422
    assert (await api.get(f"/api/v1/playbooks/{playbook['id']}")).json()["version"] == 2


async def test_history_records_every_edit(world: World) -> None:
    playbook = await create(world, world.alice)
    api = world.api(world.alice)
    body = {**spec(), "member_ids": [world.alice.id, world.bob.id], "reminder_timer_default_seconds": 600}
    assert (await api.put(f"/api/v1/playbooks/{playbook['id']}", json={**body, "version": 1})).status_code == 200
    renamed = {**body, "title": "DB outage", "version": 2}
    assert (await api.put(f"/api/v1/playbooks/{playbook['id']}", json=renamed)).status_code == 200
    page = (await api.get(f"/api/v1/playbooks/{playbook['id']}/history")).json()
    assert (page["total_count"], page["page"], page["has_more"]) == (3, 0, False)
    history = page["items"]
    assert [(h["version"], h["editor_id"]) for h in history] == [
        (1, world.alice.id),
        (2, world.alice.id),
        (3, world.alice.id),
    ]
    assert history[0]["summary"] == ["created"]
    assert history[1]["summary"] == ["members +1", "reminder: 0s -> 600s"]
    assert history[2]["summary"] == ["title: 'Database outage' -> 'DB outage'"]
    assert history[0]["at"] <= history[1]["at"] <= history[2]["at"]


async def test_archive_hides_the_playbook(world: World) -> None:
    playbook = await create(world, world.alice)
    await listed(world, world.alice, 1)
    deleted = await world.api(world.alice).delete(f"/api/v1/playbooks/{playbook['id']}")
    assert deleted.status_code == 204
    assert (await world.api(world.alice).get(f"/api/v1/playbooks/{playbook['id']}")).status_code == 404
    assert (await world.api(world.alice).delete(f"/api/v1/playbooks/{playbook['id']}")).status_code == 404
    await listed(world, world.alice, 0)
    reply = await world.slash(world.alice, 'start "Database outage" Still down')
    assert "You have no playbook called 'Database outage'" in reply["text"]
    history = await world.api(world.admin).get(f"/api/v1/playbooks/{playbook['id']}/history")
    assert history.status_code == 404


async def test_export_import_round_trip(world: World) -> None:
    off_topic = world.channels["off-topic"]
    playbook = await create(
        world,
        world.alice,
        member_ids=[world.bob.id],
        invited_user_ids=[world.carol.id],
        default_commander_id=world.bob.id,
        broadcast_channel_ids=[off_topic["id"]],
        reminder_timer_default_seconds=1800,
        channel_name_template="inc-{date}-{name}",
        create_public_incident=True,
    )
    exported = await world.api(world.alice).get(f"/api/v1/playbooks/{playbook['id']}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    text = exported.text
    assert f"- {world.bob.username}" in text
    assert "- off-topic" in text
    imported = await world.api(world.alice).post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=text.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    copy = imported.json()
    assert copy["id"] != playbook["id"]
    for field in (
        "title",
        "description",
        "checklists",
        "member_ids",
        "invited_user_ids",
        "default_commander_id",
        "broadcast_channel_ids",
        "reminder_timer_default_seconds",
        "channel_name_template",
        "create_public_incident",
    ):
        assert copy[field] == playbook[field], field


async def test_import_errors_name_the_line(world: World) -> None:
    api = world.api(world.alice)

    async def attempt(text: str) -> dict[str, Any]:
        response = await api.post("/api/v1/playbooks/import", params={"team_id": world.team_id}, content=text.encode())
        assert response.status_code == 422, response.text
        body: dict[str, Any] = response.json()
        return body

    broken = await attempt("title: Outage\nchecklists:\n  - title: [unclosed\n")
    assert broken["message"].startswith("Invalid YAML: line 4")
    schema = await attempt("title: Outage\nchecklists:\n  - title: Triage\n    items:\n      - description: no title\n")
    assert schema["fields"]["checklists[0].items[0].title"] == "line 5: Field required"
    unknown = await attempt("title: Outage\nmembers:\n  - nobody-here\nchecklists:\n  - title: Triage\n")
    assert unknown["fields"]["members[0]"] == "line 3: no user @nobody-here"
    not_mapping = await attempt("- just a list\n")
    assert "must be a mapping" in not_mapping["message"]
    await listed(world, world.alice, 0)


async def test_slash_playbooks_lists_what_i_can_use(world: World) -> None:
    await create(world, world.alice, title="Database outage")
    await create(world, world.bob, title="Bob's secret")
    await listed(world, world.alice, 1)
    reply = await world.slash(world.alice, "playbooks")
    assert "| Database outage | 2 | 3 |" in reply["text"]
    assert "Bob's secret" not in reply["text"]
    nothing = await world.slash(world.carol, "playbooks")
    assert nothing["text"].startswith("You are not a member of any playbook in this team.")
