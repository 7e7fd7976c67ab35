"""Forged requests to the backstage: cross-site form posts, open redirects, and OAuth callbacks
that did not start here. Each is refused and changes nothing.

The POST routes are read from the app itself, so a route added later is covered here
without a word of this file changed (or the test says what it needs to know about it).
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from api.app import create_app
from api.backstage.backstage_session import SESSION_COOKIE, STATE_COOKIE
from models.command_table import COMMANDS
from signing import Signer
from tests.harness import Stack, User, World, eventually, stack_settings, world_in
from tests.integration.backstage_helpers import browser, consent, csrf, sign_in
from tests.integration.test_alert_intake import make_integration, team_admin
from tests.integration.test_backstage import make_playbook, start_incident
from tests.webhook_receiver import WebhookReceiver

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
        """A REST record, as an admin reads it (no access rule or cached fact in the way), or
        its "not found" answer."""
        response = await self.world.api(self.world.admin).get(path)
        assert response.status_code in (200, 404), response.text
        found: dict[str, Any] = response.json()
        return found


@dataclass(frozen=True)
class Target:
    """What a route's form sends (`marker` goes into its text) and what the route changes, read back
    (`answer`: the accepted form's response, for a route that makes something new); the status
    the accepted form answers with (a page showing a token once is the answer itself, not a
    redirect), and whether only a team admin may send it."""

    form: Callable[[Visit, str], dict[str, str]]
    read: Callable[[Visit, httpx.Response | None], Awaitable[str]]
    accepted: int = 303
    team_admin: bool = False


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
    name = str(record.get("name") or record.get("title"))
    assert "Legit" in name, record
    return name


async def integration_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/integrations/{visit.ids['integration_id']}")
    return repr((record.get("version"), record.get("token_hint"), record.get("error")))


async def integration_made(visit: Visit, answer: httpx.Response | None) -> str:
    """The integration the accepted form made, named by the URL its answer shows once."""
    if answer is None:
        return "nothing yet"
    shown = re.search(r'id="secret-url">[^<]*/hooks/alerts/(\w+)</code>', answer.text)
    assert shown, "the answer shows no new integration"
    record = await visit.record(f"/api/v1/integrations/{shown[1]}")
    assert "Legit" in str(record.get("name")), record
    return str(record["name"])


def playbook_form(visit: Visit, marker: str) -> dict[str, str]:
    return {
        "version": "1",
        "title": f"{marker} playbook",
        "members": visit.world.alice.username,
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page the DBA",
    }


async def webhooks_record(visit: Visit, _: httpx.Response | None) -> str:
    """The owner's webhooks as their REST list shows them (what any webhook form changes)."""
    listed: Any = await visit.record(visit.ids["webhooks"])
    return repr(sorted((s["url"], s["events"], s["description"], s["secret_hint"], s["version"]) for s in listed))


async def deliveries_record(visit: Visit, _: httpx.Response | None) -> str:
    page: Any = await visit.record(f"{visit.ids['webhooks']}/{visit.ids['webhook_id']}/deliveries")
    return repr([(d["delivery_id"], d["state"]) for d in page["items"]])


def webhook_form(visit: Visit, marker: str) -> dict[str, str]:
    return {"url": f"http://127.0.0.1:9/{marker}", "events": "*", "description": f"{marker} webhook"}


def webhook_targets(owner: str, *, team_admin: bool) -> dict[str, Target]:
    """The webhook pages' forms, the same for a playbook's and a team's."""
    base = f"/backstage/{owner}/{{owner_id}}/webhooks"
    return {
        base: Target(webhook_form, webhooks_record, 201, team_admin=team_admin),
        f"{base}/import": Target(
            lambda v, m: {"yaml": f"webhooks:\n  - url: http://127.0.0.1:9/{m}\n    events: ['*']\n"},
            webhooks_record,
            200,
            team_admin=team_admin,
        ),
        f"{base}/{{webhook_id}}": Target(webhook_form, webhooks_record, team_admin=team_admin),
        f"{base}/{{webhook_id}}/secret": Target(lambda v, m: {}, webhooks_record, 200, team_admin=team_admin),
        f"{base}/{{webhook_id}}/delete": Target(
            lambda v, m: {"confirmed": "1"}, webhooks_record, team_admin=team_admin
        ),
        f"{base}/{{webhook_id}}/deliveries": Target(
            lambda v, m: {"event_id": v.ids["event_id"]}, deliveries_record, team_admin=team_admin
        ),
    }


async def with_webhook(world: World, user: User, ids: dict[str, str], *, delivered: bool) -> None:
    """A webhook of the route's owner (`ids["webhook_id"]`); with `delivered`, one event of an
    incident delivered to it (`ids["event_id"]`), for the redelivery form."""
    async with WebhookReceiver() as receiver:
        made = await world.api(user).post(ids["webhooks"], json={"url": receiver.url, "events": ["incident.started"]})
        assert made.status_code == 201, made.text
        ids["webhook_id"] = made.json()["id"]
        receiver.secret = made.json()["secret"]
        if delivered:
            playbook_id = ids.get("playbook_id") or (await make_playbook(world, world.alice))["id"]
            await start_incident(world, world.alice, playbook_id, "Hooked")
            await receiver.wait_for(lambda r: len(r.deliveries) == 1, what="the start delivered")
            ids["event_id"] = receiver.deliveries[0].webhook_id


def schedule_form(visit: Visit, marker: str) -> dict[str, str]:
    """A schedule as the backstage's editor takes it (YAML), named after `marker` and unique."""
    name = f"{marker}-oncall-{uuid.uuid4().hex[:6]}"
    return {
        "spec": f"name: {name}\ntime_zone: UTC\nrotations:\n  - members: [{visit.world.alice.username}]\n"
        "    shift: 1w\n    handoff: 'Mon 09:00'\n    start: '2026-12-07'\n"
    }


async def schedules_record(visit: Visit, answer: httpx.Response | None) -> str:
    """The team's schedules by name; after the accepted form, once the new one is listed
    (the list is read from visibility, a moment behind)."""

    async def names() -> str:
        listed: Any = await visit.record(f"/api/v1/schedules?team_id={visit.world.team_id}")
        return repr(sorted(s["name"] for s in listed))

    if answer is None:
        return await names()
    return await eventually(names, lambda shown: "Legit" in shown, what="the new schedule listed")


async def schedule_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/schedules/{visit.ids['schedule_id']}")
    return repr((record.get("name"), record.get("rotations"), record.get("error")))


def severities_form(visit: Visit, marker: str) -> dict[str, str]:
    """Two severity levels named after `marker` (the whole list, as the backstage's form sends it)."""
    return {"levels[0].name": f"{marker} high", "levels[1].name": f"{marker} low", "levels[1].colour": "#123456"}


async def severities_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/teams/{visit.world.team_id}/severities")
    return repr([(level["name"], level["colour"]) for level in record["levels"]])


async def retrospective_record(visit: Visit, _: httpx.Response | None) -> str:
    record = await visit.record(f"/api/v1/incidents/{visit.ids['incident_id']}/retrospective")
    return repr((record.get("version"), record.get("text")))


async def preview_answer(visit: Visit, answer: httpx.Response | None) -> str:
    """A preview changes nothing: what the accepted form answers is its rendering."""
    return "nothing yet" if answer is None else answer.text


async def tried(visit: Visit, answer: httpx.Response | None) -> str:
    """A dry run writes nothing (the playbook stays as it was): what the accepted form answers is
    the report, above the draft it tried."""
    record = await playbook_record(visit, None)
    if answer is None:
        return record
    assert 'id="dry-run-report"' in answer.text, answer.text
    assert "Legit playbook" in answer.text
    return f"{record}, tried"


# A form of each route that would be applied with the session's own token.
TARGETS: dict[str, Target] = {
    **webhook_targets("playbooks", team_admin=False),
    **webhook_targets("teams", team_admin=True),
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
    "/backstage/playbooks/{playbook_id}/dry-run": Target(playbook_form, tried, 200),
    "/backstage/teams/{team_id}/integrations": Target(
        lambda v, m: {"kind": "generic", "name": f"{m} integration"}, integration_made, 201, team_admin=True
    ),
    "/backstage/integrations/{integration_id}/token": Target(lambda v, m: {}, integration_record, 200, team_admin=True),
    "/backstage/integrations/{integration_id}/delete": Target(
        lambda v, m: {"confirmed": "1"}, integration_record, team_admin=True
    ),
    "/backstage/teams/{team_id}/schedules": Target(schedule_form, schedules_record, team_admin=True),
    "/backstage/schedules/{schedule_id}/edit": Target(schedule_form, schedule_record, team_admin=True),
    "/backstage/schedules/{schedule_id}/delete": Target(
        lambda v, m: {"confirmed": "1"}, schedule_record, team_admin=True
    ),
    "/backstage/teams/{team_id}/severities": Target(severities_form, severities_record, team_admin=True),
    "/backstage/incidents/{incident_id}/retrospective": Target(
        lambda v, m: {"text": f"{m} retrospective", "version": "1"}, retrospective_record
    ),
    "/backstage/incidents/{incident_id}/retrospective/preview": Target(
        lambda v, m: {"text": f"**{m}** preview"}, preview_answer, 200
    ),
}


@pytest.mark.parametrize("route", backstage_posts())
async def test_every_backstage_post_refuses_a_missing_forged_or_foreign_csrf_token(world: World, route: str) -> None:
    assert route in TARGETS, f"{route} is new: say in TARGETS what its form sends and what it changes"
    target = TARGETS[route]
    names = set(re.findall(r"{(\w+)}", route))
    ids = {"team_id": world.team_id}
    retrospective = "/retrospective" in route
    if names & {"playbook_id", "incident_id"} or route.endswith("/incidents/new"):
        extra: dict[str, Any] = {"retrospective": {}} if retrospective else {}
        ids["playbook_id"] = (await make_playbook(world, world.alice, **extra))["id"]
    if "incident_id" in names:
        ids["incident_id"] = (await start_incident(world, world.alice, ids["playbook_id"], "Forgery"))["id"]
    if retrospective:  # an ended incident's: it opened at the end
        ended = await world.api(world.alice).post(f"/api/v1/incidents/{ids['incident_id']}/end")
        assert ended.status_code == 200, ended.text
    # Integrations are their team admins' alone: one signs in there (their own forms are forged).
    user = team_admin(world) if target.team_admin else world.alice
    if "integration_id" in names:
        ids["integration_id"] = (await make_integration(world, user, "generic"))["id"]
    if "schedule_id" in names:
        rotation = {"members": [world.alice.id], "shift": "1w", "handoff": "Mon 09:00", "start": "2026-12-07"}
        spec = {"team_id": world.team_id, "name": f"kept-{uuid.uuid4().hex[:6]}", "rotations": [rotation]}
        made_schedule = await world.api(user).post("/api/v1/schedules", json=spec)
        assert made_schedule.status_code == 201, made_schedule.text
        ids["schedule_id"] = made_schedule.json()["id"]
    if "owner_id" in names:
        playbooks = route.startswith("/backstage/playbooks/")
        if playbooks:
            ids["playbook_id"] = (await make_playbook(world, world.alice))["id"]
        ids["owner_id"] = ids["playbook_id"] if playbooks else world.team_id
        ids["webhooks"] = f"/api/v1/{'playbooks' if playbooks else 'teams'}/{ids['owner_id']}/webhooks"
    if "webhook_id" in names:
        await with_webhook(world, user, ids, delivered=route.endswith("/deliveries"))
    page = await sign_in(world, user)
    listing = f"/backstage/teams/{world.team_id}/incidents"
    others = {
        "the same person's other session": csrf(await (await sign_in(world, user)).get(listing)),
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
    assert accepted.status_code == target.accepted, accepted.text
    after = await target.read(visit, accepted)
    assert after != before
    assert "Forged" not in after


# --------------------------------------------------------------------------- open redirects

# Where a backstage redirect could be told to go: the sign-in's `next` (and so the OAuth
# state that carries it), and the command forms' `back`.
OFF_SITE = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "https:evil.example",
    "http://evil.example/backstage",
    "//evil.example/backstage",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/%2F%2Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "javascript:alert(1)",
    " JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "/backstage@evil.example",
    "/backstage.evil.example",
    "/backstage//evil.example",
    "/backstage/..//evil.example",
    "/backstage/%2e%2e/%2E%2E//evil.example",
    "/backstage/../../evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "\t//evil.example",
    "/backstage\t//evil.example",
    "/backstage\r\nLocation: https://evil.example",
    "/backstage/\\evil.example",
    "\u3002evil.example",
    "http://127.0.0.1:1/backstage",
]


def as_a_browser_reads(base: str, location: str) -> str:
    """`location` resolved against `base` as a browser resolves it (the WHATWG URL standard):
    surrounding spaces and controls trimmed, tabs and newlines dropped, a backslash read as a
    slash, and `%2e` as a dot in a path segment (so `..` segments are taken out)."""
    cleaned = re.sub(r"[\t\n\r]", "", location.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08 "))
    cleaned = re.sub("%2e", ".", cleaned.replace("\\", "/"), flags=re.IGNORECASE)
    return urljoin(base, cleaned)


def assert_stays_in_the_backstage(stack: Stack, location: str) -> None:
    base = stack.api_url + "/backstage/oauth/callback"
    resolved = urlsplit(as_a_browser_reads(base, location))
    assert (resolved.scheme, resolved.netloc) == urlsplit(stack.api_url)[:2], location
    assert resolved.path == "/backstage" or resolved.path.startswith("/backstage/"), location


def next_of_the_sign_in_link(login: httpx.Response) -> str:
    """Where the sign-in page's "Sign in with Mattermost" sends the visitor after signing in."""
    link = re.search(r'href="(/backstage/login/start\?[^"]*)"', login.text)
    assert link, "no sign-in link"
    return parse_qs(urlsplit(html.unescape(link[1])).query)["next"][0]


@dataclass
class Redirects:
    world: World
    page: httpx.AsyncClient
    token: str
    incident_id: str


@pytest.fixture(scope="module")
async def redirects(stack: Stack) -> AsyncIterator[Redirects]:
    """One incident and one signed-in person for every payload."""
    async with world_in(stack) as world:
        book = await make_playbook(world, world.alice)
        incident = await start_incident(world, world.alice, book["id"], "Redirects")
        page = await sign_in(world, world.alice)
        token = csrf(await page.get(f"/backstage/incidents/{incident['id']}"))
        yield Redirects(world, page, token, incident["id"])


@pytest.mark.parametrize("target", OFF_SITE)
async def test_no_redirect_target_from_a_request_leads_off_the_backstage(redirects: Redirects, target: str) -> None:
    world, stack = redirects.world, redirects.world.stack
    # The sign-in page's link carries `next` on to the start of the sign-in...
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        shown = await anonymous.get("/backstage/login", params={"next": target})
    assert shown.status_code == 200
    assert_stays_in_the_backstage(stack, next_of_the_sign_in_link(shown))
    # ...which puts it in the OAuth state, and the callback goes there once signed in.
    visitor = browser(world)
    signed_in = await visitor.get(await consent(world, visitor, world.alice, target))
    assert signed_in.status_code == 303, signed_in.text
    assert_stays_in_the_backstage(stack, signed_in.headers["location"])
    # A command form comes back to its place on the incident page.
    sent = await redirects.page.post(
        f"/backstage/incidents/{redirects.incident_id}/commands/post_status_update",
        data={"csrf_token": redirects.token, "message": "Still looking", "back": target},
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/backstage/incidents/{redirects.incident_id}"


async def test_signing_in_still_returns_to_the_page_asked_for(redirects: Redirects) -> None:
    world = redirects.world
    asked = f"/backstage/teams/{world.team_id}/incidents?status=ended&sort=name&search=db+down%21"
    visitor = browser(world)
    sent_away = await visitor.get(asked)
    assert sent_away.status_code == 303
    next_path = next_of_the_sign_in_link(await visitor.get(sent_away.headers["location"]))
    assert next_path == asked
    signed_in = await visitor.get(await consent(world, visitor, world.alice, next_path))
    assert signed_in.headers["location"] == asked


# --------------------------------------------------------------------------- OAuth callbacks


@dataclass
class Attack:
    """A callback visited by a browser that should not be signed in by it."""

    browser: httpx.AsyncClient
    callback: str
    # Refused for its state (a page saying to sign in again), or for its code by Mattermost
    # (back to the sign-in page, as for any sign-in Mattermost refuses).
    refused_for: Literal["state", "code"]


def with_query(url: str, **values: str | None) -> str:
    """`url` with some query parameters replaced (None: left out)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | values
    return parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})).geturl()


def state_for(browser: httpx.AsyncClient, secret: str, **changes: Any) -> str:
    """A state as the backstage signs it for `browser` (its nonce cookie), with `changes`."""
    payload = {"kind": "backstage-oauth", "n": browser.cookies.get(STATE_COOKIE), "next": "/backstage"}
    return Signer(secret).sign(payload | {"e": time.time() + 600} | changes)


async def same_callback_twice(world: World) -> Attack:
    victim = browser(world)
    callback = await consent(world, victim, world.alice)
    assert (await victim.get(callback)).status_code == 303
    return Attack(victim, callback, "state")


async def spent_code_with_a_fresh_state(world: World) -> Attack:
    victim = browser(world)
    spent = await consent(world, victim, world.alice)
    assert (await victim.get(spent)).status_code == 303
    attacker = browser(world)
    fresh = await consent(world, attacker, world.alice)
    return Attack(attacker, with_query(fresh, code=parse_qs(urlsplit(spent).query)["code"][0]), "code")


async def state_from_another_browser(world: World) -> Attack:
    victim, attacker = browser(world), browser(world)
    callback = await consent(world, victim, world.alice)
    await attacker.get("/backstage/login/start")  # a sign-in of its own under way: a nonce of its own
    return Attack(attacker, callback, "state")


async def expired_state(world: World) -> Attack:
    victim = browser(world)
    callback = await consent(world, victim, world.alice)
    old = state_for(victim, world.stack.settings.signing_secret, e=time.time() - 1)
    return Attack(victim, with_query(callback, state=old), "state")


async def state_of_another_deployment(world: World) -> Attack:
    victim = browser(world)
    callback = await consent(world, victim, world.alice)
    return Attack(victim, with_query(callback, state=state_for(victim, "another deployment's secret")), "state")


async def state_signed_for_another_purpose(world: World) -> Attack:
    victim = browser(world)
    callback = await consent(world, victim, world.alice)
    flash = state_for(victim, world.stack.settings.signing_secret, kind="backstage-flash")
    return Attack(victim, with_query(callback, state=flash), "state")


async def code_of_another_client(world: World) -> Attack:
    """Mix-up: a code Mattermost issued to another app (one that also lists our callback URL),
    sent with a state this browser really started."""
    victim = browser(world)
    ours = await consent(world, victim, world.alice)
    callback = ours.split("?")[0]
    other = world.standin.register_oauth_app("Other app", callback_urls=[callback], creator_id=world.admin.id)
    async with httpx.AsyncClient() as mattermost:
        granted = await mattermost.post(
            f"{world.standin.url}/oauth/authorize",
            data={"client_id": other["id"], "redirect_uri": callback, "response_type": "code", "state": "x"}
            | {"username": world.alice.username, "allow": "1"},
        )
    assert granted.status_code == 302, granted.text
    code = parse_qs(urlsplit(granted.headers["location"]).query)["code"][0]
    return Attack(victim, with_query(ours, code=code), "code")


async def no_state(world: World) -> Attack:
    victim = browser(world)
    return Attack(victim, with_query(await consent(world, victim, world.alice), state=None), "state")


async def access_denied(world: World) -> Attack:
    victim = browser(world)
    callback = await consent(world, victim, world.alice)
    return Attack(victim, with_query(callback, code=None, error="access_denied"), "code")


@pytest.mark.parametrize(
    "attack",
    [
        same_callback_twice,
        spent_code_with_a_fresh_state,
        state_from_another_browser,
        expired_state,
        state_of_another_deployment,
        state_signed_for_another_purpose,
        code_of_another_client,
        no_state,
        access_denied,
    ],
    ids=lambda attack: attack.__name__,
)
async def test_a_replayed_or_mixed_up_oauth_callback_signs_nobody_in(
    world: World, attack: Callable[[World], Awaitable[Attack]]
) -> None:
    made = await attack(world)
    sessions = len(world.standin.oauth_sessions(world.alice.id))
    cookie = made.browser.cookies.get(SESSION_COOKIE)
    answer = await made.browser.get(made.callback)
    if made.refused_for == "state":
        assert answer.status_code == 400, (answer.status_code, made.callback)
        assert "This sign-in did not start here or took too long" in answer.text
    else:
        assert answer.status_code == 303, (answer.status_code, made.callback)
        assert answer.headers["location"].startswith("/backstage/login?")
    set_cookies = answer.headers.get_list("set-cookie")
    assert not [c for c in set_cookies if c.startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" not in c], set_cookies
    assert made.browser.cookies.get(SESSION_COOKIE) in (cookie, None)
    assert len(world.standin.oauth_sessions(world.alice.id)) == sessions
    if made.browser.cookies.get(SESSION_COOKIE) is None:
        assert (await made.browser.get("/backstage")).headers["location"].startswith("/backstage/login")
