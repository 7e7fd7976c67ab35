"""`make dev`'s first incident: a playbook the whole demo team shares, and one incident from it.

Both are made as alice through the REST API, exactly as a person would make them, so they
are real: the playbook's workflow, the incident's workflow, its channel in the stand-in.
The playbook has every demo user as a member and makes public incidents, whose channel
everyone in the team sees; the incident invites bob, carol and dave into its channel, so
they can work it too. Each request carries an `Idempotency-Key`, so a second `make dev`
(or a retry after a failed start) finds the same playbook and incident instead of making
new ones, whether the incident is still ongoing or has ended since.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

PLAYBOOK_KEY = "devstack-demo-playbook"
INCIDENT_KEY = "devstack-demo-incident"
INCIDENT_NAME = "Checkout is failing (demo)"


@dataclass(frozen=True)
class DemoIncident:
    playbook_id: str
    playbook_title: str
    incident_id: str
    incident_name: str


def demo_playbook(team_id: str, people: dict[str, str]) -> dict[str, Any]:
    """The playbook's body; `people` maps the demo usernames to their user ids."""
    return {
        "team_id": team_id,
        "title": "Service outage",
        "description": "The demo team's playbook: every demo user is a member; its incidents are public.",
        "create_public_incident": True,
        "member_ids": sorted(people.values()),
        "invited_user_ids": sorted(user_id for name, user_id in people.items() if name != "alice"),
        "checklists": [
            {"title": "Triage", "items": [{"title": "Page the on-call engineer"}, {"title": "Check the dashboards"}]},
            {"title": "Mitigate", "items": [{"title": "Roll back the last deploy"}]},
            {"title": "Verify", "items": [{"title": "Confirm the error rate is back to normal"}]},
        ],
    }


async def seed_demo_incident(api_url: str, demo: dict[str, Any]) -> DemoIncident:
    """Ensure the demo playbook and incident exist; `demo` is the stand-in's demo world."""
    team_id = str(demo["team"]["id"])
    people = {name: str(entry["user"]["id"]) for name, entry in demo["users"].items()}
    alice = {"Authorization": f"Bearer {demo['users']['alice']['token']}"}
    async with httpx.AsyncClient(base_url=api_url, headers=alice, timeout=30) as http:
        playbook = await _created(
            http, "/api/v1/playbooks", demo_playbook(team_id, people), key=PLAYBOOK_KEY, what="the demo playbook"
        )
        incident = await _created(
            http,
            "/api/v1/incidents",
            {"team_id": team_id, "playbook_id": playbook["id"], "name": INCIDENT_NAME},
            key=INCIDENT_KEY,
            what="the demo incident",
        )
    return DemoIncident(
        playbook_id=playbook["id"],
        playbook_title=playbook["title"],
        incident_id=incident["id"],
        incident_name=incident["name"],
    )


async def _created(http: httpx.AsyncClient, path: str, body: dict[str, Any], *, key: str, what: str) -> dict[str, Any]:
    response = await http.post(path, json=body, headers={"Idempotency-Key": key})
    if response.status_code != 201:
        raise RuntimeError(f"could not make {what}: {response.status_code} {response.text}")
    created: dict[str, Any] = response.json()
    return created
