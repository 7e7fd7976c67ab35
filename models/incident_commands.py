"""What people ask of an incident: one declaration per command, shared by every caller.

Each command is split in two: the *fields* a person gives (`StatusUpdateFields`, ...),
which are the REST bodies and what slash arguments and dialogs are parsed into, and the
*command* the incident workflow's update takes, which adds the actor, the Mattermost
facts its validators need (validators cannot do I/O), where it was typed and the
request's idempotency key. A limit is declared once, on the fields, so REST, slash
commands, dialogs and the workflow can never disagree about it.

Stage and item positions are 0-based here (the slash commands count from 1 and
convert). A stage of `None` means "the active stage", resolved by the workflow when the
command arrives, so a command cannot be applied to a stage someone else just left.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from models.common import (
    REMINDER_MAX_SECONDS,
    Actor,
    ChannelFact,
    MattermostId,
    Model,
    ReminderSeconds,
    Trimmed,
    UserFact,
)
from models.custom_fields import FieldInput
from models.due_dates import DueWords
from models.incident import NOTE_MAX, STATUS_MESSAGE_MAX, ItemState, UpdateStatus
from models.incident_views import IncidentView
from models.note_times import NoteTime
from models.paging import REASON_MAX, ScheduleFact
from models.playbook import DESCRIPTION_MAX, ITEM_TITLE_MAX, SlashCommandText
from models.retrospective import DeclineReason, RetrospectiveText
from models.severity import SEVERITY_LEVELS_MAX, SeverityLevel, SeverityText

Position = Field(ge=0, le=10_000)
SNOOZE_MAX_SECONDS = 7 * 86400
REQUEST_ID_MAX = 256


class RequestKey(Model):
    """A caller's idempotency key, scoped to the caller and the action, and what it was sent with.

    The workflow keeps the keys it applied (across runs), so a resent request returns the
    first answer instead of acting again; the fingerprint lets the API tell a resend from a
    different request that reuses the key.
    """

    id: str = Field(min_length=1, max_length=REQUEST_ID_MAX)
    fingerprint: str = Field(default="", max_length=128)


class IncidentCommand(Model):
    actor: Actor
    # The channel the command was typed in (slash commands, dialogs, buttons): the
    # workflow refuses it unless that is the incident's channel. None for REST calls.
    channel_id: str | None = Field(default=None, max_length=64)
    request: RequestKey | None = None


# ---------------------------------------------------------------------------- fields people give


class StageMove(Model):
    direction: Literal["next", "prev"] | None = None
    stage: int | None = Field(default=None, ge=0, le=10_000, description="Move to this 0-based stage instead")
    force: bool = Field(default=False, description="Move past open items")
    from_stage: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="The 0-based stage this move was decided at (a confirmation names it); "
        "refused if the incident has moved on since",
    )

    @model_validator(mode="after")
    def _one_target(self) -> StageMove:
        if (self.direction is None) == (self.stage is None):
            raise ValueError("give either direction (next or prev) or stage, not both")
        return self


class ItemStateChange(Model):
    state: ItemState


class ItemFields(Model):
    title: Trimmed = Field(min_length=1, max_length=ITEM_TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    command: SlashCommandText = ""
    position: int | None = Field(default=None, ge=0, le=10_000, description="0-based; at the end when left out")


class ItemEditFields(Model):
    title: Trimmed | None = Field(default=None, min_length=1, max_length=ITEM_TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    command: SlashCommandText | None = None


class ItemMove(Model):
    to_position: int = Position


class StatusUpdateFields(Model):
    message: Trimmed = Field(min_length=1, max_length=STATUS_MESSAGE_MAX)
    status: UpdateStatus | None = None


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class NoteFields(Model):
    text: Trimmed = Field(min_length=1, max_length=NOTE_MAX, description="What happened, as the timeline will show it")
    at: Annotated[NoteTime | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description="When it happened, to back-date the note within the incident's time span: an ISO 8601 time "
        "(without an offset: UTC), or a time of day (`14:30`: the most recent one, in your Mattermost time zone, "
        "else UTC). Not before the incident's start, not in the future. Left out (or empty): now.",
    )


class NoteEditFields(Model):
    text: Trimmed = Field(min_length=1, max_length=NOTE_MAX, description="The note's new text")


class ReminderFields(Model):
    seconds: ReminderSeconds = Field(
        description="Interval between reminders; 0 turns them off. At least REMINDER_MIN_SECONDS, "
        f"at most {REMINDER_MAX_SECONDS} (7 days)."
    )


class SnoozeFields(Model):
    seconds: int = Field(gt=0, le=SNOOZE_MAX_SECONDS)


class SeverityFields(Model):
    severity: SeverityText


class FieldValueFields(Model):
    value: FieldInput = Field(
        description="The field's new value: a select's option (any case), a number, text, or a person "
        "(`@username`); `none`, empty or null clears a field that is not required"
    )


# People and channels are named by id in these bodies; the service resolves them to the
# facts the commands carry (`UserFact`, `ChannelFact`; see `models.command_table.Ref`).


class CommanderChange(Model):
    user_id: MattermostId


class MembersBody(Model):
    user_ids: list[MattermostId] = Field(min_length=1, max_length=100)


class AnnounceBody(Model):
    channel_ids: list[MattermostId] = Field(min_length=1, max_length=20)


class AssigneeBody(Model):
    assignee_id: MattermostId | None = Field(description="null unassigns")


class ItemDueFields(Model):
    due: DueWords | None = Field(
        description="A duration from now (`30m`, `2h`, `1d`), a time of day (`14:30`: the next one, in your "
        "Mattermost time zone, else UTC), or `none` (null too) to clear it"
    )


# ---------------------------------------------------------------------------- commands


class ChangeStage(IncidentCommand, StageMove):
    pass


class ItemRef(IncidentCommand):
    stage: int = Position
    item: int = Position


class SetItemState(IncidentCommand):
    # None: the active stage when the command arrives (what `/incident check 2` means).
    stage: int | None = Field(default=None, ge=0, le=10_000)
    item: int = Position
    # "toggle" flips done <-> open (what `/incident check` does).
    state: ItemState | Literal["toggle"]
    # The item's id as the person saw it (a click on the checklist post): refused if the
    # position now holds another item.
    item_id: str | None = Field(default=None, max_length=64)
    # The active stage the person's view showed: refused once the incident has moved on.
    from_stage: int | None = Field(default=None, ge=0, le=10_000)


class AssignItem(ItemRef):
    assignee: UserFact | None  # None unassigns


class AddItem(IncidentCommand, ItemFields):
    stage: int = Position


class EditItem(ItemRef, ItemEditFields):
    pass


class SetItemDue(ItemRef, ItemDueFields):
    """Give an item a due time, change it, or clear it; read at the moment the incident takes it
    (`30m` from then; `14:30` in the actor's time zone, `Actor.time_zone`, else UTC)."""


class RemoveItem(ItemRef):
    pass


class MoveItem(ItemRef, ItemMove):
    pass


class RunItemCommand(ItemRef):
    pass


class ChangeCommander(IncidentCommand):
    commander: UserFact


class InviteMembers(IncidentCommand):
    users: list[UserFact] = Field(min_length=1, max_length=100)


class PostStatusUpdate(IncidentCommand, StatusUpdateFields):
    pass


class AddNote(IncidentCommand, NoteFields):
    pass


EventId = Field(min_length=1, max_length=16, pattern=r"^e[0-9]{1,12}$", description="A timeline event's id (`e12`)")


class NoteRef(IncidentCommand):
    """A note, by the id of its timeline event."""

    note_id: str = EventId


class EditNote(NoteRef, NoteEditFields):
    pass


class DeleteNote(NoteRef):
    pass


class EventRef(IncidentCommand):
    event_id: str = EventId


class StarEvent(EventRef):
    """Star a timeline event as a key moment."""


class UnstarEvent(EventRef):
    """The event is no longer a key moment."""


class SaveRetrospective(IncidentCommand, RetrospectiveText):
    """A new version of the retrospective's text, based on `version` (a stale one is refused)."""


class PublishRetrospective(IncidentCommand):
    """Publish the retrospective: its summary is posted, and its reminders stop."""


class DeclineRetrospective(IncidentCommand, DeclineReason):
    """This incident needs no retrospective: its reminders stop."""


class SetReminder(IncidentCommand, ReminderFields):
    pass


class SnoozeReminder(IncidentCommand, SnoozeFields):
    pass


class SetField(IncidentCommand, FieldValueFields):
    """Set, change or clear one of the incident's custom fields (`models.custom_fields`)."""

    name: str = Field(max_length=64)
    # The person a user field's value names, looked up by the service (by username, or by id):
    # the rule reads the value against it (none found: "there is no user").
    users: list[UserFact] = Field(default_factory=list, max_length=1)


class SetSeverity(IncidentCommand, SeverityFields):
    # The team's levels when the command was sent, which `severity` is read against (facts the
    # service reads from the team's settings; see `CommandSpec.severity_levels`).
    levels: list[SeverityLevel] = Field(default_factory=list, max_length=SEVERITY_LEVELS_MAX)


class Announce(IncidentCommand):
    channels: list[ChannelFact] = Field(min_length=1, max_length=20)


class PageSomeone(IncidentCommand):
    """Page one person, or the people on call in a schedule, now (`models.paging`)."""

    target: UserFact | ScheduleFact
    reason: str = Field(default="", max_length=REASON_MAX)


class PageAnswer(IncidentCommand):
    page_id: str = Field(min_length=1, max_length=64)


class AcknowledgePage(PageAnswer):
    pass


class DeclinePage(PageAnswer):
    pass


class EndIncident(IncidentCommand):
    # Ending asks first: a command with `confirmed=False` is refused with a confirmation
    # request once every other rule passes (the slash command turns that into a dialog).
    confirmed: bool = True


class RestartIncident(IncidentCommand):
    pass


class OpenIncident(Model):
    """Sent with a new incident's start (update-with-start) to receive the start's answer.

    It carries nothing today; it is a model so that fields can be added without breaking
    running incidents."""


class CommandResult(Model):
    """What an accepted command did: a sentence for the person, and the incident after it."""

    message: str
    incident: IncidentView
    # The fingerprint of the request that produced this result (see `RequestKey`).
    fingerprint: str = ""
    # People whose channel membership the command changed (the API forgets cached facts).
    member_ids_changed: list[str] = Field(default_factory=list)
