"""Dialogs and buttons: submitted and clicked through the stand-in's real v4 routes.

`POST /mattermost/dialog` trusts a submission only through its signed `state`, and
`POST /mattermost/action` a click only through the signed token in its `context`;
forged ones are answered 401 and change nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from mattermostautodriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions

from models.incident import EventType, IncidentStatus, UpdateStatus, incident_workflow_id
from signing import Signer
from tests.harness import User, World, eventually
from tests.integration import slash_helpers as slash
from workflows.incident_workflow import IncidentWorkflow

DIALOG_REFUSED = {
    "error": "unauthorized",
    "message": "This dialog is not valid any more; run the command again.",
    "fields": {},
}
BUTTON_REFUSED = {"error": "unauthorized", "message": "This button is not valid.", "fields": {}}


def incident_channels(world: World) -> list[str]:
    return sorted(c["name"] for c in world.standin.channels(world.team_id) if c["name"].startswith("inc-"))


# ---------------------------------------------------------------------------- the start dialog


async def test_start_dialog_offers_my_playbooks_and_keeps_open_on_field_errors(world: World) -> None:
    mine = await slash.create_playbook(world, world.alice)
    others = await slash.create_playbook(world, world.bob, title="Bob's playbook")
    assert (await world.slash(world.alice, "start"))["text"] == ""
    [opened] = slash.dialogs(world, world.alice, "start")
    dialog = opened["dialog"]
    assert (dialog["title"], dialog["submit_label"]) == ("Incident Details", "Start incident")
    assert [(e["name"], e["type"]) for e in dialog["elements"]] == [
        ("playbook", "select"),
        ("name", "text"),
        ("description", "textarea"),
        ("severity", "select"),
    ]
    assert dialog["elements"][0]["options"] == [
        {"text": "Database outage", "value": mine["id"]},
        {"text": "No playbook (blank incident)", "value": "none"},
    ]

    invalid: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"playbook": mine["id"], "name": "   "}, {"name": "String should have at least 1 character"}),
        ({"playbook": others["id"], "name": "Stolen"}, {"playbook": "Choose a playbook you are a member of."}),
        (
            {"playbook": "nosuchthing", "name": "x" * 65, "description": "d" * 1025},
            # The same limits, and words, as the REST API's start body.
            {
                "name": "String should have at most 64 characters",
                "description": "String should have at most 1024 characters",
            },
        ),
    ]
    for submission, errors in invalid:
        assert await slash.submit_dialog(world, world.alice, opened, submission) == {"errors": errors}
    assert not slash.dialogs(world, world.alice, "start")[0]["submitted"], "field errors keep the dialog open"
    assert incident_channels(world) == []

    valid = {"playbook": mine["id"], "name": "Replica lag", "description": "Reads are stale"}
    assert await slash.submit_dialog(world, world.alice, opened, valid) == {}
    assert slash.dialogs(world, world.alice, "start")[0]["submitted"]
    link = await slash.late_reply(world, world.alice, "Incident **Replica lag** started: ~")
    incident_id = link.rsplit("-", 1)[1]
    current = await slash.settled(world, incident_id)
    assert (current.name, current.description, current.playbook_id) == ("Replica lag", "Reads are stale", mine["id"])
    assert slash.bot_posts(world, current.channel_id or "")[0].startswith("#### :rotating_light: Incident: Replica lag")

    # A submission sent twice (double click, a retrying proxy) starts one incident.
    assert await slash.submit_dialog(world, world.alice, opened, valid) == {}
    await slash.settled(world, incident_id)
    assert incident_channels(world) == [link.rsplit("~", 1)[1]]
    started = [e for e in world.standin.ephemeral_posts(user_id=world.alice.id) if "started: ~" in e["post"]["message"]]
    assert len(started) == 1


async def test_start_dialog_without_a_playbook_starts_a_blank_incident(world: World) -> None:
    await world.slash(world.alice, "start")
    [opened] = slash.dialogs(world, world.alice, "start")
    assert opened["dialog"]["elements"][0]["options"] == [{"text": "No playbook (blank incident)", "value": "none"}]
    assert await slash.submit_dialog(world, world.alice, opened, {"playbook": "none", "name": "Odd noise"}) == {}
    link = await slash.late_reply(world, world.alice, "Incident **Odd noise** started: ~")
    current = await slash.settled(world, link.rsplit("-", 1)[1])
    assert (current.playbook, [s.title for s in current.checklists]) == (None, ["Checklist"])


# ---------------------------------------------------------------------------- forged and foreign dialogs


def dialog_body(
    world: World, user: User, incident: slash.Started, state_token: str, callback_id: str
) -> dict[str, Any]:
    """A dialog submission as Mattermost posts it to `POST /mattermost/dialog`."""
    return {
        "type": "dialog_submission",
        "callback_id": callback_id,
        "state": state_token,
        "user_id": user.id,
        "channel_id": incident.channel_id,
        "team_id": world.team_id,
        "submission": {},
        "cancelled": False,
    }


async def test_forged_foreign_or_expired_dialog_state_is_rejected(world: World) -> None:
    incident = await slash.outage(world)
    await slash.command(world, world.alice, f"add @{world.bob.username}", incident)
    await slash.command(world, world.alice, "end", incident)
    [opened] = slash.dialogs(world, world.alice, "end")
    genuine = opened["dialog"]["state"]
    expired = Signer(world.stack.settings.signing_secret).sign(
        {**slash.signed_payload(genuine), "expires": int(time.time()) - 1}
    )
    forgeries = [
        (world.bob, slash.tampered(genuine, user_id=world.bob.id), "end"),  # altered payload, old signature
        (world.alice, slash.tampered(genuine, incident_id="aaaaaaaaaa"), "end"),
        (world.alice, Signer("someone else's secret").sign(slash.signed_payload(genuine)), "end"),
        (world.alice, "not-a-state", "end"),
        (world.alice, "", "end"),
        (world.alice, genuine + "x", "end"),
        (world.bob, genuine, "end"),  # alice's dialog, submitted by bob
        (world.alice, genuine, "stage"),  # the state of another kind of dialog
        (world.alice, expired, "end"),
    ]
    for user, token, callback_id in forgeries:
        response = await slash.post_json(
            world, "/mattermost/dialog", dialog_body(world, user, incident, token, callback_id)
        )
        assert (response.status_code, response.json()) == (401, DIALOG_REFUSED), (user.username, token)
    # Through Mattermost, bob submitting alice's dialog fails the same way.
    with pytest.raises(InvalidOrMissingParameters):
        await slash.submit_dialog(world, world.bob, opened)

    current = await slash.state(world, incident.id)
    assert current.status == IncidentStatus.ONGOING
    assert EventType.ENDED not in [e.type for e in current.timeline]
    assert not any("ended the incident" in m for m in slash.bot_posts(world, incident.channel_id))


async def test_dialog_submitted_after_leaving_the_channel_is_refused(world: World) -> None:
    incident = await slash.outage(world)
    await slash.command(world, world.alice, f"add @{world.bob.username}", incident)
    await world.standin.wait_for(lambda: world.bob.id in world.standin.channel_members(incident.channel_id))
    assert await slash.command(world, world.bob, "end", incident) == ""
    [opened] = slash.dialogs(world, world.bob, "end")
    driver = world.driver(world.bob)
    try:
        await driver.channels.remove_user_from_channel(incident.channel_id, world.bob.id)
    finally:
        await driver.close()

    # Mattermost's word on membership is trusted for AUTH_CACHE_SECONDS (0.5 s here).
    async def bob_sees() -> int:
        return (await world.api(world.bob).get(f"/api/v1/incidents/{incident.id}")).status_code

    await eventually(bob_sees, lambda status: status == 404, what="bob's membership to lapse")
    # Bob is back in town-square, where his client submits the dialog from.
    answer = await slash.submit_dialog(world, world.bob, {**opened, "channel_id": world.town_square["id"]})
    assert answer == {"error": "Incident not found."}
    assert (await slash.state(world, incident.id)).status == IncidentStatus.ONGOING


async def test_end_dialog_submitted_twice_ends_once(world: World) -> None:
    incident = await slash.outage(world)
    await slash.command(world, world.alice, "end", incident)
    [opened] = slash.dialogs(world, world.alice, "end")
    assert await slash.submit_dialog(world, world.alice, opened) == {}
    handle = world.stack.temporal.get_workflow_handle_for(IncidentWorkflow.run, incident_workflow_id(incident.id))
    await handle.result()
    # Resent once the workflow has completed: Temporal answers the first outcome for the same update id.
    assert await slash.submit_dialog(world, world.alice, opened) == {}
    await slash.bot_posted(world, incident.channel_id, "ended the incident")
    current = await slash.state(world, incident.id)
    assert [e.type for e in current.timeline].count(EventType.ENDED) == 1
    assert len([m for m in slash.bot_posts(world, incident.channel_id) if "ended the incident" in m]) == 1


# ---------------------------------------------------------------------------- reminder buttons


async def test_reminder_buttons_post_an_update_and_snooze(world: World) -> None:
    incident = await slash.outage(world, reminder_timer_default_seconds=1)
    alice = f"@{world.alice.username}"
    reminder = await slash.reminder_post(world, incident)
    assert reminder["message"].startswith(f"{alice}, there has been no status update for ")
    actions = reminder["props"]["attachments"][0]["actions"]
    assert [(a["id"], a["name"]) for a in actions] == [("postupdate", "Post update"), ("snooze", "Snooze 1h")]

    assert (await slash.click(world, world.alice, reminder["id"], "postupdate"))["status"] == "OK"
    [opened] = slash.dialogs(world, world.alice, "status_update")
    assert opened["dialog"]["title"] == "Post status update"
    assert await slash.submit_dialog(world, world.alice, opened, {"message": "  "}) == {
        "errors": {"message": "String should have at least 1 character"}
    }
    assert await slash.submit_dialog(world, world.alice, opened, {"status": "panicking", "message": "x"}) == {
        "errors": {"status": "Input should be 'investigating', 'identified', 'monitoring' or 'resolved'"}
    }
    assert await slash.submit_dialog(world, world.alice, opened, {"message": "x" * 4001}) == {
        "errors": {"message": "String should have at most 4000 characters"}
    }
    update = {"status": "monitoring", "message": "Replica promoted"}
    assert await slash.submit_dialog(world, world.alice, opened, update) == {}
    posts = await slash.bot_posted(world, incident.channel_id, "#### Status update")
    assert posts[-1] == f"#### Status update — **Monitoring**\nfrom {alice}\n\n> Replica promoted"
    current = await slash.state(world, incident.id)
    assert [(u.status, u.message) for u in current.status_updates] == [(UpdateStatus.MONITORING, "Replica promoted")]

    # The reminder comes back a second after the update; snooze it.
    update_post = next(p for p in world.standin.posts(incident.channel_id) if p["message"] == posts[-1])
    later = await slash.reminder_post(world, incident, after=update_post["create_at"])
    await slash.click(world, world.alice, later["id"], "snooze")
    snoozed = next(p for p in world.standin.posts(incident.channel_id) if p["id"] == later["id"])
    assert snoozed["message"] == f"Reminder snoozed for 1h by {alice}."
    assert "attachments" not in snoozed["props"], "the buttons are gone"
    replies = [e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=world.alice.id)]
    assert replies[-1] == f"Reminder snoozed for 1h by {alice}."
    await slash.bot_posted(world, incident.channel_id, f"{alice} snoozed the status update reminder for 1h")
    current = await slash.state(world, incident.id)
    snooze = next(e for e in reversed(current.timeline) if e.details.get("snoozed_seconds"))
    assert current.reminder_due_at is not None
    assert (current.reminder_due_at - snooze.at).total_seconds() == 3600


async def test_forged_button_context_is_rejected(world: World) -> None:
    incident = await slash.outage(world, reminder_timer_default_seconds=1)
    reminder = await slash.reminder_post(world, incident)
    await slash.command(world, world.alice, "reminder off", incident)
    token = reminder["props"]["attachments"][0]["actions"][1]["integration"]["context"]["token"]
    await slash.create_playbook(world, world.alice, title="Other")
    other = await slash.start_incident(world, world.alice, "Other", "Another one")
    click_body = {
        "user_id": world.alice.id,
        "user_name": world.alice.username,
        "channel_id": incident.channel_id,
        "team_id": world.team_id,
        "post_id": reminder["id"],
        "trigger_id": "",
        "type": "button",
    }
    contexts: list[dict[str, Any]] = [
        {},
        {"token": "forged"},
        {"token": token + "x"},
        {"token": slash.tampered(token, seconds=10**6)},
        {"token": slash.tampered(token, incident_id=other.id)},
        {"token": Signer("someone else's secret").sign({"incident_id": incident.id, "action": "snooze"})},
        {"token": Signer(world.stack.settings.signing_secret).sign({"action": "snooze", "seconds": 60})},
    ]
    for context in contexts:
        response = await slash.post_json(world, "/mattermost/action", {**click_body, "context": context})
        assert (response.status_code, response.json()) == (401, BUTTON_REFUSED), context
    for each in (incident, other):
        snoozes = [e for e in (await slash.state(world, each.id)).timeline if e.details.get("snoozed_seconds")]
        assert snoozes == []
    assert next(p for p in world.standin.posts(incident.channel_id) if p["id"] == reminder["id"])["props"].get(
        "attachments"
    ), "the reminder post is untouched"
    # The genuine button still works, and the workflow's refusal reaches the clicker verbatim.
    await slash.click(world, world.alice, reminder["id"], "snooze")
    replies = [e["post"]["message"] for e in world.standin.ephemeral_posts(user_id=world.alice.id)]
    assert replies[-1] == "The status update reminder is off for this incident."


async def test_buttons_clicked_by_non_members_are_refused(world: World) -> None:
    incident = await slash.outage(world, reminder_timer_default_seconds=1, create_public_incident=True)
    reminder = await slash.reminder_post(world, incident)
    await slash.command(world, world.alice, "reminder off", incident)
    context = reminder["props"]["attachments"][0]["actions"][1]["integration"]["context"]
    # Carol is in the team and sees the public incident, but is not in its channel. Mattermost
    # would not let her click there; the API does not rely on that.
    with pytest.raises(NotEnoughPermissions):
        await slash.click(world, world.carol, reminder["id"], "snooze")
    body = {"user_id": world.carol.id, "channel_id": incident.channel_id, "post_id": reminder["id"], "context": context}
    response = await slash.post_json(world, "/mattermost/action", body)
    assert response.status_code == 200
    assert response.json() == {
        "ephemeral_text": "Only members of the incident channel can change this incident. "
        "Ask someone in the channel to add you."
    }
    outsider = await slash.post_json(world, "/mattermost/action", {**body, "user_id": world.mallory.id})
    assert outsider.json() == {"ephemeral_text": "Incident not found."}
    current = await slash.settled(world, incident.id)
    assert [e for e in current.timeline if e.details.get("snoozed_seconds")] == []
