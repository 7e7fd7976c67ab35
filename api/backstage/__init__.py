"""The backstage: incidents, playbooks, statistics and integrations in the browser, signed in through Mattermost.

Served by the API process under `/backstage` (pages) and `/backstage/static` (CSS, JS and
Chart.js, shipped with the app: nothing comes from a CDN). Pages call the same functions
as the REST routes with the Actor of the session's Mattermost token; errors read as the
REST API's do (same status, same sentence), as a page instead of JSON.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.backstage import (
    auth_pages,
    command_forms,
    incident_pages,
    integration_pages,
    playbook_pages,
    retrospective_pages,
    schedule_pages,
    severity_pages,
    start_pages,
    stats_pages,
    todo_pages,
    webhook_pages,
)
from api.backstage import backstage_session as cookies
from api.backstage.backstage_common import HERE, SignInRequired, secure_cookies, templates
from api.backstage.page_headers import BackstageHeaders

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
PREFIX = "/backstage"


def _as_page(original: Handler) -> Handler:
    """The API's error answer, for backstage paths rendered as a page (sign-in for a 401)."""

    async def handle(request: Request, error: Any) -> Response:
        answered = original(request, error)
        response = await answered if inspect.isawaitable(answered) else answered
        if not request.url.path.startswith(PREFIX):
            return response
        if response.status_code == 401:
            target = RedirectResponse(f"{PREFIX}/login?next={quote(PREFIX)}", status_code=303)
            cookies.end_session(target, secure=secure_cookies(request.app.state.services))
            return target
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            body = {}
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "status": response.status_code,
                "code": body.get("error", "error"),
                "message": body.get("message", "Something went wrong."),
                "fields": body.get("fields", {}),
            },
            status_code=response.status_code,
            headers={k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "allow")},
        )

    return handle


def install(app: FastAPI) -> None:
    for router in (
        auth_pages.router,
        start_pages.router,
        incident_pages.router,
        retrospective_pages.router,
        command_forms.router,
        stats_pages.router,
        playbook_pages.router,
        integration_pages.router,
        schedule_pages.router,
        severity_pages.router,
        todo_pages.router,
        *webhook_pages.routers,
    ):
        app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="backstage-static")
    # Added after the request guard, so it wraps it: the guard's refusals carry the headers too.
    app.add_middleware(BackstageHeaders)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_: Request, error: SignInRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/login?next={quote(error.next_path)}", status_code=303)

    for kind, handler in list(app.exception_handlers.items()):
        if kind is not SignInRequired:
            app.exception_handlers[kind] = _as_page(handler)
