"""What each side effect's outcome does to the incident: the result of an activity, applied.

Pure and deterministic (no Temporal calls, no I/O). `IncidentWorkflow` calls these when an
activity it ran for an effect comes back, and `workflows.incident_rebuild` calls the very
same functions with the results recorded in the incident's history, so an incident rebuilt
from its history changes exactly as the live one did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

from models import effects
from models.activity_io import AddMembersResult, PostRef
from models.incident import IncidentState, IncidentStatus
from models.paging import PageDelivery
from models.webhooks import Forwarded
from workflows import incident_messages as text
from workflows.incident_automation import next_rule_due
from workflows.incident_due_dates import next_item_due
from workflows.incident_paging import escalation_due_at
from workflows.incident_retrospective import reminder_due
from workflows.incident_rules import CHECKLIST_POST, Incident

# The error types of `activities.incident_activities` an outcome tells apart (kept here, beside the
# workflow's rules, so neither this module nor the rebuild imports the activities).
UNAVAILABLE = "MattermostUnavailable"
NO_ACCESS = "MattermostNoAccess"


def failure_reason(cause: BaseException | None, give_up_seconds: float) -> str:
    """In words, why an effect's activity failed: its error (`cause`, as Temporal reports it)."""
    # Unavailability is retried, so it only ends up here once the give-up time has passed
    # (Temporal fails with the last attempt's error, or with a timeout).
    within = f"Mattermost did not accept it within {text.format_duration(give_up_seconds)}"
    if isinstance(cause, ApplicationError):
        return f"{within} (last error: {cause.message})" if cause.type == UNAVAILABLE else cause.message
    if isinstance(cause, ActivityTimeout):
        last = cause.cause
        return f"{within} (last error: {last.message})" if isinstance(last, ApplicationError) else within
    return str(cause or "the activity failed")


def lost_channel(cause: BaseException | None) -> str | None:
    """The bot's username when `cause` says it may no longer post in the channel; else None."""
    if isinstance(cause, ApplicationError) and cause.type == NO_ACCESS:
        return str(cause.details[0]) if cause.details else "incident-bot"
    return None


def post_made(incident: Incident, effect: effects.PostEffect, target: str, post: PostRef, now: datetime) -> None:
    """A post of `effect` was made in channel `target`."""
    state = incident.state
    if post.channel_name:
        state.channel_names[target] = post.channel_name
    if effect.remember_as:
        state.post_ids[effect.remember_as] = post.post_id
    if post.pin_refused:
        incident.pin_refused(now, post.pin_refused)


def checklist_posted(incident: Incident, seq: int, channel_id: str, post: PostRef, now: datetime) -> None:
    """The live checklist post was edited in place, or made anew (by the effect numbered `seq`)."""
    state = incident.state
    if state.post_ids.get(CHECKLIST_POST) != post.post_id:
        state.post_keys[CHECKLIST_POST] = f"{state.id}:{seq}"
    state.post_ids[CHECKLIST_POST] = post.post_id
    if post.channel_name:
        state.channel_names[channel_id] = post.channel_name
    if post.pin_refused:
        incident.pin_refused(now, post.pin_refused)


def buttons_cleared(state: IncidentState, post_id: str) -> None:
    """The buttons of the remembered post `post_id` are off: it is remembered no more."""
    for name in [name for name, remembered in state.post_ids.items() if remembered == post_id]:
        del state.post_ids[name]


def members_added(incident: Incident, effect: effects.InviteEffect, result: AddMembersResult, now: datetime) -> None:
    incident.members_added(result.added, now)
    for failure in result.failed:
        incident.invite_failed(now, effect.actor_id, failure.user, failure.reason)


def webhooks_handed(state: IncidentState, forwarded: Forwarded) -> None:
    for subscription_id, count in forwarded.handed.items():
        state.webhook_handed[subscription_id] = state.webhook_handed.get(subscription_id, 0) + count


def page_outcome(delivery: PageDelivery | None, cause: BaseException | None, give_up_seconds: float) -> PageDelivery:
    """What came of sending a page: its delivery, or (its activity failed) the reason as its problem."""
    if delivery is not None:
        return delivery
    return PageDelivery(problems=[failure_reason(cause, give_up_seconds)])


def direct_message_sent(
    incident: Incident, effect: effects.DirectMessageEffect, delivery: PageDelivery, now: datetime
) -> None:
    """A direct message from the bot went out (or could not: said on the timeline)."""
    incident.state.usernames.update(delivery.usernames)
    if not delivery.posts:
        incident.direct_message_failed(now, effect.user_id, delivery.problems, effect.about)


def effect_failed(
    incident: Incident,
    lane: str,
    what: str,
    cause: BaseException | None,
    now: datetime,
    *,
    waiting_after_seq: int,
) -> bool:
    """An effect's activity failed with `cause`: whether the effect is done with (reported and
    skipped), or waits (False: the bot may no longer post in the incident channel)."""
    state = incident.state
    bot = lost_channel(cause)
    if bot is not None and lane == effects.INCIDENT_CHANNEL_LANE:
        incident.channel_access_lost(now, bot_username=bot, waiting_after_seq=waiting_after_seq)
        return False
    # Refused (4xx), or not accepted within the give-up time: on record, then skipped. Failures
    # elsewhere are told in the incident channel; the incident channel's own are not (the notice
    # would fail the same way).
    elsewhere = lane.startswith(effects.OTHER_CHANNEL_LANE) and state.channel_id is not None
    reason = failure_reason(cause, state.config.effect_give_up_seconds)
    incident.effect_failed(now, lane, what, reason, tell_channel=elsewhere)
    return True


def describe(state: IncidentState, effect: effects.Effect) -> str:
    """What an effect does, in words ("could not <describe>")."""
    if isinstance(effect, effects.PostEffect):
        if effects.lane_of(effect, state.channel_id) == effects.INCIDENT_CHANNEL_LANE:
            return "post to the incident channel"
        return f"post to {state.channel_mention(effect.channel_id or '')}"
    if isinstance(effect, effects.InviteEffect):
        return f"add {', '.join(u.mention for u in effect.users)} to the incident channel"
    if isinstance(effect, effects.ChannelHeaderEffect):
        return "update the channel header"
    if isinstance(effect, effects.ChecklistEffect):
        return "update the checklist post"
    if isinstance(effect, effects.ClearButtonsEffect):
        return "take the buttons off the reminder"
    if isinstance(effect, effects.StatsEffect):
        return "report the incident to the statistics"
    if isinstance(effect, effects.WebhookEffect):
        return f"hand the {effect.event.type} event to its webhooks"
    if isinstance(effect, effects.PageEffect):
        return "send a page"
    if isinstance(effect, effects.PageEditEffect):
        return "update pages' direct messages"
    if isinstance(effect, effects.DirectMessageEffect):
        return f"tell {state.mention(effect.user_id)} of {effect.about}"
    return "reply to the slash command"


@dataclass(frozen=True)
class Wake:
    """A moment the incident has something due, and what (the timer's summary in the Web UI)."""

    at: datetime | None  # None: not waiting for it now
    what: str


def wakes(state: IncidentState) -> list[Wake]:
    """What the incident may wait on a timer for, in the order a tie is named: the status
    update reminder, the automatic end, the escalation, the due items (one timer for all: the
    earliest), the retrospective's reminder, the playbook's next timer rule. The workflow's main
    loop waits for the earliest, and the dry run (`workflows.incident_dry_run`) does the same."""
    ongoing = state.status == IncidentStatus.ONGOING
    source = state.source
    rule = next_rule_due(state)
    due = [
        (state.reminder_due_at if ongoing else None, "status update reminder"),
        (source.auto_end_at if ongoing and source is not None else None, "automatic end: every alert resolved"),
        (escalation_due_at(state), "escalation: the next tier unless acknowledged"),
        (next_item_due(state), "due items"),
        (reminder_due(state), "retrospective reminder"),
        (rule.due if rule is not None else None, f"playbook rule {rule.firing.rule.name}" if rule else ""),
    ]
    return [Wake(at, what) for at, what in due]


def next_wake(state: IncidentState) -> datetime | None:
    """The earliest moment the incident has something due (None: nothing)."""
    return min((wake.at for wake in wakes(state) if wake.at is not None), default=None)
