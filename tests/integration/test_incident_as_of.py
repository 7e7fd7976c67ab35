"""The incident at any moment on the real stack: `GET /api/v1/incidents/{id}?as_of=` rebuilt from
its recorded history, and the backstage's time slider, for whoever may see the incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.harness import World
from tests.integration.backstage_helpers import sign_in
from tests.integration.slash_helpers import Started, command, outage, settled


@dataclass
class Moments:
    incident: Started
    opened: datetime  # the channel open, nothing done
    checked: datetime  # the first item checked
    updated: datetime  # a status update posted
    moved: datetime  # the next stage, bob the commander


async def lived(world: World) -> Moments:
    """Alice's private incident: an item checked, an update, the next stage and a new commander, ended."""
    incident = await outage(world)
    opened = datetime.now(UTC)
    await command(world, world.alice, "check 1", incident)
    await settled(world, incident.id)
    checked = datetime.now(UTC)
    await command(world, world.alice, "update identified Replica lag", incident)
    await settled(world, incident.id)
    updated = datetime.now(UTC)
    await command(world, world.alice, "stage next --force", incident)
    await command(world, world.alice, f"add @{world.bob.username}", incident)
    await settled(world, incident.id)
    changed = await command(world, world.alice, f"commander @{world.bob.username}", incident)
    assert "commander" in changed.lower(), changed
    await settled(world, incident.id)
    moved = datetime.now(UTC)
    async with world.api(world.alice) as api:
        ended = await api.post(f"/api/v1/incidents/{incident.id}/end")
    assert ended.status_code == 200, ended.text
    await settled(world, incident.id)
    return Moments(incident=incident, opened=opened, checked=checked, updated=updated, moved=moved)


def item_states(record: dict[str, object]) -> list[str]:
    stages = record["checklists"]
    assert isinstance(stages, list)
    return [item["state"] for item in stages[0]["items"]]


async def test_the_incident_as_it_stood_between_its_commands(world: World) -> None:
    moments = await lived(world)
    url = f"/api/v1/incidents/{moments.incident.id}"
    async with world.api(world.alice) as api:
        now = (await api.get(url)).json()
        opened = await api.get(url, params={"as_of": moments.opened.isoformat()})
        checked = await api.get(url, params={"as_of": moments.checked.isoformat()})
        updated = await api.get(url, params={"as_of": moments.updated.isoformat().replace("+00:00", "")})
        moved = await api.get(url, params={"as_of": moments.moved.isoformat()})
    for answer in (opened, checked, updated, moved):
        assert answer.status_code == 200, answer.text
    assert now["status"] == "ended"

    at_open = opened.json()
    assert at_open["status"] == "ongoing"
    assert item_states(at_open) == ["open", "open"]
    assert at_open["status_updates"] == []
    assert at_open["active_stage"] == 0
    assert at_open["commander_id"] == world.alice.id

    at_check = checked.json()
    assert item_states(at_check) == ["done", "open"]
    assert at_check["status_updates"] == []
    assert len(at_check["timeline"]) < len(now["timeline"])

    at_update = updated.json()
    assert at_update["status_updates"][-1]["message"] == "Replica lag"
    assert at_update["active_stage"] == 0

    at_move = moved.json()
    assert at_move["status"] == "ongoing"
    assert at_move["active_stage"] == 1
    assert at_move["commander_id"] == world.bob.id
    assert world.bob.id in at_move["member_ids"]
    assert at_move["ended_at"] is None


async def test_a_moment_before_the_start_or_to_come_is_refused(world: World) -> None:
    moments = await lived(world)
    url = f"/api/v1/incidents/{moments.incident.id}"
    async with world.api(world.alice) as api:
        started = (await api.get(url)).json()["started_at"]
        before = await api.get(url, params={"as_of": (moments.opened - timedelta(hours=1)).isoformat()})
        later = await api.get(url, params={"as_of": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
        garbled = await api.get(url, params={"as_of": "yesterday"})
        far = await api.get(url, params={"as_of": "9999-12-31T23:59:59-23:59"})
    assert before.status_code == 422, before.text
    assert started[:19] in before.json()["message"]
    assert later.status_code == 422, later.text
    assert "to come" in later.json()["message"]
    assert garbled.status_code == 422
    assert far.status_code == 422


async def test_only_those_who_may_see_the_incident_see_its_past(world: World) -> None:
    moments = await lived(world)
    at = {"as_of": moments.checked.isoformat()}
    async with world.api(world.carol) as api:  # in the team, not in the private incident's channel
        hidden = await api.get(f"/api/v1/incidents/{moments.incident.id}", params=at)
        missing = await api.get("/api/v1/incidents/zzzzzzzzzz", params=at)
        # A time refused for those who may see it is still "not found" for her.
        early = await api.get(f"/api/v1/incidents/{moments.incident.id}", params={"as_of": "2000-01-01T00:00:00"})
    assert hidden.status_code == missing.status_code == early.status_code == 404
    assert hidden.json() == missing.json() == early.json()


async def test_the_backstage_slider_shows_the_incident_at_a_moment(world: World) -> None:
    moments = await lived(world)
    page = await sign_in(world, world.alice)
    base = f"/backstage/incidents/{moments.incident.id}"
    shown = await page.get(base)
    assert f'href="{base}/as-of" id="as-of-link"' in shown.text

    at_check = await page.get(f"{base}/as-of", params={"at": moments.checked.strftime("%Y-%m-%dT%H:%M:%S.%f")})
    assert at_check.status_code == 200, at_check.text
    assert "As it stood at" in at_check.text
    assert 'type="range"' in at_check.text
    assert 'id="incident-status">Ongoing' in at_check.text
    assert "Replica lag" not in at_check.text
    assert f"{base}/commands/" not in at_check.text, "read-only: no command forms"

    at_start = await page.get(f"{base}/as-of", params={"offset": "0"})
    assert at_start.status_code == 200
    assert 'id="incident-status">Ongoing' in at_start.text
    latest = await page.get(f"{base}/as-of")
    assert 'id="incident-status">Ended' in latest.text

    refused = await page.get(f"{base}/as-of", params={"at": "not a time"})
    assert refused.status_code == 422
    beyond = await page.get(f"{base}/as-of", params={"offset": "9" * 12})
    assert 'id="incident-status">Ended' in beyond.text
    # Digits that are not ASCII ('²' passes str.isdigit, int() refuses it): the latest, never a 500.
    for odd in ("\u00b2", "\u0663", "-5", "1e3"):
        oddly = await page.get(f"{base}/as-of", params={"offset": odd})
        assert oddly.status_code == 200, (odd, oddly.status_code)
        assert 'id="incident-status">Ended' in oddly.text
    assert "from its start to its end" in latest.text

    carol = await sign_in(world, world.carol)
    assert (await carol.get(f"{base}/as-of", params={"offset": "0"})).status_code == 404
