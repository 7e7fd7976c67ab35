"""Mattermost as an OAuth 2.0 provider: consent, one-use codes, the app's secret, bearer tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from mattermost_standin import StandIn
from tests.standin.standin_support import Connect

CALLBACK = "http://127.0.0.1:9/backstage/oauth/callback"


def _app(standin: StandIn, world: dict[str, Any]) -> dict[str, Any]:
    return standin.register_oauth_app(
        "Backstage", callback_urls=[CALLBACK], creator_id=world["users"]["alice"]["user"]["id"]
    )


async def _code(http: httpx.AsyncClient, app: dict[str, Any], username: str, state: str = "s1") -> str:
    query = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": state}
    consent = await http.get("/oauth/authorize", params=query)
    assert consent.status_code == 200
    assert "Allow" in consent.text
    allowed = await http.post("/oauth/authorize", data={**query, "username": username, "allow": "1"})
    assert allowed.status_code == 302
    back = urlsplit(allowed.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    params = parse_qs(back.query)
    assert params["state"] == [state]
    return params["code"][0]


async def test_the_code_buys_a_token_the_v4_api_accepts_once(
    standin: StandIn, world: dict[str, Any], connect: Connect
) -> None:
    app = _app(standin, world)
    async with httpx.AsyncClient(base_url=standin.url) as http:
        code = await _code(http, app, "bob")
        form = {
            "grant_type": "authorization_code",
            "client_id": app["id"],
            "client_secret": app["client_secret"],
            "code": code,
            "redirect_uri": CALLBACK,
        }
        token = await http.post("/oauth/access_token", data=form)
        assert token.status_code == 200
        body = token.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] > 0
        assert body["refresh_token"]
        again = await http.post("/oauth/access_token", data=form)
        assert again.status_code == 400
        assert again.json()["id"] == "api.oauth.get_access_token.bad_grant.app_error"
    me = await connect(standin, body["access_token"]).users.get_user("me")
    assert me["username"] == "bob"


async def test_wrong_redirect_secret_or_denial_gets_no_token(standin: StandIn, world: dict[str, Any]) -> None:
    app = _app(standin, world)
    async with httpx.AsyncClient(base_url=standin.url) as http:
        elsewhere = await http.get(
            "/oauth/authorize",
            params={"response_type": "code", "client_id": app["id"], "redirect_uri": "http://evil.example/cb"},
        )
        assert elsewhere.status_code == 400
        query = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s2"}
        denied = await http.post("/oauth/authorize", data={**query, "username": "bob", "allow": "0"})
        assert "error=access_denied" in denied.headers["location"]
        nobody = await http.post("/oauth/authorize", data={**query, "username": "no-such-user", "allow": "1"})
        assert nobody.status_code == 400
        code = await _code(http, app, "carol")
        stolen = await http.post(
            "/oauth/access_token",
            data={
                "grant_type": "authorization_code",
                "client_id": app["id"],
                "client_secret": "wrong",
                "code": code,
                "redirect_uri": CALLBACK,
            },
        )
        assert stolen.status_code == 403


async def test_the_consent_page_lists_who_can_sign_in(standin: StandIn, world: dict[str, Any]) -> None:
    """The stand-in has no web sign-in: its consent page names the people one may sign in as."""
    app = _app(standin, world)
    query = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s3"}
    async with httpx.AsyncClient(base_url=standin.url) as http:
        consent = await http.get("/oauth/authorize", params=query)
    assert consent.status_code == 200
    for username, name in (("alice", "Alice Anderson"), ("bob", "Bob Brown"), ("carol", "Carol Clark")):
        assert f"<li><strong>{username}</strong> ({name})</li>" in consent.text
        assert f'<option value="{username}">' in consent.text
    assert "incident-bot" not in consent.text
