"""The first hour with `make dev`: the demo team's first incident, and the stand-in used by hand.

The demo incident is checked on a stack built as `make dev` builds it (`devstack.stack` with
the demo stand-in), seeded by the same step; the rest runs on the session's stack, driving
`python -m devstack.mm` as a person types it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from api.backstage.incident_pages import channel_url
from devstack.demo_incident import INCIDENT_NAME, seed_demo_incident
from devstack.stack import Stack, StackOptions, running_stack, stack_settings
from tests.harness import World, eventually
from tests.integration.slash_helpers import checklist_post, control, create_playbook, outage, settled


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


# ---------------------------------------------------------------------------- the stand-in by hand


def signed_in(world: World, user: str) -> list[str]:
    """The options that make `devstack.mm` act as one of the world's people on its stand-in."""
    return ["--url", world.standin.url, "--token", getattr(world, user).token, "--wait", "1"]


async def mm(*argv: str) -> tuple[int, str, str]:
    """`python -m devstack.mm <argv>` as a person types it: (exit status, output, errors)."""
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack.mm", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await cli.communicate()
    assert cli.returncode is not None
    return cli.returncode, out.decode(), err.decode()


async def test_mm_prints_a_reply_once(world: World) -> None:
    incident = await outage(world)
    code, out, err = await mm(*signed_in(world, "alice"), "slash", "--channel", incident.channel_name, "/incident info")
    assert code == 0, err
    assert out.startswith("#### Incident: Primary DB down")
    assert out.count("#### Incident: Primary DB down") == 1, out


async def test_mm_takes_its_options_anywhere_on_the_line(world: World) -> None:
    incident = await outage(world)
    code, out, err = await mm("slash", "/incident info", *signed_in(world, "alice"), "--channel", incident.channel_name)
    assert code == 0, err
    assert out.startswith("#### Incident: Primary DB down")


async def test_mm_shows_dialog_choices_by_label_and_takes_a_label(world: World) -> None:
    await create_playbook(world, world.alice, "Database outage")
    town_square = world.town_square["id"]
    code, opened, err = await mm(*signed_in(world, "alice"), "slash", "--channel", town_square, "/incident start")
    assert code == 0, err
    assert 'playbook=select one of: "Database outage", "No playbook (blank incident)"' in opened, opened
    code, submitted, err = await mm(*signed_in(world, "alice"), "dialog", "playbook=Database outage", "name=Disk full")
    assert code == 0, err
    assert submitted.startswith("Submitted."), submitted
    assert "Choose a playbook" not in submitted

    def started() -> bool:
        return any(c["name"].startswith("inc-disk-full-") for c in world.standin.channels(world.team_id))

    await world.standin.wait_for(started)


async def test_mm_shows_a_user_only_the_posts_they_may_read(world: World) -> None:
    incident = await outage(world)  # private: alice's alone
    code, out, err = await mm(*signed_in(world, "carol"), "posts", "--channel", incident.channel_name)
    assert code == 1
    assert "Page the DBA" not in out
    assert f"You cannot see a channel {incident.channel_name!r}" in err
    code, out, err = await mm(*signed_in(world, "alice"), "posts", "--channel", incident.channel_name, "--last", "50")
    assert code == 0, err
    assert f"[{control(checklist_post(world, incident), 'Page the DBA')}] ☐ Page the DBA" in out


# ---------------------------------------------------------------------------- "in Mattermost"


async def test_the_in_mattermost_link_opens_the_channel_read_only_in_the_stand_in(world: World) -> None:
    incident = await outage(world)
    driver = world.driver(world.alice)
    try:
        await driver.posts.create_post(channel_id=incident.channel_id, message="<script>alert(1)</script> & <b>hi</b>")
    finally:
        await driver.close()
    link = channel_url(world.stack.settings, await settled(world, incident.id))
    assert link == f"{world.standin.url}/{world.team['name']}/channels/{incident.channel_name}"
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(link)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    # Every post, its text escaped: no markup and no script of anyone's gets through.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;hi&lt;/b&gt;" in page.text
    assert "<script" not in page.text
    # The live checklist post, its buttons shown but not clickable.
    assert "Page the DBA" in page.text
    assert '<span class="button">☐ Page the DBA</span>' in page.text


async def test_an_unknown_channel_address_is_an_html_not_found_page(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.standin.url, timeout=30) as http:
        page = await http.get(f"/{world.team['name']}/channels/no-such-channel")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no channel ~no-such-channel" in page.text
