"""Playbook rules, "when -> then", on the real stack: each action seen in Mattermost once,
timers that fire once (across a worker restart too) and never after the end, and the rules
as the REST API, YAML and the backstage editor carry them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from models.common import new_short_id
from models.incident import EventType, IncidentState
from models.incident_commands import AddNote, ChangeStage, EndIncident, PostStatusUpdate, SetItemState
from service.incident_starts import incident_config
from tests.harness import World, eventually, own_worker
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.incident_helpers import actor, fact, messages, playbook, settled, start, state, update


def rule(name: str, when: dict[str, Any], *then: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "when": when, "then": list(then)}


def post(message: str) -> dict[str, Any]:
    return {"type": "post", "message": message}


def firings(current: IncidentState) -> list[str]:
    return [e.summary for e in current.timeline if e.type == EventType.RULE_FIRED]


async def fired(handle: WorkflowHandle[Any, Any], count: int = 1) -> IncidentState:
    """The incident once `count` rules fired and every effect was carried out."""
    return await eventually(
        lambda: state(handle), lambda s: len(firings(s)) >= count and not s.outbox, what=f"{count} rule firing(s)"
    )


def count(world: World, channel_id: str, wanted: str) -> int:
    return sum(1 for message in messages(world, channel_id) if wanted in message)


async def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- each then, seen in Mattermost


async def test_post_and_add_items_when_the_incident_starts(world: World) -> None:
    rules = [
        rule(
            "welcome",
            {"incident_started": True},
            post("Rule says: read the runbook"),
            {"type": "add_items", "stage": "Mitigate", "items": ["Tell support"]},
        )
    ]
    handle = await start(world, book=playbook(world, rules=rules))
    current = await fired(handle)
    channel = current.channel_id or ""
    assert count(world, channel, "Rule says: read the runbook") == 1
    assert [i.title for i in current.checklists[1].items] == ["Fail over", "Tell support"]
    # The live checklist post shows the added item.
    await world.standin.wait_for(lambda: count(world, channel, "Tell support") == 1)
    assert firings(current) == [
        "Rule 'welcome' fired (the incident started): posted a message; added 'Tell support' to stage 'Mitigate'"
    ]


async def test_invite_and_set_reminder_when_the_status_is_set(world: World) -> None:
    rules = [
        rule(
            "escalate",
            {"status_set": "identified"},
            {"type": "invite", "user_ids": [world.bob.id]},
            {"type": "set_reminder", "after": "1h"},
        )
    ]
    # What the service gathers when it starts an incident (`incident_starts.rule_user_facts`).
    handle = await start(world, book=playbook(world, rules=rules), rule_users=[fact(world.bob, member=False)])
    channel = (await settled(handle)).channel_id or ""
    assert world.bob.id not in world.standin.channel_members(channel)
    await update(handle, PostStatusUpdate(actor=actor(world.alice), message="Found it", status="identified"))
    current = await fired(handle)
    assert world.bob.id in world.standin.channel_members(channel)
    assert current.reminder_seconds == 3600
    assert firings(current) == [
        "Rule 'escalate' fired (the status was set to identified): added "
        f"@{world.bob.username} to the incident; set the status update reminder every 1h"
    ]
    # The same status again is another condition instance: it fires again, inviting nobody new.
    await update(handle, PostStatusUpdate(actor=actor(world.alice), message="Still", status="identified"))
    again = await fired(handle, 2)
    assert firings(again)[1].endswith(
        "invited nobody (everyone is in the channel); set the status update reminder every 1h"
    )


async def test_announce_when_a_stage_is_entered(world: World) -> None:
    off_topic = world.channels["off-topic"]
    rules = [rule("tell", {"stage_entered": "Mitigate"}, {"type": "announce", "channel_id": off_topic["id"]})]
    handle = await start(world, book=playbook(world, rules=rules), name="Announced by a rule")
    await settled(handle)
    await update(handle, ChangeStage(actor=actor(world.alice), direction="next", force=True))
    current = await fired(handle)
    assert count(world, off_topic["id"], "Announced by the playbook's rule 'tell'") == 1
    assert off_topic["id"] in current.announced_channel_ids
    # Told when it ends, like any channel it was announced in.
    await update(handle, EndIncident(actor=actor(world.alice), confirmed=True))
    await settled(handle)
    await world.standin.wait_for(lambda: count(world, off_topic["id"], "ended by") == 1)


async def test_webhook_event_of_the_rules_own_type_when_an_item_is_checked(world: World) -> None:
    rules = [
        rule(
            "paged",
            {"item_checked": {"stage": "Triage", "item": "Page DBA"}},
            {"type": "webhook", "event_type": "dba.paged"},
        )
    ]
    handle = await start(world, book=playbook(world, rules=rules))
    await settled(handle)
    await update(handle, SetItemState(actor=actor(world.alice), stage=0, item=0, state="done"))
    current = await fired(handle)
    assert firings(current) == ["Rule 'paged' fired (item 'Page DBA' was checked): sent webhook event dba.paged"]
    # Checked again after being opened: the same item does not fire the rule twice.
    await update(handle, SetItemState(actor=actor(world.alice), stage=0, item=0, state="open"))
    await update(handle, SetItemState(actor=actor(world.alice), stage=0, item=0, state="done"))
    assert len(firings(await settled(handle))) == 1


# ---------------------------------------------------------------------------- timers


async def test_a_timer_rule_fires_once(world: World) -> None:
    rules = [rule("nudge", {"stage_entered": "Triage", "after": "2s"}, post("Still triaging?"))]
    handle = await start(world, book=playbook(world, rules=rules))
    current = await fired(handle)
    assert count(world, current.channel_id or "", "Still triaging?") == 1
    assert current.rule_firings == [f"nudge@stage:{current.stage_entries}"]
    # Nothing is armed any more (another wake would fire nothing: the key is remembered).
    await update(handle, AddNote(actor=actor(world.alice), text="poke"))
    assert len(firings(await settled(handle))) == 1


async def test_a_timer_rule_across_a_worker_restart_fires_exactly_once(world: World) -> None:
    queue = f"rules-{uuid.uuid4().hex[:8]}"
    client = world.stack.temporal
    rules = [rule("later", {"incident_started": True, "after": "6s"}, post("Six seconds in"))]
    async with own_worker(world, client, temporal_task_queue=queue):
        handle = await start(world, book=playbook(world, rules=rules), task_queue=queue)
        before = await settled(handle)
    assert firings(before) == [], "the worker stopped before the rule was due"
    due = before.started_at + timedelta(seconds=6)
    await eventually(_now, lambda now: now > due, timeout=30, what="the rule to be overdue")
    async with own_worker(world, client, temporal_task_queue=queue):
        current = await fired(handle)
        assert count(world, current.channel_id or "", "Six seconds in") == 1
        await update(handle, AddNote(actor=actor(world.alice), text="poke"))
        after = await settled(handle)
    assert len(firings(after)) == 1
    assert count(world, after.channel_id or "", "Six seconds in") == 1


async def test_an_ended_incidents_timer_rule_never_fires(world: World) -> None:
    rules = [rule("later", {"no_status_update_for": "3s"}, post("Quiet for a while"))]
    # The ended incident's run stays open (its reopen window), so it could still act on a timer.
    incident_id = new_short_id()
    window = incident_config(world.stack.settings, incident_id).model_copy(update={"reopen_window_seconds": 120})
    handle = await start(world, id=incident_id, book=playbook(world, rules=rules), config=window)
    started = await settled(handle)
    await update(handle, EndIncident(actor=actor(world.alice), confirmed=True))
    due = started.started_at + timedelta(seconds=3)
    await eventually(_now, lambda now: now > due + timedelta(seconds=1), timeout=30, what="the due time to pass")
    # A note after the end makes the workflow act again, past the due time.
    await update(handle, AddNote(actor=actor(world.alice), text="after the end"))
    ended = await settled(handle)
    assert firings(ended) == []
    assert count(world, ended.channel_id or "", "Quiet for a while") == 0


# ---------------------------------------------------------------------------- the faces


SPEC: dict[str, Any] = {
    "title": "Rules",
    "checklists": [
        {"title": "Triage", "items": [{"title": "Page DBA"}]},
        {"title": "Mitigation", "items": []},
    ],
}


async def test_rest_refuses_rules_naming_what_the_playbook_lacks_by_field(world: World) -> None:
    api = world.api(world.alice)
    bad = {
        **SPEC,
        "team_id": world.team_id,
        "rules": [rule("page on sev1", {"stage_entered": "Nope", "after": "5x"}, post("hi"))],
    }
    refused = await api.post("/api/v1/playbooks", json=bad)
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"] == {"rules[0].when.after": "must be a duration such as 30s, 5m, 2h, 1d or 1h30m"}
    bad["rules"][0]["when"]["after"] = "5m"
    refused = await api.post("/api/v1/playbooks", json=bad)
    assert refused.json()["fields"] == {"rules": "Rule 1 (page on sev1): stage 'Nope' is not a stage of this playbook"}
    bad["rules"] = [rule("invite", {"incident_started": True}, {"type": "invite", "user_ids": [world.mallory.id]})]
    refused = await api.post("/api/v1/playbooks", json=bad)
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"] == {
        "rules[0].then[0].user_ids[0]": f"Rule 1 (invite): @{world.mallory.username} is not a member of this team"
    }


async def test_yaml_round_trip_carries_the_rules_with_names(world: World) -> None:
    off_topic = world.channels["off-topic"]
    rules = [
        rule("slow", {"stage_entered": "Mitigation", "after": "30m"}, post("Still mitigating?")),
        rule(
            "escalate",
            {"status_set": "identified"},
            {"type": "invite", "user_ids": [world.bob.id]},
            {"type": "announce", "channel_id": off_topic["id"]},
            {"type": "webhook", "event_type": "deploy.freeze"},
        ),
        rule("quiet", {"no_status_update_for": "1h"}, {"type": "set_reminder", "after": "15m"}),
    ]
    api = world.api(world.alice)
    created = await api.post("/api/v1/playbooks", json={**SPEC, "team_id": world.team_id, "rules": rules})
    assert created.status_code == 201, created.text
    book = created.json()
    exported = (await api.get(f"/api/v1/playbooks/{book['id']}/export")).text
    assert f"- {world.bob.username}" in exported
    assert "channel: off-topic" in exported
    imported = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["rules"] == book["rules"]
    unknown = exported.replace(f"- {world.bob.username}", "- nobody-like-this")
    refused = await api.post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=unknown.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert refused.status_code == 422
    [problem] = refused.json()["fields"].values()
    assert "Rule 2 (escalate): no user @nobody-like-this" in problem
    assert problem.startswith("line ")


async def test_the_backstage_editor_shows_and_edits_the_rules(world: World) -> None:
    api = world.api(world.alice)
    rules = [rule("slow", {"stage_entered": "Mitigation", "after": "30m"}, post("Still mitigating?"))]
    book = (await api.post("/api/v1/playbooks", json={**SPEC, "team_id": world.team_id, "rules": rules})).json()
    page = await sign_in(world, world.alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert shown.status_code == 200
    assert "When stage Mitigation is entered, after 30m → post 'Still mitigating?'" in text(shown)
    assert "after: 30m" in shown.text
    form = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "Rules",
        "members": world.alice.username,
        "reminder_minutes": "0",
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page DBA",
        "checklists[1].title": "Mitigation",
        "rules": "rules:\n  - name: slow\n    when: {stage_entered: Review}\n"
        "    then:\n      - {type: post, message: hi}\n",
    }
    refused = await page.post(url, data=form)
    assert refused.status_code == 422
    assert "Rule 1 (slow): stage 'Review' is not a stage of this playbook" in text(refused)
    assert 'aria-invalid="true" aria-describedby="err-rules"' in refused.text
    form["rules"] = (
        f"rules:\n  - name: crowd\n    when: {{status_set: identified}}\n    then:\n"
        f"      - {{type: invite, users: [{world.bob.username}]}}\n"
    )
    saved = await page.post(url, data=form)
    assert saved.status_code == 303, text(saved)
    stored = (await api.get(url.replace("/backstage/", "/api/v1/"))).json()
    assert stored["rules"] == [
        {
            "name": "crowd",
            "when": {**_NO_WHEN, "status_set": "identified"},
            "then": [{"type": "invite", "user_ids": [world.bob.id]}],
        }
    ]
    # Empty: no rules.
    saved = await page.post(url, data=form | {"rules": "", "version": "2"})
    assert saved.status_code == 303
    assert (await api.get(url.replace("/backstage/", "/api/v1/"))).json()["rules"] == []


_NO_WHEN: dict[str, Any] = {
    "incident_started": None,
    "stage_entered": None,
    "status_set": None,
    "item_checked": None,
    "no_status_update_for": None,
    "after": None,
}
