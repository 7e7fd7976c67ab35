"""Side effects of incidents in Mattermost. Every activity is idempotent.

Temporal retries an activity until it succeeds, and a worker may die after Mattermost
did the work but before Temporal heard of it. So each activity either is naturally
idempotent (adding a member twice is fine), or finds what an earlier attempt did:
channels by their deterministic name, posts by the dedupe key in their props.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mattermost import Mattermost, MattermostFailure
from models.activities import (
    AddMembers,
    AddMembersResult,
    ChannelRef,
    CreateChannel,
    InviteFailure,
    PostMessage,
    PostRef,
    RespondToCommand,
    SetChannelHeader,
)
from signing import Signer

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a button on a bot post stays valid.
BUTTON_TTL_SECONDS = 7 * 86400

# Props keys on every bot post this service makes.
DEDUPE_PROP = "incident_effect"
INCIDENT_PROP = "incident_id"

# Error types the workflow recognises (see workflows/incident.py).
REJECTED = "MattermostRejected"
UNAVAILABLE = "MattermostUnavailable"


def as_activity_error(failure: MattermostFailure) -> ApplicationError:
    """Retry what may succeed later; give up at once on what never will."""
    if failure.retryable:
        delay = timedelta(seconds=failure.retry_after) if failure.retry_after else None
        return ApplicationError(failure.message, type=UNAVAILABLE, next_retry_delay=delay)
    return ApplicationError(failure.message, failure.error_id, type=REJECTED, non_retryable=True)


async def _mattermost(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except MattermostFailure as failure:
        raise as_activity_error(failure) from None


class IncidentActivities:
    """Activities bound to one Mattermost gateway; registered on the worker."""

    def __init__(self, mattermost: Mattermost, *, signer: Signer, action_url: str) -> None:
        self._mattermost = mattermost
        self._signer = signer
        self._action_url = action_url
        self._bot_id: str | None = None

    async def _bot_user_id(self) -> str:
        if self._bot_id is None:
            self._bot_id = str((await self._mattermost.bot_user())["id"])
        return self._bot_id

    @activity.defn
    async def create_incident_channel(self, request: CreateChannel) -> ChannelRef:
        """Create the incident's channel; a retry finds the one it already created."""
        channel = await _mattermost(
            lambda: self._mattermost.create_channel(
                team_id=request.team_id,
                name=request.name,
                display_name=request.display_name,
                purpose=request.purpose,
                header=request.header,
                public=request.public,
            )
        )
        return ChannelRef(channel_id=channel["id"], name=channel["name"])

    @activity.defn
    async def add_channel_members(self, request: AddMembers) -> AddMembersResult:
        """Add each user; one refusal is reported back, not fatal for the others."""
        result = AddMembersResult()
        for user in request.users:
            try:
                await self._mattermost.add_channel_member(request.channel_id, user.user_id)
            except MattermostFailure as failure:
                if failure.retryable:
                    raise as_activity_error(failure) from None
                result.failed.append(InviteFailure(user=user, reason=failure.message))
            else:
                result.added.append(user.user_id)
        return result

    @activity.defn
    async def post_message(self, request: PostMessage) -> PostRef:
        """Post once. A retry first looks for the post an earlier attempt may have made."""
        if activity.info().attempt > 1:
            existing = await _mattermost(
                lambda: self._mattermost.find_post_with_prop(request.channel_id, DEDUPE_PROP, request.dedupe_key)
            )
            if existing is not None:
                return PostRef(post_id=existing["id"])
        props = self._props(request)
        try:
            post = await self._mattermost.create_post(
                channel_id=request.channel_id, message=request.message, props=props
            )
        except MattermostFailure as failure:
            if failure.status != 403:
                raise as_activity_error(failure) from None
            # Not a member (a broadcast channel): join it if it is public, then post.
            await self._join_public_channel(request.channel_id, failure)
            post = await _mattermost(
                lambda: self._mattermost.create_post(
                    channel_id=request.channel_id, message=request.message, props=props
                )
            )
        if request.pin:
            await _mattermost(lambda: self._mattermost.pin_post(post["id"]))
        return PostRef(post_id=post["id"])

    async def _join_public_channel(self, channel_id: str, failure: MattermostFailure) -> None:
        channel = await _mattermost(lambda: self._mattermost.get_channel(channel_id))
        if channel.get("type") != "O":
            raise as_activity_error(failure)
        bot_id = await self._bot_user_id()
        await _mattermost(lambda: self._mattermost.add_channel_member(channel_id, bot_id))

    def _props(self, request: PostMessage) -> dict[str, Any]:
        props: dict[str, Any] = {DEDUPE_PROP: request.dedupe_key, INCIDENT_PROP: request.incident_id}
        if request.buttons:
            props["attachments"] = [
                {
                    "actions": [
                        {
                            "id": button.id,
                            "name": button.name,
                            "type": "button",
                            "integration": {
                                "url": self._action_url,
                                "context": {
                                    "token": self._signer.sign(
                                        {
                                            "incident_id": request.incident_id,
                                            "action": button.action,
                                            "seconds": button.seconds,
                                            # Binds the click to this post, and for a while only.
                                            "post_key": request.dedupe_key,
                                            "expires": int(time.time()) + BUTTON_TTL_SECONDS,
                                        }
                                    )
                                },
                            },
                        }
                        for button in request.buttons
                    ]
                }
            ]
        return props

    @activity.defn
    async def set_channel_header(self, request: SetChannelHeader) -> None:
        await _mattermost(lambda: self._mattermost.set_channel_header(request.channel_id, request.header))

    @activity.defn
    async def respond_to_command(self, request: RespondToCommand) -> None:
        """A late reply to a slash command. Mattermost accepts a few within 30 minutes."""
        await _mattermost(
            lambda: self._mattermost.respond_to_command(
                request.response_url, {"response_type": "ephemeral", "text": request.text}
            )
        )

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [
            self.create_incident_channel,
            self.add_channel_members,
            self.post_message,
            self.set_channel_header,
            self.respond_to_command,
        ]
