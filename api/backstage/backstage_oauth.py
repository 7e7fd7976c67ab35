"""Signing in through Mattermost's OAuth 2.0 provider (authorization code grant).

The browser goes to `<MATTERMOST_PUBLIC_URL or MATTERMOST_URL>/oauth/authorize`; Mattermost
redirects back to `<PUBLIC_URL>/backstage/oauth/callback` with a code, which this process
trades for an access token at `<MATTERMOST_URL>/oauth/access_token` with the app's secret.
The token is what the REST API would be given as `Authorization: Bearer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from service.errors import ServiceError
from settings import Settings

CALLBACK_PATH = "/backstage/oauth/callback"


@dataclass(frozen=True)
class Grant:
    access_token: str
    expires_in: float | None


def configured(settings: Settings) -> bool:
    return bool(settings.mattermost_oauth_client_id and settings.mattermost_oauth_client_secret)


def callback_url(settings: Settings) -> str:
    return settings.api_public_url + CALLBACK_PATH


def authorize_url(settings: Settings, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.mattermost_oauth_client_id,
            "redirect_uri": callback_url(settings),
            "state": state,
        }
    )
    return f"{settings.mattermost_browser_url}/oauth/authorize?{query}"


async def exchange_code(settings: Settings, code: str) -> Grant:
    """Trade the code for an access token; a refusal is a 401 saying to sign in again."""
    form = {
        "grant_type": "authorization_code",
        "client_id": settings.mattermost_oauth_client_id,
        "client_secret": settings.mattermost_oauth_client_secret,
        "code": code,
        "redirect_uri": callback_url(settings),
    }
    try:
        async with httpx.AsyncClient(timeout=settings.mattermost_request_timeout) as client:
            response = await client.post(f"{settings.mattermost_url}/oauth/access_token", data=form)
    except httpx.HTTPError as error:
        raise ServiceError(
            503, "mattermost_unavailable", f"Mattermost could not be reached to sign you in: {error}."
        ) from None
    if response.status_code >= 500:
        raise ServiceError(
            503, "mattermost_unavailable", "Mattermost could not sign you in right now; try again shortly."
        )
    body: Any = _json(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        said = body.get("message") if isinstance(body, dict) else None
        raise ServiceError(
            401,
            "unauthorized",
            f"Mattermost did not sign you in ({said or response.status_code}). Sign in again.",
        )
    expires = body.get("expires_in")
    return Grant(access_token=token, expires_in=float(expires) if isinstance(expires, int | float) else None)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
