"""Side effects of incidents in Mattermost. Every activity is idempotent.

Temporal retries an activity until it succeeds (or the workflow's give-up time passes),
and a worker may die, or a request time out, after Mattermost did the work but before we
heard of it. So each activity either is naturally idempotent (adding a member twice is
fine, pinning twice too), or finds what an earlier attempt did: channels by their
deterministic name, posts by the dedupe key in their props (see `post_message`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.attempts import current_attempt
from mattermost_client.gateway import Mattermost, MattermostFailure
from models.activity_io import (
    AddMembers,
    AddMembersResult,
    ChannelRef,
    ClearButtons,
    CreateChannel,
    EditPost,
    InviteFailure,
    PostMessage,
    PostRef,
    RespondToCommand,
    SetChannelHeader,
)
from models.effects import Button
from models.paging import EditPages, PageDelivery, PagePost, SendPage
from models.schedules import Schedule, oncall_at, schedule_workflow_id
from signing import Signer

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a button on a bot post stays valid.
BUTTON_TTL_SECONDS = 7 * 86400

# Props keys on every bot post this service makes.
DEDUPE_PROP = "incident_effect"
INCIDENT_PROP = "incident_id"
# On a post edited in place (the live checklist): the stable key its buttons are bound to.
STABLE_PROP = "incident_post"

# Error types the workflow recognises (see workflows/incident_workflow.py).
REJECTED = "MattermostRejected"
UNAVAILABLE = "MattermostUnavailable"
# The bot is not (any more) a member of a private channel it must post in; details: the bot's username.
NO_ACCESS = "MattermostNoAccess"


def as_activity_error(failure: MattermostFailure) -> ApplicationError:
    """Retry what may succeed later; give up at once on what never will."""
    if failure.retryable:
        info = activity.info()
        delay = retry_delay(failure.retry_after, attempt=info.attempt, policy=info.retry_policy)
        return ApplicationError(failure.message, type=UNAVAILABLE, next_retry_delay=delay)
    return ApplicationError(failure.message, failure.error_id, type=REJECTED, non_retryable=True)


def retry_delay(
    retry_after: float | None,
    *,
    attempt: int,
    policy: RetryPolicy | None,
    draw: Callable[[float, float], float] = random.uniform,
) -> timedelta | None:
    """When to try again: Mattermost's `Retry-After` if it gave one, else the policy's backoff, jittered.

    Temporal's backoff has no jitter; many incidents retrying in step would hit a recovering
    server all at once. So each retry waits a random 50-100% of the policy's exponential
    interval (capped by its maximum); a `Retry-After` gets up to 10% on top, never less.
    """
    if retry_after:
        return timedelta(seconds=retry_after * draw(1.0, 1.1))
    if policy is None:
        return None
    interval = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (attempt - 1)
    if policy.maximum_interval is not None:
        interval = min(interval, policy.maximum_interval.total_seconds())
    return timedelta(seconds=interval * draw(0.5, 1.0))


async def _mattermost(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except MattermostFailure as failure:
        raise as_activity_error(failure) from None


async def _mattermost_change(send: Callable[[], Awaitable[T]]) -> T:
    """A request that changes something in Mattermost (see `EffectAttempt.change`)."""
    return await _mattermost(lambda: current_attempt().change(send))


class IncidentActivities:
    """Activities bound to one Mattermost gateway; registered on the worker."""

    def __init__(
        self, mattermost: Mattermost, *, signer: Signer, action_url: str, temporal: Client | None = None
    ) -> None:
        self._mattermost = mattermost
        self._signer = signer
        self._action_url = action_url
        # Asks on-call schedules who is on call (a page to a schedule); None: schedules cannot be paged.
        self._temporal = temporal
        self._bot: dict[str, Any] | None = None

    async def _bot_user(self) -> dict[str, Any]:
        if self._bot is None:
            self._bot = await self._mattermost.bot_user()
        return self._bot

    @activity.defn
    async def create_incident_channel(self, request: CreateChannel) -> ChannelRef:
        """Create the incident's channel; a retry finds the one it already created."""
        channel = await _mattermost(lambda: self._mattermost.create_channel(**dict(request)))
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
        """Post exactly once, whatever the timing; pin it when asked, on every path.

        Mattermost has no idempotent create for posts, and a request that timed out on our
        side may still land later. So every post carries its dedupe key in its props, and:
        a retry looks for the key before posting, and when an earlier attempt's post may still
        land (its worker died mid-call: see activities/attempts.py), waits that out and looks
        again; an attempt whose request may have landed (no answer, or a gateway error) first
        waits out one more request timeout, by which an abandoned request has landed or never
        will, then looks for the key, and only if it is absent fails for a retry that posts again.
        """
        return await self._post_once(request)

    async def _post_once(self, request: PostMessage) -> PostRef:
        if activity.info().attempt > 1:
            existing = await self._find_unless_hidden(request)
            if existing is None and await current_attempt().outwait_earlier():
                existing = await self._find_unless_hidden(request)
            if existing is not None:
                return await self._finish(request, existing)
        try:
            post = await self._create_post(request)
        except MattermostFailure as failure:
            if not failure.may_have_landed:
                raise as_activity_error(failure) from None
            await asyncio.sleep(self._mattermost.timeout)
            landed = await _mattermost(lambda: self._find(request))
            if landed is None:
                raise as_activity_error(failure) from None
            post = landed
        return await self._finish(request, post)

    async def _find_unless_hidden(self, request: PostMessage) -> dict[str, Any] | None:
        """The earlier attempt's post; None too when the bot may no longer read the channel
        (posting then says why, as `NO_ACCESS`)."""
        try:
            return await self._find(request)
        except MattermostFailure as failure:
            if failure.status in (403, 404):
                return None
            raise as_activity_error(failure) from None

    async def _find(self, request: PostMessage) -> dict[str, Any] | None:
        return await self._mattermost.find_post_with_prop(request.channel_id, DEDUPE_PROP, request.dedupe_key)

    async def _create_post(self, request: PostMessage) -> dict[str, Any]:
        props = self._props(request)

        def send() -> Awaitable[dict[str, Any]]:
            return self._mattermost.create_post(channel_id=request.channel_id, message=request.message, props=props)

        attempt = current_attempt()
        try:
            return await attempt.change(send)
        except MattermostFailure as failure:
            # 403, or 404 for a private channel the bot may not even see.
            if failure.status not in (403, 404) or await self._in_channel_or_joined(request):
                raise  # not about membership, or the bot is in the channel: refused for a reason of its own
        return await attempt.change(send)

    async def _in_channel_or_joined(self, request: PostMessage) -> bool:
        """Whether the bot is in the channel. If not, it joins a public one (a broadcast channel,
        or the incident channel it left) and says False; a private one it cannot rejoin by itself,
        so it fails with `NO_ACCESS`, which names whom to add where."""
        bot_id = str((await self._bot_user())["id"])
        if await self._mattermost.is_channel_member(request.channel_id, bot_id):
            return True
        try:
            public = (await self._mattermost.get_channel(request.channel_id)).get("type") == "O"
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            public = False  # a private channel the bot is not in: it may not even read it
        if not public:
            username = str((await self._bot_user())["username"])
            name = request.channel_name or await self._channel_name(request.channel_id) or request.channel_id
            raise ApplicationError(
                f"@{username} may not post in ~{name} (not a member of the channel); add @{username} to ~{name}",
                username,
                type=NO_ACCESS,
                non_retryable=True,
            )
        await self._mattermost.add_channel_member(request.channel_id, bot_id)
        return False

    async def _channel_name(self, channel_id: str) -> str | None:
        try:
            channel = await self._mattermost.get_channel(channel_id)
        except MattermostFailure:
            return None
        return str(channel["name"])

    async def _finish(self, request: PostMessage, post: dict[str, Any]) -> PostRef:
        """What every path ends with: the pin (idempotent), and the channel's name once."""
        refused = ""
        if request.pin and not post.get("is_pinned"):
            try:
                await self._mattermost.pin_post(post["id"])
            except MattermostFailure as failure:
                if failure.retryable:
                    raise as_activity_error(failure) from None
                refused = failure.message  # the post stands; only the pin is reported
        name = "" if request.channel_name else await self._channel_name(request.channel_id) or ""
        return PostRef(post_id=post["id"], channel_name=name, pin_refused=refused)

    def _props(self, request: PostMessage) -> dict[str, Any]:
        props: dict[str, Any] = {DEDUPE_PROP: request.dedupe_key, INCIDENT_PROP: request.incident_id}
        if request.stable_key:
            props[STABLE_PROP] = request.stable_key
        attachments = [{"actions": [self._action(request, b) for b in request.buttons]}] if request.buttons else []
        for attachment in request.attachments:
            shown: dict[str, Any] = {"text": attachment.text} if attachment.text else {}
            if attachment.buttons:
                shown["actions"] = [self._action(request, b) for b in attachment.buttons]
            attachments.append(shown)
        if attachments:
            props["attachments"] = attachments
        return props

    def _action(self, request: PostMessage, button: Button) -> dict[str, Any]:
        context = {
            "incident_id": request.incident_id,
            "action": button.action,
            "seconds": button.seconds,
            "stage": button.stage,
            "item": button.item,
            "item_id": button.item_id,
            "state": button.state,
            # Binds the click to this post (a post edited in place: to its stable key), and
            # for a while only.
            "post_key": request.stable_key or request.dedupe_key,
            "expires": int(time.time()) + BUTTON_TTL_SECONDS,
        }
        action: dict[str, Any] = {
            "id": button.id,
            "name": button.name,
            "type": "select" if button.options else "button",
            "integration": {"url": self._action_url, "context": {"token": self._signer.sign(context)}},
        }
        if button.options:
            action["options"] = [{"text": o.text, "value": o.value} for o in button.options]
        if button.style:
            action["style"] = button.style
        return action

    @activity.defn
    async def edit_post(self, request: EditPost) -> PostRef:
        """Edit the post in place; a deleted (or never made) one is posted afresh, once, and pinned."""
        if request.post_id and await self._edited_in_place(request):
            return PostRef(post_id=request.post_id)
        posted = await self._post_once(request)
        return posted.model_copy(update={"reposted": bool(request.post_id)})

    async def _edited_in_place(self, request: EditPost) -> bool:
        """Patch the post; False when it no longer exists.

        Mattermost refuses an edit of a deleted post (403) exactly as an edit the bot may not
        make, so a refused edit is looked into: a bot that left the channel rejoins a public one
        (a private one fails with `NO_ACCESS`: the lane waits for the bot to be added back); then
        a post the bot cannot read any more (404) is gone, and one that is still there was
        refused for a reason of its own, reported like any refusal.
        """
        try:
            await self._patch(request)
        except MattermostFailure as failure:
            if failure.retryable:
                raise as_activity_error(failure) from None
            refused = failure
        else:
            return True
        try:
            member = await self._in_channel_or_joined(request)
            if not await self._post_exists(request.post_id):
                return False
            if not member:
                await self._patch(request)  # it has just joined the channel: the edit is a member's now
                return True
        except MattermostFailure as failure:
            raise as_activity_error(failure) from None
        raise as_activity_error(refused)

    async def _patch(self, request: EditPost) -> None:
        # The post keeps the dedupe key it was made with, so a retry of its making still finds it.
        kept = request.model_copy(update={"dedupe_key": request.existing_key or request.dedupe_key})
        await current_attempt().change(
            lambda: self._mattermost.patch_post(request.post_id, message=request.message, props=self._props(kept))
        )

    async def _post_exists(self, post_id: str) -> bool:
        """A deleted post reads as 404 to the bot (only an admin's read shows it, with `delete_at`)."""
        try:
            post = await self._mattermost.get_post(post_id)
        except MattermostFailure as failure:
            if failure.not_found:
                return False
            raise
        return not post.get("delete_at")

    @activity.defn
    async def clear_buttons(self, request: ClearButtons) -> None:
        """Take the buttons off a post (keeping its other props), noting why; a deleted post needs nothing."""
        try:
            post = await self._mattermost.get_post(request.post_id)
        except MattermostFailure as failure:
            if failure.not_found:
                return
            raise as_activity_error(failure) from None
        props = {k: v for k, v in (post.get("props") or {}).items() if k != "attachments"}
        message = str(post.get("message", ""))
        if request.note and request.note not in message:
            message = f"{message}\n\n{request.note}"
        await _mattermost_change(lambda: self._mattermost.patch_post(request.post_id, message=message, props=props))

    @activity.defn
    async def set_channel_header(self, request: SetChannelHeader) -> None:
        await _mattermost_change(lambda: self._mattermost.set_channel_header(request.channel_id, request.header))

    @activity.defn
    async def respond_to_command(self, request: RespondToCommand) -> None:
        """A late reply to a slash command. Mattermost accepts a few within 30 minutes."""
        await _mattermost(
            lambda: self._mattermost.respond_to_command(
                request.response_url, {"response_type": "ephemeral", "text": request.text}
            )
        )

    @activity.defn
    async def send_page(self, request: SendPage) -> PageDelivery:
        """Page each person of the target (a schedule: those on call now) who can be messaged (active,
        in the team, not a bot) in a direct message with the page's buttons, exactly once each (the
        dedupe key per person); who could not be is said, not raised: the incident escalates at once."""
        delivery = PageDelivery()
        if request.target.user_id is not None:
            user_ids = [request.target.user_id]
        else:
            user_ids, problem = await self._oncall(request.target.schedule_id or "", request.team_id)
            if problem:
                delivery.problems.append(problem)
        for user_id in user_ids:
            problem = await self._unreachable(user_id, request.team_id, delivery)
            if problem:
                delivery.problems.append(problem)
                continue
            channel = await self._direct_channel(user_id)
            post = await self._post_once(
                PostMessage(
                    channel_id=channel,
                    message=request.message,
                    dedupe_key=f"{request.dedupe_key}:{user_id}",
                    incident_id=request.incident_id,
                    buttons=request.buttons,
                    channel_name="direct message",
                )
            )
            delivery.posts.append(PagePost(user_id=user_id, channel_id=channel, post_id=post.post_id))
        return delivery

    async def _oncall(self, schedule_id: str, team_id: str) -> tuple[list[str], str]:
        """Who is on call in the schedule now, or why nobody can be paged through it."""
        if self._temporal is None:
            return [], f"schedule {schedule_id} cannot be read here"
        handle = self._temporal.get_workflow_handle(schedule_workflow_id(schedule_id))
        try:
            schedule = await handle.query("schedule", result_type=Schedule | None)  # type: ignore[arg-type]
        except RPCError as error:
            if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return [], f"there is no schedule {schedule_id}"
            raise ApplicationError(f"could not read schedule {schedule_id}: {error}", type=UNAVAILABLE) from None
        if not isinstance(schedule, Schedule) or schedule.team_id != team_id:
            return [], f"there is no schedule {schedule_id} in this team (deleted?)"
        people = oncall_at(schedule, activity.info().current_attempt_scheduled_time)
        return people, "" if people else f"nobody is on call in schedule {schedule.name}"

    async def _unreachable(self, user_id: str, team_id: str, delivery: PageDelivery) -> str:
        """Why the person cannot be paged (empty: they can)."""
        try:
            user = await self._mattermost.get_user(user_id)
        except MattermostFailure as failure:
            if failure.retryable:
                raise as_activity_error(failure) from None
            return f"no user has the id {user_id}"
        if user.get("username"):
            delivery.usernames[user_id] = str(user["username"])
        name = f"@{user.get('username') or user_id}"
        if user.get("delete_at"):
            return f"{name} is deactivated"
        if user.get("is_bot"):
            return f"{name} is a bot"
        try:
            member = await self._mattermost.team_member(team_id, user_id)
        except MattermostFailure as failure:
            raise as_activity_error(failure) from None
        return "" if member is not None else f"{name} is not in the incident's team"

    @activity.defn
    async def edit_pages(self, request: EditPages) -> None:
        """Rewrite pages' direct messages, their buttons taken off; a deleted one needs nothing."""
        for edit in request.edits:
            try:
                post = await self._mattermost.get_post(edit.post.post_id)
            except MattermostFailure as failure:
                if failure.retryable:
                    raise as_activity_error(failure) from None
                continue  # deleted (404, or 403 for a post the bot may no longer read)
            if post.get("delete_at"):
                continue
            props = {k: v for k, v in (post.get("props") or {}).items() if k != "attachments"}
            if post.get("message") == edit.message and props == (post.get("props") or {}):
                continue
            try:
                await self._patch_page(edit.post.post_id, edit.message, props)
            except MattermostFailure as failure:
                if failure.retryable:
                    raise as_activity_error(failure) from None
                # Mattermost refuses an edit of a deleted post (403): nothing left to edit.

    async def _direct_channel(self, user_id: str) -> str:
        return await _mattermost(lambda: self._mattermost.direct_channel(user_id))

    async def _patch_page(self, post_id: str, message: str, props: dict[str, Any]) -> None:
        await current_attempt().change(lambda: self._mattermost.patch_post(post_id, message=message, props=props))

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [
            self.send_page,
            self.edit_pages,
            self.create_incident_channel,
            self.add_channel_members,
            self.post_message,
            self.edit_post,
            self.clear_buttons,
            self.set_channel_header,
            self.respond_to_command,
        ]
