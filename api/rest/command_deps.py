"""What every incident action route shares: the caller, and sending one command.

A route parses its body (the same fields model the workflow command is built from),
names its action, and hands over; `act` locates the incident, adds the caller's facts,
scopes the idempotency key to the caller and the action, and sends one update.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Path
from pydantic import Field

from api.dependencies import current_user, services
from api.http_errors import error_responses
from models.common import Actor, Model
from models.incident_commands import IncidentCommand, RequestKey
from models.incident_views import IncidentView
from service import incident_access as incidents
from service.container import Services
from service.idempotency import scoped

IncidentId = Annotated[str, Path(description="Incident id (the part after `incident-` in the workflow id)")]
StageIndex = Annotated[int, Path(ge=0, le=10_000, description="0-based stage position")]
ItemIndex = Annotated[int, Path(ge=0, le=10_000, description="0-based item position within the stage")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="A resent request with the same key applies once; keys are yours alone and per action. "
        "Reusing a key for a different request is refused (422).",
    ),
]
ACTION_ERRORS = error_responses(403, 404, 409, 422)


class CommandResponse(Model):
    message: str = Field(description="What happened, in one sentence")
    incident: IncidentView


@dataclass
class Caller:
    """Who calls an action, with the services and the request's idempotency key."""

    actor: Actor
    svc: Services
    key: str | None

    def request(self, action: str, incident_id: str, body: Any) -> RequestKey | None:
        return scoped(self.actor.user_id, f"{action}:{incident_id}", self.key, body)


async def caller(
    key: IdempotencyKey = None, actor: Actor = Depends(current_user), svc: Services = Depends(services)
) -> Caller:
    return Caller(actor=actor, svc=svc, key=key)


async def act(
    who: Caller,
    incident_id: str,
    update: Any,
    body: Any,
    build: Callable[
        [Actor, RequestKey | None, incidents.IncidentLocation], IncidentCommand | Awaitable[IncidentCommand]
    ],
) -> CommandResponse:
    """Send one command built from the caller's facts; the answer is the incident after it.

    `build` may gather more facts first (the people or channels a command names).
    """
    place = await incidents.locate(who.svc, incident_id)
    actor = await incidents.actor_at(who.svc, who.actor, place)
    request = who.request(update.__name__, incident_id, body)
    command = build(actor, request, place)
    if inspect.isawaitable(command):
        command = await command
    result = await incidents.send(who.svc, place, update, command)
    return CommandResponse(message=result.message, incident=result.incident)
