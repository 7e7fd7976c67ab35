"""What request handlers depend on: the services, the caller (a Mattermost token resolved to its person),
paging parameters, and the rule that "not found" takes as long as found."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import Depends, Header, Path, Query, Request

from models.common import Actor
from service.container import Services
from service.errors import ServiceError, unauthorized
from service.pagination import MAX_PER_PAGE, PageParams


async def services(request: Request) -> Services:
    built: Services = request.app.state.services
    return built


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


async def page_params(
    page: int = Query(0, ge=0, description="0-based page number"),
    per_page: int = Query(50, ge=1, le=MAX_PER_PAGE, description=f"Items per page (1..{MAX_PER_PAGE})"),
    direction: Literal["asc", "desc"] | None = Query(None, description="Sort direction (default depends on sort)"),
) -> PageParams:
    return PageParams(page=page, per_page=per_page, direction=direction)


async def conceal_existence(svc: Services = Depends(services)) -> AsyncIterator[None]:
    """A route dependency: "not found" answers no sooner than an existing incident's would.

    An incident the caller may not see and one that does not exist must be
    indistinguishable, by body, status and timing; an existing one costs a query and a
    few cached facts, so every 404 is held to a floor above that (`NOT_FOUND_FLOOR_SECONDS`).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        yield
    except ServiceError as error:
        if error.status == 404:
            await asyncio.sleep(max(0.0, started + svc.settings.not_found_floor_seconds - loop.time()))
        raise


IncidentId = Annotated[str, Path(description="Incident id (the part after `incident-` in the workflow id)")]
SeverityFilter = Annotated[
    int | None,
    Query(ge=0, le=10, description="Only incidents of this severity level (1 is the most severe; 0: without one)"),
]
FieldFilters = Annotated[
    list[str] | None,
    Query(
        description="Only incidents whose select field has this value: `name=value` (the value in any case); "
        "repeat it for several (all must hold)",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="A resent request with the same key applies once; keys are yours alone and per action. "
        "Reusing a key for a different request is refused (422).",
    ),
]
