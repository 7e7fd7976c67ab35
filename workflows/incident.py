"""`IncidentWorkflow`: one durable workflow per incident, from start to end (and restart).

Commands arrive as Updates. Each validator calls the incident's `check_*` rule, so a
refused command is answered with its reason and leaves no trace in history; each
handler applies the change at once (the caller's reply is fast) and queues its side
effects. The main loop carries those effects out in order through activities, fires
the status update reminder from a durable timer, keeps search attributes, memo and
Web UI details current, and continues as new before the history grows too large.
Ending completes the workflow (closed in the Web UI, queryable forever); restarting
starts a new run of the same workflow id from the ended state (update-with-start).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models import search_attributes as sa
    from models.activities import (
        AddMembers,
        AddMembersResult,
        ChannelRef,
        CreateChannel,
        PostMessage,
        PostRef,
        RespondToCommand,
        SetChannelHeader,
    )
    from models.errors import invalid
    from models.incident import (
        ChannelHeaderEffect,
        IncidentStart,
        IncidentState,
        IncidentStatus,
        InviteEffect,
        PendingEffect,
        PostEffect,
        RespondEffect,
        StatsEffect,
        channel_name_for,
        facts,
        ongoing_seconds,
        summarize,
        to_view,
    )
    from models.incident_commands import (
        AddItem,
        Announce,
        AssignItem,
        ChangeCommander,
        ChangeStage,
        CommandResult,
        EditItem,
        EndIncident,
        IncidentCommand,
        InviteMembers,
        MoveItem,
        OpenIncident,
        PostStatusUpdate,
        RemoveItem,
        RestartIncident,
        RunItemCommand,
        SetItemState,
        SetReminder,
        SnoozeReminder,
    )
    from workflows import incident_messages as text
    from workflows.incident_state import Incident, check_start, new_incident

REJECTED = "MattermostRejected"
SUMMARY_MEMO = "summary"


@workflow.defn
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
        self.incident = Incident(state, self._new_id)
        self._indexed: dict[str, Any] = {}
        self._memo: dict[str, Any] = {}

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
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.state
        if start.resume is None:
            await self._open_channel(start)
        while True:
            await self._carry_out_effects()
            self._refresh_view()
            if self._finished():
                return self.state
            if self._should_continue_as_new():
                workflow.continue_as_new(self._continuation(start))
            await self._wait_for_work()

    def _finished(self) -> bool:
        return (
            self.state.status != IncidentStatus.ONGOING and not self.state.outbox and workflow.all_handlers_finished()
        )

    def _should_continue_as_new(self) -> bool:
        # Pending effects travel in the state, so a busy incident need not drain them first.
        return workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished()

    def _continuation(self, start: IncidentStart) -> IncidentStart:
        return IncidentStart.resuming(self.state, start.reporter)

    async def _wait_for_work(self) -> None:
        if self.incident.reminder_is_due(workflow.now()):
            self.incident.send_reminder(workflow.now())
            return
        due = self.state.reminder_due_at if self.state.status == IncidentStatus.ONGOING else None
        timeout = (due - workflow.now()).total_seconds() if due else None
        with contextlib.suppress(TimeoutError):  # the reminder is due
            await workflow.wait_condition(
                lambda: (
                    bool(self.state.outbox)
                    or self._finished()
                    or self._should_continue_as_new()
                    or self.state.reminder_due_at != due
                ),
                timeout=timeout,
                timeout_summary="status update reminder",
            )
        now = workflow.now()
        if self.incident.reminder_is_due(now):
            self.incident.send_reminder(now)

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
        try:
            channel = await self._activity(
                "create_incident_channel",
                CreateChannel(
                    team_id=state.team_id,
                    name=name,
                    display_name=state.name,
                    purpose=state.description[:250],
                    header=text.channel_header(state, state.config.details_url),
                    public=state.is_public,
                ),
                ChannelRef,
                summary=f"create channel ~{name}",
            )
        except ActivityError as error:
            reason = _reason(error)
            workflow.logger.warning("incident %s: channel creation failed: %s", state.id, reason)
            self.incident.start_failed(workflow.now(), reason, start.response_url)
            return
        self.incident.channel_ready(channel.channel_id, channel.name, start.invited, start.response_url)

    # ------------------------------------------------------------------ side effects

    async def _carry_out_effects(self) -> None:
        while self.state.outbox and not self._should_continue_as_new():
            pending = self.state.outbox[0]
            try:
                await self._carry_out(pending)
            except ActivityError as error:
                # Only refusals end up here (unavailability is retried); never block the rest.
                workflow.logger.warning(
                    "incident %s: effect %s (%s) refused: %s",
                    self.state.id,
                    pending.seq,
                    pending.effect.kind,
                    _reason(error),
                )
            self.state.outbox.pop(0)

    async def _carry_out(self, pending: PendingEffect) -> None:
        effect = pending.effect
        if isinstance(effect, RespondEffect):
            # Needs no channel: it also tells the starter when the channel could not be made.
            await self._activity(
                "respond_to_command",
                RespondToCommand(response_url=effect.response_url, text=effect.text),
                type(None),
                summary="reply to the slash command",
            )
            return
        channel_id = self.state.channel_id
        if channel_id is None:
            return
        if isinstance(effect, PostEffect):
            target = effect.channel_id or channel_id
            where = "the incident channel" if target == channel_id else f"channel {target}"
            post = await self._activity(
                "post_message",
                PostMessage(
                    channel_id=target,
                    message=effect.message,
                    dedupe_key=f"{self.state.id}:{pending.seq}",
                    incident_id=self.state.id,
                    buttons=effect.buttons,
                    pin=effect.pin,
                ),
                PostRef,
                summary=f"post to {where}",
            )
            if effect.remember_as:
                self.state.post_ids[effect.remember_as] = post.post_id
        elif isinstance(effect, InviteEffect):
            result = await self._activity(
                "add_channel_members",
                AddMembers(channel_id=channel_id, users=effect.users),
                AddMembersResult,
                summary=f"add {', '.join(u.mention for u in effect.users)}",
            )
            self.incident.members_added(result.added, workflow.now())
            for failure in result.failed:
                self.incident.invite_failed(workflow.now(), effect.actor_id, failure.user, failure.reason)
        elif isinstance(effect, ChannelHeaderEffect):
            await self._activity(
                "set_channel_header",
                SetChannelHeader(
                    channel_id=channel_id,
                    header=text.channel_header(self.state, self.state.config.details_url),
                ),
                type(None),
                summary="update the channel header",
            )
        elif isinstance(effect, StatsEffect):
            await self._activity("report_incident_facts", facts(self.state), type(None), summary="report statistics")

    async def _activity(self, name: str, arg: Any, result_type: type[Any], *, summary: str) -> Any:
        config = self.state.config
        ceiling = config.activity_max_retry_interval_seconds
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=config.activity_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=min(1.0, ceiling)),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=ceiling),
                non_retryable_error_types=[REJECTED],
            ),
            summary=summary,
        )

    # ------------------------------------------------------------------ Web UI and visibility

    def _refresh_view(self) -> None:
        state = self.state
        now = workflow.now()
        workflow.set_current_details(text.current_details(state, ongoing_seconds(state.periods, now)))
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
        changed = {key: value for key, value in indexed.items() if self._indexed.get(key, ...) != value}
        if changed:
            workflow.upsert_search_attributes(_search_attribute_updates(changed))
            self._indexed.update(changed)
        memo = {SUMMARY_MEMO: summarize(state).model_dump(mode="json")}
        if memo != self._memo:
            workflow.upsert_memo(memo)
            self._memo = memo

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
            fingerprint = command.request.fingerprint if command.request else ""
        changed = [u.user_id for u in command.users] if isinstance(command, InviteMembers) else []
        return CommandResult(
            message=message, incident=to_view(self.state, now), fingerprint=fingerprint, member_ids_changed=changed
        )

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
    def change_stage(self, command: ChangeStage) -> CommandResult:
        return self._apply(command, self.incident.change_stage)

    @change_stage.validator
    def _check_change_stage(self, command: ChangeStage) -> None:
        self._check(command, self.incident.check_change_stage)

    @workflow.update
    def set_item_state(self, command: SetItemState) -> CommandResult:
        return self._apply(command, self.incident.set_item_state)

    @set_item_state.validator
    def _check_set_item_state(self, command: SetItemState) -> None:
        self._check(command, self.incident.check_set_item_state)

    @workflow.update
    def assign_item(self, command: AssignItem) -> CommandResult:
        return self._apply(command, self.incident.assign_item)

    @assign_item.validator
    def _check_assign_item(self, command: AssignItem) -> None:
        self._check(command, self.incident.check_assign_item)

    @workflow.update
    def add_item(self, command: AddItem) -> CommandResult:
        return self._apply(command, self.incident.add_item)

    @add_item.validator
    def _check_add_item(self, command: AddItem) -> None:
        self._check(command, self.incident.check_add_item)

    @workflow.update
    def edit_item(self, command: EditItem) -> CommandResult:
        return self._apply(command, self.incident.edit_item)

    @edit_item.validator
    def _check_edit_item(self, command: EditItem) -> None:
        self._check(command, self.incident.check_edit_item)

    @workflow.update
    def remove_item(self, command: RemoveItem) -> CommandResult:
        return self._apply(command, self.incident.remove_item)

    @remove_item.validator
    def _check_remove_item(self, command: RemoveItem) -> None:
        self._check(command, self.incident.check_remove_item)

    @workflow.update
    def move_item(self, command: MoveItem) -> CommandResult:
        return self._apply(command, self.incident.move_item)

    @move_item.validator
    def _check_move_item(self, command: MoveItem) -> None:
        self._check(command, self.incident.check_move_item)

    @workflow.update
    def run_item_command(self, command: RunItemCommand) -> CommandResult:
        return self._apply(command, self.incident.run_item_command)

    @run_item_command.validator
    def _check_run_item_command(self, command: RunItemCommand) -> None:
        self._check(command, self.incident.check_run_item_command)

    @workflow.update
    def change_commander(self, command: ChangeCommander) -> CommandResult:
        return self._apply(command, self.incident.change_commander)

    @change_commander.validator
    def _check_change_commander(self, command: ChangeCommander) -> None:
        self._check(command, self.incident.check_change_commander)

    @workflow.update
    def invite_members(self, command: InviteMembers) -> CommandResult:
        return self._apply(command, self.incident.invite_members)

    @invite_members.validator
    def _check_invite_members(self, command: InviteMembers) -> None:
        self._check(command, self.incident.check_invite_members)

    @workflow.update
    def post_status_update(self, command: PostStatusUpdate) -> CommandResult:
        return self._apply(command, self.incident.post_status_update)

    @post_status_update.validator
    def _check_post_status_update(self, command: PostStatusUpdate) -> None:
        self._check(command, self.incident.check_post_status_update)

    @workflow.update
    def set_reminder(self, command: SetReminder) -> CommandResult:
        return self._apply(command, self.incident.set_reminder)

    @set_reminder.validator
    def _check_set_reminder(self, command: SetReminder) -> None:
        self._check(command, self.incident.check_set_reminder)

    @workflow.update
    def snooze_reminder(self, command: SnoozeReminder) -> CommandResult:
        return self._apply(command, self.incident.snooze_reminder)

    @snooze_reminder.validator
    def _check_snooze_reminder(self, command: SnoozeReminder) -> None:
        self._check(command, self.incident.check_snooze_reminder)

    @workflow.update
    def announce(self, command: Announce) -> CommandResult:
        return self._apply(command, self.incident.announce)

    @announce.validator
    def _check_announce(self, command: Announce) -> None:
        self._check(command, self.incident.check_announce)

    @workflow.update
    def end_incident(self, command: EndIncident) -> CommandResult:
        return self._apply(command, self.incident.end)

    @end_incident.validator
    def _check_end_incident(self, command: EndIncident) -> None:
        self._check(command, self.incident.check_end)

    @workflow.update
    def restart_incident(self, command: RestartIncident) -> CommandResult:
        return self._apply(command, self.incident.restart)

    @restart_incident.validator
    def _check_restart_incident(self, command: RestartIncident) -> None:
        self._check(command, self.incident.check_restart)


def _search_attribute_updates(values: dict[str, Any]) -> list[SearchAttributeUpdate[Any]]:
    keys = {key.name: key for key in sa.ALL}
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in values.items():
        key = keys[name]
        updates.append(key.value_unset() if value is None else key.value_set(value))
    return updates


def _reason(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)
