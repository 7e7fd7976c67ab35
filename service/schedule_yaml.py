"""On-call schedules as code: a team's schedules as a YAML file, and applying one.

The file lists each schedule's fields as the REST API takes them, without the team (the
file belongs to the team it is applied to). Applying (import) matches schedules by name
(case aside): a listed name that exists is changed to what the file says, a new one is
made; schedules the file does not list are left alone. Everything is checked first (the
file's shape, every person and channel named, each error on its line); nothing is applied
unless all of it holds.
"""

from __future__ import annotations

import re

import yaml

from models.common import Actor
from models.schedules import ImportedSchedules, ScheduleFields, SchedulesDocument, ScheduleSpec, name_key
from service import oncall_schedules as schedules
from service.container import Services
from service.errors import ServiceError
from service.yaml_documents import DocumentKind, Lines, line_for, parse_off_loop

SCHEDULES_FILE = DocumentKind("schedules", "a mapping with schedules: a list of name, time_zone, rotations, overrides")
SCHEDULE_FILE = DocumentKind("schedule", "a mapping with name, time_zone, rotations and overrides")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _header(team_id: str) -> str:
    return (
        f"# On-call schedules of team {team_id}, matched by name when applied.\n"
        f"# Apply with PUT /api/v1/schedules/import?team_id={team_id}\n"
    )


async def export_yaml(svc: Services, actor: Actor, team_id: str) -> str:
    listed = await schedules.list_schedules(svc, actor, team_id)
    document = SchedulesDocument(
        schedules=[
            ScheduleFields.model_validate(s.model_dump(include=set(ScheduleFields.model_fields))) for s in listed
        ]
    )
    body = document.model_dump(mode="json", exclude_none=True)
    return _header(team_id) + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def schedule_as_yaml(schedule: ScheduleFields) -> str:
    """One schedule's fields as YAML (the backstage's editor)."""
    fields = ScheduleFields.model_validate(schedule.model_dump(include=set(ScheduleFields.model_fields)))
    body = fields.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def parse_schedule(text: str, team_id: str) -> ScheduleSpec:
    """One schedule written as YAML, for the team; a 422 names the line of each problem."""
    fields, _ = await parse_off_loop(text, ScheduleFields, SCHEDULE_FILE)
    return ScheduleSpec(**dict(fields), team_id=team_id)


def _located(index: int, field: str, problem: str, lines: Lines) -> tuple[str, str]:
    """A problem the service found in one schedule, named and placed on its line in the file."""
    loc: tuple[str | int, ...] = ("schedules", index)
    for name, number in _PART.findall(field):
        loc += (int(number),) if number else (name,)
    line = line_for(loc, lines)
    return f"schedules[{index}].{field}", f"line {line}: {problem}" if line else problem


async def import_yaml(svc: Services, actor: Actor, team_id: str, text: str) -> ImportedSchedules:
    """Make the team's schedules what the file says (see the module's docstring)."""
    existing = {name_key(s.name): s for s in await schedules.list_schedules(svc, actor, team_id)}
    if not await schedules.may_manage(svc, actor, team_id):
        raise ServiceError(403, "forbidden", "Only team admins can change this team's schedules; ask one of them.")
    document, lines = await parse_off_loop(text, SchedulesDocument, SCHEDULES_FILE)
    specs = [ScheduleSpec(**dict(fields), team_id=team_id) for fields in document.schedules]
    problems: dict[str, str] = {}
    for index, spec in enumerate(specs):
        current = existing.get(name_key(spec.name))
        try:
            await schedules.check_spec(svc, actor, spec, schedule_id=current.id if current else None)
        except ServiceError as error:
            for field, problem in (error.fields or {"request": error.message}).items():
                name, located = _located(index, field, problem, lines)
                problems[name] = located
    if problems:
        listed = "; ".join(f"{name} ({problem})" for name, problem in problems.items())
        raise ServiceError(422, "validation_error", f"The schedules file is invalid: {listed}.", problems)
    result = ImportedSchedules()
    for spec in specs:
        current = existing.get(name_key(spec.name))
        if current is None:
            result.created.append(await schedules.create_schedule(svc, actor, spec))
        elif ScheduleSpec.model_validate(current.model_dump(include=set(ScheduleSpec.model_fields))) == spec:
            result.unchanged.append(current.id)
        else:
            result.updated.append(await schedules.update_schedule(svc, actor, current.id, spec))
    return result
