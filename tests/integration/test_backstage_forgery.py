"""Forged requests to the backstage: cross-site form posts, open redirects, and OAuth callbacks
that did not start here. Each is refused and changes nothing.

The POST routes are read from the app itself, so a route added later is covered here
without a word of this file changed (or the test says what it needs to know about it).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from api.app import create_app
from models.command_table import COMMANDS
from tests.harness import World, stack_settings
from tests.integration.backstage_helpers import csrf, sign_in
from tests.integration.test_backstage import make_playbook, start_incident

REFUSED = "This form is not from your current session"


def backstage_posts() -> list[str]:
    """Every backstage route that takes a POST, as the app registers them."""
    settings = stack_settings(mattermost_url="http://unused", mattermost_bot_token="-", mattermost_slash_token="-")
    app = create_app(settings)
    return sorted(
        str(route.path)
        for route in iter_route_contexts(app.routes)
        if str(route.path).startswith("/backstage") and "POST" in (route.methods or ())
    )


# --------------------------------------------------------------------------- CSRF


@dataclass
class Visit:
    """Alice signed in, what a route's path names, and the CSRF tokens of other sessions."""

    world: World
    page: httpx.AsyncClient
    token: str
    others: dict[str, str]  # another session's token, by whose
    ids: dict[str, str]

    async def record(self, path: str) -> dict[str, Any]:
        response = await self.world.api(self.world.alice).get(path)
        assert response.status_code in (200, 404), response.text
        found: dict[str, Any] = response.json()
        return found


@dataclass(frozen=True)
class Target:
    """What a route's form sends (`marker` goes into its text) and what the route changes, read back
    (`answer`: the accepted form's response, for a route that makes something new)."""

    form: Callable[[Visit, str], dict[str, str]]
    read: Callable[[Visit, httpx.Response | None], Awaitable[str]]


async def signed_in_or_not(visit: Visit, _: httpx.Response | None) -> str:
    listed = await visit.page.get(f"/backstage/teams/{visit.world.team_id}/incidents")
    return "signed in" if listed.status_code == 200 else f"signed out ({listed.status_code})"


async def incident_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/incidents/{visit.ids['incident_id']}")
    return repr((record["timeline"], record["checklists"], record["status"], record["commander_id"]))


async def playbook_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/playbooks/{visit.ids['playbook_id']}")
    return repr((record.get("version"), record.get("title"), record.get("error")))


async def made(visit: Visit, answer: httpx.Response | None) -> str:
    """What the accepted form made (the page it led to), or nothing before it was accepted.

    Every forged form carried the request key the accepted one carries, so had one been
    applied, the accepted one would be its replay: the same thing, named "Forged", or a
    refused reuse of the key."""
    if answer is None:
        return "nothing yet"
    kind, made_id = answer.headers["location"].split("/")[-2:]
    record = await visit.record(f"/api/v1/{kind}/{made_id}")
    return str(record.get("name") or record.get("title"))


def playbook_form(visit: Visit, marker: str) -> dict[str, str]:
    return {
        "version": "1",
        "title": f"{marker} playbook",
        "members": visit.world.alice.username,
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page the DBA",
    }


# A form of each route that would be applied with the session's own token.
TARGETS: dict[str, Target] = {
    "/backstage/logout": Target(lambda v, m: {}, signed_in_or_not),
    "/backstage/incidents/{incident_id}/commands/{name}": Target(
        lambda v, m: {"message": f"{m} update", "status": "identified"}, incident_record
    ),
    "/backstage/teams/{team_id}/incidents/new": Target(
        lambda v, m: {"playbook_id": v.ids["playbook_id"], "name": f"{m} incident", "description": m}, made
    ),
    "/backstage/teams/{team_id}/playbooks/new": Target(playbook_form, made),
    "/backstage/teams/{team_id}/playbooks/import": Target(
        lambda v, m: {"yaml": f"title: {m} import\nchecklists:\n  - title: Triage\n    items: [{{title: Look}}]\n"},
        made,
    ),
    "/backstage/playbooks/{playbook_id}": Target(playbook_form, playbook_record),
    "/backstage/playbooks/{playbook_id}/archive": Target(lambda v, m: {}, playbook_record),
}


@pytest.mark.parametrize("route", backstage_posts())
async def test_every_backstage_post_refuses_a_missing_forged_or_foreign_csrf_token(world: World, route: str) -> None:
    assert route in TARGETS, f"{route} is new: say in TARGETS what its form sends and what it changes"
    target = TARGETS[route]
    names = set(re.findall(r"{(\w+)}", route))
    ids = {"team_id": world.team_id}
    if names & {"playbook_id", "incident_id"} or route.endswith("/incidents/new"):
        ids["playbook_id"] = (await make_playbook(world, world.alice))["id"]
    if "incident_id" in names:
        ids["incident_id"] = (await start_incident(world, world.alice, ids["playbook_id"], "Forgery"))["id"]
    page = await sign_in(world, world.alice)
    listing = f"/backstage/teams/{world.team_id}/incidents"
    others = {
        "alice's other session": csrf(await (await sign_in(world, world.alice)).get(listing)),
        "bob's session": csrf(await (await sign_in(world, world.bob)).get(listing)),
    }
    visit = Visit(world, page, csrf(await page.get(listing)), others, ids)
    # Every command of the table is one path of this route; a forged form reaches none of them.
    paths = [route.format(**ids, name=spec.name) for spec in COMMANDS] if "name" in names else [route.format(**ids)]

    before = await target.read(visit, None)
    forged: dict[str, dict[str, str]] = {
        "no token": {},
        "an empty token": {"csrf_token": ""},
        "a made-up token": {"csrf_token": "x" * len(visit.token)},
        **{whose: {"csrf_token": token} for whose, token in others.items()},
    }
    for path in paths:
        for what, token in forged.items():
            fields = target.form(visit, "Forged") | {"request_key": "one-key", **token}
            refused = await page.post(path, data=fields)
            assert refused.status_code == 403, (path, what, refused.status_code)
            assert REFUSED in refused.text, (path, what)
    assert await target.read(visit, None) == before

    # The same form with the session's own token is applied: the refusals were not vacuous.
    path = route.format(**ids, name="post_status_update")
    accepted = await page.post(
        path, data=target.form(visit, "Legit") | {"request_key": "one-key", "csrf_token": visit.token}
    )
    assert accepted.status_code == 303, accepted.text
    after = await target.read(visit, accepted)
    assert after != before
    assert "Forged" not in after
