"""Conditional steps, end to end: a playbook's stage and item that apply only at SEV1 (and one
only for a region), refused when they name what the playbook does not have, carried by its
YAML; an incident started at SEV3 without them, gaining them at SEV1 (on the timeline, in the
checklist post), and skipping them at SEV3 again, except the one someone checked."""

from __future__ import annotations

from typing import Any

from models.incident import EventType, IncidentState
from tests.harness import World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import Started, checklist_post, command, settled, state

REGION = {"name": "region", "type": "select", "options": ["eu-west", "us-east"]}
CHECKLISTS: list[dict[str, Any]] = [
    {
        "title": "Triage",
        "items": [
            {"title": "Assess impact"},
            {"title": "Page the VP", "when": {"severity": ["SEV1"]}},
            {"title": "Notify EU customers", "when": {"field": {"region": ["EU-WEST"]}}},
        ],
    },
    {
        "title": "Escalate",
        "when": {"severity": [1]},
        "items": [{"title": "Call the vendor"}, {"title": "Open a war room"}],
    },
]


async def create_conditional_playbook(world: World) -> dict[str, Any]:
    body = {"team_id": world.team_id, "title": "Conditional", "checklists": CHECKLISTS, "fields": [REGION]}
    async with world.api(world.alice) as api:
        made = await api.post("/api/v1/playbooks", json=body)
    assert made.status_code == 201, made.text
    playbook: dict[str, Any] = made.json()
    return playbook


async def start(world: World, playbook_id: str, severity: int) -> Started:
    async with world.api(world.alice) as api:
        answer = await api.post(
            "/api/v1/incidents",
            json={"team_id": world.team_id, "name": "Checkout down", "playbook_id": playbook_id, "severity": severity},
        )
    assert answer.status_code == 201, answer.text
    incident_id = answer.json()["id"]
    current = await settled(world, incident_id)
    assert current.channel_id is not None
    assert current.channel_name is not None
    return Started(id=incident_id, channel_id=current.channel_id, channel_name=current.channel_name, reply={})


def steps(current: IncidentState) -> list[list[tuple[str, str]]]:
    return [[(item.title, item.state.value) for item in stage.items] for stage in current.checklists]


async def post_shows(world: World, incident: Started, fragment: str) -> str:
    async def message() -> str:
        found: str = checklist_post(world, incident)["message"]
        return found

    return await eventually(message, lambda m: fragment in m, what=f"the checklist post to show {fragment!r}")


async def test_a_playbook_condition_names_its_fields_and_options_and_travels_in_yaml(world: World) -> None:
    bad = [{"title": "Triage", "items": [{"title": "Page", "when": {"field": {"zone": ["a"]}}}]}]
    cases = [
        ({"checklists": bad, "fields": [REGION]}, "stage 1 ('Triage') item 1 ('Page'): `when` names field 'zone'"),
        (
            {"checklists": [{"title": "T", "when": {"field": {"region": ["mars"]}}}], "fields": [REGION]},
            "field 'region' has no option 'mars' (its options: eu-west, us-east)",
        ),
    ]
    async with world.api(world.alice) as api:
        for extra, said in cases:
            refused = await api.post("/api/v1/playbooks", json={"team_id": world.team_id, "title": "Bad", **extra})
            assert refused.status_code == 422, refused.text
            assert said in refused.text, refused.text
        level = await api.post(
            "/api/v1/playbooks",
            json={"team_id": world.team_id, "title": "Bad", "checklists": [{"title": "T", "when": {"severity": [11]}}]},
        )
        assert level.status_code == 422
        assert "checklists[0].when.severity[0]" in level.json()["fields"]
    playbook = await create_conditional_playbook(world)
    assert playbook["checklists"][0]["items"][1]["when"] == {"severity": [1], "field": {}}
    assert playbook["checklists"][0]["items"][2]["when"] == {"severity": [], "field": {"region": ["eu-west"]}}
    async with world.api(world.alice) as api:
        exported = await api.get(f"/api/v1/playbooks/{playbook['id']}/export")
        assert exported.status_code == 200
        assert "when:\n" in exported.text
        assert "field: {}" not in exported.text
        imported = await api.post(
            "/api/v1/playbooks/import",
            params={"team_id": world.team_id},
            content=exported.text.encode(),
            headers={"Content-Type": "application/yaml"},
        )
        assert imported.status_code == 201, imported.text
        assert imported.json()["checklists"] == playbook["checklists"]


async def test_steps_follow_the_severity_and_a_checked_step_stays_done(world: World) -> None:
    playbook = await create_conditional_playbook(world)
    incident = await start(world, playbook["id"], 3)
    assert steps(await state(world, incident.id)) == [[("Assess impact", "open")], []]
    await post_shows(world, incident, "**Stage 2/2 Escalate** · 0/0 done")

    assert await command(world, world.alice, "severity 1", incident) == "Severity set to SEV1."
    current = await settled(world, incident.id)
    assert steps(current) == [
        [("Assess impact", "open"), ("Page the VP", "open")],
        [("Call the vendor", "open"), ("Open a war room", "open")],
    ]
    [gained] = [e for e in current.timeline if e.type == EventType.STEPS_CHANGED]
    assert gained.summary == ("Severity SEV1: 3 step(s) added ('Page the VP', 'Call the vendor', 'Open a war room')")
    assert gained.actor_id == world.alice.id
    await post_shows(world, incident, "2. [ ] Page the VP")

    assert (await command(world, world.alice, "check 2", incident)).startswith("Marked 'Page the VP' as done")
    assert await command(world, world.alice, "severity 3", incident) == "Severity set to SEV3."
    current = await settled(world, incident.id)
    assert steps(current) == [
        [("Assess impact", "open"), ("Page the VP", "done")],
        [("Call the vendor", "skipped"), ("Open a war room", "skipped")],
    ]
    assert current.timeline[-1].summary == "Severity SEV3: 2 skipped ('Call the vendor', 'Open a war room')"
    message = await post_shows(world, incident, "~~Call the vendor~~")
    assert "1. [-] ~~Call the vendor~~ · *skipped (only when SEV1)*" in message
    assert "**Stage 2/2 Escalate** · skipped" in message
    assert "2. [x] Page the VP" in message

    async with world.api(world.alice) as api:
        record = (await api.get(f"/api/v1/incidents/{incident.id}")).json()
        escalate = record["checklists"][1]["items"]
        assert [(i["state"], i["skipped_reason"], i["spec_key"]) for i in escalate] == [
            ("skipped", "only when SEV1", "1/0"),
            ("skipped", "only when SEV1", "1/1"),
        ]
        assert record["checklists"][0]["items"][1]["state"] == "done"
        # Skipping is the playbook's, not a person's: refused, and nothing changes.
        refused = await api.put(
            f"/api/v1/incidents/{incident.id}/checklists/0/items/0/state", json={"state": "skipped"}
        )
        assert refused.status_code == 422, refused.text
        assert "skipped by its playbook condition" in refused.json()["message"]

    assert await command(world, world.alice, "severity 1", incident) == "Severity set to SEV1."
    current = await settled(world, incident.id)
    assert steps(current)[1] == [("Call the vendor", "open"), ("Open a war room", "open")], "back, not twice"
    info = await command(world, world.alice, "info", incident)
    assert "**Stage 2/2 Escalate** · 0/2 done" in info


async def test_a_field_change_gains_its_steps(world: World) -> None:
    playbook = await create_conditional_playbook(world)
    incident = await start(world, playbook["id"], 2)
    async with world.api(world.alice) as api:
        answer = await api.put(f"/api/v1/incidents/{incident.id}/fields/region", json={"value": "EU-West"})
    assert answer.status_code == 200, answer.text
    current = await eventually(
        lambda: state(world, incident.id),
        lambda s: any(e.type == EventType.STEPS_CHANGED for e in s.timeline),
        what="the field's steps",
    )
    assert steps(current)[0] == [("Assess impact", "open"), ("Notify EU customers", "open")]
    await post_shows(world, incident, "Notify EU customers")
    async with world.api(world.alice) as api:
        answer = await api.put(f"/api/v1/incidents/{incident.id}/fields/region", json={"value": "us-east"})
    assert answer.status_code == 200, answer.text
    current = await settled(world, incident.id)
    assert steps(current)[0] == [("Assess impact", "open"), ("Notify EU customers", "skipped")]


async def test_the_backstage_shows_and_edits_conditions(world: World) -> None:
    checklists = [
        {"title": "Triage", "items": [{"title": "Assess impact"}, {"title": "Page the VP", "when": {"severity": [1]}}]},
        {"title": "Escalate", "when": {"severity": [1]}, "items": [{"title": "Call the vendor"}]},
    ]
    async with world.api(world.alice) as api:
        made = await api.post(
            "/api/v1/playbooks", json={"team_id": world.team_id, "title": "By severity", "checklists": checklists}
        )
    assert made.status_code == 201, made.text
    book = made.json()
    page = await sign_in(world, world.alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert "Only when SEV1" in text(shown)
    assert "The whole stage applies only when SEV1" in text(shown)
    assert 'name="checklists[0].items[1].when" value="severity: 1"' in shown.text
    form = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "By severity",
        "members": world.alice.username,
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Assess impact",
        "checklists[0].items[1].title": "Page the VP",
        "checklists[0].items[1].when": "sev1, sev2",
        "checklists[1].title": "Escalate",
        "checklists[1].when": "severity: 1",
        "checklists[1].items[0].title": "Call the vendor",
    }
    refused = await page.post(url, data=form | {"checklists[0].items[1].when": "severity: 11"})
    assert refused.status_code == 422
    assert "Stage 1, item 2, only when" in text(refused)
    assert 'aria-describedby="err-checklists-0-items-1-when"' in refused.text
    refused = await page.post(url, data=form | {"checklists[0].items[1].when": "region: eu-west"})
    assert refused.status_code == 422
    assert "`when` names field 'region', which the playbook does not declare" in text(refused)
    saved = await page.post(url, data=form)
    assert saved.status_code == 303, text(saved)
    async with world.api(world.alice) as api:
        stored = (await api.get(f"/api/v1/playbooks/{book['id']}")).json()
    assert stored["checklists"][0]["items"][1]["when"] == {"severity": [1, 2], "field": {}}
    assert stored["checklists"][1]["when"] == {"severity": [1], "field": {}}
    assert stored["checklists"][0]["items"][0].get("when") is None

    incident = await start(world, book["id"], 1)
    assert await command(world, world.alice, "severity 3", incident) == "Severity set to SEV3."
    await settled(world, incident.id)
    live = text(await page.get(f"/backstage/incidents/{incident.id}"))
    assert "Skipped (only when SEV1, SEV2)" in live
    assert "skipped: no step applies" in live
