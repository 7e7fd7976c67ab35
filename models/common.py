"""Small types used across the domain models."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

# Mattermost ids are 26 lowercase alphanumerics.
MATTERMOST_ID = re.compile(r"^[a-z0-9]{26}$")
_SHORT_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l, o, 0, 1: easy to read aloud
SHORT_ID_LENGTH = 10
SHORT_ID = re.compile(rf"^[{_SHORT_ID_ALPHABET}]{{{SHORT_ID_LENGTH}}}\Z")


def _mattermost_id(value: str) -> str:
    if not MATTERMOST_ID.fullmatch(value):
        raise ValueError("must be a 26-character Mattermost id")
    return value


MattermostId = Annotated[
    str,
    AfterValidator(_mattermost_id),
    WithJsonSchema({"type": "string", "pattern": MATTERMOST_ID.pattern, "description": "A Mattermost id"}),
]


# Surrounding whitespace is dropped before length limits apply, so "   " is empty.
Trimmed = Annotated[str, StringConstraints(strip_whitespace=True)]


class Model(BaseModel):
    """Base for every shared model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def new_short_id() -> str:
    """A random id for a new playbook or incident (API side, never in a workflow)."""
    return "".join(secrets.choice(_SHORT_ID_ALPHABET) for _ in range(SHORT_ID_LENGTH))


def short_id_from(seed: str) -> str:
    """A stable id derived from a request key, so a resent request names the same entity."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_SHORT_ID_ALPHABET[b % len(_SHORT_ID_ALPHABET)] for b in digest[:SHORT_ID_LENGTH])


def utc(value: datetime) -> datetime:
    """Normalise to an aware UTC datetime."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Actor(Model):
    """Who asks for a change, with the facts the API gathered from Mattermost for them.

    Workflows cannot do I/O, so the API resolves these facts before sending a command;
    the access rules in `permissions` then decide on data alone.
    """

    user_id: MattermostId
    username: str = ""
    is_system_admin: bool = False
    # Whether the actor is in the incident's team.
    is_team_member: bool = False
    # Whether Mattermost lists the actor as a member of the incident channel; None when
    # Mattermost could not say (the bot cannot see the channel, or it does not exist yet).
    is_channel_member: bool | None = False
    # When Mattermost said so (facts are cached): the incident's own later invitations win.
    observed_at: datetime | None = None
    # Whether Mattermost lets the actor mention @channel/@here/@all (`use_channel_mentions`)
    # and groups (`use_group_mentions`) in the incident channel: what the bot may keep of
    # their mentions there. False when unknown.
    can_mention_channel: bool = False
    can_mention_groups: bool = False
    # The IANA time zone the actor set in Mattermost (empty: none known); a time of day they
    # type (`/incident due 1 2 14:30`) is read in it, else in UTC.
    time_zone: str = Field(default="", max_length=64)

    @property
    def mention(self) -> str:
        return f"@{self.username}" if self.username else self.user_id


class UserFact(Model):
    """A user named in a command, with what Mattermost says about them."""

    user_id: MattermostId
    username: str
    is_team_member: bool = True
    is_channel_member: bool = False
    is_bot: bool = False

    @property
    def mention(self) -> str:
        return f"@{self.username}"


class ChannelFact(Model):
    """A channel named in a command, and whether the actor may post there."""

    channel_id: MattermostId
    name: str
    display_name: str = ""
    team_id: str = ""
    actor_can_post: bool = False


PositiveSeconds = Annotated[int, Field(ge=0)]

# Status update reminders: 0 (off), or between the configured minimum (REMINDER_MIN_SECONDS)
# and this maximum. One declaration for playbooks, incidents, REST, slash and the workflow.
REMINDER_MAX_SECONDS = 7 * 86400


def _reminder_bounds(seconds: int) -> int:
    if not 0 <= seconds <= REMINDER_MAX_SECONDS:
        raise ValueError(f"must be 0 (off) or at most 7d ({REMINDER_MAX_SECONDS} seconds)")
    return seconds


ReminderSeconds = Annotated[
    int,
    AfterValidator(_reminder_bounds),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": REMINDER_MAX_SECONDS}),
]


def reminder_problem(seconds: int, minimum: int) -> str | None:
    """Why `seconds` is not an allowed reminder interval, or None when it is."""
    if seconds == 0 or minimum <= seconds <= REMINDER_MAX_SECONDS:
        return None
    return (
        f"A reminder interval must be off (0) or between {_duration(minimum)} and {_duration(REMINDER_MAX_SECONDS)}"
        f" ({minimum} to {REMINDER_MAX_SECONDS} seconds)."
    )


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def first_repeat(keys: list[str]) -> tuple[int, int] | None:
    """The places (0-based: the earlier, the later) of the first key that repeats an earlier one."""
    seen: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key in seen:
            return seen[key], index
        seen[key] = index
    return None
