"""`TeamSettingsWorkflow`: what a team's admins decide for all of its incidents (its severity levels).

An entity workflow like a schedule's: started by the first change (update-with-start), changed by
Updates whose validators refuse what may not be done (no trace in history), so its history is the
audit log of every change. Its memo holds the settings: the service reads them with `describe`,
which needs no worker and sees a change as soon as it is answered (the memo is written in the same
workflow task). It only waits, and continues as new when its history grows long.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.refusals import conflict, forbidden, invalid
    from models.severity import SEVERITY_LEVELS_MAX, SEVERITY_LEVELS_MIN, TeamSeverities, listed
    from models.team_settings import SetSeverityLevels, TeamSettings

SETTINGS_MEMO = "settings"


def check_set_severity_levels(settings: TeamSettings, command: SetSeverityLevels) -> None:
    """Team admins (and system admins) change the levels: 2 to 10, numbered 1, 2, ... in order,
    from the version the admin was looking at."""
    if not (command.actor.is_system_admin or command.is_team_admin):
        raise forbidden("Only team admins can change this team's severity levels.")
    levels = command.levels
    if not SEVERITY_LEVELS_MIN <= len(levels) <= SEVERITY_LEVELS_MAX:
        raise invalid(f"A team has {SEVERITY_LEVELS_MIN} to {SEVERITY_LEVELS_MAX} severity levels.", "levels")
    if [level.level for level in levels] != list(range(1, len(levels) + 1)):
        raise invalid("Severity levels are numbered 1, 2, 3... in order.", "levels")
    if command.expected_version is not None and command.expected_version != settings.version:
        raise conflict(
            f"The severity levels changed since you opened them (version {command.expected_version}, now "
            f"{settings.version}: {listed(settings.severity_levels)}). Nothing was changed; look again."
        )


@workflow.defn
class TeamSettingsWorkflow:
    @workflow.init
    def __init__(self, start: TeamSettings) -> None:
        self.state = start
        self._memo: dict[str, Any] = {}

    @workflow.run
    async def run(self, start: TeamSettings) -> None:
        self._refresh_view()
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.state)

    def _refresh_view(self) -> None:
        memo = {SETTINGS_MEMO: self.state.model_dump(mode="json")}
        if memo != self._memo:
            # In the same workflow task as the change: the next read sees it.
            workflow.upsert_memo(memo)
            self._memo = memo
        levels = "\n".join(f"- {level.level}. **{level.name}** ({level.colour}): {level.description}"
                           for level in self.state.severity_levels)  # fmt: skip
        workflow.set_current_details(
            f"**Settings of team {self.state.team_id}** (version {self.state.version})\n\n**Severity levels**\n{levels}"
        )

    @workflow.query
    def severities(self) -> TeamSeverities:
        return self.state.severities()

    @workflow.update
    def set_severity_levels(self, command: SetSeverityLevels) -> TeamSeverities:
        state = self.state
        state.severity_levels = list(command.levels)
        state.version += 1
        state.updated_at = command.at
        state.updated_by = command.actor.user_id
        self._refresh_view()
        return state.severities()

    @set_severity_levels.validator
    def _check_set_severity_levels(self, command: SetSeverityLevels) -> None:
        check_set_severity_levels(self.state, command)
