"""`IncidentWorkflow`: one durable workflow per incident, from start to end (and restart).

Over 400 lines on purpose: the workflow class is one unit for Temporal (its run loop,
lanes, updates and queries share its state); the rules it runs are in incident_rules.py.

Commands arrive as Updates. Each validator calls the incident's `check_*` rule, so a
refused command is answered with its reason and leaves no trace in history; each
handler applies the change at once (the caller's reply is fast) and queues its side
effects. The main loop carries those effects out through activities, in order within
independent lanes (one per target: the incident channel, each other channel, the
header, statistics), so one failing target holds back nothing else; it fires
the status update reminder from a durable timer, keeps search attributes, memo and
Web UI details current, and continues as new before the history grows too large.
An ended incident's run stays open for its reopen window, then completes (queryable
forever); a restart reopens that run, or after the window starts a new run of the same
workflow id from the ended state (update-with-start). An operator's cancellation request
never cancels the workflow: it ends the incident (see `_heeding_cancellation`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.incident_activities import NO_ACCESS, REJECTED, IncidentActivities
    from activities.stats_activities import StatsActivities
    from activities.webhook_activities import WebhookActivities
    from models import effects
    from models import search_attributes as sa
    from models.activity_io import (
        AddMembers,
        ClearButtons,
        CreateChannel,
        EditPost,
        PostMessage,
        RespondToCommand,
        SetChannelHeader,
    )
    from models.channel_names import channel_name_for
    from models.command_table import COMMANDS, CommandSpec
    from models.custom_fields import field_terms
    from models.incident import IncidentStart, IncidentState, IncidentStatus
    from models.incident_alerts import ReceiveAlerts
    from models.incident_commands import CommandResult, IncidentCommand, InviteMembers, OpenIncident
    from models.incident_views import stats_facts, summarize, to_view
    from models.paging import EditPages, PageEdit, PageStatus, PageTarget, SendPage
    from models.refusals import invalid
    from models.webhooks import FORWARD_BATCH_MAX, ForwardEvents, WebhookGaveUp
    from workflows import incident_messages as text
    from workflows import incident_outcomes as outcomes
    from workflows.incident_due_dates import open_assignees
    from workflows.incident_paging import page_message
    from workflows.incident_retrospective import keeps_run_open, reminder_due
    from workflows.incident_rules import CHECKLIST_POST, Incident, check_start, new_incident

T = TypeVar("T")
SUMMARY_MEMO = "summary"
# What the incident is, in words, beside the workflow's own status (see `web_ui_status`).
STATUS_MEMO = "incident_status"
# The `IncidentStatus` of a run that continued as new: its continuation is the incident.
SUPERSEDED = "superseded"
# Incidents started since webhooks exist emit their events (histories recorded before do not).
WEBHOOK_EVENTS_PATCH = "webhook-events"
# Runs since `IncidentOpenAssignees` exists index who has open items (runs recorded before do not).
OPEN_ASSIGNEES_PATCH = "open-assignees"


class ActivityOptions(TypedDict):
    """The options of every effect's activity; a TypedDict keeps `execute_activity_method` typed."""

    start_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    summary: str


def _command_update(spec: CommandSpec) -> Any:
    """The Update (and its validator) of one command in the table: the rule `Incident.check_<rule>`
    decides, `Incident.<rule>` applies, both through `_check` and `_apply`."""

    def handler(self: IncidentWorkflow, command: IncidentCommand) -> CommandResult:
        return self._apply(command, getattr(self.incident, spec.rule))

    def validator(self: IncidentWorkflow, command: IncidentCommand) -> None:
        self._check(command, getattr(self.incident, f"check_{spec.rule}"))

    # The SDK converts each Update's argument to the type its handler declares.
    handler.__annotations__ = {"command": spec.command, "return": CommandResult}
    validator.__annotations__ = {"command": spec.command, "return": None}
    handler.__name__ = handler.__qualname__ = spec.name
    update = workflow.update(name=spec.name)(handler)
    update.validator(validator)
    return update


def with_command_updates(cls: type[IncidentWorkflow]) -> type[IncidentWorkflow]:
    """One Update per entry of the command table (`models.command_table.COMMANDS`)."""
    for spec in COMMANDS:
        for method in (f"check_{spec.rule}", spec.rule):
            if not callable(getattr(Incident, method, None)):
                raise TypeError(f"command {spec.name}: Incident.{method} is missing")
        setattr(cls, spec.name, _command_update(spec))
    return cls


@workflow.defn
@with_command_updates
class IncidentWorkflow:
    @workflow.init
    def __init__(self, start: IncidentStart) -> None:
        self.refusal: ApplicationError | None = None
        if start.resume is None:
            try:
                check_start(start)
            except ApplicationError as refusal:
                self.refusal = refusal
        state = start.resume or new_incident(start, workflow.now(), self._new_id)
        if self.refusal is not None:
            state.status = IncidentStatus.REFUSED
            state.failure = self.refusal.message
            state.reminder_due_at = None
        self.incident = Incident(state, self._new_id, workflow.now)
        if start.resume is None and self.refusal is None and workflow.patched(WEBHOOK_EVENTS_PATCH):
            self.incident.start_emitting()
        self._indexed: dict[str, Any] = {}
        self._memo: dict[str, Any] = {}
        # The lanes carrying out effects right now (see `effects.lane_of`).
        self._lanes: dict[str, asyncio.Task[None]] = {}
        # Lanes whose next checklist edit already waited for more changes (see `_drain`).
        self._gathered: set[str] = set()
        # This run took its operator's cancellation request (Temporal accepts one per run).
        self._cancellation_taken = False

    @staticmethod
    def _new_id() -> str:
        return workflow.uuid4().hex[:12]

    @property
    def state(self) -> IncidentState:
        return self.incident.state

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, start: IncidentStart) -> IncidentState:
        self._refresh_view()
        if self.refusal is not None:
            # Nothing was made; the record of the refusal stays queryable.
            await self._heeding_cancellation(workflow.wait_condition(workflow.all_handlers_finished))
            return self.state
        if start.resume is None:
            await self._open_channel(start)
        while True:
            self._reap_lanes()
            self._start_lanes()
            self._refresh_view()
            if self._finished() and self._reopen_deadline() is None and not keeps_run_open(self.state):
                return self.state
            if self._should_continue_as_new() and not self._lanes:
                # This run is superseded by its continuation, which carries the incident on:
                # the Web UI must not list it as the incident's status any more.
                workflow.upsert_search_attributes([sa.INCIDENT_STATUS.value_set(SUPERSEDED)])
                workflow.continue_as_new(self._continuation(start))
            await self._heeding_cancellation(self._wait_for_restart() if self._finished() else self._wait_for_work())

    async def _heeding_cancellation(self, wait: Awaitable[None]) -> None:
        """One wait of the main loop, which an operator's cancellation request may interrupt.

        The Web UI's *Request Cancellation* (or `temporal workflow cancel`) arrives as a
        cancellation of this coroutine only; lanes are tasks of their own and go on. The
        incident takes it as an end by the operator (`_take_cancellation`), and the loop goes
        on like any ended incident's: its effects are carried out, then the reopen window.
        """
        try:
            await wait
        except asyncio.CancelledError:
            if not self._take_cancellation():
                raise

    async def _despite_cancellation(self, work: asyncio.Future[T]) -> T:
        """`work`'s result. An operator's cancellation request meanwhile is taken without
        cancelling `work`: a channel being created must not be abandoned half made (the
        incident's end then follows the channel's opening in its effects)."""
        while True:
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                if not self._take_cancellation():
                    raise

    def _take_cancellation(self) -> bool:
        """Apply the operator's cancellation request to the incident; False for any other
        cancellation (the worker evicting the workflow from its cache), which must go through."""
        reason = workflow.cancellation_reason()
        if reason is None or self._cancellation_taken:
            return False
        self._cancellation_taken = True
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the request is handled: later waits must not see it again
        self.incident.end_by_operator(workflow.now(), reason)
        return True

    def _finished(self) -> bool:
        return (
            self.state.status != IncidentStatus.ONGOING
            and not self.state.outbox
            and not self._lanes
            and workflow.all_handlers_finished()
        )

    def _reopen_deadline(self) -> datetime | None:
        """Until when an ended incident's run stays open for a restart, or None once it may close.

        A restart inside the window reopens this very run, so the Web UI never shows an
        `ended` run beside the incident's live one (Temporal cannot change a closed run's
        search attributes). Failed and refused starts close at once.
        """
        deadline = self.state.reopenable_until
        return deadline if deadline is not None and workflow.now() < deadline else None

    async def _wait_for_restart(self) -> None:
        """An ended incident's run waits for a restart, a command, or its next timer: the end of
        its reopen window, or its open retrospective's reminder (`workflows.incident_retrospective`)."""
        if self.incident.remind_of_retrospective(workflow.now()):
            return
        deadline = self._reopen_deadline()
        remind = reminder_due(self.state)
        if deadline is None and remind is None:
            return
        wake = min(when for when in (deadline, remind) if when is not None)
        summary = text.reopen_window_summary(deadline) if wake == deadline else "retrospective reminder"
        with contextlib.suppress(TimeoutError):  # the window is over (the run closes), or a reminder is due
            await workflow.wait_condition(
                lambda: not self._finished() or self._should_continue_as_new() or reminder_due(self.state) != remind,
                timeout=max(0.0, (wake - workflow.now()).total_seconds()),
                timeout_summary=summary,
            )
        self.incident.remind_of_retrospective(workflow.now())

    def _should_continue_as_new(self) -> bool:
        # Pending effects travel in the state, so a busy incident need not drain them first;
        # effects under way finish first (lanes start nothing new meanwhile).
        return workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished()

    def _continuation(self, start: IncidentStart) -> IncidentStart:
        return IncidentStart.resuming(self.state, start.reporter)

    async def _wait_for_work(self) -> None:
        if self.incident.timed_work(workflow.now()):
            return
        wakes = outcomes.wakes(self.state)
        waiting = [w.at for w in wakes]
        retry = self._retry_channel_at()
        earliest = min((at for at in [*waiting, retry] if at is not None), default=None)
        timeout = max(0.0, (earliest - workflow.now()).total_seconds()) if earliest is not None else None
        summary = next((w.what for w in wakes if w.at is not None and w.at == earliest), "try the channel again")
        with contextlib.suppress(TimeoutError):  # a timer is due, or it is time to try the channel again
            await workflow.wait_condition(
                lambda: (
                    bool(self._idle_lanes())
                    or any(task.done() for task in self._lanes.values())
                    or self._finished()
                    or (self._should_continue_as_new() and not self._lanes)
                    or [w.at for w in outcomes.wakes(self.state)] != waiting
                ),
                timeout=timeout,
                timeout_summary=summary,
            )
        self.incident.timed_work(workflow.now())

    # ------------------------------------------------------------------ start

    async def _open_channel(self, start: IncidentStart) -> None:
        state = self.state
        name = channel_name_for(
            incident_id=state.id,
            name=state.name,
            template=state.playbook.channel_name_template if state.playbook else "",
            date=state.started_at.strftime("%Y-%m-%d"),
            playbook_title=state.playbook.title if state.playbook else "",
        )
        creating = workflow.start_activity_method(
            IncidentActivities.create_incident_channel,
            CreateChannel(
                team_id=state.team_id,
                name=name,
                display_name=state.name,
                purpose=state.description[:250],
                header=text.channel_header(state, state.config.details_url),
                public=state.is_public,
            ),
            **self._activity_options(f"create channel ~{name}"),
        )
        try:
            channel = await self._despite_cancellation(creating)
        except ActivityError as error:
            reason = outcomes.failure_reason(error.cause, state.config.effect_give_up_seconds)
            workflow.logger.warning("incident %s: channel creation failed: %s", state.id, reason)
            self.incident.start_failed(workflow.now(), reason, start.response_url)
            return
        self.incident.channel_ready(workflow.now(), channel.channel_id, channel.name, start.invited, start.response_url)

    # ------------------------------------------------------------------ side effects

    def _lane(self, pending: effects.PendingEffect) -> str:
        return effects.lane_of(pending.effect, self.state.channel_id)

    def _idle_lanes(self) -> list[str]:
        """Lanes with effects waiting and nothing under way, in the order their effects were queued."""
        if self._should_continue_as_new():
            return []
        lanes = [self._lane(pending) for pending in self.state.outbox]
        return [lane for lane in dict.fromkeys(lanes) if lane not in self._lanes and not self._waiting(lane)]

    def _retry_channel_at(self) -> datetime | None:
        """When the waiting incident-channel lane tries again (None: it is not waiting)."""
        lost = self.state.channel_access_lost
        if lost is None or effects.INCIDENT_CHANNEL_LANE in self._lanes or lost.retry_at <= workflow.now():
            return None
        waiting = any(self._lane(p) == effects.INCIDENT_CHANNEL_LANE for p in self.state.outbox)
        return lost.retry_at if waiting else None

    def _waiting(self, lane: str) -> bool:
        """The incident channel's lane waits while the bot cannot post there, until it is time
        to try again or something new is queued for it."""
        lost = self.state.channel_access_lost
        if lost is None or lane != effects.INCIDENT_CHANNEL_LANE or workflow.now() >= lost.retry_at:
            return False
        return not any(
            p.seq > lost.waiting_after_seq for p in self.state.outbox if self._lane(p) == effects.INCIDENT_CHANNEL_LANE
        )

    def _start_lanes(self) -> None:
        for lane in self._idle_lanes():
            self._lanes[lane] = asyncio.create_task(self._drain(lane))

    def _reap_lanes(self) -> None:
        for lane, task in list(self._lanes.items()):
            if task.done():
                del self._lanes[lane]
                task.result()  # a bug in a lane fails the workflow task (retried), never passes silently

    async def _drain(self, lane: str) -> None:
        """Carry out the lane's effects one after another, until it is empty."""
        while not self._should_continue_as_new():
            pending = next((p for p in self.state.outbox if self._lane(p) == lane), None)
            if pending is None:
                return
            if self._superseded_edit(lane, pending):
                # A later edit of the checklist waits in this lane and will show everything.
                self.state.outbox = [p for p in self.state.outbox if p.seq != pending.seq]
                continue
            gather = self._gather_seconds(lane, pending)
            if gather > 0:
                # Let the changes of the next moment join this one: a person clicking down the
                # checklist costs one edit, and a burst of commands one webhook handover, not one
                # per click (and no workflow task each).
                self._gathered.add(lane)
                with contextlib.suppress(TimeoutError):  # the usual end: the changes are gathered
                    # A continue-as-new does not wait for it: the effects travel in the state.
                    await workflow.wait_condition(
                        self._should_continue_as_new, timeout=gather, timeout_summary="gather changes"
                    )
                continue
            if isinstance(pending.effect, effects.ChannelHeaderEffect | effects.StatsEffect):
                # Rendered from the state when carried out: this one also does all queued before it.
                kind = pending.effect.kind
                self.state.outbox = [p for p in self.state.outbox if p is pending or p.effect.kind != kind]
            batch = self._batch(pending)
            if not await self._carry_out_or_report(pending, batch):
                return  # the lane waits (the bot lost the channel); the effect stays queued
            if isinstance(pending.effect, effects.ChecklistEffect | effects.WebhookEffect):
                self._gathered.discard(lane)
            done = {p.seq for p in batch}
            self.state.outbox = [p for p in self.state.outbox if p.seq not in done]

    def _batch(self, pending: effects.PendingEffect) -> list[effects.PendingEffect]:
        """What goes with `pending`: the webhook events waiting (in order, up to FORWARD_BATCH_MAX:
        a burst of changes is one activity); any other effect goes alone."""
        if not isinstance(pending.effect, effects.WebhookEffect):
            return [pending]
        waiting = [p for p in self.state.outbox if isinstance(p.effect, effects.WebhookEffect)]
        return waiting[:FORWARD_BATCH_MAX]

    def _gather_seconds(self, lane: str, pending: effects.PendingEffect) -> float:
        """How long `pending` waits for the next moment's changes to join it (0: it goes now).
        Once per carrying out, so a steady stream still goes out every so often:
        - an edit of the live checklist post (not the one making it) with nothing else queued
          behind it in its lane;
        - a webhook event, unless a full handover already waits."""
        config = self.state.config
        if lane in self._gathered:
            return 0.0
        if isinstance(pending.effect, effects.WebhookEffect):
            waiting = sum(1 for p in self.state.outbox if isinstance(p.effect, effects.WebhookEffect))
            return config.webhook_gather_seconds if waiting < FORWARD_BATCH_MAX else 0.0
        worth = (
            isinstance(pending.effect, effects.ChecklistEffect)
            and CHECKLIST_POST in self.state.post_ids
            and not any(p.seq > pending.seq and self._lane(p) == lane for p in self.state.outbox)
        )
        return config.checklist_edit_delay_seconds if worth else 0.0

    def _superseded_edit(self, lane: str, pending: effects.PendingEffect) -> bool:
        """An edit of the live checklist with another queued behind it in its lane: a burst of
        changes ends with one edit showing the final state. The first one (which makes the post,
        opening the channel) is never skipped."""
        if not isinstance(pending.effect, effects.ChecklistEffect) or CHECKLIST_POST not in self.state.post_ids:
            return False
        return any(
            p.seq > pending.seq and isinstance(p.effect, effects.ChecklistEffect) and self._lane(p) == lane
            for p in self.state.outbox
        )

    async def _carry_out_or_report(self, pending: effects.PendingEffect, batch: list[effects.PendingEffect]) -> bool:
        """Whether the effect (and its batch) is done with (carried out, or reported and skipped)."""
        lane = self._lane(pending)
        try:
            await self._carry_out(pending, batch)
        except ActivityError as error:
            what = self._describe(pending.effect)
            workflow.logger.warning("incident %s: could not %s: %s", self.state.id, what, error.cause or error)
            waiting = max(p.seq for p in self.state.outbox)
            return outcomes.effect_failed(
                self.incident, lane, what, error.cause, workflow.now(), waiting_after_seq=waiting
            )
        else:
            self.incident.effect_carried_out(workflow.now(), lane)
        return True

    def _describe(self, effect: effects.Effect) -> str:
        return outcomes.describe(self.state, effect)

    async def _carry_out(self, pending: effects.PendingEffect, batch: list[effects.PendingEffect]) -> None:
        """Carry out `pending` (with the rest of its `batch`: webhook events go over together)."""
        effect = pending.effect
        if isinstance(effect, effects.RespondEffect):
            # Needs no channel: it also tells the starter when the channel could not be made.
            await workflow.execute_activity_method(
                IncidentActivities.respond_to_command,
                RespondToCommand(response_url=effect.response_url, text=effect.text),
                **self._activity_options("reply to the slash command"),
            )
            return
        if isinstance(effect, effects.WebhookEffect):
            # Needs no channel either; quick (two reads and a signal): delivery is another workflow's.
            events = [p.effect.event for p in batch if isinstance(p.effect, effects.WebhookEffect)]
            forwarded = await workflow.execute_activity_method(
                WebhookActivities.forward_webhook_events,
                ForwardEvents(
                    incident_id=self.state.id,
                    team_id=self.state.team_id,
                    playbook_id=self.state.playbook_id,
                    events=events,
                    handed_before=self.state.webhook_handed,
                ),
                **self._activity_options(f"webhook events #{events[0].number}-{events[-1].number}"),
            )
            outcomes.webhooks_handed(self.state, forwarded)
            return
        if isinstance(effect, effects.PageEffect):
            await self._send_page(effect)
            return
        if isinstance(effect, effects.PageEditEffect):
            await self._edit_pages(effect)
            return
        if isinstance(effect, effects.DirectMessageEffect):
            await self._send_direct_message(effect, pending.seq)
            return
        channel_id = self.state.channel_id
        if channel_id is None:
            return
        if isinstance(effect, effects.PostEffect):
            target = effect.channel_id or channel_id
            here = target == channel_id
            known_name = self.state.channel_name if here else self.state.channel_names.get(target)
            post = await workflow.execute_activity_method(
                IncidentActivities.post_message,
                PostMessage(
                    channel_id=target,
                    message=effect.message,
                    dedupe_key=f"{self.state.id}:{pending.seq}",
                    incident_id=self.state.id,
                    buttons=effect.buttons,
                    pin=effect.pin,
                    channel_name=known_name or "",
                ),
                **self._activity_options("post to the incident channel" if here else f"post to channel {target}"),
            )
            outcomes.post_made(self.incident, effect, target, post, workflow.now())
        elif isinstance(effect, effects.ChecklistEffect):
            await self._update_checklist(pending, channel_id)
        elif isinstance(effect, effects.ClearButtonsEffect):
            for name in [n for n in self.state.post_ids if n.startswith(effect.post_name)]:
                if name not in self.state.post_ids:  # cleared already: it shared its post with one before
                    continue
                await workflow.execute_activity_method(
                    IncidentActivities.clear_buttons,
                    ClearButtons(post_id=self.state.post_ids[name], note=effect.note),
                    **self._activity_options("take the buttons off the reminder"),
                )
                outcomes.buttons_cleared(self.state, self.state.post_ids[name])
        elif isinstance(effect, effects.InviteEffect):
            result = await workflow.execute_activity_method(
                IncidentActivities.add_channel_members,
                AddMembers(channel_id=channel_id, users=effect.users),
                **self._activity_options(f"add {', '.join(u.mention for u in effect.users)}"),
            )
            outcomes.members_added(self.incident, effect, result, workflow.now())
        elif isinstance(effect, effects.ChannelHeaderEffect):
            await workflow.execute_activity_method(
                IncidentActivities.set_channel_header,
                SetChannelHeader(
                    channel_id=channel_id,
                    header=text.channel_header(self.state, self.state.config.details_url),
                ),
                **self._activity_options("update the channel header"),
            )
        elif isinstance(effect, effects.StatsEffect):
            await workflow.execute_activity_method(
                StatsActivities.report_incident_facts,
                stats_facts(self.state),
                **self._activity_options("report statistics"),
            )

    async def _send_page(self, effect: effects.PageEffect) -> None:
        """Send the page; what came of it goes back to the incident's rules (an undeliverable page
        escalates at once), a page Mattermost would not take within the give-up time too."""
        state = self.state
        page = next((p for p in state.pages if p.id == effect.page_id), None)
        if page is None or page.sent or page.status != PageStatus.OPEN:
            return  # answered or cancelled before it went out: nothing to send
        buttons = [
            effects.Button(
                id=text.control_id("ack", page.id), name="Acknowledge", action="page_ack", item_id=page.id,
                style="primary",
            ),
            effects.Button(
                id=text.control_id("decline", page.id), name="Decline", action="page_decline", item_id=page.id
            ),
        ]  # fmt: skip
        try:
            delivery = await workflow.execute_activity_method(
                IncidentActivities.send_page,
                SendPage(
                    incident_id=state.id,
                    team_id=state.team_id,
                    target=page.target,
                    message=page_message(state, page, ""),
                    buttons=buttons,
                    dedupe_key=f"{state.id}:page:{page.id}",
                ),
                **self._activity_options(f"page {page.label}"),
            )
        except ActivityError as error:
            delivery = outcomes.page_outcome(None, error.cause, state.config.effect_give_up_seconds)
        self.incident.page_delivered(page.id, delivery, workflow.now())

    async def _send_direct_message(self, effect: effects.DirectMessageEffect, seq: int) -> None:
        """A direct message from the bot to one person, as a page is sent (once, by its dedupe key;
        someone who cannot be messaged is said, on the timeline), without buttons."""
        state = self.state
        delivery = await workflow.execute_activity_method(
            IncidentActivities.send_page,
            SendPage(
                incident_id=state.id,
                team_id=state.team_id,
                target=PageTarget(user_id=effect.user_id),
                message=effect.message,
                buttons=[],
                dedupe_key=f"{state.id}:{seq}",
            ),
            **self._activity_options(f"tell {state.mention(effect.user_id)} of {effect.about}"),
        )
        outcomes.direct_message_sent(self.incident, effect, delivery, workflow.now())

    async def _edit_pages(self, effect: effects.PageEditEffect) -> None:
        """Rewrite the pages' direct messages as the pages are now (rendered here: the latest status)."""
        state = self.state
        edits = [
            PageEdit(post=post, message=page_message(state, page, post.user_id))
            for page in state.pages
            if page.id in effect.page_ids
            for post in page.posts
        ]
        if edits:
            await workflow.execute_activity_method(
                IncidentActivities.edit_pages, EditPages(edits=edits), **self._activity_options("update pages")
            )

    async def _update_checklist(self, pending: effects.PendingEffect, channel_id: str) -> None:
        """Edit the live checklist post in place; make it (pinned) when there is none or it was deleted."""
        state = self.state
        post = await workflow.execute_activity_method(
            IncidentActivities.edit_post,
            EditPost(
                channel_id=channel_id,
                post_id=state.post_ids.get(CHECKLIST_POST, ""),
                existing_key=state.post_keys.get(CHECKLIST_POST, ""),
                message=text.checklist_message(state),
                attachments=text.checklist_controls(state),
                dedupe_key=f"{state.id}:{pending.seq}",
                stable_key=f"{state.id}:checklist",
                incident_id=state.id,
                pin=True,
                channel_name=state.channel_name or "",
            ),
            **self._activity_options("update the checklist post"),
        )
        outcomes.checklist_posted(self.incident, pending.seq, channel_id, post, workflow.now())

    def _activity_options(self, summary: str) -> ActivityOptions:
        """Every Mattermost effect: short jittered backoff while unavailable, bounded in total.

        The activity itself sets each retry's delay (jittered, or Mattermost's `Retry-After`);
        the policy's intervals are its bounds. After `effect_give_up_seconds` the effect fails
        with a timeout and is reported (see `_carry_out_or_report`), never retried forever.
        An attempt heartbeats while it runs, so one whose worker died is retried after the
        short heartbeat timeout rather than the attempt's whole timeout (activities/attempts.py).
        """
        config = self.state.config
        ceiling = config.activity_max_retry_interval_seconds
        return ActivityOptions(
            start_to_close_timeout=timedelta(seconds=config.activity_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=config.activity_heartbeat_seconds),
            schedule_to_close_timeout=timedelta(seconds=config.effect_give_up_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=min(1.0, ceiling)),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=ceiling),
                non_retryable_error_types=[REJECTED, NO_ACCESS],
            ),
            summary=summary,
        )

    # ------------------------------------------------------------------ Web UI and visibility

    def _refresh_view(self) -> None:
        state = self.state
        workflow.set_current_details(text.current_details(state, in_reopen_window=self._reopen_deadline() is not None))
        indexed: dict[str, Any] = {
            sa.INCIDENT_TEAM_ID.name: state.team_id,
            sa.INCIDENT_STATUS.name: state.status.value,
            sa.INCIDENT_COMMANDER_ID.name: state.commander_id,
            sa.INCIDENT_PLAYBOOK_ID.name: state.playbook_id,
            sa.INCIDENT_CHANNEL_ID.name: state.channel_id,
            sa.INCIDENT_STAGE.name: state.checklists[state.active_stage].title,
            sa.INCIDENT_STARTED_AT.name: state.started_at,
            sa.INCIDENT_ENDED_AT.name: state.ended_at,
            sa.INCIDENT_MEMBER_IDS.name: list(state.member_ids),
            sa.INCIDENT_NAME.name: state.name,
            sa.INCIDENT_PUBLIC.name: state.is_public,
        }
        assignees = open_assignees(state)
        if (assignees or sa.INCIDENT_OPEN_ASSIGNEES.name in self._indexed) and self._indexes_open_assignees():
            # Only once someone has an open item (and when that changes): a run without
            # assignments upserts nothing more than before this attribute existed.
            indexed[sa.INCIDENT_OPEN_ASSIGNEES.name] = assignees or None
        if state.severity is not None:
            # Only once there is one: an incident without a severity upserts what it did before.
            indexed[sa.INCIDENT_SEVERITY.name] = state.severity.level
        terms = " ".join(field_terms(state.playbook.fields if state.playbook else [], state.field_values))
        if terms or sa.INCIDENT_FIELDS.name in self._indexed:
            # Only once a select field has a value (and when that changes), like the severity.
            indexed[sa.INCIDENT_FIELDS.name] = terms or None
        changed = {key: value for key, value in indexed.items() if self._indexed.get(key, ...) != value}
        if changed:
            workflow.upsert_search_attributes(_search_attribute_updates(changed))
            self._indexed.update(changed)
        memo = {
            SUMMARY_MEMO: summarize(state).model_dump(mode="json"),
            STATUS_MEMO: text.web_ui_status(state),
        }
        if memo != self._memo:
            workflow.upsert_memo(memo)
            self._memo = memo

    def _indexes_open_assignees(self) -> bool:
        """Whether this run keeps `IncidentOpenAssignees` (asked the first time it would: runs
        recorded before the attribute existed replay without it)."""
        return workflow.patched(OPEN_ASSIGNEES_PATCH)

    # ------------------------------------------------------------------ queries

    @workflow.query
    def get_state(self) -> IncidentState:
        return self.state

    # ------------------------------------------------------------------ commands
    #
    # Every update goes through `_check` (validator) and `_apply` (handler): a request
    # already applied (same scoped key, in this run or an earlier one) is answered again
    # without acting; a rule's refusal rejects the update and leaves no trace; and nothing
    # a command carries can fail a workflow task (which would wedge the incident).

    def _check(self, command: IncidentCommand, rule: Callable[[Any], None]) -> None:
        if self.incident.applied(command) is not None:
            return
        try:
            rule(command)
        except ApplicationError:
            raise
        except Exception as error:
            workflow.logger.exception("incident %s: a rule failed on %s", self.state.id, type(command).__name__)
            raise invalid("This command cannot be applied to this incident.") from error

    def _apply(self, command: IncidentCommand, change: Callable[[Any, datetime], str]) -> CommandResult:
        now = workflow.now()
        earlier = self.incident.applied(command)
        if earlier is not None:
            message, fingerprint = earlier.message, earlier.fingerprint
        else:
            try:
                message = change(command, now)
            except ApplicationError:
                raise
            except Exception as error:
                workflow.logger.exception("incident %s: applying %s failed", self.state.id, type(command).__name__)
                raise ApplicationError(
                    "The incident could not apply this command; it has been logged.",
                    type="Internal",
                    non_retryable=True,
                ) from error
            self.incident.remember(command, message)
            self.incident.cancel_auto_end(command.actor, now)
            fingerprint = command.request.fingerprint if command.request else ""
        changed = [u.user_id for u in command.users] if isinstance(command, InviteMembers) else []
        return CommandResult(
            message=message + self.incident.access_note(),
            incident=to_view(self.state, now),
            fingerprint=fingerprint,
            member_ids_changed=changed,
        )

    @workflow.signal
    def webhook_failed(self, failure: WebhookGaveUp) -> None:
        """A webhook subscription refused one of this incident's events, or gave up on it."""
        self.incident.webhook_failed(workflow.now(), failure)

    @workflow.update
    def open_incident(self, request: OpenIncident) -> CommandResult:
        """The answer to the start (sent with it, update-with-start): the incident, or the rule that refused it."""
        if self.refusal is not None:
            raise self.refusal
        return CommandResult(
            message=f"Incident {self.state.name!r} started.",
            incident=to_view(self.state, workflow.now()),
            fingerprint=self.state.start_fingerprint,
        )

    @workflow.update
    def receive_alerts(self, command: ReceiveAlerts) -> CommandResult:
        """A notification for the incident's alert group (sent with the start for a new one)."""
        if self.refusal is not None:
            raise self.refusal
        message = self.incident.receive_alerts(command, workflow.now())
        return CommandResult(message=message, incident=to_view(self.state, workflow.now()))

    @receive_alerts.validator
    def _check_receive_alerts(self, command: ReceiveAlerts) -> None:
        if self.refusal is not None:
            return  # the handler answers with the refusal of the start
        try:
            self.incident.check_receive_alerts(command)
        except ApplicationError:
            raise
        except Exception as error:
            workflow.logger.exception("incident %s: a rule failed on alerts", self.state.id)
            raise invalid("These alerts cannot be applied to this incident.") from error


def _search_attribute_updates(values: dict[str, Any]) -> list[SearchAttributeUpdate[Any]]:
    keys = {key.name: key for key in sa.ALL}
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in values.items():
        key = keys[name]
        updates.append(key.value_unset() if value is None else key.value_set(value))
    return updates
