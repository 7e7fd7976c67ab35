"""The rules of integrations: who may change them and what a valid one is.

Pure (no Temporal calls, no I/O): the service gathers the facts (is the actor an admin of
the integration's team, which of the playbooks and commanders the spec names exist in the
team) and the `IntegrationWorkflow` validators run these over them.
"""

from __future__ import annotations

from models.integration import IntegrationCommand, IntegrationSpec
from models.refusals import forbidden, invalid_fields
from models.severity import SeverityUnknown, listed, parse_severity

NOT_FOUND = "Integration not found."


def check_admin(command: IntegrationCommand) -> None:
    """Only the team's admins and system admins see or change its integrations."""
    if not (command.actor.is_system_admin or command.is_team_admin):
        raise forbidden("Only team admins can manage this team's integrations.")


def check_spec(command: IntegrationCommand, spec: IntegrationSpec) -> None:
    """Every playbook and commander the spec names exists in the team (and can serve)."""
    problems: dict[str, str] = {}
    if spec.playbook_id is not None and spec.playbook_id not in command.playbooks:
        problems["playbook_id"] = f"no playbook {spec.playbook_id!r} in this team"
    for n, route in enumerate(spec.routes):
        if route.playbook_id is not None and route.playbook_id not in command.playbooks:
            problems[f"routes.{n}.playbook_id"] = f"no playbook {route.playbook_id!r} in this team"
        if route.commander_id is not None and route.commander_id not in command.commanders:
            problems[f"routes.{n}.commander_id"] = "not a member of this team who can be a commander (bots cannot)"
        if route.severity is not None:
            try:
                parse_severity(route.severity, command.severity_levels)
            except SeverityUnknown:
                levels = listed(command.severity_levels)
                problems[f"routes.{n}.severity"] = f"no severity {route.severity!r} in this team (its levels: {levels})"
    if problems:
        where, what = next(iter(problems.items()))
        raise invalid_fields(f"{where}: {what}.", problems)
