"""Backstage sessions that end, and safe page headers, on the real stack over HTTP.

The cookie reveals nothing of the Mattermost token; signing out ends the session in every
API process (a second app over the same Temporal, as behind a load balancer) even when
Mattermost's logout fails; without Temporal, a session is neither shown a page nor
"signed out" (fail closed); every backstage answer carries the security headers.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import unquote

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from api.app import create_app
from devstack.embedded_http import free_port, serve
from models.signed_out_sessions import (
    CLOCK_SKEW_SECONDS,
    SHARDS,
    WORKFLOW_ID_PREFIX,
    SignedOutSessions,
    SignOut,
    session_hash,
)
from tests.harness import World, own_server, own_worker
from tests.integration.backstage_helpers import csrf, sign_in
from tests.integration.test_backstage import make_playbook, start_incident
from workflows.signed_out_sessions_workflow import SignedOutSessionsWorkflow

SESSION = "backstage_session"


@asynccontextmanager
async def another_api(world: World, temporal: Client | None = None) -> AsyncIterator[str]:
    """Another API process's app on its own port, configured as the first (same secret); it
    makes its own Temporal connection, as `python -m api` does, unless given one."""
    port = free_port()
    settings = world.stack.settings.model_copy(update={"api_port": port, "public_url": ""})
    server = await serve(create_app(settings, temporal=temporal), host=settings.api_host, port=port)
    try:
        yield settings.api_public_url
    finally:
        await server.stop()


def session_cookie(client: httpx.AsyncClient) -> str:
    return next(c.value for c in client.cookies.jar if c.name == SESSION and c.value)


async def get_with(base_url: str, path: str, cookie: str) -> httpx.Response:
    """A request carrying only this session cookie, as a copied cookie would be sent."""
    async with httpx.AsyncClient(base_url=base_url, cookies={SESSION: cookie}, timeout=30) as http:
        return await http.get(path)


def decodings(value: str) -> list[bytes]:
    """Every way the cookie's text, or a dot-separated part of it, might decode."""
    found = [value.encode(), unquote(value).encode()]
    for part in [value, *value.split(".")]:
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            with suppress(ValueError):  # binascii.Error is one
                found.append(decode(part + "=" * (-len(part) % 4)))
    return found


async def signed_out_histories(temporal: Client) -> list[str]:
    """The histories of every shard that recorded a sign-out, as JSON."""
    histories = []
    for shard in SHARDS:
        try:
            history = await temporal.get_workflow_handle(WORKFLOW_ID_PREFIX + shard).fetch_history()
        except RPCError:
            continue
        histories.append(history.to_json())
    return histories


async def test_the_session_cookie_reveals_nothing_of_the_mattermost_token(world: World) -> None:
    browser = await sign_in(world, world.bob)
    [oauth] = world.standin.oauth_sessions(world.bob.id)
    token = oauth["token"]
    cookie = next(c for c in browser.cookies.jar if c.name == SESSION)
    assert cookie.path == "/backstage"
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert (cookie.get_nonstandard_attr("SameSite") or "").lower() == "lax"
    for decoded in decodings(cookie.value or ""):
        assert token.encode() not in decoded
        assert world.bob.id.encode() not in decoded
    listed = await browser.get(f"/backstage/teams/{world.team_id}/incidents")
    assert listed.status_code == 200
    # Altered by one character, it opens nothing: sign in again.
    value = cookie.value or ""
    middle = len(value) // 2
    altered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    refused = await get_with(world.stack.api_url, f"/backstage/teams/{world.team_id}/incidents", altered)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/backstage/login?next=")


async def test_signing_out_ends_the_session_in_every_api_process_even_when_mattermost_fails(
    world: World,
) -> None:
    browser = await sign_in(world, world.bob)
    cookie = session_cookie(browser)
    token = world.standin.oauth_sessions(world.bob.id)[0]["token"]
    incidents = f"/backstage/teams/{world.team_id}/incidents"
    async with another_api(world) as second:
        for api in (world.stack.api_url, second):
            assert (await get_with(api, incidents, cookie)).status_code == 200
        listed = await browser.get(incidents)
        async with httpx.AsyncClient(timeout=30) as control:
            fault = await control.post(
                f"{world.standin.url}/_standin/faults",
                json={"method": "POST", "path": "/api/v4/users/logout", "status": 500},
            )
            assert fault.status_code == 201, fault.text
        out = await browser.post("/backstage/logout", data={"csrf_token": csrf(listed)})
        assert out.status_code == 303
        assert out.headers["location"] == "/backstage/login?signed_out=true"
        # Mattermost kept its session: the token still works there...
        assert [s["token"] for s in world.standin.oauth_sessions(world.bob.id)] == [token]
        # ...and the backstage's is over in both API processes, pages and live fragment alike.
        for api in (world.stack.api_url, second):
            for path in (incidents, "/backstage"):
                again = await get_with(api, path, cookie)
                assert again.status_code == 303, (api, path, again.text[:300])
                assert again.headers["location"].startswith("/backstage/login?next=")
    # What Temporal keeps of it signs nobody in: neither the token nor the cookie.
    histories = await signed_out_histories(world.stack.temporal)
    assert histories
    assert not any(token in history or cookie in history for history in histories)


async def test_without_temporal_a_session_gets_no_page_and_is_not_falsely_signed_out(world: World) -> None:
    browser = await sign_in(world, world.carol)
    cookie = session_cookie(browser)
    listed = await browser.get(f"/backstage/teams/{world.team_id}/incidents")
    # An API process whose Temporal goes away while it runs.
    async with own_server() as (temporal_server, unreachable):
        await temporal_server.stop()
        async with another_api(world, unreachable) as cut_off:
            # Whether the session was signed out cannot be known: no page, and no way in.
            home = await get_with(cut_off, "/backstage", cookie)
            assert home.status_code == 503, home.text[:300]
            assert "Try again in a minute" in home.text
            async with httpx.AsyncClient(base_url=cut_off, cookies={SESSION: cookie}, timeout=30) as http:
                out = await http.post("/backstage/logout", data={"csrf_token": csrf(listed)})
            assert out.status_code == 503, out.text[:300]
            assert "Try again in a minute" in out.text
            assert SESSION not in out.headers.get("set-cookie", "")
    # Nothing was done: the session still works, and so does its Mattermost token.
    assert (await browser.get(f"/backstage/teams/{world.team_id}/incidents")).status_code == 200
    assert len(world.standin.oauth_sessions(world.carol.id)) == 1


async def test_every_backstage_answer_carries_the_security_headers(world: World) -> None:
    book = await make_playbook(world, world.alice)
    incident = await start_incident(world, world.alice, book["id"], "Headers on every page")
    browser = await sign_in(world, world.alice)
    pages = [
        "/backstage",
        f"/backstage/teams/{world.team_id}/incidents",
        f"/backstage/incidents/{incident['id']}",
        f"/backstage/incidents/{incident['id']}/live?digest=none",
        f"/backstage/teams/{world.team_id}/playbooks",
        f"/backstage/teams/{world.team_id}/playbooks/new",
        f"/backstage/playbooks/{book['id']}",
        f"/backstage/playbooks/{book['id']}/history",
        f"/backstage/teams/{world.team_id}/stats",
        "/backstage/incidents/doesnotexist",
        "/backstage/login",
    ]
    answers = [await browser.get(path) for path in pages]
    answers.append(
        await browser.post(
            f"/backstage/incidents/{incident['id']}/commands/end_incident", data={"csrf_token": "forged"}
        )
    )
    async with httpx.AsyncClient(base_url=world.stack.api_url, timeout=30) as stranger:
        answers.append(await stranger.get(f"/backstage/teams/{world.team_id}/incidents"))
        static = await stranger.get("/backstage/static/backstage.js")
    assert sorted({a.status_code for a in answers}) == [200, 303, 403, 404]
    for answer in [*answers, static]:
        where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
        headers = answer.headers
        assert headers.get("x-frame-options") == "DENY", where
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "same-origin", where
        policy = {d.strip().split(" ", 1)[0]: d.strip() for d in headers.get("content-security-policy", "").split(";")}
        assert policy.get("script-src") == "script-src 'self'", where
        assert policy.get("frame-ancestors") == "frame-ancestors 'none'", where
    for answer in answers:
        assert answer.headers.get("cache-control") == "no-store", answer.request.url.path
    assert static.status_code == 200
    assert static.headers.get("cache-control") != "no-store"


async def test_the_record_continues_as_new_and_forgets_sessions_that_expired(world: World) -> None:
    low = {"limit.historyCount.suggestContinueAsNew": "30"}
    async with own_server(dynamic_config=low) as (_, client), own_worker(world, client):
        handle = await client.start_workflow(
            SignedOutSessionsWorkflow.run,
            SignedOutSessions(shard="0"),
            id=f"{WORKFLOW_ID_PREFIX}0",
            task_queue=world.stack.settings.temporal_task_queue,
        )
        now = int(time.time())
        expired = [session_hash(f"expired-{n}") for n in range(10)]
        live = [session_hash(f"live-{n}") for n in range(15)]
        # Sessions that expired before the runs roll over, then enough live ones to roll them over.
        for hashed in expired:
            sign_out = SignOut(session_hash=hashed, expires_at=now - 2 * CLOCK_SKEW_SECONDS)
            await handle.execute_update(SignedOutSessionsWorkflow.end_session, sign_out)
        for hashed in live:
            sign_out = SignOut(session_hash=hashed, expires_at=now + 3600)
            await handle.execute_update(SignedOutSessionsWorkflow.end_session, sign_out)
        answers = {h: await handle.query(SignedOutSessionsWorkflow.has_ended, h) for h in expired + live}
        runs = [e async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
        await handle.terminate("test over")
    assert len(runs) >= 3, f"expected several runs, got {len(runs)}"
    assert [h for h in live if not answers[h]] == []
    assert [h for h in expired if answers[h]] == []
