"""The FastAPI application: wiring only. Routes live in `api/routes` and `api/slash`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import backstage, openapi_doc
from api import http_errors as errors
from api.request_guard import RequestGuard
from api.rest import (
    command_routes,
    integration_routes,
    me_routes,
    schedule_routes,
    severity_routes,
    webhook_routes,
)
from api.rest import health_routes as health
from api.rest import incident_routes as incidents
from api.rest import playbook_routes as playbooks
from api.rest import stats_routes as stats
from api.slash import interactive_callbacks as callbacks
from api.slash import slash_endpoint as slash
from mattermost_client.gateway import Mattermost
from service.container import Services
from service.mattermost_facts import MattermostFacts
from settings import Settings, require
from signing import Signer
from temporal_connection import connect

DESCRIPTION = """\
Incident response for Mattermost, with every incident a durable Temporal workflow.

Authenticate every `/api/v1` call with `Authorization: Bearer <Mattermost token>`
(a personal access token or session token). Errors share one shape:
`{"error": code, "message": sentence, "fields": {field: problem}}`.
"""


def create_app(settings: Settings, *, temporal: Client | None = None) -> FastAPI:
    """Build the app. Tests pass an existing Temporal client; processes connect lazily."""
    require(settings, "mattermost_url", "mattermost_bot_token", "mattermost_slash_token", "signing_secret")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = temporal or await connect(settings, lazy=True)
        mattermost = Mattermost(
            settings.mattermost_url,
            settings.mattermost_bot_token,
            timeout=settings.mattermost_request_timeout,
        )
        app.state.services = Services(
            settings=settings,
            temporal=client,
            mattermost=mattermost,
            facts=MattermostFacts(mattermost, ttl=settings.auth_cache_seconds),
            signer=Signer(settings.signing_secret),
        )
        try:
            yield
        finally:
            await mattermost.close()

    app = FastAPI(
        title="Incident Response on Temporal",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by openapi_doc from assets shipped with the app, so /docs works offline.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(slash.router)
    app.include_router(callbacks.router)
    app.include_router(playbooks.router)
    app.include_router(incidents.router)
    app.include_router(command_routes.router)
    app.include_router(me_routes.router)
    app.include_router(stats.router)
    app.include_router(integration_routes.router)
    app.include_router(integration_routes.hooks)
    app.include_router(webhook_routes.playbook_router)
    app.include_router(webhook_routes.team_router)
    app.include_router(schedule_routes.router)
    app.include_router(severity_routes.router)
    backstage.install(app)
    openapi_doc.install(app)
    return app
