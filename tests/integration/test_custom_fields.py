"""Custom fields, end to end: a playbook declares them (REST, YAML, the backstage editor); an
incident gets them at its start (REST, the start dialog, the backstage's start form; a required
one missing refuses the start) and changes them through slash, REST and the backstage in the same
words; every change is on the timeline, announced and sent to webhooks; the fields show in
`info`, the checklist post, the REST record and the backstage; select fields are searchable
(`IncidentFields`), filter the lists and break down the statistics."""

from __future__ import annotations

from typing import Any

from models import search_attributes as sa
from models.custom_fields import filter_words
from models.incident import EventType, incident_workflow_id
from models.incident_views import time_to_resolution
from models.stats import median
from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import (
    Started,
    bot_posted,
    checklist_post,
    command,
    create_playbook,
    late_reply,
    settled,
    state,
    submit_dialog,
)
from tests.integration.test_alert_intake import make_integration, send, team_admin

FIELDS: list[dict[str, Any]] = [
    {"name": "region", "label": "Region", "type": "select", "options": ["eu-west", "us-east"], "required": True},
    {"name": "impact", "type": "number", "min": 0, "max": 100},
    {"name": "owner", "type": "user"},
    {"name": "summary", "type": "text", "max_length": 40},
]
UNKNOWN = "There is no field 'colour': this incident's fields are region, impact, owner, summary."


async def fields_playbook(world: World, title: str = "Checkout outage", **extra: Any) -> dict[str, Any]:
    return await create_playbook(world, world.alice, title, fields=FIELDS, member_ids=[world.bob.id], **extra)


async def start_rest(world: World, user: User, playbook_id: str, **body: Any) -> Any:
    async with world.api(user) as api:
        return await api.post(
            "/api/v1/incidents",
            json={"team_id": world.team_id, "name": "Checkout down", "playbook_id": playbook_id, **body},
        )


async def started(world: World, incident_id: str) -> Started:
    current = await settled(world, incident_id)
    assert current.channel_id is not None
    assert current.channel_name is not None
    return Started(id=incident_id, channel_id=current.channel_id, channel_name=current.channel_name, reply={})


async def set_rest(world: World, user: User, incident_id: str, name: str, value: Any) -> Any:
    async with world.api(user) as api:
        return await api.put(f"/api/v1/incidents/{incident_id}/fields/{name}", json={"value": value})


async def backstage_set(world: World, user: User, incident_id: str, name: str, value: str, key: str) -> str:
    """The incident page's form for field `name` sent with `value`: what the page then says."""
    page = await sign_in(world, user)
    url = f"/backstage/incidents/{incident_id}"
    shown = await page.get(url)
    form = f"field-form-{name}"
    assert f'id="{form}"' in shown.text
    data = {"csrf_token": csrf(shown), "request_key": key, "form": form, "name": name, "value": value}
    answer = await page.post(f"{url}/commands/set_field", data=data)
    assert answer.status_code in (303, 409, 422), answer.text
    if answer.status_code == 303:
        return text(await page.get(answer.headers["location"]))
    return text(answer)


async def visible_with(world: World, name: str, value: str) -> set[str]:
    """The incidents Temporal's visibility finds by a select field's value (its words: a Text attribute)."""
    query = (
        f"WorkflowType = 'IncidentWorkflow' AND {sa.INCIDENT_TEAM_ID.name} = '{world.team_id}' "
        f"AND {sa.INCIDENT_FIELDS.name} = '{filter_words(name, value)}'"
    )
    return {e.id.removeprefix("incident-") async for e in world.stack.temporal.list_workflows(query)}


async def test_a_playbook_declares_fields_in_rest_yaml_and_the_editor(world: World) -> None:
    book = await fields_playbook(world)
    assert [f["name"] for f in book["fields"]] == ["region", "impact", "owner", "summary"]
    async with world.api(world.alice) as api:
        twice = {"team_id": world.team_id, "title": "Twice", "checklists": [{"title": "T"}], "fields": FIELDS[:1] * 2}
        refused = await api.post("/api/v1/playbooks", json=twice)
        assert refused.status_code == 422, refused.text
        assert "field 'region' is declared twice" in refused.text
        exported = await api.get(f"/api/v1/playbooks/{book['id']}/export")
        assert "fields:\n- name: region\n  label: Region\n  type: select\n" in exported.text
        imported = await api.post(
            "/api/v1/playbooks/import",
            params={"team_id": world.team_id},
            content=exported.text.replace("title: Checkout outage", "title: Imported"),
            headers={"Content-Type": "application/yaml"},
        )
    assert imported.status_code == 201, imported.text
    assert imported.json()["fields"] == book["fields"], "the YAML round-trips"

    page = await sign_in(world, world.alice)
    editor = await page.get(f"/backstage/playbooks/{book['id']}")
    assert editor.status_code == 200
    assert "fields:\n- name: region" in editor.text.replace("&#39;", "'")


async def test_a_start_needs_its_required_fields_and_reads_every_value(world: World) -> None:
    book = await fields_playbook(world)
    missing = await start_rest(world, world.alice, book["id"])
    assert missing.status_code == 422, missing.text
    assert missing.json()["fields"] == {
        "fields.region": "Field 'region' is required: give it one of eu-west, us-east when you start the incident."
    }
    for fields, field in (
        ({"region": "mars"}, "fields.region"),
        ({"region": "eu-west", "colour": "red"}, "fields.colour"),
        ({"region": "eu-west", "impact": "lots"}, "fields.impact"),
        ({"region": "eu-west", "owner": "@nobody"}, "fields.owner"),
    ):
        refused = await start_rest(world, world.alice, book["id"], fields=fields)
        assert refused.status_code == 422, (fields, refused.text)
        assert field in refused.json()["fields"], fields
    ok = await start_rest(
        world,
        world.alice,
        book["id"],
        fields={"region": "EU-West", "impact": 7, "owner": f"@{world.bob.username}", "summary": " Disk full "},
    )
    assert ok.status_code == 201, ok.text
    incident = ok.json()
    assert incident["fields"] == {"region": "eu-west", "impact": "7", "owner": world.bob.id, "summary": "Disk full"}
    assert incident["field_usernames"] == {"owner": world.bob.username}
    assert incident["id"] in await eventually(
        lambda: visible_with(world, "region", "eu-west"), lambda ids: incident["id"] in ids, what="IncidentFields"
    )
    described = await world.stack.temporal.get_workflow_handle(incident_workflow_id(incident["id"])).describe()
    assert described.typed_search_attributes.get(sa.INCIDENT_FIELDS) == "region=eu-west"
    current = await settled(world, incident["id"])
    assert current.timeline[0].details["fields"]["region"] == "eu-west"


async def test_the_start_dialog_asks_for_the_fields_and_a_typed_start_opens_it(world: World) -> None:
    book = await fields_playbook(world)
    # Typed with the playbook and a name: its required fields are asked in the dialog, the name filled in.
    reply = await world.slash(world.alice, 'start "Checkout outage" Payments failing')
    assert reply["text"] == ""
    dialog = [d for d in world.standin.dialogs(world.alice.id) if d["dialog"]["callback_id"] == "start"][-1]
    elements = {e["name"]: e for e in dialog["dialog"]["elements"]}
    assert [o["value"] for o in elements["playbook"]["options"]] == [book["id"]]
    assert elements["name"]["default"] == "Payments failing"
    assert elements["field_region"]["type"] == "select"
    assert elements["field_region"]["optional"] is False
    assert [o["value"] for o in elements["field_region"]["options"]] == ["eu-west", "us-east"]
    assert elements["field_owner"]["data_source"] == "users"
    assert elements["field_impact"]["subtype"] == "number"
    assert elements["field_summary"]["optional"] is True
    base = {"playbook": book["id"], "name": "Payments failing"}
    refused = await submit_dialog(world, world.alice, dialog, base | {"field_impact": "900", "field_region": "eu-west"})
    assert refused["errors"] == {
        "field_impact": "'900' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100."
    }
    accepted = await submit_dialog(
        world, world.alice, dialog, base | {"field_region": "us-east", "field_owner": world.bob.id, "field_impact": "3"}
    )
    assert not accepted.get("errors"), accepted
    told = await late_reply(world, world.alice, "Incident **Payments failing** started: ~")
    made = await state(world, told.rsplit("-", 1)[1])
    assert made.field_values == {"region": "us-east", "impact": "3", "owner": world.bob.id}

    # The generic dialog offers every usable playbook's fields, none required there; the chosen one's rules hold.
    assert (await world.slash(world.alice, "start"))["text"] == ""
    generic = [d for d in world.standin.dialogs(world.alice.id) if d["dialog"]["callback_id"] == "start"][-1]
    region = next(e for e in generic["dialog"]["elements"] if e["name"] == "field_region")
    assert region["optional"] is True
    missing = await submit_dialog(world, world.alice, generic, {"playbook": book["id"], "name": "No region"})
    assert missing["errors"]["field_region"].startswith("Field 'region' is required")


async def test_a_field_changes_through_slash_rest_and_the_backstage_in_the_same_words(world: World) -> None:
    off_topic = world.channels["off-topic"]
    book = await fields_playbook(world, broadcast_channel_ids=[off_topic["id"]])
    answer = await start_rest(world, world.alice, book["id"], fields={"region": "eu-west"})
    assert answer.status_code == 201, answer.text
    incident = await started(world, answer.json()["id"])
    alice = world.alice

    listed = await command(world, alice, "field", incident)
    assert listed.startswith("Set a field with `/incident field <name> <value>` (`none` clears it).")
    assert "- `region` (Region): eu-west — one of eu-west, us-east, required" in listed
    assert "- `impact`: *(no value)* — a number from 0 to 100" in listed

    # Refused alike by every face, and nothing changes.
    before = await settled(world, incident.id)
    refusals = {
        ("colour", "red"): UNKNOWN,
        ("region", "mars"): "'mars' is not an option of field 'region': choose one of eu-west, us-east.",
        ("region", "none"): "Field 'region' is required and cannot be cleared: give it one of eu-west, us-east.",
        ("region", "EU-WEST"): "Field 'region' is already eu-west.",
        ("impact", "101"): "'101' is not a number from 0 to 100: field 'impact' takes a number from 0 to 100.",
        ("owner", "@nobody"): "There is no user @nobody: field 'owner' takes a person, as @username.",
    }
    for n, ((name, value), said) in enumerate(refusals.items()):
        assert await command(world, alice, f"field {name} {value}", incident) == said, name
        rest = await set_rest(world, alice, incident.id, name, value)
        assert rest.status_code in (409, 422), rest.text
        assert rest.json()["message"] == said
        if name != "colour":  # the page has a form for each of the playbook's fields
            assert said in await backstage_set(world, alice, incident.id, name, value, f"refused-{n}")
    assert (await settled(world, incident.id)).timeline == before.timeline
    # Someone outside the (private) incident learns nothing.
    assert (await set_rest(world, world.mallory, incident.id, "impact", "3")).status_code == 404

    assert await command(world, alice, "field region US-East", incident) == "Field 'region' set to us-east."
    posts = await bot_posted(world, incident.channel_id, "changed **Region** from **eu-west** to **us-east**")
    assert f"@{alice.username} changed **Region** from **eu-west** to **us-east**" in posts
    told = await bot_posted(world, off_topic["id"], "**Region** from **eu-west** to **us-east**")
    assert any(f"to **us-east** (@{alice.username})." in post for post in told)
    rest = await set_rest(world, alice, incident.id, "impact", 42)
    assert rest.status_code == 200, rest.text
    assert rest.json()["message"] == "Field 'impact' set to 42."
    assert rest.json()["incident"]["fields"]["impact"] == "42"
    shown = await backstage_set(world, alice, incident.id, "owner", f"@{world.bob.username}", "owner-1")
    assert f"Field 'owner' set to @{world.bob.username}." in shown
    assert await command(world, alice, "field impact none", incident) == "Field 'impact' cleared."
    assert await command(world, alice, "field summary Rolled back deploy 4412", incident) == (
        "Field 'summary' set to Rolled back deploy 4412."
    )

    current = await settled(world, incident.id)
    changes = [e for e in current.timeline if e.type == EventType.FIELD_CHANGED]
    assert [(e.details["field"], e.details["from"], e.details["to"]) for e in changes] == [
        ("region", "eu-west", "us-east"),
        ("impact", None, "42"),
        ("owner", None, world.bob.id),
        ("impact", "42", None),
        ("summary", None, "Rolled back deploy 4412"),
    ]
    line = f"**Region:** us-east · **owner:** @{world.bob.username} · **summary:** Rolled back deploy 4412"
    checklist = await eventually(
        lambda: _checklist(world, incident), lambda m: "Rolled back deploy" in m, what="the checklist post"
    )
    assert line in checklist
    assert line in await command(world, alice, "info", incident)
    page = await sign_in(world, alice)
    incident_page = text(await page.get(f"/backstage/incidents/{incident.id}"))
    assert "Region" in incident_page
    assert "us-east" in incident_page
    assert incident.id in await eventually(
        lambda: visible_with(world, "region", "us-east"), lambda ids: incident.id in ids, what="the new value indexed"
    )
    async with world.api(alice) as api:
        record = (await api.get(f"/api/v1/incidents/{incident.id}")).json()
    assert record["fields"] == {"region": "us-east", "owner": world.bob.id, "summary": "Rolled back deploy 4412"}
    assert record["field_usernames"] == {"owner": world.bob.username}


async def _checklist(world: World, incident: Started) -> str:
    message: str = checklist_post(world, incident)["message"]
    return message


async def test_lists_filter_and_statistics_break_down_by_a_select_field(world: World) -> None:
    book = await fields_playbook(world)
    alice = world.alice
    regions = {}
    for name, region in (("A", "eu-west"), ("B", "eu-west"), ("C", "us-east")):
        answer = await start_rest(world, alice, book["id"], name=name, fields={"region": region})
        assert answer.status_code == 201, answer.text
        regions[answer.json()["id"]] = region
    eu = [i for i, r in regions.items() if r == "eu-west"]
    for incident_id in eu:
        await settled(world, incident_id)
        async with world.api(alice) as api:
            assert (await api.post(f"/api/v1/incidents/{incident_id}/end")).status_code == 200

    async def listed(**params: Any) -> list[str]:
        async with world.api(alice) as api:
            answer = await api.get("/api/v1/incidents", params={"team_id": world.team_id, **params})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    await eventually(lambda: listed(), lambda found: len(found) == 3, what="all three listed")
    only_eu: list[str] = await eventually(lambda: listed(field="region=EU-WEST"), lambda f: len(f) == 2, what="eu")
    assert set(only_eu) == set(eu)
    assert await listed(field=["region=us-east", "region=eu-west"]) == []
    async with world.api(alice) as api:
        for hostile in ("region", "region=x' OR '1'='1", "Region=eu", "region=" + "x" * 70, "a=b\nc", "r=@all"):
            for path in ("/api/v1/incidents", "/api/v1/stats"):
                refused = await api.get(path, params={"team_id": world.team_id, "field": hostile})
                assert refused.status_code == 422, (path, hostile, refused.text)
                assert "field" in refused.json()["fields"]

    page = await sign_in(world, alice)
    filtered = await page.get(f"/backstage/teams/{world.team_id}/incidents", params={"field": "region=us-east"})
    assert filtered.status_code == 200
    assert '<option value="region=us-east" selected>' in filtered.text
    assert ">C<" in filtered.text.replace("</a>", "<")
    assert ">A<" not in filtered.text.replace("</a>", "<")
    hostile_page = await page.get(f"/backstage/teams/{world.team_id}/incidents", params={"field": "x' OR '1"})
    assert hostile_page.status_code == 200
    assert "is not a field filter" in text(hostile_page)

    records = {i: await settled(world, i) for i in regions}

    async def stats(**params: Any) -> dict[str, Any]:
        async with world.api(alice) as api:
            answer = await api.get("/api/v1/stats", params={"team_id": world.team_id, **params})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    whole = await eventually(lambda: stats(), lambda s: s["ended"] == 2 and s["total"] == 3, what="the statistics")
    rows = {(row["field"], row["value"]): row for row in whole["by_field"]}
    assert list(rows) == [("region", "eu-west"), ("region", "us-east")]
    ttrs = sorted(t for t in (time_to_resolution(records[i]) for i in eu) if t is not None)
    assert rows["region", "eu-west"]["count"] == 2
    assert rows["region", "eu-west"]["ended"] == 2
    assert rows["region", "eu-west"]["time_to_resolution_seconds"]["median"] == median(ttrs)
    assert rows["region", "us-east"]["ongoing"] == 1
    only = await stats(field="region=us-east")
    assert (only["total"], only["fields"]) == (1, ["region=us-east"])
    dashboard = await page.get(f"/backstage/teams/{world.team_id}/stats", params={"field": "region=eu-west"})
    assert dashboard.status_code == 200
    assert 'data-value="eu-west"' in dashboard.text
    assert 'data-value="us-east"' not in dashboard.text


async def test_an_alert_incident_takes_fields_from_labels_and_is_never_refused_for_one(world: World) -> None:
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Alerts", fields=FIELDS)
    integration = await make_integration(world, tess, "generic", playbook_id=book["id"])
    cases = [
        # Select and text fields only (a person or a number is not taken from a label).
        (
            {"labels": {"region": "US-EAST", "summary": "disk 98%", "owner": "bob", "impact": "5"}},
            {"region": "us-east", "summary": "disk 98%"},
        ),
        ({"labels": {"region": "mars"}}, {}),  # not an option: passed over, and the required field stays empty
        ({}, {}),
    ]  # fmt: skip
    for n, (alert, fields) in enumerate(cases):
        answer = await send(world, integration, {"title": f"Alert {n}", "group_key": f"g{n}", **alert})
        assert answer.status_code == 200, answer.text
        incident = await state(world, answer.json()["incident_id"])
        assert incident.field_values == fields, alert
