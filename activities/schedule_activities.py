"""Telling people of an on-call handoff: a direct message from the bot, or a post in the
schedule's channel. One place per activity; Mattermost's refusals (4xx) are final,
unavailability is tried again by the workflow's retry policy. A channel's post carries the
handoff's key and is looked for before posting again; a direct message is not (the bot's
direct channel is only known once the message is sent), so an attempt that timed out after
Mattermost took the message may send it twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from mattermost_client.gateway import Mattermost, MattermostFailure
from models.schedules import HandoffNotice, local_label

# Carried in the post's props: which handoff of which schedule a post tells.
HANDOFF_PROP = "schedule_handoff"


def handoff_message(notice: HandoffNotice, names: dict[str, str]) -> str:
    """The words for one place: the person going off, coming on, or the channel."""

    def people(ids: list[str]) -> str:
        return ", ".join(f"@{names[i]}" if i in names else i for i in ids) or "nobody"

    handoff = notice.handoff
    when = local_label(handoff.at, notice.time_zone)
    following = f" Next handoff: {local_label(notice.next_at, notice.time_zone)}." if notice.next_at else ""
    if notice.user_id in handoff.incoming:
        opening = f"You are now on call for **{notice.schedule_name}** (since {when})."
    elif notice.user_id in handoff.outgoing:
        opening = f"Your on-call shift for **{notice.schedule_name}** ended at {when}."
    else:
        opening = f"On-call handoff for **{notice.schedule_name}** at {when}."
    return (
        f"{opening} Going off: {people(handoff.outgoing)}. Coming on: {people(handoff.incoming)}. "
        f"On call now: {people(notice.oncall)}.{following}"
    )


class ScheduleActivities:
    def __init__(self, mattermost: Mattermost) -> None:
        self._mattermost = mattermost

    @activity.defn
    async def tell_handoff(self, notice: HandoffNotice) -> None:
        ids = list(dict.fromkeys(notice.handoff.outgoing + notice.handoff.incoming + notice.oncall))
        props = {HANDOFF_PROP: notice.dedupe_key}
        try:
            users = await self._mattermost.get_users_by_ids(ids)
            names = {str(u["id"]): str(u["username"]) for u in users if u.get("id") and u.get("username")}
            message = handoff_message(notice, names)
            if notice.channel_id:
                if await self._mattermost.find_post_with_prop(notice.channel_id, HANDOFF_PROP, notice.dedupe_key):
                    return
                await self._mattermost.create_post(channel_id=notice.channel_id, message=message, props=props)
            elif notice.user_id:
                await self._mattermost.direct_message(notice.user_id, message, props=props)
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            raise ApplicationError(failure.message, non_retryable=True) from None

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.tell_handoff]
