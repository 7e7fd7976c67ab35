"""Driving `/incident` as people do: typed through the stand-in, with dialogs and buttons.

Helpers shared by the `test_slash_*` files: playbooks made through the REST API, incidents
started with `/incident start`, the incident's workflow state, the bot's posts, dialogs
submitted and buttons clicked through the stand-in's real v4 routes, and raw requests
to our endpoints for what Mattermost would resend or an attacker would forge.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx

from activities.incident_activities import STABLE_PROP
from devstack.worlds import slash_form as slash_form  # the benchmarks build the same form
from models.incident import IncidentState, incident_workflow_id
from tests.harness import User, World, eventually
from workflows.incident_workflow import IncidentWorkflow

# Every /incident subcommand, as the help lists them (written out: tests must not derive it from the code).
SUBCOMMANDS = [
    "start",
    "end",
    "restart",
    "info",
    "list",
    "todo",
    "check",
    "checkadd",
    "checkremove",
    "assign",
    "due",
    "stage",
    "commander",
    "add",
    "announce",
    "update",
    "reminder",
    "note",
    "noteedit",
    "notedelete",
    "star",
    "unstar",
    "retrospective",
    "retropublish",
    "retrodecline",
    "severity",
    "field",
    "page",
    "timeline",
    "playbooks",
    "oncall",
]

TRIAGE = {"title": "Triage", "items": [{"title": "Page the DBA"}, {"title": "Read the logs"}]}
MITIGATE = {"title": "Mitigate", "items": [{"title": "Fail over"}]}
VERIFY = {"title": "Verify", "items": []}


async def create_playbook(world: World, user: User, title: str = "Database outage", **fields: Any) -> dict[str, Any]:
    """A playbook made through the REST API, once `user` sees it listed (visibility lags)."""
    body = {"team_id": world.team_id, "title": title, "checklists": [TRIAGE, MITIGATE, VERIFY], **fields}
    response = await world.api(user).post("/api/v1/playbooks", json=body)
    assert response.status_code == 201, response.text
    playbook: dict[str, Any] = response.json()
    await listed_for(world, user, playbook["id"])
    return playbook


async def listed_for(world: World, user: User, playbook_id: str) -> None:
    async def ids() -> list[str]:
        response = await world.api(user).get("/api/v1/playbooks", params={"team_id": world.team_id})
        return [p["id"] for p in response.json()["items"]]

    await eventually(ids, lambda found: playbook_id in found, what=f"playbook {playbook_id} to be listed")


@dataclass
class Started:
    """An incident started with `/incident start`, once its channel exists and is settled."""

    id: str
    channel_id: str
    channel_name: str
    reply: dict[str, Any]


async def start_incident(world: World, user: User, playbook: str, name: str) -> Started:
    """`user` types `/incident start "<playbook>" <name>` in town-square; wait for the channel."""
    reply = await world.slash(user, f'start "{playbook}" {name}')
    assert "the channel will appear shortly" in reply["text"], reply["text"]
    started = await late_reply(world, user, f"Incident **{name}** started: ~")
    channel_name = started.rsplit("~", 1)[1]
    channel = world.standin.find_channel(world.team_id, channel_name)
    assert channel is not None
    incident_id = channel_name.rsplit("-", 1)[1]
    await settled(world, incident_id)
    return Started(id=incident_id, channel_id=channel["id"], channel_name=channel_name, reply=reply)


async def outage(world: World, **playbook_fields: Any) -> Started:
    """Alice's playbook "Database outage" (Triage: 2 items, Mitigate: 1, Verify: none), started by her."""
    await create_playbook(world, world.alice, **playbook_fields)
    return await start_incident(world, world.alice, "Database outage", "Primary DB down")


async def late_reply(world: World, user: User, prefix: str) -> str:
    """The text of an ephemeral reply to `user` that starts with `prefix` (e.g. via `response_url`)."""

    def found() -> list[str]:
        return [
            e["post"]["message"]
            for e in world.standin.ephemeral_posts(user_id=user.id)
            if e["post"]["message"].startswith(prefix)
        ]

    await world.standin.wait_for(lambda: bool(found()))
    return found()[-1]


async def state(world: World, incident_id: str) -> IncidentState:
    handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident_id))
    result: IncidentState = await handle.query(IncidentWorkflow.get_state)
    return result


async def settled(world: World, incident_id: str) -> IncidentState:
    """The incident once its channel exists and every queued post and invite is carried out."""
    return await eventually(
        lambda: state(world, incident_id),
        lambda s: s.channel_id is not None and "opening" in s.post_ids and not s.outbox,
        what=f"incident {incident_id} to settle",
    )


def bot_posts(world: World, channel_id: str) -> list[str]:
    bot_id = world.stack.bot["id"]
    return [p["message"] for p in world.standin.posts(channel_id) if p["user_id"] == bot_id]


async def bot_posted(world: World, channel_id: str, fragment: str) -> list[str]:
    """The bot's posts in the channel once one contains `fragment`."""
    await world.standin.wait_for(lambda: any(fragment in m for m in bot_posts(world, channel_id)))
    return bot_posts(world, channel_id)


async def on_timeline_only(world: World, incident: Started, summary: str) -> None:
    """A checklist change: on the timeline (and the live checklist post), with no post of its own."""
    current = await settled(world, incident.id)
    assert summary in [e.summary for e in current.timeline], summary
    assert not [m for m in bot_posts(world, incident.channel_id) if summary in m], "announced with a post"


def user_posts(world: World, channel_id: str, user: User) -> list[dict[str, Any]]:
    return [p for p in world.standin.posts(channel_id) if p["user_id"] == user.id]


async def command(world: World, user: User, text: str, incident: Started) -> str:
    """`user` types `/incident <text>` in the incident's channel; the (ephemeral) reply text."""
    reply = await world.slash(user, text, channel_id=incident.channel_id)
    assert reply["response_type"] == "ephemeral"
    assert not user_posts(world, incident.channel_id, user), "replies to the caller must be ephemeral"
    text_: str = reply["text"]
    return text_


async def answered(world: World, user: User, incident: Started, replies: dict[str, str]) -> None:
    """`user` types each `/incident <text>` of `replies` in the incident's channel, in turn; each
    is answered with its reply, word for word."""
    for text, expected in replies.items():
        assert await command(world, user, text, incident) == expected, text


# ---------------------------------------------------------------------------- dialogs


def dialogs(world: World, user: User, callback_id: str) -> list[dict[str, Any]]:
    return [d for d in world.standin.dialogs(user.id) if d["dialog"]["callback_id"] == callback_id]


async def submit_dialog(
    world: World, user: User, opened: dict[str, Any], submission: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`user` presses the dialog's submit button: `POST /api/v4/actions/dialogs/submit`."""
    driver = world.driver(user)
    try:
        answer: dict[str, Any] = await driver.integration_actions.submit_interactive_dialog(
            url=opened["url"],
            channel_id=opened["channel_id"],
            team_id=opened["team_id"],
            submission=submission or {},
            callback_id=opened["dialog"]["callback_id"],
            state=opened["dialog"]["state"],
        )
    finally:
        await driver.close()
    return answer


async def click(world: World, user: User, post_id: str, action_id: str) -> dict[str, Any]:
    """`user` clicks a button under a post: `POST /api/v4/posts/{post_id}/actions/{action_id}`."""
    driver = world.driver(user)
    try:
        answer: dict[str, Any] = await driver.posts.do_post_action(post_id, action_id)
    finally:
        await driver.close()
    return answer


async def pick(world: World, user: User, post_id: str, action_id: str, option: str) -> dict[str, Any]:
    """`user` picks `option` in a message menu: the same route, with `selected_option` in the body."""
    driver = world.driver(user)
    try:
        answer: dict[str, Any] = await driver.client.post(
            f"/api/v4/posts/{post_id}/actions/{action_id}", options={"selected_option": option}
        )
    finally:
        await driver.close()
    return answer


def direct_messages(world: World, user_id: str) -> list[str]:
    """What the bot told `user_id` in their direct channel (the outcomes of clicks and dialogs)."""
    channel = world.standin.direct_channel(world.stack.bot["id"], user_id)
    return [post["message"] for post in world.standin.posts(channel["id"])] if channel else []


def checklist_post(world: World, incident: Started) -> dict[str, Any]:
    """The incident's live checklist post (the bot post carrying the stable key)."""
    [post] = [p for p in world.standin.posts(incident.channel_id) if STABLE_PROP in p["props"]]
    return post


def actions(post: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A post's controls by id."""
    return {a["id"]: a for attachment in post["props"].get("attachments", []) for a in attachment.get("actions", [])}


def control(post: dict[str, Any], label: str) -> str:
    """The id of the one control whose name contains `label`, as the post shows it now."""
    [found] = [control_id for control_id, a in actions(post).items() if label in a["name"]]
    return found


async def reminder_post(world: World, incident: Started, *, after: int = 0) -> dict[str, Any]:
    """The newest reminder post (a bot post with buttons, not the checklist) created after `after` (ms)."""
    bot_id = world.stack.bot["id"]

    def found() -> list[dict[str, Any]]:
        return [
            p
            for p in world.standin.posts(incident.channel_id)
            if p["user_id"] == bot_id
            and p["props"].get("attachments")
            and STABLE_PROP not in p["props"]  # not the live checklist post
            and p["create_at"] > after
        ]

    await world.standin.wait_for(lambda: bool(found()))
    return found()[-1]


# ---------------------------------------------------------------------------- raw requests


def signed_payload(token: str) -> dict[str, Any]:
    """What a signed dialog state or button token says (the signature is not checked)."""
    body = token.split(".")[0]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its original signature kept: a forgery."""
    payload = json.dumps({**signed_payload(token), **changes}, sort_keys=True, separators=(",", ":"))
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{token.split('.')[1]}"


async def post_slash(world: World, form: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as http:
        response = await http.post("/mattermost/slash", data=form)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


async def post_json(world: World, path: str, body: dict[str, Any]) -> httpx.Response:
    """A JSON POST straight to our API, as Mattermost (or someone pretending to be it) sends it."""
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as http:
        return await http.post(path, json=body)
