"""`PlaybookWorkflow`: a playbook is a long-lived entity workflow.

Creating one is an update-with-start: the workflow runs the playbook rules
(`playbook_rules`: team membership, the people and channels the spec names, the reminder's
limits) on the facts it is started with and answers `open_playbook` with the playbook or
the refusal; a refused playbook closes at once and reads as not found. Edits are Updates
whose validators check access, the editor's version and the same rules, so the workflow
history is the audit log of every accepted change and refused edits leave no trace. Reads
are queries; lists use the search attributes kept here. Archiving completes the workflow:
it leaves every list and can no longer start incidents, while incidents already running
keep their own snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import permissions
    from models import search_attributes as sa
    from models.playbook import (
        ArchivePlaybook,
        OpenPlaybook,
        Playbook,
        PlaybookCommand,
        PlaybookEdit,
        PlaybookSpec,
        PlaybookStart,
        UpdatePlaybook,
        describe_changes,
        summarize,
    )
    from models.refusals import conflict, forbidden, invalid, not_found
    from workflows.playbook_rules import check_create, check_spec, with_creator

SUMMARY_MEMO = "summary"


@workflow.defn
class PlaybookWorkflow:
    @workflow.init
    def __init__(self, start: PlaybookStart) -> None:
        self.refusal: ApplicationError | None = None
        self.playbook = start.playbook
        if start.creator is not None and start.facts is not None:
            self.playbook = start.playbook.model_copy(
                update={"member_ids": with_creator(start.playbook, start.creator.actor.user_id).member_ids}
            )
            try:
                check_create(start.creator, self.playbook, start.facts)
            except ApplicationError as refusal:
                # Nothing was made: the record of the refusal reads as not found everywhere.
                self.refusal = refusal
                self.playbook = self.playbook.model_copy(update={"archived": True})
        self.edits = list(start.edits)
        self._memo: dict[str, Any] = {}

    @workflow.run
    async def run(self, start: PlaybookStart) -> Playbook:
        if self.refusal is not None:
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.playbook
        while True:
            self._refresh_view()
            await workflow.wait_condition(self._changed_since(self.playbook.version))
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self.playbook.archived:
                self._refresh_view()
                return self.playbook
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(PlaybookStart(playbook=self.playbook, edits=self.edits))

    def _changed_since(self, version: int) -> Callable[[], bool]:
        return lambda: (
            self.playbook.version != version or self.playbook.archived or workflow.info().is_continue_as_new_suggested()
        )

    def _refresh_view(self) -> None:
        playbook = self.playbook
        workflow.upsert_search_attributes(
            [
                sa.PLAYBOOK_TEAM_ID.value_set(playbook.team_id),
                sa.PLAYBOOK_MEMBER_IDS.value_set(list(playbook.member_ids)),
                sa.PLAYBOOK_TITLE.value_set(playbook.title),
            ]
        )
        memo = {SUMMARY_MEMO: summarize(playbook).model_dump(mode="json")}
        if memo != self._memo:
            workflow.upsert_memo(memo)
            self._memo = memo
        state = "archived" if playbook.archived else f"version {playbook.version}"
        workflow.set_current_details(
            f"**{playbook.title}** ({state}) · {playbook.stage_count} stages, {playbook.step_count} steps · "
            f"{len(playbook.member_ids)} members · incidents are "
            f"{'public' if playbook.create_public_incident else 'private'}"
        )

    # ------------------------------------------------------------------ reads

    @workflow.query
    def get_playbook(self) -> Playbook:
        return self.playbook

    @workflow.query
    def get_history(self) -> list[PlaybookEdit]:
        return self.edits

    # ------------------------------------------------------------------ edits

    def _check_access(self, command: PlaybookCommand) -> None:
        if self.playbook.archived:
            raise not_found("Playbook not found.")
        if not permissions.can_use_playbook(
            command.actor, is_team_member=command.is_team_member, member_ids=self.playbook.member_ids
        ):
            raise forbidden("Only members of this playbook can change it.")

    @workflow.update
    def open_playbook(self, request: OpenPlaybook) -> Playbook:
        """The answer to the creation (sent with it, update-with-start): the playbook, or the rule that refused it."""
        if self.refusal is not None:
            raise self.refusal
        return self.playbook

    @workflow.update
    def update_playbook(self, command: UpdatePlaybook) -> Playbook:
        now = workflow.now()
        before = self.playbook
        self.playbook = before.with_spec(command.spec, version=before.version + 1, updated_at=now)
        self.edits.append(
            PlaybookEdit(
                version=self.playbook.version,
                editor_id=command.actor.user_id,
                at=now,
                summary=describe_changes(before, command.spec),
            )
        )
        return self.playbook

    @update_playbook.validator
    def _check_update_playbook(self, command: UpdatePlaybook) -> None:
        self._check_access(command)
        if command.expected_version != self.playbook.version:
            raise conflict(
                f"This playbook changed since you loaded it: you edited version {command.expected_version}, "
                f"but it is now at version {self.playbook.version}. Reload it and apply your changes again."
            )
        if not command.spec.member_ids:
            raise invalid("A playbook needs at least one member.")
        if command.facts is not None:
            check_spec(command.spec, command.facts)
        if command.spec == self._spec():
            raise conflict("Nothing to change: the playbook already looks like that.")

    def _spec(self) -> PlaybookSpec:
        return PlaybookSpec.model_validate(self.playbook.model_dump(include=set(PlaybookSpec.model_fields)))

    @workflow.update
    def archive_playbook(self, command: ArchivePlaybook) -> Playbook:
        self.playbook = self.playbook.model_copy(update={"archived": True, "updated_at": workflow.now()})
        self.edits.append(
            PlaybookEdit(
                version=self.playbook.version,
                editor_id=command.actor.user_id,
                at=workflow.now(),
                summary=["archived"],
            )
        )
        return self.playbook

    @archive_playbook.validator
    def _check_archive_playbook(self, command: ArchivePlaybook) -> None:
        self._check_access(command)
