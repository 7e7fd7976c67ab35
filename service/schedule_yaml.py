"""On-call schedules as code: a team's schedules as a YAML file, and applying one.

The file lists each schedule's fields as the REST API takes them, without the team (the
file belongs to the team it is applied to), and with people by username, as playbook files
name them (`members: [bob, carol]`, overrides `{user: dave, from, to}`); a username may have
its @, and a user id (as files written before usernames have them, `user_id` in overrides
too) is taken as it is. Applying (import) matches schedules by name (case aside): a listed
name that exists is changed to what the file says, a new one is made; schedules the file
does not list are left alone. Everything is checked first (the file's shape, every person
and channel named, each error on its line: `line 7: no user @nobody`); nothing is applied
unless all of it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import yaml

from models.common import Actor
from models.schedules import (
    ImportedSchedules,
    ScheduleDocument,
    ScheduleFields,
    SchedulesDocument,
    ScheduleSpec,
    as_user_id,
    bare_username,
    name_key,
)
from service import oncall_schedules as schedules
from service.container import Services
from service.errors import ServiceError, field_path
from service.yaml_documents import DocumentKind, Lines, line_for, parse_off_loop

SCHEDULES_FILE = DocumentKind("schedules", "a mapping with schedules: a list of name, time_zone, rotations, overrides")
SCHEDULE_FILE = DocumentKind("schedule", "a mapping with name, time_zone, rotations and overrides")
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _header(team_id: str) -> str:
    return (
        f"# On-call schedules of team {team_id}, matched by name when applied.\n"
        f"# Apply with PUT /api/v1/schedules/import?team_id={team_id}\n"
    )


async def _documents(svc: Services, listed: Sequence[ScheduleFields]) -> list[ScheduleDocument]:
    """The schedules as a file writes them: people by username (someone Mattermost does not know: by id)."""
    ids = [user_id for schedule in listed for user_id in schedule.user_ids()]
    names = {u["id"]: u["username"] for u in await svc.mattermost.get_users_by_ids(ids)} if ids else {}
    return [ScheduleDocument.of(schedule, names) for schedule in listed]


async def export_yaml(svc: Services, actor: Actor, team_id: str) -> str:
    listed = await schedules.list_schedules(svc, actor, team_id)
    document = SchedulesDocument(schedules=await _documents(svc, listed))
    body = document.model_dump(mode="json", exclude_none=True)
    return _header(team_id) + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def schedule_as_yaml(svc: Services, schedule: ScheduleFields) -> str:
    """One schedule as YAML, people by username (the backstage's editor)."""
    [document] = await _documents(svc, [schedule])
    body = document.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def _user_ids(svc: Services, names: Iterable[str]) -> dict[str, str]:
    """The user id of each person named: a user id as it is, a username looked up (nobody: left out)."""
    ids: dict[str, str] = {}
    for name in dict.fromkeys(names):
        user_id = as_user_id(name)
        if user_id is None:
            user = await svc.facts.user_by_username(bare_username(name))
            user_id = str(user["id"]) if user else None
        if user_id:
            ids[name] = user_id
    return ids


def _nobody(document: ScheduleDocument, ids: dict[str, str]) -> list[tuple[tuple[str | int, ...], str]]:
    """Where the schedule names someone who is nobody, and what it says: `no user @nobody`."""
    return [(loc, f"no user @{bare_username(name)}") for loc, name in document.located_people() if name not in ids]


async def parse_schedule(svc: Services, text: str, team_id: str) -> ScheduleSpec:
    """One schedule written as YAML, for the team; a 422 names the line of each problem."""
    document, lines = await parse_off_loop(text, ScheduleDocument, SCHEDULE_FILE)
    ids = await _user_ids(svc, [name for _, name in document.located_people()])
    problems: dict[str, str] = {}
    for loc, problem in _nobody(document, ids):
        line = line_for(loc, lines)
        problems[field_path(loc)] = f"line {line}: {problem}" if line else problem
    if problems:
        listed = "; ".join(f"{name} ({problem})" for name, problem in problems.items())
        raise ServiceError(422, "validation_error", f"The schedule file is invalid: {listed}.", problems)
    return ScheduleSpec(**dict(document.with_ids(ids)), team_id=team_id)


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
    ids = await _user_ids(svc, [name for d in document.schedules for _, name in d.located_people()])
    problems: dict[str, str] = {}
    specs: list[ScheduleSpec] = []
    for index, written in enumerate(document.schedules):
        nobody = _nobody(written, ids)
        for loc, problem in nobody:
            name, located = _located(index, field_path(loc), problem, lines)
            problems[name] = located
        if nobody:
            continue  # checked once everyone it names is somebody
        spec = ScheduleSpec(**dict(written.with_ids(ids)), team_id=team_id)
        specs.append(spec)
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
