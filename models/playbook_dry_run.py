"""Dry-run a playbook change: a proposed spec tried against the playbook's past incidents.

`DryRunRequest` is what the editor sends (`POST /api/v1/playbooks/{id}/dry-run`, the backstage's
*Try against past incidents*); `PlaybookDryRun` the answer: for each of the playbook's last ended
incidents, what would have gone otherwise had it been run with the proposed playbook
(`workflows.incident_dry_run` replays its recorded commands through the rules; nothing is written).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.common import Model
from models.incident import ItemState
from models.playbook import PlaybookSpec

DRY_RUN_DEFAULT = 10
DRY_RUN_MAX = 50


class DryRunRequest(Model):
    spec: PlaybookSpec = Field(description="The proposed playbook, as an edit would send it")
    last: int = Field(
        default=DRY_RUN_DEFAULT,
        ge=1,
        le=DRY_RUN_MAX,
        description="How many of the playbook's most recently ended incidents to replay",
    )


class RefusedCommand(Model):
    """A command the recorded incident took that the rules refuse with the proposed playbook."""

    at: datetime
    command: str = Field(description="The command's name (`set_item_state`, `change_stage`, ...)")
    target: str = Field(default="", description="What it was given for, in the recorded incident (stage, step)")
    actor_id: str
    actor: str = Field(default="", description="The actor's username, as recorded")
    reason: str = Field(description="Why it would be refused: the rules' refusal")


class OpenStep(Model):
    """A step not done when the incident's history ends (open, in progress, or skipped)."""

    stage: str
    item: str
    state: ItemState


class Count(Model):
    recorded: int
    proposed: int


class RuleFiring(Model):
    at: datetime
    rule: str
    summary: str


class RuleFirings(Model):
    recorded: list[RuleFiring] = Field(default_factory=list)
    proposed: list[RuleFiring] = Field(default_factory=list)


class OpenSteps(Model):
    recorded: list[OpenStep] = Field(default_factory=list)
    proposed: list[OpenStep] = Field(default_factory=list)


class Stages(Model):
    recorded: list[str] = Field(default_factory=list)
    proposed: list[str] = Field(default_factory=list)


class IncidentDryRun(Model):
    """One past incident, as recorded and as the proposed playbook would have run it."""

    incident_id: str
    name: str
    ended_at: datetime | None = None
    start_refused: str | None = Field(default=None, description="The proposed playbook cannot start this incident")
    refused: list[RefusedCommand] = Field(default_factory=list)
    steps_never_done: OpenSteps = Field(default_factory=OpenSteps)
    stages_never_reached: Stages = Field(default_factory=Stages)
    reminders: Count = Field(description="Status update reminders sent")
    overdue_nudges: Count = Field(description="Open steps found past their due time (their people told)")
    rule_firings: RuleFirings = Field(default_factory=RuleFirings)
    differences: bool
    what_differs: list[str] = Field(default_factory=list, description="Each difference, in words")


class DryRunSummary(Model):
    incidents: int
    with_differences: int
    refused_commands: int


class PlaybookDryRun(Model):
    playbook_id: str
    version: int = Field(description="The playbook's version the proposal was compared with")
    last: int
    incidents: list[IncidentDryRun] = Field(description="Newest ended first")
    summary: DryRunSummary
