"""Authentication of REST calls: a Mattermost token, resolved to the person it belongs to."""

from __future__ import annotations

from fastapi import Depends, Header

from api.errors import unauthorized
from api.services import Services, services
from models.common import Actor


async def bearer_token(
    authorization: str | None = Header(default=None, description="Bearer <Mattermost personal access token>"),
) -> str:
    if not authorization:
        raise unauthorized("Authentication required: send Authorization: Bearer <Mattermost personal access token>.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Malformed Authorization header: use Authorization: Bearer <token>.")
    return token


async def current_user(token: str = Depends(bearer_token), svc: Services = Depends(services)) -> Actor:
    """The caller, resolved with Mattermost's `GET /api/v4/users/me` (cached briefly)."""
    return await svc.facts.caller_for_token(token)
