"""Signing in to the backstage over HTTP, through the stand-in's OAuth 2.0 provider."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.harness import User, World

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(world: World) -> httpx.AsyncClient:
    """A cookie-keeping HTTP client for the backstage, closed with the world."""
    client = httpx.AsyncClient(base_url=world.stack.api_url, timeout=30)
    world._clients.append(client)
    return client


async def consent(world: World, client: httpx.AsyncClient, user: User, next_path: str = "/backstage") -> str:
    """The authorization code flow over HTTP up to Mattermost's redirect back: `client` starts
    signing in, `user` allows the app on the stand-in's consent page; the callback URL (its
    code and state) is returned, not yet visited."""
    start = await client.get("/backstage/login/start", params={"next": next_path})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(f"{world.standin.url}/oauth/authorize?")
    page = await client.get(authorize)
    assert page.status_code == 200
    assert "Allow" in page.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    allowed = await client.post(
        f"{world.standin.url}/oauth/authorize",
        data={**query, "username": user.username, "allow": "1"},
    )
    assert allowed.status_code == 302, allowed.text
    callback = allowed.headers["location"]
    assert callback.startswith(f"{world.stack.api_url}/backstage/oauth/callback?")
    return str(callback)


async def sign_in(world: World, user: User, next_path: str = "/backstage") -> httpx.AsyncClient:
    """A browser-like client signed in as `user`: the whole authorization code flow over HTTP."""
    client = browser(world)
    signed_in = await client.get(await consent(world, client, user, next_path))
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == next_path
    return client


def csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, "the page has no CSRF token"
    return html.unescape(found[1])


def text(page: httpx.Response) -> str:
    """The page's text with tags removed and entities decoded (for plain assertions); a line
    break opportunity (`<wbr>`) is nothing."""
    words = re.sub(r"<[^>]+>", " ", page.text.replace("<wbr>", ""))
    return html.unescape(re.sub(r"\s+", " ", words))
