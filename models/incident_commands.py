"""Inputs of the incident workflow's updates: one model per command.

Stage and item positions are 0-based here (the slash commands count from 1 and
convert). Every command carries the `Actor` and the Mattermost facts the workflow's
validators need, because validators cannot do I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.common import Actor, ChannelFact, Model, Trimmed, UserFact
from models.incident import STATUS_MESSAGE_MAX, ItemState, UpdateStatus
from models.playbook import COMMAND_MAX, DESCRIPTION_MAX, ITEM_TITLE_MAX

Position = Field(ge=0)


class IncidentCommand(Model):
    actor: Actor


class ChangeStage(IncidentCommand):
    # Either a direction or an absolute stage position.
    direction: Literal["next", "prev"] | None = None
    to_stage: int | None = Field(default=None, ge=0)
    force: bool = False


class ItemRef(IncidentCommand):
    stage: int = Position
    item: int = Position


class SetItemState(ItemRef):
    # "toggle" flips done <-> open (what `/incident check` does).
    state: ItemState | Literal["toggle"]


class AssignItem(ItemRef):
    assignee: UserFact | None  # None unassigns


class AddItem(IncidentCommand):
    stage: int = Position
    title: Trimmed = Field(min_length=1, max_length=ITEM_TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    command: Trimmed = Field(default="", max_length=COMMAND_MAX)
    position: int | None = Field(default=None, ge=0)  # None: at the end


class EditItem(ItemRef):
    title: Trimmed | None = Field(default=None, min_length=1, max_length=ITEM_TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    command: Trimmed | None = Field(default=None, max_length=COMMAND_MAX)


class RemoveItem(ItemRef):
    pass


class MoveItem(ItemRef):
    to_position: int = Position


class RunItemCommand(ItemRef):
    pass


class ChangeCommander(IncidentCommand):
    commander: UserFact


class InviteMembers(IncidentCommand):
    users: list[UserFact] = Field(min_length=1, max_length=100)


class PostStatusUpdate(IncidentCommand):
    message: Trimmed = Field(min_length=1, max_length=STATUS_MESSAGE_MAX)
    status: UpdateStatus | None = None


class SetReminder(IncidentCommand):
    seconds: int = Field(ge=0)  # 0 turns the reminder off


class SnoozeReminder(IncidentCommand):
    seconds: int = Field(gt=0)


class Announce(IncidentCommand):
    channels: list[ChannelFact] = Field(min_length=1, max_length=20)


class EndIncident(IncidentCommand):
    pass


class RestartIncident(IncidentCommand):
    pass


class CommandResult(Model):
    """What an accepted command did, as one sentence for the person who asked."""

    message: str
