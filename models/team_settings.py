"""A team's settings: what its admins decide for every incident of the team (its severity levels).

One `TeamSettingsWorkflow` per team (`team_settings_workflow_id`), started by the first change
(update-with-start): a team whose admins never changed anything has none, and reads the
defaults. Its history is the audit log of every change; its memo holds the settings, so the
service reads them with `describe` (no worker needed, the same moment the change is answered).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.common import Actor, MattermostId, Model
from models.severity import DEFAULT_LEVELS, SeverityLevel, TeamSeverities


def team_settings_workflow_id(team_id: str) -> str:
    return f"team-settings-{team_id}"


class TeamSettings(Model):
    """The state of a team's `TeamSettingsWorkflow`, carried across continue-as-new."""

    team_id: MattermostId
    severity_levels: list[SeverityLevel] = Field(default_factory=lambda: list(DEFAULT_LEVELS))
    # How many changes were made (0: the defaults, never changed).
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None

    def severities(self) -> TeamSeverities:
        return TeamSeverities(
            team_id=self.team_id,
            levels=self.severity_levels,
            version=self.version,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
        )


class SetSeverityLevels(Model):
    """A team admin replaces the team's levels (the service checked the actor is one)."""

    actor: Actor
    is_team_admin: bool = False
    levels: list[SeverityLevel]
    # The version the admin's edit started from (None: whatever it is now).
    expected_version: int | None = None
    at: datetime
