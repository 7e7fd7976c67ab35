"""Paging inside an incident: a playbook's escalation policy, and the pages an incident sends.

A playbook may declare an escalation policy: ordered tiers, each naming people and on-call
schedules to page and how long to wait for an acknowledgement (`ack_within`), and how many
times to go through the tiers again (`repeat`). An incident started from the playbook pages
its first tier at once; anyone in the incident may page one more target by hand.

A page is a direct message from the bot to one person (a schedule's page: to each person on
call when it is sent) with *Acknowledge* and *Decline* buttons. Its state lives in the
incident's (`IncidentState.pages`, bounded like the rest), the escalation's position in
`IncidentState.escalation`; the rules deciding both are `workflows.incident_paging`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from models.common import MattermostId, Model, Trimmed
from models.effects import Button
from models.playbook_automation import duration_seconds

TIERS_MAX = 10
TARGETS_MAX = 10
REPEAT_MAX = 5
# How long a tier waits for an acknowledgement: 5 seconds (tests are short) to a day.
ACK_WITHIN_MIN_SECONDS = 5
ACK_WITHIN_MAX_SECONDS = 86400
REASON_MAX = 500
SCHEDULE_ID_MAX = 64
# The pages an incident keeps (the newest): the state travels in one bounded payload.
PAGES_KEPT = 200
# The pages a command's answer and the REST record show (the newest).
PAGES_IN_VIEW = 20
_ACK_WITHIN = re.compile(r"^(?:\d{1,6}[smhd])+\Z")


def _ack_within(value: str) -> str:
    if not _ACK_WITHIN.match(value):
        raise ValueError("must be a duration such as 30s, 5m or 1h")
    if not ACK_WITHIN_MIN_SECONDS <= duration_seconds(value) <= ACK_WITHIN_MAX_SECONDS:
        raise ValueError("must be at least 5s and at most 24h")
    return value


AckWithin = Annotated[Trimmed, AfterValidator(_ack_within)]


class PageTarget(Model):
    """Whom a page goes to: one person, or the people on call in a schedule (exactly one of them)."""

    user_id: MattermostId | None = None
    schedule_id: str | None = Field(default=None, min_length=1, max_length=SCHEDULE_ID_MAX)

    @model_validator(mode="after")
    def _one(self) -> PageTarget:
        if (self.user_id is None) == (self.schedule_id is None):
            raise ValueError("name either user_id or schedule_id")
        return self


class EscalationTier(Model):
    targets: list[PageTarget] = Field(min_length=1, max_length=TARGETS_MAX)
    ack_within: AckWithin = Field(description="How long to wait for an acknowledgement: 5s to 24h, such as 5m")

    @property
    def ack_within_seconds(self) -> int:
        return duration_seconds(self.ack_within)


class EscalationPolicy(Model):
    """Tiers paged one after another until someone acknowledges; then all of them again `repeat` times."""

    tiers: list[EscalationTier] = Field(min_length=1, max_length=TIERS_MAX)
    repeat: int = Field(default=0, ge=0, le=REPEAT_MAX)


def policy_user_ids(policy: EscalationPolicy | None) -> list[str]:
    """Everyone the policy names in person, in order, once each."""
    if policy is None:
        return []
    ids = [t.user_id for tier in policy.tiers for t in tier.targets if t.user_id is not None]
    return list(dict.fromkeys(ids))


class PageStatus(StrEnum):
    # Being sent (the direct message is not known to be there yet), or sent and waiting.
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DECLINED = "declined"
    # Nobody could be messaged (deactivated, not in the team, a schedule nobody is on call for).
    UNREACHABLE = "unreachable"
    # Its tier's time ran out, or someone else acknowledged first.
    EXPIRED = "expired"
    # The incident ended while it was open.
    CANCELLED = "cancelled"


class PagePost(Model):
    """A page's direct message to one person."""

    user_id: str
    channel_id: str
    post_id: str


class Page(Model):
    id: str
    target: PageTarget
    # How the target reads: "@bob", or "schedule payments-primary".
    label: str
    tier: int | None = None  # None: paged by hand
    round: int = 0
    reason: str = ""
    paged_by: str
    paged_at: datetime
    status: PageStatus = PageStatus.OPEN
    # The people messaged (a schedule's: those on call when it was sent) and their messages.
    user_ids: list[str] = Field(default_factory=list)
    posts: list[PagePost] = Field(default_factory=list)
    sent: bool = False
    acted_at: datetime | None = None
    acted_by: str | None = None
    # Why it could not be delivered.
    problem: str = ""


class PagingTally(Model):
    """What the statistics need of an incident's pages, kept exact however many pages
    `IncidentState.pages` has let go (it keeps the newest `PAGES_KEPT`): maintained by the
    paging rules as pages are sent, delivered and acknowledged."""

    # When the incident's first page was sent (by hand, by a rule or by the escalation).
    first_paged_at: datetime | None = None
    # When someone first acknowledged a page (an expired page acknowledged later included).
    first_acknowledged_at: datetime | None = None
    # Per person messaged: how many pages' direct messages reached them.
    received: dict[str, int] = Field(default_factory=dict)
    # Per person: how many pages they acknowledged.
    acknowledged: dict[str, int] = Field(default_factory=dict)

    def paged(self, now: datetime) -> None:
        if self.first_paged_at is None:
            self.first_paged_at = now

    def delivered(self, user_ids: list[str]) -> None:
        for user_id in dict.fromkeys(user_ids):
            self.received[user_id] = self.received.get(user_id, 0) + 1

    def acknowledged_by(self, user_id: str, now: datetime) -> None:
        if self.first_acknowledged_at is None:
            self.first_acknowledged_at = now
        self.acknowledged[user_id] = self.acknowledged.get(user_id, 0) + 1

    @classmethod
    def of(cls, pages: list[Page]) -> PagingTally:
        """The tally of these pages (an incident's state from before the tally was kept: its
        kept pages are all it knows of)."""
        acknowledged = [p for p in pages if p.status == PageStatus.ACKNOWLEDGED and p.acted_by and p.acted_at]
        tally = cls(
            first_paged_at=min((p.paged_at for p in pages), default=None),
            first_acknowledged_at=min((p.acted_at for p in acknowledged if p.acted_at), default=None),
        )
        for page in pages:
            if page.sent:
                tally.delivered([post.user_id for post in page.posts])
        for page in acknowledged:
            tally.acknowledged[page.acted_by or ""] = tally.acknowledged.get(page.acted_by or "", 0) + 1
        return tally


def page_label(page: Page, usernames: dict[str, str]) -> str:
    """How a page's target reads now: "@bob" (once the incident knows the name), "schedule db-primary"."""
    user_id = page.target.user_id
    if user_id is not None and user_id in usernames:
        return f"@{usernames[user_id]}"
    return page.label


class Escalation(Model):
    """Where the playbook's escalation is: the tier paged last (0-based), in which round, and
    until when it waits for an acknowledgement. Ended: acknowledged, exhausted, or the incident ended."""

    policy: EscalationPolicy
    tier: int = 0
    round: int = 0
    due_at: datetime | None = None
    done: bool = False
    # Why it is done: "acknowledged", "exhausted", "ended".
    outcome: str = ""

    def ack_window(self) -> timedelta:
        return timedelta(seconds=self.policy.tiers[self.tier].ack_within_seconds)


# ---------------------------------------------------------------------------- what people give


class PageFields(Model):
    """`POST /incidents/{id}/pages`: page one person or one schedule now."""

    user_id: MattermostId | None = None
    schedule_id: str | None = Field(default=None, min_length=1, max_length=SCHEDULE_ID_MAX)
    reason: str = Field(default="", max_length=REASON_MAX)

    @model_validator(mode="after")
    def _one(self) -> PageFields:
        if (self.user_id is None) == (self.schedule_id is None):
            raise ValueError("name either user_id or schedule_id")
        return self


class ScheduleFact(Model):
    """A schedule a command names, as the service found it (by id, or by its name in the team)."""

    schedule_id: str = Field(min_length=1, max_length=SCHEDULE_ID_MAX)
    name: str = Field(min_length=1, max_length=64)


# ---------------------------------------------------------------------------- the activity's seam


class SendPage(Model):
    """Send one page: resolve its target to people (a schedule: who is on call now), check each can
    be messaged, post the page with its buttons to each in a direct message."""

    incident_id: str
    team_id: str
    target: PageTarget
    message: str
    buttons: list[Button]
    # Once per page and person: a retry finds the post it made.
    dedupe_key: str


class PageDelivery(Model):
    posts: list[PagePost] = Field(default_factory=list)
    # The usernames of the people looked up (the incident names them).
    usernames: dict[str, str] = Field(default_factory=dict)
    # Who could not be messaged, and why.
    problems: list[str] = Field(default_factory=list)


class PageEdit(Model):
    post: PagePost
    message: str


class EditPages(Model):
    """Rewrite pages' direct messages (acknowledged, declined, cancelled), without their buttons."""

    edits: list[PageEdit]
