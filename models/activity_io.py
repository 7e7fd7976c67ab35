"""Inputs and results of activities: one model each, so fields can be added safely."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.common import Model, UserFact
from models.effects import Attachment, Button


class CreateChannel(Model):
    team_id: str
    name: str
    display_name: str
    purpose: str = ""
    header: str = ""
    public: bool


class ChannelRef(Model):
    channel_id: str
    name: str


class AddMembers(Model):
    channel_id: str
    users: list[UserFact]


class InviteFailure(Model):
    user: UserFact
    reason: str


class AddMembersResult(Model):
    added: list[str] = Field(default_factory=list)
    failed: list[InviteFailure] = Field(default_factory=list)


class PostMessage(Model):
    channel_id: str
    message: str
    # Unique per incident side effect: a retried post finds the copy an earlier attempt made.
    dedupe_key: str
    incident_id: str
    buttons: list[Button] = Field(default_factory=list)
    pin: bool = False
    # The channel's name when known; empty: the activity looks it up (for failure notices).
    channel_name: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    # A stable key for a post edited in place (the live checklist): its buttons are bound to
    # this key rather than to the dedupe key of the copy they are on.
    stable_key: str = ""


class EditPost(PostMessage):
    """Edit a post in place (message and controls); post it afresh (and pin it when asked)
    when `post_id` is empty or the post was deleted."""

    post_id: str = ""
    # The dedupe key the post was made with: an edit keeps it (it names the post's place in
    # its channel's order); a post made afresh gets `dedupe_key`.
    existing_key: str = ""


class ClearButtons(Model):
    post_id: str
    note: str = ""


class PostRef(Model):
    post_id: str
    # The channel's name when the activity looked it up.
    channel_name: str = ""
    # Why Mattermost refused to pin the post (the post itself was made).
    pin_refused: str = ""
    # An edit found its post gone (deleted) and posted it afresh.
    reposted: bool = False


class SetChannelHeader(Model):
    channel_id: str
    header: str


class RespondToCommand(Model):
    response_url: str
    text: str


class AttemptRecord(Model):
    """What one attempt of an activity tells the next, in its heartbeats (see activities/attempts.py)."""

    attempt: int
    # Until when a change this attempt or an earlier one asked Mattermost for (a post, an edit)
    # may still land; None: none can.
    changes_land_by: datetime | None = None
    # The attempt failed: this is its last word, which Temporal receives before the failure.
    # Not ended: its worker died, or Temporal gave up on it (the record may be seconds old).
    ended: bool = False
    # The request timeout of the worker that ran it: a request it had sent lands within this
    # long after it died, or never.
    request_timeout: float
    # Set while the attempt waits for an earlier one's changes before sending anything: until
    # when. An attempt that was still waiting past its own `deadline` (its start-to-close
    # timeout) sent nothing, so the next one waits for the same moment, no longer.
    waiting_until: datetime | None = None
    deadline: datetime | None = None
