"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.dependencies import services
from mattermost_client.gateway import MattermostFailure
from service.container import Services

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Temporal is reachable; Mattermost accepts the bot's token and its routes answer",
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
)
async def readyz(svc: Services = Depends(services)) -> JSONResponse:
    temporal, mattermost = await asyncio.gather(_check_temporal(svc), _check_mattermost(svc))
    checks = {"temporal": temporal, "mattermost": mattermost}
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(status_code=200 if ready else 503, content=body.model_dump())


async def _check_temporal(svc: Services) -> str:
    try:
        await asyncio.wait_for(svc.temporal.service_client.check_health(), timeout=5)
    except Exception as error:  # any failure means "not ready", with its reason
        return f"unreachable: {type(error).__name__}: {error}"[:300]
    return "ok"


async def _check_mattermost(svc: Services) -> str:
    try:
        await asyncio.wait_for(svc.mattermost.check_ready(), timeout=5)
    except TimeoutError:
        return "unreachable: no answer within 5 s"
    except MattermostFailure as failure:
        return f"{'unreachable' if failure.retryable else 'refused'}: {failure.message}"[:300]
    return "ok"
