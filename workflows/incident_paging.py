"""The incident's paging rules: who is paged, when the escalation moves on, and what an
acknowledgement, a decline, an undeliverable page and the end do.

Pure and deterministic, like `workflows.incident_rules`, whose `Incident` takes these rules
in (`PagingRules` is one of its bases): a command's `check_*` refuses, its rule changes the
state, records, and queues effects. Everything is decided inside the incident's workflow,
one message at a time, so a deadline and an acknowledgement in the same second have one
outcome: whichever came first applies, the other sees its result.

- A playbook's escalation (`IncidentState.escalation`) pages its first tier when the
  incident's channel is ready, then waits the tier's `ack_within`; when that passes without
  an acknowledgement (`escalate_if_due`, from the workflow's main wait), the tier's open
  pages expire and the next tier is paged, then every tier again `repeat` times; after the
  last, the channel is told that nobody acknowledged and who was tried.
- A tier whose every page was declined or could not be delivered moves on at once.
- An acknowledgement (of any page, by hand or by the policy, open or expired in time) stops
  the escalation, brings the person into the channel, and every open page's message says who
  acknowledged. An answered page answers again with what happened, and changes nothing.
- The end cancels every open page (their messages say so) and the escalation.
- The statistics' figures (`IncidentState.paging_tally`: the first page, the first
  acknowledgement, pages reaching and acknowledged by each person) are counted as pages are
  sent, delivered and acknowledged, exact beyond the pages kept; a delivery that reached
  someone and an acknowledgement report the incident's facts again at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import permissions
from models.common import Actor, UserFact
from models.effects import Effect, InviteEffect, PageEditEffect, PageEffect, StatsEffect
from models.incident import EventType, IncidentState, IncidentStatus
from models.incident_commands import AcknowledgePage, DeclinePage, IncidentCommand, PageSomeone
from models.paging import (
    PAGES_KEPT,
    Escalation,
    EscalationPolicy,
    Page,
    PageDelivery,
    PageStatus,
    PageTarget,
    page_label,
)
from models.refusals import ENDED, conflict, invalid, not_found
from workflows import incident_messages as text

# Who pages for the escalation policy and the playbook's rules (`incident_rules.SYSTEM_ACTOR`).
SYSTEM = "system"


def escalation_due_at(state: IncidentState) -> datetime | None:
    """When the escalation moves on unless someone acknowledges (None: nothing is waiting)."""
    escalation = state.escalation
    if escalation is None or escalation.done or state.status != IncidentStatus.ONGOING:
        return None
    return escalation.due_at


def tier_pages(state: IncidentState, tier: int, round_: int) -> list[Page]:
    return [p for p in state.pages if p.tier == tier and p.round == round_]


def tried(state: IncidentState) -> list[str]:
    """Who the escalation paged, in order, once each."""
    return list(dict.fromkeys(page_label(p, state.usernames) for p in state.pages if p.tier is not None))


def page_message(state: IncidentState, page: Page, user_id: str) -> str:
    """A page's direct message to `user_id`, as its status is now."""
    channel = f" (~{state.channel_name})" if state.channel_name else ""
    lines = [f"**You are paged** for incident **{text.incident_name(state.name)}**{channel}."]
    if state.severity is not None:
        lines.append(f"Severity: **{state.severity.name}**")
    elif state.source is not None and state.source.severity:
        # What the alerts that opened it say, when they name none of the team's levels.
        lines.append(f"Severity: **{text.plain(state.source.severity)}**")
    if page.reason:
        lines.append(f"Reason: {text.plain(page.reason)}")
    who = state.mention(page.paged_by)
    if page.paged_by == SYSTEM:
        who = "the playbook's escalation policy" if page.tier is not None else "the playbook's rules"
    lines.append(f"Paged by {who}" + (f" (tier {page.tier + 1})." if page.tier is not None else "."))
    lines.append(_status_line(state, page, user_id))
    return "\n".join(line for line in lines if line)


def _status_line(state: IncidentState, page: Page, user_id: str) -> str:
    at = f" at {text.clock(state, page.acted_at)}" if page.acted_at else ""
    if page.status == PageStatus.ACKNOWLEDGED:
        if page.acted_by == user_id:
            return f"**You acknowledged**{at}; you are being added to the incident channel."
        return f"**Acknowledged by {state.mention(page.acted_by)}**{at}."
    if page.status == PageStatus.EXPIRED and page.acted_by:
        return f"**Acknowledged by {state.mention(page.acted_by)}**{at}: nothing to do."
    if page.status == PageStatus.DECLINED:
        return f"**Declined**{at}."
    if page.status == PageStatus.CANCELLED:
        return "**Cancelled:** the incident ended."
    return "Acknowledge to take it (you are added to the incident channel), or decline to page the next person."


class PagingRules:
    """The paging half of `Incident` (see `workflows.incident_rules`); these stubs are its own."""

    state: IncidentState
    _new_id: Callable[[], str]

    def enqueue(self, effect: Effect) -> None:
        raise NotImplementedError

    def record(
        self,
        now: datetime,
        actor: Actor | str,
        kind: EventType,
        summary: str,
        details: dict[str, Any] | None = None,
        *,
        post: bool | None = None,
    ) -> None:
        raise NotImplementedError

    def learn(self, actor: Actor, now: datetime) -> None:
        raise NotImplementedError

    def learn_user(self, user: UserFact) -> None:
        raise NotImplementedError

    def refresh_checklist(self) -> None:
        raise NotImplementedError

    def _check_change(self, command: IncidentCommand) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ sending

    def _send_page(
        self,
        now: datetime,
        target: PageTarget,
        label: str,
        *,
        paged_by: str,
        reason: str,
        tier: int | None,
        round_: int,
    ) -> Page:
        state = self.state
        page = Page(
            id=self._new_id(),
            target=target,
            label=label,
            tier=tier,
            round=round_,
            reason=reason,
            paged_by=paged_by,
            paged_at=now,
            user_ids=[target.user_id] if target.user_id else [],
        )
        state.pages.append(page)
        state.paging_tally.paged(now)
        if len(state.pages) > PAGES_KEPT:
            del state.pages[: len(state.pages) - PAGES_KEPT]
        self.enqueue(PageEffect(page_id=page.id))
        where = f" (tier {tier + 1}{f', round {round_ + 1}' if round_ else ''})" if tier is not None else ""
        because = f": {text.plain(reason)}" if reason else ""
        who = "Paging" if paged_by == SYSTEM else f"{state.mention(paged_by)} is paging"
        self.record(
            now,
            paged_by,
            EventType.PAGED,
            f"{who} {label}{where}{because}",
            {"page_id": page.id, "target": target.model_dump(exclude_none=True), "tier": tier, "round": round_},
        )
        self.refresh_checklist()
        return page

    def _target_label(self, target: PageTarget) -> str:
        if target.user_id is not None:
            return self.state.mention(target.user_id)
        return f"schedule {target.schedule_id}"

    # ------------------------------------------------------------------ the escalation policy

    def start_escalation(self, policy: EscalationPolicy, now: datetime) -> None:
        """An incident of a playbook with an escalation policy pages its first tier at once."""
        self.state.escalation = Escalation(policy=policy)
        self._page_tier(now)

    def _page_tier(self, now: datetime) -> None:
        escalation = self.state.escalation
        assert escalation is not None
        tier = escalation.policy.tiers[escalation.tier]
        escalation.due_at = now + escalation.ack_window()
        for target in tier.targets:
            self._send_page(
                now,
                target,
                self._target_label(target),
                paged_by=SYSTEM,
                reason="",
                tier=escalation.tier,
                round_=escalation.round,
            )

    def escalate_if_due(self, now: datetime) -> bool:
        """The tier's time ran out without an acknowledgement: the next tier is paged (once,
        however long the workers were down). Whether anything was due."""
        due = escalation_due_at(self.state)
        if due is None or now < due:
            return False
        escalation = self.state.escalation
        assert escalation is not None
        for page in tier_pages(self.state, escalation.tier, escalation.round):
            if page.status == PageStatus.OPEN:
                page.status = PageStatus.EXPIRED
        window = text.format_duration(escalation.ack_window().total_seconds())
        self._escalate(now, f"Nobody acknowledged within {window}")
        return True

    def _escalate(self, now: datetime, why: str) -> None:
        """Page the next tier (or start the next round), or tell the channel nobody acknowledged."""
        escalation = self.state.escalation
        assert escalation is not None
        policy = escalation.policy
        if escalation.tier + 1 < len(policy.tiers):
            escalation.tier += 1
        elif escalation.round < policy.repeat:
            escalation.round += 1
            escalation.tier = 0
        else:
            escalation.done = True
            escalation.outcome = "exhausted"
            escalation.due_at = None
            names = ", ".join(tried(self.state)) or "nobody"
            self.record(
                now,
                SYSTEM,
                EventType.ESCALATION_EXHAUSTED,
                f"Nobody acknowledged: tried {names}",
                {"tried": tried(self.state)},
            )
            self.refresh_checklist()
            return
        self.record(
            now,
            SYSTEM,
            EventType.ESCALATED,
            f"{why}: escalating to tier {escalation.tier + 1}",
            {"tier": escalation.tier, "round": escalation.round},
            post=False,
        )
        self._page_tier(now)

    def _tier_settled(self, page: Page) -> bool:
        """Whether `page` belongs to the escalation's current tier and none of that tier's pages
        is still waiting: declined or undeliverable all, so the escalation moves on at once."""
        escalation = self.state.escalation
        if escalation is None or escalation.done or self.state.status != IncidentStatus.ONGOING:
            return False
        if page.tier != escalation.tier or page.round != escalation.round:
            return False
        return all(p.status != PageStatus.OPEN for p in tier_pages(self.state, escalation.tier, escalation.round))

    # ------------------------------------------------------------------ /incident page

    def check_page(self, command: PageSomeone) -> None:
        self._check_change(command)
        target = command.target
        if isinstance(target, UserFact):
            if target.is_bot:
                raise invalid(f"{target.mention} is a bot and cannot be paged.")
            if not target.is_team_member:
                raise invalid(f"{target.mention} is not in this team; only team members can be paged.")
            if target.user_id == command.actor.user_id:
                raise invalid("You cannot page yourself.")

    def page(self, command: PageSomeone, now: datetime) -> str:
        self.learn(command.actor, now)
        target = command.target
        if isinstance(target, UserFact):
            self.learn_user(target)
            page_target, label = PageTarget(user_id=target.user_id), target.mention
        else:
            page_target, label = PageTarget(schedule_id=target.schedule_id), f"schedule {target.name}"
        self._send_page(
            now, page_target, label, paged_by=command.actor.user_id, reason=command.reason, tier=None, round_=0
        )
        return f"Paging {label}."

    def page_by_rule(self, rule: str, user_ids: list[str], reason: str, now: datetime) -> str:
        """A playbook rule's `page` action: each person paged like a page by hand, by the rule."""
        labels = []
        for user_id in user_ids:
            label = self.state.mention(user_id)
            labels.append(label)
            self._send_page(
                now,
                PageTarget(user_id=user_id),
                label,
                paged_by=SYSTEM,
                reason=reason or f"rule {rule}",
                tier=None,
                round_=0,
            )
        return f"paged {', '.join(labels)}"

    # ------------------------------------------------------------------ what the activity found

    def page_delivered(self, page_id: str, delivery: PageDelivery, now: datetime) -> None:
        """The page's direct messages were posted (or none could be): an undeliverable page is
        recorded, and its tier moves on at once when nobody else of it is waiting."""
        page = next((p for p in self.state.pages if p.id == page_id), None)
        if page is None:
            return
        first_delivery = not page.sent  # (the paging lane sends a page only while it is unsent)
        page.sent = True
        page.posts = delivery.posts
        if delivery.posts and first_delivery:
            self.state.paging_tally.delivered([post.user_id for post in delivery.posts])
            self.enqueue(StatsEffect())
        self.state.usernames.update(delivery.usernames)
        page.user_ids = list(dict.fromkeys([*page.user_ids, *(p.user_id for p in delivery.posts)]))
        if page.status != PageStatus.OPEN and page.posts:
            # Answered or cancelled while it was being sent: its messages say so at once.
            self.enqueue(PageEditEffect(page_ids=[page.id]))
        if delivery.posts or page.status != PageStatus.OPEN:
            return
        page.status = PageStatus.UNREACHABLE
        page.acted_at = now
        page.problem = "; ".join(delivery.problems)[:500] or "nobody could be messaged"
        self.record(
            now,
            SYSTEM,
            EventType.PAGE_UNREACHABLE,
            f"Could not page {page_label(page, self.state.usernames)}: {page.problem}",
            {"page_id": page.id, "problem": page.problem},
        )
        self.refresh_checklist()
        if self._tier_settled(page):
            self._escalate(now, f"Could not page {page_label(page, self.state.usernames)}")

    # ------------------------------------------------------------------ acknowledge and decline

    def _answered_page(self, command: AcknowledgePage | DeclinePage) -> Page:
        """The page the command answers, if the actor is the person paged (whether or not they
        may see the incident: `permissions.may_answer_page`)."""
        state = self.state
        page = next((p for p in state.pages if p.id == command.page_id), None)
        ended = state.status != IncidentStatus.ONGOING
        if page is None or not permissions.may_answer_page(command.actor, page.user_ids):
            if ended and permissions.may_see_incident(command.actor, state):
                raise conflict(ENDED)
            # What someone not paged reads is what anyone reads of a page that does not exist.
            raise not_found("There is no such page for you. Only the person paged can answer a page.")
        if page.status == PageStatus.CANCELLED or ended:
            raise conflict(ENDED)
        if page.status == PageStatus.ACKNOWLEDGED:
            raise conflict(f"Already acknowledged by {self.state.mention(page.acted_by)}.")
        if page.status == PageStatus.EXPIRED and page.acted_by:
            raise conflict(f"Already acknowledged by {self.state.mention(page.acted_by)}.")
        if page.status == PageStatus.DECLINED:
            raise conflict("You declined this page.")
        if page.status == PageStatus.UNREACHABLE:
            raise conflict(f"This page could not be delivered ({page.problem}); ask the commander to page you again.")
        return page

    def check_acknowledge_page(self, command: AcknowledgePage) -> None:
        self._answered_page(command)

    def acknowledge_page(self, command: AcknowledgePage, now: datetime) -> str:
        """The person paged takes it: on the timeline, into the channel, the escalation stops,
        and every open page (this one's included) says who acknowledged."""
        state = self.state
        page = self._answered_page(command)
        actor = command.actor
        if actor.username:
            state.usernames[actor.user_id] = actor.username
        page.status = PageStatus.ACKNOWLEDGED
        page.acted_at, page.acted_by = now, actor.user_id
        # Time to acknowledge and acknowledgements per person: told to the statistics at once.
        state.paging_tally.acknowledged_by(actor.user_id, now)
        self.enqueue(StatsEffect())
        edited = [page.id]
        for other in state.pages:
            if other.status == PageStatus.OPEN:
                other.status = PageStatus.EXPIRED
                other.acted_at, other.acted_by = now, actor.user_id
                edited.append(other.id)
            elif other.status == PageStatus.EXPIRED and other.acted_by is None:
                # Not acknowledged in time, its buttons still stood: answered now too.
                other.acted_at, other.acted_by = now, actor.user_id
                edited.append(other.id)
        if state.escalation is not None and not state.escalation.done:
            state.escalation.done = True
            state.escalation.outcome = "acknowledged"
            state.escalation.due_at = None
        self.enqueue(PageEditEffect(page_ids=edited))
        inviting = actor.user_id not in state.member_ids and not actor.is_channel_member
        if inviting:
            user = UserFact(user_id=actor.user_id, username=actor.username or actor.user_id, is_channel_member=False)
            self.enqueue(InviteEffect(actor_id=actor.user_id, users=[user]))
        self.record(
            now,
            actor,
            EventType.PAGE_ACKNOWLEDGED,
            f"{actor.mention} acknowledged the page{f' to {page.label}' if page.target.schedule_id else ''}",
            {"page_id": page.id, "tier": page.tier},
        )
        self.refresh_checklist()
        return "Acknowledged: you are being added to the incident channel." if inviting else "Acknowledged."

    def check_decline_page(self, command: DeclinePage) -> None:
        self._answered_page(command)

    def decline_page(self, command: DeclinePage, now: datetime) -> str:
        """The person paged cannot take it: their tier moves on at once once nobody else of it waits."""
        page = self._answered_page(command)
        actor = command.actor
        if actor.username:
            self.state.usernames[actor.user_id] = actor.username
        page.status = PageStatus.DECLINED
        page.acted_at, page.acted_by = now, actor.user_id
        self.enqueue(PageEditEffect(page_ids=[page.id]))
        self.record(now, actor, EventType.PAGE_DECLINED, f"{actor.mention} declined the page", {"page_id": page.id})
        self.refresh_checklist()
        if self._tier_settled(page):
            self._escalate(now, f"{actor.mention} declined")
            return "Declined: the next person is being paged."
        return "Declined."

    # ------------------------------------------------------------------ the end

    def cancel_pages(self, now: datetime) -> None:
        """The incident ended: its open pages are cancelled (their messages say so), the escalation stops."""
        state = self.state
        cancelled = [p for p in state.pages if p.status == PageStatus.OPEN]
        for page in cancelled:
            page.status = PageStatus.CANCELLED
            page.acted_at = now
        if state.escalation is not None and not state.escalation.done:
            state.escalation.done = True
            state.escalation.outcome = "ended"
            state.escalation.due_at = None
        sent = [p.id for p in cancelled if p.posts]
        if sent:
            self.enqueue(PageEditEffect(page_ids=sent))
