"""The retrospective, end to end on the real stack: opened at the end with the incident's figures,
saved in versions through REST (a stale version answers 409 and changes nothing), the commander
reminded by direct message at its due time and again after the interval until it is published,
publishing posted to the channel and the broadcast channel and delivered, signed, to a webhook;
the backstage's page (its preview, a stale save, publish); the report's section; and nothing of
it for whoever may not see the incident."""

from __future__ import annotations

import re
import signal
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle

from models.incident import EventType, IncidentState, IncidentStatus, incident_workflow_id
from models.incident_commands import EndIncident
from models.retrospective import NO_RETROSPECTIVE, RetrospectiveSpec
from tests.harness import World
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.incident_helpers import actor, playbook, start, update
from tests.integration.incident_helpers import settled as durable_settled
from tests.integration.slash_helpers import (
    Started,
    bot_posted,
    command,
    create_playbook,
    direct_messages,
    settled,
    start_incident,
    state,
)
from tests.integration.test_incident_durability import worker_process
from tests.integration.test_webhooks import subscribe
from tests.webhook_receiver import WebhookReceiver
from workflows.incident_workflow import IncidentWorkflow

TEMPLATE = (
    "# Retro: {{name}}\n\n## Summary\n\nWhat happened.\n\n## Figures\n\n"
    "- Acknowledged: {{time_to_acknowledge}}\n- First update: {{ time_to_first_update }}\n"
    "- Resolved: {{time_to_resolution}}\n- Severity: {{severity}}, commander {{commander}}\n\n"
    "## Key moments\n\n{{key_moments}}\n\n## People\n\n{{participants}}\n"
)


async def retro_incident(world: World, title: str, *, public: bool = False, **retrospective: Any) -> Started:
    """Alice's playbook with a retrospective (broadcasting to ~off-topic), an incident of it with
    a status update and a starred key moment."""
    spec = {"template": TEMPLATE, **retrospective}
    off_topic = world.channels["off-topic"]
    await create_playbook(
        world, world.alice, title, retrospective=spec, broadcast_channel_ids=[off_topic["id"]],
        create_public_incident=public,
    )  # fmt: skip
    incident = await start_incident(world, world.alice, title, f"{title} now")
    await command(world, world.alice, "update identified The disk is full", incident)
    noted = await command(world, world.alice, "note Cleared the old logs", incident)
    note_id = re.search(r"Note (e[0-9]+)", noted)
    assert note_id, noted
    await command(world, world.alice, f"star {note_id[1]}", incident)
    return incident


def run_of(world: World, incident: Started) -> WorkflowHandle[IncidentWorkflow, IncidentState]:
    return world.stack.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident.id))


async def end(world: World, incident: Started) -> None:
    async with world.api(world.alice) as api:
        ended = await api.post(f"/api/v1/incidents/{incident.id}/end")
    assert ended.status_code == 200, ended.text


async def read(world: World, incident: Started, who: Any = None) -> Any:
    async with world.api(who or world.alice) as api:
        return await api.get(f"/api/v1/incidents/{incident.id}/retrospective")


async def test_the_end_opens_it_with_the_figures_and_a_stale_save_is_refused(world: World) -> None:
    incident = await retro_incident(world, "Disk outage", due_after="1d")
    early = await read(world, incident)
    assert early.status_code == 404
    assert early.json()["message"] == NO_RETROSPECTIVE
    await end(world, incident)
    opened = await read(world, incident)
    assert opened.status_code == 200, opened.text
    retro = opened.json()
    assert (retro["status"], retro["version"], retro["may_edit"], retro["may_conclude"]) == ("draft", 1, True, True)
    body = retro["text"]
    assert body.startswith("# Retro: Disk outage now\n")
    assert "- Acknowledged: —\n" in body  # nobody was paged
    assert re.search(r"- First update: [0-9]{2}:[0-9]{2}\n", body), body
    assert re.search(r"- Resolved: [0-9]{2}:[0-9]{2}\n", body), body
    assert f"- Severity: none given, commander {world.alice.username}" in body
    assert "noted: Cleared the old logs" in body
    assert f"- {world.alice.username}: commander, reporter, member, acted" in body
    current = await settled(world, incident.id)
    assert current.status == IncidentStatus.ENDED
    assert [e.type for e in current.timeline].count(EventType.RETROSPECTIVE_OPENED) == 1
    await bot_posted(world, incident.channel_id, "The retrospective is open")

    base = f"/api/v1/incidents/{incident.id}/retrospective"
    async with world.api(world.alice) as api:
        saved = await api.put(base, json={"text": "# Retro\n\n## Summary\n\nThe disk filled up.", "version": 1})
        assert saved.status_code == 200, saved.text
        assert saved.json()["message"] == "Retrospective saved (version 2)."
        stale = await api.put(base, json={"text": "Someone else's words", "version": 1})
        assert stale.status_code == 409, stale.text
        assert stale.json()["message"] == (
            "The retrospective changed since you opened it (you edited version 1; version 2 by "
            f"@{world.alice.username} is the latest): reload it, then make your change again."
        )
        invalid = await api.put(base, json={"text": "x" * 20_001, "version": 2})
        assert invalid.status_code == 422
    after = (await read(world, incident)).json()
    assert (after["version"], after["text"]) == (2, "# Retro\n\n## Summary\n\nThe disk filled up.")
    assert [(h["version"], h["author"]) for h in after["history"]] == [(1, "system"), (2, world.alice.username)]

    # Bob is in the team, not in the private incident's channel; Mallory is not in the team.
    for outsider in (world.bob, world.mallory):
        hidden = await read(world, incident, outsider)
        assert hidden.status_code == 404
        assert hidden.json()["message"] == "Incident not found."
        async with world.api(outsider) as api:
            refused = await api.put(base, json={"text": "Mine", "version": 2})
            assert refused.status_code == 404, refused.text
            assert refused.json()["message"] == "Incident not found."
            published = await api.post(f"{base}/publish")
            assert published.status_code == 404
    report = await world.api(world.alice).get(f"/api/v1/incidents/{incident.id}/report", params={"format": "md"})
    assert "## Retrospective" in report.text
    assert "The disk filled up." in report.text
    as_json = (await world.api(world.alice).get(f"/api/v1/incidents/{incident.id}/report")).json()
    assert as_json["retrospective"]["version"] == 2


async def test_an_incident_without_one_ends_and_closes_as_before(world: World) -> None:
    await create_playbook(world, world.alice, "Plain outage")
    incident = await start_incident(world, world.alice, "Plain outage", "Plain now")
    await end(world, incident)
    final = await run_of(world, incident).result()  # the run closes when it ends (no reopen window in tests)
    assert final.retrospective is None
    missing = await read(world, incident)
    assert missing.status_code == 404
    assert missing.json()["message"] == NO_RETROSPECTIVE
    assert await command(world, world.alice, "retrospective", incident) == (
        "This incident has no retrospective: its playbook has none."
    )


async def test_the_commander_is_reminded_until_it_is_published_which_tells_everyone(world: World) -> None:
    incident = await retro_incident(world, "Cache outage", due_after="1s", reminder_every="2s")
    playbook_id = (await state(world, incident.id)).playbook_id
    assert playbook_id is not None
    async with WebhookReceiver() as receiver:
        made = await subscribe(world, playbook_id, receiver.url, ["incident.retrospective_published"])
        receiver.secret = made["secret"]
        await end(world, incident)

        def reminders() -> list[str]:
            return [m for m in direct_messages(world, world.alice.id) if "The retrospective of incident" in m]

        await world.standin.wait_for(lambda: len(reminders()) >= 1)
        assert "**Cache outage now** is due" in reminders()[0]
        assert "/backstage/incidents/" in reminders()[0]
        # Again after the interval, until it is published.
        await world.standin.wait_for(lambda: len(reminders()) >= 2)
        assert "is overdue" in reminders()[1]
        shown = await command(world, world.alice, "retrospective", incident)
        assert shown.startswith("The retrospective is a draft (version 1), overdue since")

        # Bob may not publish: he is neither the commander nor in the playbook (nor in the channel).
        async with world.api(world.bob) as api:
            assert (await api.post(f"/api/v1/incidents/{incident.id}/retrospective/publish")).status_code == 404
        said = await command(world, world.alice, "retropublish", incident)
        assert said == (
            "Retrospective published: its summary is posted in the incident channel and the broadcast channels."
        )
        posts = await bot_posted(world, incident.channel_id, f"Retrospective published by @{world.alice.username}")
        published = next(p for p in posts if f"Retrospective published by @{world.alice.username}" in p)
        assert "What happened." in published
        assert "/retrospective)" in published  # the link to the whole
        off_topic = world.channels["off-topic"]["id"]
        told = await bot_posted(world, off_topic, f"retrospective published by @{world.alice.username}")
        assert any("What happened." in m for m in told)

        await receiver.wait_for(lambda r: len(r.deliveries) >= 1, what="the publication delivered")
        delivered = receiver.deliveries[0].payload
        assert delivered["type"] == "incident.retrospective_published"
        assert delivered["data"]["version"] == 1
        assert delivered["data"]["summary"] == "What happened."
        assert receiver.bad_signatures == 0

    # Published: no more reminders, and the run closes (nothing left to wait for).
    await run_of(world, incident).result()
    final = await state(world, incident.id)
    assert final.retrospective is not None
    assert final.retrospective.next_reminder_at is None
    sent = final.retrospective.reminders_sent
    assert len(reminders()) == sent
    assert await command(world, world.alice, "retrodecline Too late", incident) == (
        "This incident has ended. Restart it first to make changes."
    )


async def test_declining_stops_the_reminders_and_the_run_closes(world: World) -> None:
    incident = await retro_incident(world, "Queue outage", due_after="30d")
    await end(world, incident)
    async with world.api(world.alice) as api:
        empty = await api.post(f"/api/v1/incidents/{incident.id}/retrospective/decline", json={"reason": " "})
        assert empty.status_code == 422
        declined = await api.post(
            f"/api/v1/incidents/{incident.id}/retrospective/decline", json={"reason": "A duplicate of the disk outage"}
        )
        assert declined.status_code == 200, declined.text
        assert declined.json()["message"] == "Retrospective declined: no more reminders."
    await run_of(world, incident).result()
    retro = (await read(world, incident)).json()
    assert (retro["status"], retro["reason"], retro["concluded_by"]) == (
        "declined",
        "A duplicate of the disk outage",
        world.alice.username,
    )
    assert not retro["may_edit"]


async def test_the_backstage_page_previews_saves_and_says_when_it_changed_meanwhile(world: World) -> None:
    incident = await retro_incident(world, "Login outage", public=True, due_after="1d")
    await end(world, incident)
    page = await sign_in(world, world.alice)
    url = f"/backstage/incidents/{incident.id}/retrospective"
    shown = await page.get(url)
    assert shown.status_code == 200, shown.text
    assert 'name="version" value="1"' in shown.text
    assert 'id="retro-text"' in shown.text
    assert "Retro: Login outage now" in text(shown)
    token = csrf(shown)

    preview = await page.post(
        f"{url}/preview", data={"csrf_token": token, "text": "## Cause\n\n**Expired** <script>alert(1)</script>"}
    )
    assert preview.status_code == 200
    assert "<h2>Cause</h2>" in preview.text
    assert "<strong>Expired</strong>" in preview.text
    assert "<script>" not in preview.text
    assert "&lt;script&gt;" in preview.text
    forged = await page.post(f"{url}/preview", data={"text": "x"})
    assert forged.status_code == 403

    saved = await page.post(
        url, data={"csrf_token": token, "request_key": "k1", "version": "1", "text": "## Summary\r\n\r\nMine first"}
    )
    assert saved.status_code == 303, saved.text
    # Meanwhile someone saves through REST; the page's next save is based on version 2 then.
    async with world.api(world.alice) as api:
        other = await api.put(
            f"/api/v1/incidents/{incident.id}/retrospective", json={"text": "## Summary\n\nTheirs", "version": 2}
        )
        assert other.status_code == 200, other.text
    stale = await page.post(
        url, data={"csrf_token": token, "request_key": "k2", "version": "2", "text": "## Summary\n\nMine again"}
    )
    assert stale.status_code == 409, stale.text
    said = text(stale)
    assert "The retrospective changed since you opened it" in said
    assert f"The newer version (3, by @{world.alice.username}" in said
    assert "Theirs" in said  # the newer version, shown
    assert "Mine again" in said  # what was typed, kept
    assert 'name="version" value="3"' in stale.text
    retro = (await read(world, incident)).json()
    assert (retro["version"], retro["text"]) == (3, "## Summary\n\nTheirs")

    # Bob sees the public incident's retrospective, may not publish it (no form), and may not edit it.
    bob = await sign_in(world, world.bob)
    theirs = await bob.get(url)
    assert theirs.status_code == 200
    assert 'id="retro-text"' not in theirs.text
    assert "retro-publish" not in theirs.text
    # Mallory, outside the team, learns nothing.
    mallory = await sign_in(world, world.mallory)
    assert (await mallory.get(url)).status_code == 404

    publish = await page.post(
        f"/backstage/incidents/{incident.id}/commands/publish_retrospective",
        data={"csrf_token": token, "request_key": "k3"},
    )
    assert publish.status_code == 303
    await bot_posted(world, incident.channel_id, f"Retrospective published by @{world.alice.username}")
    final = text(await page.get(url))
    assert f"Published by @{world.alice.username}" in final


async def test_a_playbook_with_an_unknown_placeholder_is_refused_naming_it(world: World) -> None:
    body = {
        "team_id": world.team_id,
        "title": "Bad template",
        "checklists": [{"title": "Triage"}],
        "retrospective": {"template": "# {{name}} {{root_cause}}"},
    }
    async with world.api(world.alice) as api:
        refused = await api.post("/api/v1/playbooks", json=body)
    assert refused.status_code == 422
    assert "unknown placeholder(s) {{root_cause}}" in refused.text


async def test_the_run_stays_open_while_the_retrospective_is_a_draft(world: World) -> None:
    incident = await retro_incident(world, "Mail outage", due_after="30d")
    await end(world, incident)
    current = await settled(world, incident.id)  # every effect of the end carried out
    assert current.retrospective is not None
    assert current.retrospective.next_reminder_at == current.retrospective.due_at
    # Its reminder is a timer of the run: the run waits for it (or for a command) instead of closing.
    described = await run_of(world, incident).describe()
    assert described.status is not None
    assert described.status.name == "RUNNING"
    # And takes commands after the end: a note, an edit.
    assert (await command(world, world.alice, "note Found the cause", incident)).startswith("Note e")


async def test_the_playbook_editor_and_its_yaml_carry_the_retrospective(world: World) -> None:
    book = await create_playbook(world, world.alice, "Edited outage", member_ids=[world.alice.id])
    page = await sign_in(world, world.alice)
    url = f"/backstage/playbooks/{book['id']}"
    shown = await page.get(url)
    assert shown.status_code == 200
    assert 'name="retro_enabled"' in shown.text
    assert "{{time_to_acknowledge}}" in text(shown)  # the placeholders it may use
    form = {
        "csrf_token": csrf(shown),
        "version": "1",
        "title": "Edited outage",
        "members": world.alice.username,
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page the DBA",
        "retro_enabled": "1",
        "retro_due_after": "3d",
        "retro_reminder_every": "12h",
        "retro_template": "# {{name}}\r\n\r\n## Cause\r\n\r\n{{cause}}",
    }
    refused = await page.post(url, data=form)
    assert refused.status_code == 422
    assert "unknown placeholder(s) {{cause}}" in text(refused)
    assert 'id="err-retrospective"' in refused.text or "Retrospective" in text(refused)
    saved = await page.post(url, data=form | {"retro_template": "# {{name}}\r\n\r\n## Cause\r\n"})
    assert saved.status_code == 303, saved.text
    stored = (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}")).json()
    assert stored["retrospective"] == {
        "template": "# {{name}}\n\n## Cause\n",
        "due_after": "3d",
        "reminder_every": "12h",
    }
    history = (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}/history")).json()
    assert any("retrospective added (due 3d after the end)" in entry["summary"] for entry in history["items"])
    edited = await page.get(url)
    assert 'name="retro_enabled" value="1" checked' in edited.text
    assert 'value="12h"' in edited.text

    exported = (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}/export")).text
    assert "retrospective:" in exported
    copy = await world.api(world.alice).post(
        "/api/v1/playbooks/import",
        params={"team_id": world.team_id},
        content=exported.replace("title: Edited outage", "title: Copied outage").encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert copy.status_code == 201, copy.text
    assert copy.json()["retrospective"] == stored["retrospective"]
    # Unchecked: the playbook has none any more.
    removed = await page.post(url, data={**form, "version": "2", "retro_enabled": ""})
    assert removed.status_code == 303, removed.text
    assert (await world.api(world.alice).get(f"/api/v1/playbooks/{book['id']}")).json()["retrospective"] is None


async def test_the_reminder_survives_a_worker_killed_while_it_waits(world: World) -> None:
    """The reminder is a timer of the incident's run: a worker killed before it is due loses
    nothing, and the next worker sends it."""
    queue = f"retro-{uuid.uuid4().hex[:8]}"
    book = playbook(world, retrospective=RetrospectiveSpec(due_after="4s", reminder_every="1d"))

    def reminders() -> list[str]:
        return [m for m in direct_messages(world, world.alice.id) if "The retrospective of incident" in m]

    async with worker_process(world, queue) as first:
        handle = await start(world, book=book, name="Killed before the reminder", task_queue=queue)
        await durable_settled(handle)
        await update(handle, EndIncident(actor=actor(world.alice)))
        ended = await durable_settled(handle)
        assert ended.retrospective is not None
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert datetime.now(UTC) < ended.retrospective.due_at, "the worker was killed before the reminder was due"
    assert not reminders()
    async with worker_process(world, queue):
        # A bound, not a timing: the new worker first waits out the dead one's workflow task.
        await world.standin.wait_for(lambda: len(reminders()) == 1, timeout=60)
    assert "**Killed before the reminder** is due" in reminders()[0]
