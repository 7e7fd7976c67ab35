"""Severity, end to end: the team's levels (REST, members read and admins write), an incident's
severity set at its start (by its starter, its playbook's default, its alert route or label) and
changed through slash, REST and the backstage, on the timeline and announced, in the channel
header, the checklist post, `info` and `list`, the search attribute `IncidentSeverity`, the
lists' filter and sort, and the statistics by severity."""

from __future__ import annotations

from typing import Any

from models import search_attributes as sa
from models.incident import EventType, incident_workflow_id
from models.incident_views import time_to_resolution
from models.stats import median, percentile
from tests.harness import User, World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import (
    bot_posted,
    checklist_post,
    command,
    create_playbook,
    late_reply,
    outage,
    settled,
    start_incident,
    state,
    submit_dialog,
)
from tests.integration.test_alert_intake import send, team_admin
from tests.integration.test_webhooks import hooked

DEFAULT_NAMES = ["SEV1", "SEV2", "SEV3", "SEV4"]


async def levels_of(world: World, user: User) -> dict[str, Any]:
    async with world.api(user) as api:
        answer = await api.get(f"/api/v1/teams/{world.team_id}/severities")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def put_levels(world: World, user: User, levels: list[dict[str, Any]], **extra: Any) -> Any:
    async with world.api(user) as api:
        return await api.put(f"/api/v1/teams/{world.team_id}/severities", json={"levels": levels, **extra})


async def start_rest(world: World, user: User, **body: Any) -> Any:
    async with world.api(user) as api:
        return await api.post("/api/v1/incidents", json={"team_id": world.team_id, "name": "Checkout down", **body})


async def set_severity_rest(world: World, user: User, incident_id: str, severity: Any) -> Any:
    async with world.api(user) as api:
        return await api.post(f"/api/v1/incidents/{incident_id}/severity", json={"severity": severity})


async def visible_with_severity(world: World, level: int) -> set[str]:
    """The incidents Temporal's visibility lists with `IncidentSeverity = level` in this team."""
    query = (
        f"WorkflowType = 'IncidentWorkflow' AND {sa.INCIDENT_TEAM_ID.name} = '{world.team_id}' "
        f"AND {sa.INCIDENT_SEVERITY.name} = {level}"
    )
    return {e.id.removeprefix("incident-") async for e in world.stack.temporal.list_workflows(query)}


# ---------------------------------------------------------------------------- the team's levels


async def test_members_read_the_levels_admins_change_them_and_outsiders_learn_nothing(world: World) -> None:
    tess = team_admin(world)
    defaults = await levels_of(world, world.bob)
    assert [level["name"] for level in defaults["levels"]] == DEFAULT_NAMES
    assert [level["level"] for level in defaults["levels"]] == [1, 2, 3, 4]
    assert defaults["version"] == 0
    assert all(level["colour"].startswith("#") for level in defaults["levels"])
    assert all(level["description"] for level in defaults["levels"])

    async with world.api(world.mallory) as api:
        outsider = await api.get(f"/api/v1/teams/{world.team_id}/severities")
    assert outsider.status_code == 404
    assert outsider.json()["message"] == "Team not found."
    renamed = [
        {"name": "Critical", "description": "Everything is down", "colour": "#B71C1C"},
        {"name": "Major", "description": "A core feature is down"},
        {"name": "Minor"},
    ]
    assert (await put_levels(world, world.mallory, renamed)).status_code == 404
    refused = await put_levels(world, world.bob, renamed)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Only team admins can change this team's severity levels; ask one of them."
    assert (await levels_of(world, world.bob))["version"] == 0, "a refused change changes nothing"

    saved = await put_levels(world, tess, renamed, version=0)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert [(v["level"], v["name"], v["colour"]) for v in body["levels"]] == [
        (1, "Critical", "#b71c1c"),
        (2, "Major", "#6b7280"),
        (3, "Minor", "#6b7280"),
    ]
    assert body["version"] == 1
    assert body["updated_by"] == tess.id
    assert (await levels_of(world, world.bob))["levels"] == body["levels"], "read at once, by any member"

    stale = await put_levels(world, tess, renamed[:2], version=0)
    assert stale.status_code == 409
    assert "changed since you opened them" in stale.json()["message"]


async def test_levels_that_cannot_be_are_refused_naming_the_field(world: World) -> None:
    tess = team_admin(world)
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"name": "Only"}], "levels"),
        ([{"name": f"L{n}"} for n in range(11)], "levels"),
        ([{"name": "High"}, {"name": "high"}], "levels"),
        ([{"name": "Sev 1"}, {"name": "sev-1"}], "levels"),
        ([{"name": "2"}, {"name": "Low"}], "levels[0].name"),
        ([{"name": "@channel"}, {"name": "Low"}], "levels[0].name"),
        ([{"name": "High", "colour": "red"}, {"name": "Low"}], "levels[0].colour"),
        ([{"name": "High", "description": "x" * 201}, {"name": "Low"}], "levels[0].description"),
    ]
    for levels, field in cases:
        answer = await put_levels(world, tess, levels)
        assert answer.status_code == 422, (levels, answer.text)
        assert field in answer.json()["fields"], (levels, answer.json())
    assert (await levels_of(world, tess))["version"] == 0


# ---------------------------------------------------------------------------- an incident's severity


async def test_a_severity_given_at_the_start_is_kept_searchable_and_shown(world: World) -> None:
    started = await start_rest(world, world.alice, severity="sev2")
    assert started.status_code == 201, started.text
    incident = started.json()
    assert incident["severity"] == {"level": 2, "name": "SEV2"}
    # Searchable from the start (the start's own search attributes), in the Web UI's query box too.
    assert incident["id"] in await eventually(
        lambda: visible_with_severity(world, 2), lambda ids: incident["id"] in ids, what="IncidentSeverity = 2"
    )
    current = await settled(world, incident["id"])
    assert current.severity is not None
    assert current.severity.level == 2
    created = current.timeline[0]
    assert created.type == EventType.CREATED
    assert created.summary.endswith(", severity **SEV2**")
    channel = world.standin.get_channel(current.channel_id or "")
    assert channel is not None
    assert channel["header"].startswith(":red_circle: Ongoing · Severity **SEV2** · Commander")
    described = await world.stack.temporal.get_workflow_handle(incident_workflow_id(incident["id"])).describe()
    assert described.typed_search_attributes.get(sa.INCIDENT_SEVERITY) == 2

    # A severity the team does not have refuses the start, and nothing is made.
    for asked in ("sev9", "7", "Critical", True):
        refused = await start_rest(world, world.alice, severity=asked)
        assert refused.status_code == 422, (asked, refused.text)
        assert "severity" in refused.json()["fields"], asked
    assert "There is no severity 'sev9' in this team" in (await start_rest(world, world.alice, severity="sev9")).text


async def test_a_playbook_default_applies_and_must_be_a_level_of_the_team(world: World) -> None:
    too_low = {"team_id": world.team_id, "title": "Five", "checklists": [{"title": "T"}], "default_severity": 5}
    async with world.api(world.alice) as api:
        refused = await api.post("/api/v1/playbooks", json=too_low)
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"]["default_severity"] == "the team has no severity level 5: its levels are 1 to 4"
    book = await create_playbook(world, world.alice, "Checkout", default_severity=3)
    defaulted = await start_rest(world, world.alice, playbook_id=book["id"])
    assert defaulted.json()["severity"] == {"level": 3, "name": "SEV3"}
    given = await start_rest(world, world.alice, playbook_id=book["id"], severity=1)
    assert given.json()["severity"] == {"level": 1, "name": "SEV1"}, "the starter's choice wins"
    async with world.api(world.alice) as api:
        exported = await api.get(f"/api/v1/playbooks/{book['id']}/export")
    assert "default_severity: 3" in exported.text


async def test_severity_through_slash_rest_and_the_backstage_is_on_the_timeline_and_announced(world: World) -> None:
    off_topic = world.channels["off-topic"]
    incident = await outage(world, broadcast_channel_ids=[off_topic["id"]])
    alice, bob = world.alice, world.bob
    assert "This incident has no severity yet" in await command(world, alice, "severity", incident)

    assert await command(world, alice, "severity 2", incident) == "Severity set to SEV2."
    posts = await bot_posted(world, incident.channel_id, "set the severity to **SEV2**")
    assert f"@{alice.username} set the severity to **SEV2**" in posts
    told = await bot_posted(world, off_topic["id"], "severity to **SEV2**")
    assert any(f"severity to **SEV2** by @{alice.username}." in post for post in told)
    assert await command(world, alice, "severity SEV2", incident) == "The severity is already SEV2."
    assert await command(world, alice, "severity Sev 1", incident) == "Severity set to SEV1."
    refused = await command(world, alice, "severity critical", incident)
    assert refused.startswith("There is no severity 'critical' in this team: this team's levels are 1 SEV1, 2 SEV2")
    # Someone outside the incident's channel changes nothing (a private incident: not even seen).
    assert (await set_severity_rest(world, bob, incident.id, "3")).status_code == 404

    answer = await set_severity_rest(world, alice, incident.id, 3)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Severity set to SEV3."
    assert answer.json()["incident"]["severity"] == {"level": 3, "name": "SEV3"}

    page = await sign_in(world, alice)
    shown = await page.get(f"/backstage/incidents/{incident.id}")
    assert 'id="severity-form"' in shown.text
    sent = await page.post(
        f"/backstage/incidents/{incident.id}/commands/set_severity",
        data={"csrf_token": csrf(shown), "request_key": "sev-4", "form": "severity-form", "severity": "4"},
    )
    assert sent.status_code == 303, sent.text
    assert "Severity set to SEV4." in text(await page.get(sent.headers["location"]))

    current = await settled(world, incident.id)
    changes = [e for e in current.timeline if e.type == EventType.SEVERITY_CHANGED]
    assert [(e.details["from"], e.details["to"]) for e in changes] == [(None, 2), (2, 1), (1, 3), (3, 4)]
    assert changes[1].summary == f"@{alice.username} changed the severity from **SEV2** to **SEV1**"
    channel = world.standin.get_channel(incident.channel_id)
    assert channel is not None
    assert "Severity **SEV4**" in channel["header"]
    checklist = await eventually(
        lambda: _checklist(world, incident), lambda m: "**Severity:** SEV4" in m, what="the checklist post"
    )
    assert ":red_circle: **Ongoing** · **Severity:** SEV4 · **Commander:**" in checklist
    assert f"{incident.id}" in await eventually(
        lambda: visible_with_severity(world, 4), lambda ids: incident.id in ids, what="IncidentSeverity = 4"
    )
    info = await command(world, alice, "info", incident)
    assert "**Status:** ongoing · **Severity:** SEV4 · **Commander:**" in info
    listing = await eventually(
        lambda: _listing(world, alice), lambda t: "| SEV4 |" in t, what="the list to show the severity"
    )
    assert "| Incident | Severity | Commander | Duration | Stage |\n|---|---|---|---|---|" in listing
    # The team's settings change; the incident keeps the name it was given, and renamed names are typed.
    tess = team_admin(world)
    renamed = [{"name": n} for n in ("Critical", "Major", "Minor", "Low")]
    assert (await put_levels(world, tess, renamed)).status_code == 200
    assert "**Severity:** SEV4" in await command(world, alice, "info", incident)
    assert await command(world, alice, "severity major", incident) == "Severity set to Major."
    assert await command(world, alice, "severity sev1", incident) == "Severity set to Critical."
    shown_levels = await command(world, alice, "severity", incident)
    assert shown_levels.startswith("The severity is **Critical**. Set it with `/incident severity <level>`")
    assert "- **4 Low**: " in shown_levels


async def _checklist(world: World, incident: Any) -> str:
    message: str = checklist_post(world, incident)["message"]
    return message


async def _listing(world: World, user: User) -> str:
    reply = await world.slash(user, "list")
    listed: str = reply["text"]
    return listed


async def test_an_alert_route_or_the_alert_own_label_sets_the_severity(world: World) -> None:
    tess = team_admin(world)
    book = await create_playbook(world, tess, "Alerts", default_severity=4)
    async with world.api(tess) as api:
        refused = await api.post(
            "/api/v1/integrations",
            json={
                "team_id": world.team_id,
                "kind": "generic",
                "name": "bad",
                "playbook_id": book["id"],
                "routes": [{"match": {"service": "db"}, "severity": "critical"}],
            },
        )
        assert refused.status_code == 422, refused.text
        assert "routes.0.severity" in refused.json()["fields"]
        made = await api.post(
            "/api/v1/integrations",
            json={
                "team_id": world.team_id,
                "kind": "generic",
                "name": "probes",
                "playbook_id": book["id"],
                "routes": [{"match": {"service": "db"}, "severity": "sev1"}],
            },
        )
    assert made.status_code == 201, made.text
    integration = made.json()
    cases = [
        ({"title": "DB down", "group_key": "db", "labels": {"service": "db"}, "severity": "sev3"}, 1),  # the route
        ({"title": "Web slow", "group_key": "web", "severity": "SEV2"}, 2),  # the alert's label names a level
        ({"title": "Disk", "group_key": "disk", "severity": "critical"}, 4),  # names none: the playbook's default
    ]
    for alert, level in cases:
        answer = await send(world, integration, alert)
        assert answer.status_code == 200, answer.text
        incident = await state(world, answer.json()["incident_id"])
        assert incident.severity is not None, alert
        assert incident.severity.level == level, alert


# ---------------------------------------------------------------------------- lists and statistics


async def test_lists_filter_and_sort_by_severity_and_statistics_break_down_by_it(world: World) -> None:
    alice = world.alice
    started: dict[str, int | None] = {}
    for name, severity in (("A", 2), ("B", 1), ("C", 2), ("D", None), ("E", 3)):
        body = {"name": name, **({"severity": severity} if severity else {})}
        answer = await start_rest(world, alice, **body)
        assert answer.status_code == 201, answer.text
        started[answer.json()["id"]] = severity
    ids = {v: k for k, v in started.items() if v != 2}
    twos = [k for k, v in started.items() if v == 2]
    for incident_id in [*twos, ids[1]]:
        await settled(world, incident_id)
        async with world.api(alice) as api:
            assert (await api.post(f"/api/v1/incidents/{incident_id}/end")).status_code == 200

    async def listed(**params: Any) -> list[str]:
        async with world.api(alice) as api:
            answer = await api.get("/api/v1/incidents", params={"team_id": world.team_id, **params})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    everything = await eventually(lambda: listed(), lambda found: len(found) == 5, what="all five listed")
    assert set(everything) == set(started)
    assert set(await listed(severity=2)) == set(twos)
    assert await listed(severity=0) == [ids[None]]
    by_severity = await listed(sort="severity")
    levels = [started[i] for i in by_severity]
    assert levels == [1, 2, 2, 3, None], "the most severe first, those without one last"
    assert by_severity[1:3] == sorted(twos, key=lambda i: by_severity.index(i))
    assert [started[i] for i in await listed(sort="severity", direction="desc")] == [None, 3, 2, 2, 1]
    async with world.api(alice) as api:
        beyond = await api.get("/api/v1/incidents", params={"team_id": world.team_id, "severity": 11})
    assert beyond.status_code == 422

    # The backstage list: the same filter and sort.
    page = await sign_in(world, alice)
    filtered = await page.get(f"/backstage/teams/{world.team_id}/incidents", params={"severity": "2"})
    assert filtered.status_code == 200
    assert filtered.text.count('class="severity sev-2"') == 2
    assert 'class="severity sev-1"' not in filtered.text
    sorted_page = text(await page.get(f"/backstage/teams/{world.team_id}/incidents", params={"sort": "severity"}))
    assert sorted_page.index("SEV1") < sorted_page.index("SEV2") < sorted_page.index("SEV3")
    css = await page.get(f"/backstage/teams/{world.team_id}/severities.css")
    assert css.headers["content-type"].startswith("text/css")
    assert ".sev-1 { --severity-colour: #c62828; }" in css.text

    # Statistics: exact, from the incidents' own records.
    records = {i: await settled(world, i) for i in started}

    async def stats(**params: Any) -> dict[str, Any]:
        async with world.api(alice) as api:
            answer = await api.get("/api/v1/stats", params={"team_id": world.team_id, **params})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    whole = await eventually(
        lambda: stats(), lambda s: s["total"] == 5 and s["ended"] == 3, what="the statistics to count all five"
    )
    rows = {row["level"]: row for row in whole["by_severity"]}
    assert list(rows) == [1, 2, 3, None]
    ttr_twos = sorted(t for t in (time_to_resolution(records[i]) for i in twos) if t is not None)
    assert rows[2]["count"] == 2
    assert rows[2]["ended"] == 2
    assert rows[2]["ongoing"] == 0
    assert rows[2]["name"] == "SEV2"
    assert rows[2]["time_to_resolution_seconds"] == {
        "count": 2,
        "mean": sum(ttr_twos) / 2,
        "median": median(ttr_twos),
        "p90": percentile(ttr_twos, 0.9),
    }
    assert rows[1]["ended"] == 1
    assert rows[3]["ongoing"] == 1
    assert rows[None]["ongoing"] == 1
    assert rows[None]["name"] is None
    only_twos = await stats(severity=2)
    assert only_twos["total"] == 2
    assert only_twos["severity"] == 2
    assert [row["level"] for row in only_twos["by_severity"]] == [2]
    assert (await stats(severity=0))["total"] == 1
    dashboard = await page.get(f"/backstage/teams/{world.team_id}/stats", params={"severity": "2"})
    assert dashboard.status_code == 200
    assert 'id="severity-row-2"' in dashboard.text
    assert 'id="severity-row-1"' not in dashboard.text


async def test_the_backstage_edits_the_levels_for_team_admins_only(world: World) -> None:
    tess = team_admin(world)
    member = await sign_in(world, world.bob)
    seen = await member.get(f"/backstage/teams/{world.team_id}/severities")
    assert seen.status_code == 200
    assert "SEV1" in seen.text
    assert "Save levels" not in seen.text
    admin = await sign_in(world, tess)
    shown = await admin.get(f"/backstage/teams/{world.team_id}/severities")
    assert "Save levels" in shown.text
    form = {"csrf_token": csrf(shown), "request_key": "levels-1", "version": "0", "levels[3].remove": "1"}
    for n, name in enumerate(("Critical", "Major", "Minor", "Low", "Planned")):
        form |= {
            f"levels[{n}].name": name,
            f"levels[{n}].description": f"{name} ones",
            f"levels[{n}].colour": "#123456",
        }
    saved = await admin.post(f"/backstage/teams/{world.team_id}/severities", data=form)
    assert saved.status_code == 303, saved.text
    assert [v["name"] for v in (await levels_of(world, tess))["levels"]] == ["Critical", "Major", "Minor", "Planned"]
    duplicate = {"csrf_token": csrf(shown), "version": "1", "levels[0].name": "A", "levels[1].name": "a"}
    refused = await admin.post(f"/backstage/teams/{world.team_id}/severities", data=duplicate)
    assert refused.status_code == 422
    assert "give every level its own name" in text(refused)
    assert [v["name"] for v in (await levels_of(world, tess))["levels"]] == ["Critical", "Major", "Minor", "Planned"]
    outsider = await sign_in(world, world.mallory)
    assert (await outsider.get(f"/backstage/teams/{world.team_id}/severities")).status_code == 404


async def test_the_start_dialog_offers_the_team_levels(world: World) -> None:
    await create_playbook(world, world.alice)
    started = await start_incident(world, world.alice, "Database outage", "No severity")
    assert (await state(world, started.id)).severity is None
    reply = await world.slash(world.alice, "start")
    assert reply["text"] == ""
    dialog = [d for d in world.standin.dialogs(world.alice.id) if d["dialog"]["callback_id"] == "start"][-1]
    element = next(e for e in dialog["dialog"]["elements"] if e["name"] == "severity")
    assert [o["value"] for o in element["options"]] == ["1", "2", "3", "4"]
    assert element["optional"] is True
    book = dialog["dialog"]["elements"][0]["options"][0]["value"]
    refused = await submit_dialog(world, world.alice, dialog, {"playbook": book, "name": "Graded", "severity": "9"})
    assert refused["errors"]["severity"].startswith("There is no severity level 9 in this team")
    accepted = await submit_dialog(world, world.alice, dialog, {"playbook": book, "name": "Graded", "severity": "2"})
    assert not accepted.get("errors"), accepted
    told = await late_reply(world, world.alice, "Incident **Graded** started: ~")
    incident_id = told.rsplit("-", 1)[1]
    graded = await state(world, incident_id)
    assert graded.severity is not None
    assert (graded.severity.level, graded.severity.name) == (2, "SEV2")


async def test_a_subscription_to_severity_changes_receives_them_signed(world: World) -> None:
    async with hooked(world, ["incident.severity_changed"]) as hook:
        assert await command(world, world.alice, "severity sev1", hook.incident) == "Severity set to SEV1."
        await hook.receiver.wait_for(lambda r: len(r.deliveries) >= 1, what="the severity change delivered")
        delivered = hook.receiver.deliveries[0].payload
        assert delivered["type"] == "incident.severity_changed"
        assert delivered["seq"] == 1, "the only event it subscribed to"
        assert (delivered["data"]["from"], delivered["data"]["to"], delivered["data"]["to_name"]) == (None, 1, "SEV1")
        assert delivered["incident"]["severity"] == {"level": 1, "name": "SEV1"}
        assert hook.receiver.bad_signatures == 0
