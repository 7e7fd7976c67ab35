"""Dry-run a playbook change on the real stack: `POST /api/v1/playbooks/{id}/dry-run` replays the
playbook's ended incidents (their recorded commands) against the proposal, writing nothing, for
people who may edit the playbook."""

from __future__ import annotations

from typing import Any

from tests.harness import World, eventually
from tests.integration.slash_helpers import (
    MITIGATE,
    TRIAGE,
    VERIFY,
    Started,
    command,
    create_playbook,
    settled,
    start_incident,
)

SPEC_FIELDS = ("title", "checklists", "member_ids", "reminder_timer_default_seconds")


async def ended_incident(world: World) -> tuple[dict[str, Any], Started]:
    """Alice's playbook (Triage: 2 steps, Mitigate: 1, Verify: none) and an incident run with it:
    the first step checked, on to Mitigate, its step checked, ended through REST."""
    playbook = await create_playbook(world, world.alice, title="Dry run outage")
    incident = await start_incident(world, world.alice, "Dry run outage", "Replica lost")
    await command(world, world.alice, "check 1", incident)
    await command(world, world.alice, "stage next --force", incident)
    await command(world, world.alice, "check 1", incident)
    await settled(world, incident.id)
    async with world.api(world.alice) as api:
        ended = await api.post(f"/api/v1/incidents/{incident.id}/end")
    assert ended.status_code == 200, ended.text
    await settled(world, incident.id)
    return playbook, incident


def spec_of(playbook: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**{name: playbook[name] for name in SPEC_FIELDS}, **changes}


async def dry_run(world: World, playbook_id: str, spec: dict[str, Any], last: int = 10) -> dict[str, Any]:
    async with world.api(world.alice) as api:
        answer = await api.post(f"/api/v1/playbooks/{playbook_id}/dry-run", json={"spec": spec, "last": last})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_removed_stage_refuses_the_command_given_on_it_and_the_unchanged_spec_changes_nothing(
    world: World,
) -> None:
    playbook, incident = await ended_incident(world)
    unchanged = spec_of(playbook)

    # Visibility lists the ended incident a moment after its end.
    async def listed() -> dict[str, Any]:
        return await dry_run(world, playbook["id"], unchanged)

    same = await eventually(listed, lambda body: len(body["incidents"]) == 1, what="the ended incident listed")
    [replayed] = same["incidents"]
    assert replayed["incident_id"] == incident.id
    assert replayed["name"] == "Replica lost"
    assert replayed["differences"] is False, replayed["what_differs"]
    assert replayed["refused"] == []
    assert same["summary"] == {"incidents": 1, "with_differences": 0, "refused_commands": 0}
    assert same["version"] == playbook["version"]

    without_mitigate = await dry_run(world, playbook["id"], spec_of(playbook, checklists=[TRIAGE, VERIFY]))
    [changed] = without_mitigate["incidents"]
    assert changed["differences"] is True
    [refused] = changed["refused"]
    assert refused["command"] == "set_item_state"
    assert refused["target"] == "stage 'Mitigate', step 'Fail over'"
    assert refused["reason"] == "The proposed playbook has no stage 'Mitigate'."
    assert refused["actor_id"] == world.alice.id
    assert without_mitigate["summary"]["refused_commands"] == 1

    # A step added to Triage is never done; nothing was written: the playbook is as it was.
    added = {**TRIAGE, "items": [*TRIAGE["items"], {"title": "Tell support"}]}
    more = await dry_run(world, playbook["id"], spec_of(playbook, checklists=[added, MITIGATE, VERIFY]))
    [with_step] = more["incidents"]
    assert {"stage": "Triage", "item": "Tell support", "state": "open"} in with_step["steps_never_done"]["proposed"]
    async with world.api(world.alice) as api:
        now = (await api.get(f"/api/v1/playbooks/{playbook['id']}")).json()
    assert now["version"] == playbook["version"]
    assert now["checklists"] == playbook["checklists"]


async def test_only_people_who_may_edit_the_playbook_dry_run_it_and_a_bad_spec_is_422(world: World) -> None:
    playbook = await create_playbook(world, world.alice, title="Dry run access")
    body = {"spec": spec_of(playbook), "last": 5}
    url = f"/api/v1/playbooks/{playbook['id']}/dry-run"
    async with world.api(world.bob) as api:
        outsider = await api.post(url, json=body)
        nowhere = await api.post("/api/v1/playbooks/nosuchbook1/dry-run", json=body)
    assert outsider.status_code == 404, outsider.text
    assert outsider.json()["error"] == "not_found"
    assert nowhere.status_code == 404
    async with world.api(world.alice) as api:
        untitled = await api.post(url, json={"spec": spec_of(playbook, title=""), "last": 5})
        stranger = await api.post(url, json={"spec": spec_of(playbook, member_ids=["a" * 26]), "last": 5})
        too_many = await api.post(url, json={**body, "last": 51})
        none_yet = await api.post(url, json=body)
    assert untitled.status_code == 422
    assert "spec.title" in untitled.json()["fields"]
    assert stranger.status_code == 422, stranger.text
    assert "spec.member_ids[0]" in stranger.json()["fields"], stranger.json()
    assert too_many.status_code == 422
    assert "last" in too_many.json()["fields"]
    assert none_yet.status_code == 200
    assert none_yet.json()["incidents"] == []
