"""`/api/v1/teams/{team_id}/severities`: a team's severity levels. Members read; team admins
replace them; others get 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.dependencies import IdempotencyKey, current_user, services
from api.http_errors import error_responses
from models.common import Actor, MattermostId
from models.severity import SeverityLevelsSpec, TeamSeverities
from service import team_configuration
from service.container import Services
from service.idempotency import scoped

router = APIRouter(prefix="/api/v1/teams", tags=["severities"], responses=error_responses(401, 404, 503))

TeamId = Annotated[MattermostId, Path(description="The team's Mattermost id")]
Caller = Annotated[Actor, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]


@router.get("/{team_id}/severities", response_model=TeamSeverities, responses=error_responses(422))
async def get_severities(team_id: TeamId, actor: Caller, svc: Svc) -> TeamSeverities:
    """The team's severity levels, most severe first (`level` 1). A team whose admins never changed
    them has SEV1 to SEV4 (`version` 0)."""
    return await team_configuration.team_severities(svc, actor, team_id)


@router.put("/{team_id}/severities", response_model=TeamSeverities, responses=error_responses(403, 409, 422))
async def set_severities(
    team_id: TeamId, body: SeverityLevelsSpec, actor: Caller, svc: Svc, idempotency_key: IdempotencyKey = None
) -> TeamSeverities:
    """Replace the team's levels (team admins): 2 to 10, most severe first; each level's number is
    its place. With `version`, the change is refused (409) if someone changed them since.

    Incidents keep the level number and the name they were given: renaming a level changes what
    lists, filters and statistics call it, not what incidents recorded. An incident whose level
    no longer exists keeps it (its number and name)."""
    request_id = scoped(actor.user_id, f"severities:{team_id}", idempotency_key).id if idempotency_key else None
    return await team_configuration.set_severity_levels(svc, actor, team_id, body, request_id=request_id)
