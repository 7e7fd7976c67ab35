"""An incident's side effects: what its workflow will do in Mattermost, and in which lane.

Effects wait in the incident's state (`IncidentState.outbox`), so they survive
continue-as-new and restarts; `seq` makes each one idempotent (posts carry it as their
dedupe key).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from models.common import Model, UserFact
from models.webhooks import WebhookEvent

# Side effects waiting to be carried out by the workflow's main loop, in order within
# their lane (see `lane_of`). Kept in state so they survive continue-as-new; `seq` makes
# each one idempotent.


class MenuOption(Model):
    text: str
    value: str


class Button(Model):
    """A button (or, with `options`, a message menu) under a bot post; clicks come back to the
    API's action endpoint, signed."""

    id: str
    name: str
    action: Literal["post_update", "snooze", "set_item", "pick_item", "next_stage", "page_ack", "page_decline"]
    seconds: int = 0
    # What a checklist control acts on: the stage, the item (position and id) and the item's new state.
    stage: int | None = None
    item: int | None = None
    item_id: str = ""
    state: str = ""
    style: str = ""
    # A message menu's choices (values as `<item>:<item id>:<state>`); empty: a button.
    options: list[MenuOption] = Field(default_factory=list)


class Attachment(Model):
    """A message attachment under a bot post: a line of text and its controls."""

    text: str = ""
    buttons: list[Button] = Field(default_factory=list)


class PostEffect(Model):
    kind: Literal["post"] = "post"
    channel_id: str | None = None  # None: the incident channel
    message: str
    buttons: list[Button] = Field(default_factory=list)
    pin: bool = False
    # Remember the resulting post id under this name (e.g. the opening post).
    remember_as: str | None = None


class InviteEffect(Model):
    kind: Literal["invite"] = "invite"
    actor_id: str
    users: list[UserFact]


class ChannelHeaderEffect(Model):
    """Bring the channel header up to date (rendered from the state when carried out)."""

    kind: Literal["channel_header"] = "channel_header"


class ChecklistEffect(Model):
    """Bring the incident's live checklist post up to date (rendered from the state when carried
    out, so one edit also does every one queued before it); post it when there is none or it
    was deleted."""

    kind: Literal["checklist"] = "checklist"


class ClearButtonsEffect(Model):
    """Take the buttons off a post remembered under `post_name` (a reminder that was answered)."""

    kind: Literal["clear_buttons"] = "clear_buttons"
    post_name: str
    note: str = ""


class RespondEffect(Model):
    """A late reply to the slash command that started it all (via its response_url)."""

    kind: Literal["respond"] = "respond"
    response_url: str
    text: str


class WebhookEffect(Model):
    """Hand one event to the incident's webhooks workflow, which delivers it to every
    subscription that wants it (its own lane: a receiver never holds back Mattermost)."""

    kind: Literal["webhook"] = "webhook"
    event: WebhookEvent


class PageEffect(Model):
    """Send a page (`IncidentState.pages`) as direct messages; the outcome comes back to the
    incident (`Incident.page_delivered`)."""

    kind: Literal["page"] = "page"
    page_id: str


class PageEditEffect(Model):
    """Bring pages' direct messages up to date with their status (rendered when carried out)."""

    kind: Literal["page_edit"] = "page_edit"
    page_ids: list[str]


class DirectMessageEffect(Model):
    """Tell one person something in a direct message from the bot (overdue items, `Incident.nudge_overdue_items`),
    rendered when queued; posted once by its dedupe key."""

    kind: Literal["direct_message"] = "direct_message"
    user_id: str
    message: str
    # What it tells of, in words: "tell @bob of <about>" (the activity's summary, a failure's notice).
    about: str = "overdue items"


class StatsEffect(Model):
    """Report the incident's latest facts to its team's statistics workflow."""

    kind: Literal["stats"] = "stats"


Effect = Annotated[
    PostEffect
    | InviteEffect
    | ChannelHeaderEffect
    | RespondEffect
    | StatsEffect
    | ChecklistEffect
    | ClearButtonsEffect
    | WebhookEffect
    | PageEffect
    | PageEditEffect
    | DirectMessageEffect,
    Field(discriminator="kind"),
]


class PendingEffect(Model):
    seq: int
    effect: Effect


INCIDENT_CHANNEL_LANE = "incident-channel"
PAGING_LANE = "paging"
# Each other channel's lane is this prefix and the channel's id.
OTHER_CHANNEL_LANE = "channel:"


def lane_of(effect: Effect, incident_channel_id: str | None) -> str:
    """The lane an effect waits in: effects in one lane happen in order, lanes are independent.

    The incident channel's invites and posts share a lane (the channel opens with its people,
    then its posts in order); each other channel has its own, as do the header, statistics and
    command replies. The live checklist post and edits of the channel's posts go with its posts
    (an edit follows the post it edits). So one channel that refuses or fails holds back nothing but itself.
    """
    if isinstance(effect, PostEffect):
        if effect.channel_id is None or effect.channel_id == incident_channel_id:
            return INCIDENT_CHANNEL_LANE
        return f"{OTHER_CHANNEL_LANE}{effect.channel_id}"
    if isinstance(effect, InviteEffect | ChecklistEffect | ClearButtonsEffect):
        return INCIDENT_CHANNEL_LANE
    if isinstance(effect, PageEffect | PageEditEffect | DirectMessageEffect):
        # Direct messages: a page never waits for the incident channel, and its edits follow it.
        return PAGING_LANE
    return effect.kind


def is_channel_lane(lane: str) -> bool:
    """Whether the lane posts to a channel (the incident channel's, or another channel's)."""
    return lane == INCIDENT_CHANNEL_LANE or lane.startswith(OTHER_CHANNEL_LANE)
