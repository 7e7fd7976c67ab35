"""What every backstage page shares: the signed-in visitor, forms, CSRF and rendering.

The visitor is resolved exactly as a REST call is: the session's Mattermost token goes
through `MattermostFacts.caller_for_token`, and from there every page calls the same service
functions the REST routes call (`service/`), so a person sees and may do exactly what the
REST API allows them, and nothing else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request, Response
from fastapi.templating import Jinja2Templates

from api.backstage import backstage_session as cookies
from api.dependencies import services
from models.common import Actor
from service import integrations, session_sign_outs
from service.container import Services
from service.errors import ServiceError
from service.ttl_cache import TTLCache
from workflows.incident_messages import format_duration

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# Teams per token, so the navigation does not ask Mattermost on every page.
_teams: TTLCache[str, list[dict[str, Any]]] = TTLCache(ttl=30, max_entries=10_000)


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class Visitor:
    """The signed-in person, as the REST API would resolve them."""

    actor: Actor
    session: cookies.Session
    svc: Services
    request: Request
    # A posted form's fields: the last value of each, and every value (a multiple choice).
    form: dict[str, str] = field(default_factory=dict)
    form_lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def secure(self) -> bool:
        return secure_cookies(self.svc)

    async def teams(self) -> list[dict[str, Any]]:
        async def load() -> list[dict[str, Any]]:
            found = await self.svc.mattermost.teams_for_token(self.session.token)
            return sorted(found, key=lambda t: str(t.get("display_name", "")).casefold())

        return await _teams.get_or_load(self.session.token, load)


def secure_cookies(svc: Services) -> bool:
    return svc.settings.api_public_url.startswith("https://")


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def current_session(request: Request, svc: Services = Depends(services)) -> cookies.Session:
    """The visitor's session; without one, or once it was signed out (in any API process), a
    redirect to sign in (then back here)."""
    found = cookies.read_session(request, svc.settings.signing_secret)
    if found is None or await session_sign_outs.has_ended(svc, found.session_id):
        raise SignInRequired(here(request) if request.method == "GET" else cookies.PATH)
    return found


async def visitor(
    request: Request, session: cookies.Session = Depends(current_session), svc: Services = Depends(services)
) -> Visitor:
    """The signed-in person, resolved from the session's Mattermost token."""
    actor = await svc.facts.caller_for_token(session.token)
    return Visitor(actor=actor, session=session, svc=svc, request=request)


async def posted_form(request: Request, session: cookies.Session) -> list[tuple[str, str]]:
    """A state-changing form's fields, in order, once its CSRF token matches the session's."""
    body = (await request.body()).decode("utf-8", "replace")
    form = parse_qsl(body, keep_blank_values=True)
    if not cookies.csrf_ok(session, dict(form).get("csrf_token")):
        raise ServiceError(
            403,
            "forbidden",
            "This form is not from your current session (it may be old, or from another site). "
            "Reload the page and try again.",
        )
    return form


async def form_session(request: Request, session: cookies.Session = Depends(current_session)) -> cookies.Session:
    """The session of a state-changing form that needs no Mattermost call (signing out)."""
    await posted_form(request, session)
    return session


async def form_visitor(request: Request, who: Visitor = Depends(visitor)) -> Visitor:
    """The visitor of a state-changing form, whose CSRF token must match the session's."""
    fields = await posted_form(request, who.session)
    who.form = dict(fields)
    for name, value in fields:
        who.form_lists.setdefault(name, []).append(value)
    return who


def request_key() -> str:
    """A key per rendered form: a form sent twice (double click, resend) applies once."""
    return secrets.token_urlsafe(12)


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def clock(value: datetime | None) -> str:
    """A time of today as the clock shows it; another day's with its date."""
    if value is not None and value.astimezone(UTC).date() == datetime.now(UTC).date():
        return value.astimezone(UTC).strftime("%H:%M UTC")
    return when(value)


def duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


def query_with(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (for sort and paging links)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params)


def plain(text: str) -> str:
    """Timeline summaries are written for Mattermost (markdown); the page shows them plain."""
    return text.replace("**", "").replace("`", "")


def http_link(value: object) -> bool:
    """A URL that may become a link on a page: http or https, nothing else (no `javascript:`)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


templates.env.filters["when"] = when
templates.env.filters["clock"] = clock
templates.env.filters["plain"] = plain
templates.env.filters["duration"] = duration
templates.env.globals["request_key"] = request_key
templates.env.tests["http_link"] = http_link


async def render(who: Visitor, name: str, status_code: int = 200, **context: Any) -> Response:
    flash = cookies.read_flash(who.request, who.svc.signer)
    response = templates.TemplateResponse(
        who.request,
        name,
        {
            "me": who.actor,
            "csrf": who.session.csrf,
            "teams": await who.teams(),
            "query_with": lambda **c: query_with(who.request, **c),
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )
    if cookies.FLASH_COOKIE in who.request.cookies:
        cookies.clear_flash(response, secure=who.secure)
    return response


async def render_in_team(who: Visitor, name: str, team_id: str, status_code: int = 200, **context: Any) -> Response:
    """A page of one team's (its header names the team; a team the visitor is not in shows as "Team",
    and links to the team's integrations for those who manage them)."""
    teams = await who.teams()
    team = next((t for t in teams if t.get("id") == team_id), {"id": team_id, "display_name": "Team", "name": ""})
    if "manages_integrations" not in context:
        context["manages_integrations"] = await integrations.may_manage(who.svc, who.actor, team_id)
    return await render(who, name, status_code, team=team, team_id=team_id, **context)


def redirect(who: Visitor, url: str, message: str | None = None, kind: str = "info") -> Response:
    response = Response(status_code=303, headers={"Location": url})
    if message:
        cookies.set_flash(response, who.svc.signer, message, kind=kind, secure=who.secure)
    return response
