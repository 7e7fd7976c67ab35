"""The first hour with `make dev`: the demo team's first incident.

The demo incident is checked on a stack built as `make dev` builds it (`devstack.stack` with
the demo stand-in), seeded by the same step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.demo_incident import INCIDENT_NAME, seed_demo_incident
from devstack.stack import Stack, StackOptions, running_stack, stack_settings
from tests.harness import eventually


@pytest.fixture(scope="module")
async def demo_stack() -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(), StackOptions(demo=True)) as running:
        yield running


async def typed(stack: Stack, token: str, text: str, channel_id: str) -> str:
    """`/incident <text>` typed in a channel of the stand-in, as the token's owner; the reply."""
    async with httpx.AsyncClient(base_url=stack.settings.mattermost_url, timeout=30) as http:
        response = await http.post(
            "/api/v4/commands/execute",
            headers={"Authorization": f"Bearer {token}"},
            json={"channel_id": channel_id, "command": f"/incident {text}"},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


async def test_the_demo_incident_is_shared_with_the_demo_team(demo_stack: Stack) -> None:
    demo = demo_stack.accounts.demo if demo_stack.accounts else None
    assert demo is not None
    first = await seed_demo_incident(demo_stack.api_url, demo)
    # A second `make dev` finds the same playbook and incident.
    again = await seed_demo_incident(demo_stack.api_url, demo)
    assert again == first
    town_square = demo["channels"]["town-square"]["id"]
    bob = demo["users"]["bob"]["token"]
    listed = await eventually(
        lambda: typed(demo_stack, bob, "list", town_square),
        lambda text: "(~inc-" in text,
        what="bob to see the demo incident in /incident list",
    )
    assert listed.count(INCIDENT_NAME) == 1, listed
    # Someone who joins the team later sees it too: the incident is public to the team.
    standin = demo_stack.standin
    erin = standin.create_user("erin")
    standin.add_team_member(demo["team"]["id"], erin["id"])
    standin.add_channel_member(town_square, erin["id"])
    seen_by_erin = await typed(demo_stack, standin.create_access_token(erin["id"]), "list", town_square)
    assert INCIDENT_NAME in seen_by_erin, seen_by_erin
    # Bob was invited into its channel by the playbook, so he can work it.
    [channel] = [c for c in standin.channels(demo["team"]["id"]) if c["name"].endswith(first.incident_id)]
    assert channel["type"] == "O"
    await standin.wait_for(lambda: demo["users"]["bob"]["user"]["id"] in standin.channel_members(channel["id"]))
    checked = await typed(demo_stack, bob, "check 1", channel["id"])
    assert checked == "Marked 'Page the on-call engineer' as done.", checked
