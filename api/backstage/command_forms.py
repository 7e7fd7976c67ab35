"""Every control on the incident page is a command of the command table, posted as a form.

A control posts the command's fields by their REST names (people and channels by id, or
typed as `@username` and `~channel` as in the slash command) to
`/backstage/incidents/{id}/commands/{command}`. One route reads them into the command's
values and sends them through the same service as REST and slash
(`service.command_runner.run_command`: the caller's facts, a request key scoped to the
caller and the command, one update), so a control is refused or applied exactly as the
slash command and REST are. Refusals are the workflow's, with its sentence: a problem
with what was typed or chosen (a field's, a person or channel that does not exist) is
shown beside the form that sent it, any other as a notice; a move past open items (or an end) answers
`confirmation_required`, and the page asks, then resends what the command table's
confirmation says (with the stage it asked about), as the slash command's dialog does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect
from api.backstage.incident_pages import PageView, incident_page_response
from api.dependencies import conceal_existence
from models.command_table import BY_NAME, CommandSpec, Confirm, Ref
from models.common import MATTERMOST_ID
from models.incident_commands import IncidentCommand
from models.pending_commands import RECEIVED
from service.command_follow_ups import CommandPending
from service.command_runner import ChannelRef, ScheduleRef, UnknownReference, UserRef, run_command
from service.errors import ServiceError, describe_fields, validation_fields
from service.idempotency import new_key, scoped

router = APIRouter(prefix="/backstage", include_in_schema=False)

# What a form posts besides the command's fields: the session's CSRF token, the rendered
# form's request key (a double click applies once), which form it was (a refusal is shown
# beside it), where on the page to come back to, and the item being edited.
FORM_ONLY = frozenset({"csrf_token", "request_key", "form", "back", "edit"})
# Fields every command has that no form may set: the service fills them.
_OWN_FIELDS = frozenset(IncidentCommand.model_fields)
_FRAGMENT = re.compile(r"[a-z0-9-]{1,64}")
_WORDS = re.compile(r"[\s,]+")


def form_values(spec: CommandSpec, form: Mapping[str, list[str]]) -> dict[str, Any]:
    """The command's values from a form's fields (every value of each, in order).

    People and channels become references, by id or as typed (`@bob`, `~ops`, several to a
    field). An empty input is empty text where the field takes text (clearing an item's
    description) and the field's default otherwise (no status change); a duration may be
    given in whole minutes (`minutes`) where the command takes `seconds`. The command's
    model checks everything else.
    """
    fields = spec.command.model_fields
    refs = {ref.rest_field: (name, ref) for name, ref in spec.refs.items()}
    values: dict[str, Any] = {}
    for key, given in form.items():
        if key in refs:
            name, ref = refs[key]
            named = _references(ref, given)
            if named is not None or ref.optional:
                values[name] = named
            continue
        name, value = key, given[-1]
        if name == "minutes" and "seconds" in fields:
            name, value = "seconds", str(int(value) * 60) if _whole_number(value) else value
        if name in _OWN_FIELDS or name not in fields:
            continue
        if value == "" and not fields[name].is_required() and not _takes_text(fields[name].annotation):
            continue
        values[name] = value
    return values


def _references(ref: Ref, given: list[str]) -> UserRef | ScheduleRef | list[UserRef] | list[ChannelRef] | None:
    words = [word for value in given for word in _WORDS.split(value) if word]
    if ref.kind == "channels":
        return [_channel(word, f"{ref.rest_field}[{i}]") for i, word in enumerate(words)]
    if ref.kind == "users":
        return [_person(word, f"{ref.rest_field}[{i}]") for i, word in enumerate(words)]
    if ref.kind == "target" and words and not words[0].startswith("@") and not MATTERMOST_ID.match(words[0]):
        # A page's target, as the slash command reads it: `@bob` is a person, a bare word a schedule.
        return ScheduleRef(name=words[0], field=ref.rest_field)
    # One person; nobody unassigns where the command allows it, else the model says who is missing.
    return _person(words[0], ref.rest_field) if words else None


def _person(word: str, field: str) -> UserRef:
    if MATTERMOST_ID.match(word):
        return UserRef(user_id=word, field=field)
    return UserRef(username=word.removeprefix("@").lower(), field=field)


def _channel(word: str, field: str) -> ChannelRef:
    if MATTERMOST_ID.match(word):
        return ChannelRef(channel_id=word, field=field)
    return ChannelRef(name=word.removeprefix("~").lower(), field=field)


def _whole_number(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 6


def _takes_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    if get_origin(annotation) is Annotated:
        return _takes_text(get_args(annotation)[0])
    return get_origin(annotation) in (Union, UnionType) and any(_takes_text(a) for a in get_args(annotation))


@router.post("/incidents/{incident_id}/commands/{name}", dependencies=[Depends(conceal_existence)])
async def run_command_form(incident_id: str, name: str, who: Visitor = Depends(form_visitor)) -> Response:
    spec = BY_NAME.get(name)
    if spec is None:
        raise ServiceError(404, "not_found", "There is no such action; reload the page.")
    asked = {key: values for key, values in who.form_lists.items() if key not in FORM_ONLY}
    request = scoped(who.actor.user_id, f"{spec.name}:{incident_id}", who.form.get("request_key") or new_key(), asked)
    back = who.form.get("back", "")
    page = f"/backstage/incidents/{incident_id}" + (f"#{back}" if _FRAGMENT.fullmatch(back) else "")
    try:
        result = await run_command(
            who.svc,
            spec,
            who.actor,
            incident_id,
            form_values(spec, asked),
            request=request,
            caller_token=who.session.token,
        )
    except ValidationError as invalid:
        problems = validation_fields(invalid.errors())
        return await _refused_beside_the_form(who, spec, incident_id, describe_fields(problems), problems)
    except ServiceError as error:
        confirm = spec.slash.confirm if spec.slash else None
        if error.code == "confirmation_required" and confirm:
            asking = _confirmation(spec.name, confirm, error, asked)
            return await incident_page_response(who, incident_id, status_code=409, confirm=asking)
        if error.fields or isinstance(error, UnknownReference):
            # About what was typed or chosen: said beside it, with the draft kept.
            return await _refused_beside_the_form(who, spec, incident_id, error.message, error.fields)
        if error.status in (401, 404):
            raise
        return redirect(who, page, error.message, kind="error")
    except CommandPending:
        return redirect(who, page, PENDING_HERE)
    return redirect(who, page, result.message)


# A command Temporal took but did not answer in time: the live page shows it once applied.
PENDING_HERE = f"{RECEIVED} The incident service is slow right now; this page shows the change once it is applied."


async def _refused_beside_the_form(
    who: Visitor, spec: CommandSpec, incident_id: str, message: str, fields: dict[str, str]
) -> Response:
    """The page again, the form that was sent showing the refusal and what was typed."""
    by_rest_name = {name: ref.rest_field for name, ref in spec.refs.items()}
    return await incident_page_response(
        who,
        incident_id,
        status_code=422,
        view=PageView(editing=who.form.get("edit", "")),
        form=who.form.get("form", ""),
        form_error=message,
        form_fields={by_rest_name.get(name.split("[")[0], name): problem for name, problem in fields.items()},
        draft={key: value for key, value in who.form.items() if key not in FORM_ONLY},
    )


def _confirmation(name: str, confirm: Confirm, error: ServiceError, asked: dict[str, list[str]]) -> dict[str, Any]:
    """What the page asks, and the command it resends on a yes."""
    resend = {**asked, **{key: [_form_value(value)] for key, value in confirm.resend.items()}}
    if confirm.from_stage:
        resend["from_stage"] = [str(error.details.get("stage", ""))]
    return {"name": name, "title": confirm.title, "message": error.message, "submit": confirm.submit, "resend": resend}


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
