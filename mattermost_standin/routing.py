"""Mattermost's routing rules: per-parameter patterns, ``me``, and a JSON 404 for the rest.

A small router rather than FastAPI's: Mattermost's router (gorilla/mux) constrains
each path parameter with its own pattern (ids are ``[A-Za-z0-9]+``, channel names
also allow ``-`` and ``_``), and answers every unmatched method or path with its
JSON ``api.context.404.app_error`` instead of 405 or FastAPI's ``{"detail": ...}``.
The same path templates, with any segment for each ``{param}``, describe faults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from mattermost_standin import errors
from mattermost_standin.store import Record, State, Store

if TYPE_CHECKING:
    from mattermost_standin.faults import Faults
    from mattermost_standin.integrations import Outgoing

_PARAM = re.compile(r"\{([a-z_]+)\}")
_PARAM_PATTERNS = {
    "channel_name": r"[A-Za-z0-9_-]+",
    "username": r"[A-Za-z0-9._-]+",
    "team_name": r"[A-Za-z0-9_-]+",
    "role_name": r"[a-z0-9_]+",
}
_ID_PATTERN = r"[A-Za-z0-9]+"


def compile_template(template: str, *, any_segment: bool = False) -> re.Pattern[str]:
    """``/api/v4/users/{user_id}`` as a regex; ``any_segment`` lets each parameter match any segment."""
    pattern, position = "", 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[position : match.start()])
        name = match.group(1)
        segment = r"[^/]+" if any_segment else _PARAM_PATTERNS.get(name, _ID_PATTERN)
        pattern += f"(?P<{name}>{segment})"
        position = match.end()
    pattern += re.escape(template[position:])
    return re.compile(pattern)


@dataclass
class Context:
    """What handlers need from the running stand-in."""

    store: Store
    outgoing: Outgoing
    faults: Faults
    integration_timeout: float
    site_url: Callable[[], str]

    @property
    def state(self) -> State:
        return self.store.state


@dataclass
class Call:
    """One request being handled: its parameters, its session user and the stand-in it reached."""

    request: Request
    params: dict[str, str]
    context: Context
    session_user: Record | None

    @property
    def state(self) -> State:
        return self.context.state

    @property
    def store(self) -> Store:
        return self.context.store

    @property
    def user(self) -> Record:
        if self.session_user is None:
            raise errors.session_expired()
        return self.session_user

    def param_user_id(self, name: str = "user_id") -> str:
        """The user id path parameter, with ``me`` meaning the session's user."""
        value = self.params[name]
        return self.user["id"] if value == "me" else value

    async def _json(self, refused: Callable[[str], errors.AppError]) -> Any:
        try:
            return json.loads(await self.request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise refused(str(exc)) from None

    async def body_object(self, name: str) -> dict[str, Any]:
        body = await self._json(lambda detail: errors.invalid_body_param(name, detail))
        if not isinstance(body, dict):
            raise errors.invalid_body_param(name, "expected a JSON object")
        return body

    async def body_string_fields(self, name: str, keys: tuple[str, ...]) -> dict[str, str]:
        """The body as a JSON object's ``keys``, each a string ("" when absent); a value of another
        type is refused as an invalid ``name``."""
        body = await self.body_object(name)
        fields: dict[str, str] = {}
        for key in keys:
            value = body.get(key, "")
            if not isinstance(value, str):
                raise errors.invalid_body_param(name, f"{key} must be a string")
            fields[key] = value
        return fields

    async def body_strings(self, name: str) -> list[str]:
        body = await self._json(lambda detail: errors.invalid_body_param(name, detail))
        if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
            raise errors.invalid_body_param(name, "expected a JSON array of strings")
        return body

    async def body_unique_strings(self) -> list[str]:
        """The body as ``model.NonSortedArrayFromJSON`` reads it: a JSON array of strings, without its
        duplicates (the first of each kept, in order); ``null`` is an empty list; anything else is
        refused with 400 ``api.payload.parse.error``."""
        body = await self._json(errors.payload_parse_error)
        if body is None:
            return []
        if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
            raise errors.payload_parse_error("expected a JSON array of strings")
        return list(dict.fromkeys(body))

    def query_int(self, name: str, default: int, maximum: int | None = None) -> int:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise errors.invalid_url_param(name) from None
        if value < 0:
            raise errors.invalid_url_param(name)
        return min(value, maximum) if maximum is not None else value

    def page(self, items: list[Any]) -> list[Any]:
        """The ``page``/``per_page`` slice of ``items`` (60 per page by default, at most 200)."""
        per_page = self.query_int("per_page", 60, 200)
        start = self.query_int("page", 0) * per_page
        return items[start : start + per_page]


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, template: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            route = Route(method, compile_template(template), handler, authenticated)
            self.routes.append(route)
            return handler

        return register

    def get(self, template: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
        return self.route("GET", template, authenticated=authenticated)

    def post(self, template: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
        return self.route("POST", template, authenticated=authenticated)

    def put(self, template: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
        return self.route("PUT", template, authenticated=authenticated)

    def delete(self, template: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
        return self.route("DELETE", template, authenticated=authenticated)

    def include(self, other: Router) -> None:
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.fullmatch(path)
            if found is not None:
                return route, found.groupdict()
        return None


def json_response(content: Any, status: int = 200) -> Response:
    """JSON with ``Content-Type: application/json`` exactly: the driver parses nothing else."""
    return JSONResponse(content, status_code=status)


def status_ok() -> Response:
    return json_response({"status": "OK"})
