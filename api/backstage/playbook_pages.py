"""Playbooks: list, create, edit, archive, history, YAML export and import, and an edit tried
against past incidents before it is saved (*Try against past incidents*: `service.dry_runs`).

The form is the REST body in another dress: its inputs are named by the API's field
paths (`checklists[0].items[2].command`), the draft is validated by `PlaybookSpec` and
saved by `api.playbooks` (which checks people, channels and the reminder, and the
version), so every error is the API's, shown next to the input it names. People and
channels are typed by name (`alice`, `town-square`) and resolved in the team, as a YAML
import resolves them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, visitor
from api.backstage.incident_pages import names_for
from mattermost_client.gateway import MattermostFailure
from models.conditions import StepCondition, read_when_text, when_text
from models.paging import policy_user_ids
from models.playbook import Playbook, PlaybookSpec
from models.playbook_automation import describe_rule, rule_channel_ids, rule_user_ids
from models.playbook_dry_run import DRY_RUN_DEFAULT, DRY_RUN_MAX, DryRunRequest
from models.retrospective import PLACEHOLDERS, RetrospectiveSpec
from models.webhooks import OwnerKind
from service import dry_runs, playbooks, team_configuration
from service import webhook_subscriptions as webhooks
from service.errors import ServiceError, validation_fields
from service.pagination import PageParams
from service.playbook_yaml import (
    escalation_document,
    escalation_text,
    export_yaml,
    fields_text,
    parse_escalation_text,
    parse_fields_text,
    parse_rules_text,
    parse_yaml_off_loop,
    resolve_document,
    resolve_escalation,
    resolve_rules,
    rule_documents,
    rules_text,
)

router = APIRouter(prefix="/backstage", include_in_schema=False)

_STAGE = re.compile(r"^checklists\[(\d{1,4})\]\.(title|remove|when)$")
_ITEM = re.compile(
    r"^checklists\[(\d{1,4})\]\.items\[(\d{1,4})\]\.(title|description|command|remove|due\.after|due\.from|when)$"
)
# A condition is one input ("Only when"): every problem of its parts is shown beside it.
_WHEN = re.compile(r"^(checklists\[\d+\](?:\.items\[\d+\])?\.when)\b")
# API field -> form input, where the form asks for names instead of ids.
_FIELD_FOR = (
    (re.compile(r"^member_ids(\[\d+\])?$"), "members"),
    (re.compile(r"^invited_user_ids(\[\d+\])?$"), "invited_users"),
    (re.compile(r"^default_commander_id$"), "default_commander"),
    (re.compile(r"^broadcast_channel_ids(\[\d+\])?$"), "broadcast_channels"),
    (re.compile(r"^reminder_timer_default_seconds$"), "reminder_minutes"),
    # The rules are edited as one text (YAML): every problem of theirs is shown beside it.
    (re.compile(r"^rules\b"), "rules"),
    # So is the escalation policy.
    (re.compile(r"^escalation\b"), "escalation"),
    # And the custom fields.
    (re.compile(r"^fields\b"), "fields"),
    # The retrospective's parts are one section.
    (re.compile(r"^retrospective\b"), "retrospective"),
)


def form_field(api_field: str) -> str:
    if found := _WHEN.match(api_field):
        return found[1]
    for pattern, name in _FIELD_FOR:
        if pattern.match(api_field):
            return name
    return api_field


# Form inputs as people read them, for the error summary.
_LABELS = {
    "playbook": "Playbook",
    "title": "Title",
    "description": "Description",
    "members": "Members",
    "invited_users": "Invited to every incident",
    "default_commander": "Default commander",
    "default_severity": "Default severity",
    "broadcast_channels": "Broadcast channels",
    "reminder_minutes": "Status update reminder",
    "channel_name_template": "Channel name template",
    "create_public_incident": "Incident channels",
    "checklists": "Stages",
    "rules": "Rules",
    "escalation": "Escalation",
    "fields": "Fields",
    "retrospective": "Retrospective",
}
# The parts of a stage and of an item.
_PARTS = {
    "title": "title",
    "description": "description",
    "command": "slash command",
    "items": "items",
    "due": "due",
    "due.after": "due after",
    "due.from": "due from",
    "when": "only when",
}
_PLACE = re.compile(r"^checklists\[(\d{1,4})\](?:\.items\[(\d{1,4})\])?(?:\.(\w+(?:\.\w+)?))?$")


def field_label(name: str) -> str:
    """`checklists[1].items[0].command` -> `Stage 2, item 1, slash command`."""
    found = _PLACE.match(name)
    if not found:
        return _LABELS.get(name, name)
    stage, item, part = found.groups()
    where = f"Stage {int(stage) + 1}" + (f", item {int(item) + 1}" if item is not None else "")
    return f"{where}, {_PARTS.get(part, part)}" if part else where


def form_errors(fields: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, problem in fields.items():
        key = form_field(name)
        errors[key] = f"{errors[key]}; {problem}" if key in errors else problem
    return errors


def _names(text: str, sigil: str) -> list[str]:
    return [name.strip().lstrip(sigil) for name in re.split(r"[\s,]+", text) if name.strip().lstrip(sigil)]


def parse_draft(form: dict[str, str]) -> dict[str, Any]:
    """The form as a draft: stages and items in order, removed and blank new ones left out."""
    stages: dict[int, dict[str, Any]] = {}
    for key, value in form.items():
        if found := _STAGE.match(key):
            stages.setdefault(int(found[1]), {"items": {}})[found[2]] = value
        elif found := _ITEM.match(key):
            stage = stages.setdefault(int(found[1]), {"items": {}})
            stage["items"].setdefault(int(found[2]), {})[found[3]] = value
    checklists = []
    for _, stage in sorted(stages.items()):
        if stage.get("remove"):
            continue
        items = [
            _draft_item(i)
            for _, i in sorted(stage["items"].items())
            if not i.get("remove")
            and any(i.get(part, "").strip() for part in ("title", "description", "command", "due.after"))
        ]
        if stage.get("title", "").strip() or items:
            checklists.append({"title": stage.get("title", ""), "items": items, "when": stage.get("when", "")})
    return {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "create_public_incident": form.get("create_public_incident") == "1",
        "reminder_minutes": form.get("reminder_minutes", "0").strip(),
        "channel_name_template": form.get("channel_name_template", ""),
        "members": form.get("members", ""),
        "invited_users": form.get("invited_users", ""),
        "default_commander": form.get("default_commander", "").strip(),
        "default_severity": form.get("default_severity", "").strip(),
        "broadcast_channels": form.get("broadcast_channels", ""),
        "checklists": checklists,
        "rules": form.get("rules", ""),
        "escalation": form.get("escalation", ""),
        "fields": form.get("fields", ""),
        "retro_enabled": form.get("retro_enabled") == "1",
        "retro_template": form.get("retro_template", "").replace("\r\n", "\n"),
        "retro_due_after": form.get("retro_due_after", "").strip(),
        "retro_reminder_every": form.get("retro_reminder_every", "").strip(),
    }


def _draft_item(fields: dict[str, str]) -> dict[str, Any]:
    """An item of the form as the API body has it; a due time only when one is given."""
    item: dict[str, Any] = {
        "title": fields.get("title", ""),
        "description": fields.get("description", ""),
        "command": fields.get("command", ""),
    }
    if fields.get("due.after", "").strip():
        item["due"] = {"after": fields["due.after"], "from": fields.get("due.from") or "stage"}
    if fields.get("when", "").strip():
        item["when"] = fields["when"]
    return item


def _body_checklists(checklists: list[dict[str, Any]], errors: dict[str, str]) -> list[dict[str, Any]]:
    """The draft's stages as the API body has them: each "Only when" text read as a condition."""

    def when(text: Any, name: str) -> dict[str, Any] | None:
        try:
            return read_when_text(str(text or ""))
        except ValueError as problem:
            errors[name] = str(problem)
            return None

    body = []
    for s, stage in enumerate(checklists):
        items = [
            {**item, "when": when(item.get("when"), f"checklists[{s}].items[{i}].when")}
            for i, item in enumerate(stage["items"])
        ]
        body.append({**stage, "items": items, "when": when(stage.get("when"), f"checklists[{s}].when")})
    return body


def _with_when_text(stage: dict[str, Any]) -> dict[str, Any]:
    """A saved stage as the form shows it: its conditions as "Only when" text, and in words."""

    def shown(part: dict[str, Any]) -> dict[str, Any]:
        if not part.get("when"):
            return part
        condition = StepCondition.model_validate(part["when"])
        return {**part, "when": when_text(condition), "when_words": condition.words()}

    return shown({**stage, "items": [shown(item) for item in stage["items"]]})


async def resolve(who: Visitor, team_id: str, draft: dict[str, Any]) -> tuple[PlaybookSpec | None, dict[str, str]]:
    """The draft as the API body, or the problems, keyed by form input."""
    errors: dict[str, str] = {}

    async def users(field: str, names: list[str]) -> list[str]:
        ids, missing = [], []
        for name in names:
            user = await who.svc.facts.user_by_username(name)
            if user is None:
                missing.append(f"@{name}")
            else:
                ids.append(str(user["id"]))
        if missing:
            errors[field] = f"no such user: {', '.join(missing)}"
        return ids

    members = await users("members", _names(draft["members"], "@"))
    invited = await users("invited_users", _names(draft["invited_users"], "@"))
    commander = await users("default_commander", _names(draft["default_commander"], "@")[:1])
    channels, missing = [], []
    for name in _names(draft["broadcast_channels"], "~"):
        try:
            channels.append(str((await who.svc.mattermost.get_channel_by_name(team_id, name))["id"]))
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            missing.append(f"~{name}")
    if missing:
        errors["broadcast_channels"] = f"no such channel in this team: {', '.join(missing)}"
    rules: list[dict[str, Any]] = []
    try:
        documents, lines = await parse_rules_text(draft["rules"])
        rules, unknown = await resolve_rules(who.svc, team_id, documents, lines)
    except ServiceError as error:
        if error.status != 422:
            raise
        errors["rules"] = "; ".join(error.fields.values()) if error.fields else error.message
    else:
        if unknown:
            errors["rules"] = "; ".join(unknown.values())
    escalation: dict[str, Any] | None = None
    try:
        policy, policy_lines = await parse_escalation_text(draft["escalation"])
        escalation, unnamed = await resolve_escalation(who.svc, policy, policy_lines)
    except ServiceError as error:
        if error.status != 422:
            raise
        errors["escalation"] = "; ".join(error.fields.values()) if error.fields else error.message
    else:
        if unnamed:
            errors["escalation"] = "; ".join(unnamed.values())
    fields: list[dict[str, Any]] = []
    try:
        fields = [spec.model_dump() for spec in await parse_fields_text(draft.get("fields", ""))]
    except ServiceError as error:
        if error.status != 422:
            raise
        errors["fields"] = "; ".join(error.fields.values()) if error.fields else error.message
    minutes = draft["reminder_minutes"] or "0"
    if not minutes.isascii() or not minutes.isdigit() or len(minutes) > 6:
        errors["reminder_minutes"] = "a whole number of minutes (0 turns the reminder off)"
        minutes = "0"
    body = {
        "title": draft["title"],
        "description": draft["description"],
        "create_public_incident": draft["create_public_incident"],
        "checklists": _body_checklists(draft["checklists"], errors),
        "member_ids": members,
        "invited_user_ids": invited,
        "default_commander_id": commander[0] if commander else None,
        "broadcast_channel_ids": channels,
        "reminder_timer_default_seconds": int(minutes) * 60,
        "channel_name_template": draft["channel_name_template"],
        "rules": rules,
        "escalation": escalation,
        # A level's number from the form's choices (empty: none).
        "default_severity": draft.get("default_severity") or None,
        "fields": fields,
        "retrospective": _retrospective_body(draft),
    }
    try:
        spec = PlaybookSpec.model_validate(body)
    except ValidationError as invalid:
        for name, problem in form_errors(validation_fields(invalid.errors())).items():
            errors.setdefault(name, problem)
        return None, errors
    return (None, errors) if errors else (spec, {})


async def draft_of(who: Visitor, playbook: Playbook) -> dict[str, Any]:
    people = await names_for(
        who,
        {
            *playbook.member_ids,
            *playbook.invited_user_ids,
            *filter(None, [playbook.default_commander_id]),
            *rule_user_ids(playbook.rules),
            *policy_user_ids(playbook.escalation),
        },
    )
    channels = []
    for channel_id in playbook.broadcast_channel_ids:
        try:
            channels.append((await who.svc.mattermost.get_channel(channel_id))["name"])
        except MattermostFailure as failure:
            if failure.retryable:
                raise
            channels.append(channel_id)
    return {
        "title": playbook.title,
        "description": playbook.description,
        "create_public_incident": playbook.create_public_incident,
        "reminder_minutes": str(playbook.reminder_timer_default_seconds // 60),
        "channel_name_template": playbook.channel_name_template,
        "members": " ".join(people.get(u, u) for u in playbook.member_ids),
        "invited_users": " ".join(people.get(u, u) for u in playbook.invited_user_ids),
        "default_commander": people.get(playbook.default_commander_id, playbook.default_commander_id)
        if playbook.default_commander_id
        else "",
        "broadcast_channels": " ".join(channels),
        "default_severity": str(playbook.default_severity or ""),
        "checklists": [_with_when_text(stage.model_dump(exclude_none=True)) for stage in playbook.checklists],
        "rules": rules_text(await rule_documents(who.svc, playbook.rules, people)),
        "escalation": escalation_text(escalation_document(playbook.escalation, people)),
        "fields": fields_text(playbook.fields),
        **_retrospective_draft(playbook.retrospective),
    }


def _retrospective_body(draft: dict[str, Any]) -> dict[str, Any] | None:
    """The form's retrospective section as the API body has it (None: unchecked)."""
    if not draft.get("retro_enabled"):
        return None
    body: dict[str, Any] = {"template": draft.get("retro_template", "")}
    for key in ("due_after", "reminder_every"):
        if draft.get(f"retro_{key}"):
            body[key] = draft[f"retro_{key}"]
    return body


def _retrospective_draft(spec: RetrospectiveSpec | None) -> dict[str, Any]:
    if spec is None:
        return {"retro_enabled": False, "retro_template": "", "retro_due_after": "", "retro_reminder_every": ""}
    return {
        "retro_enabled": True,
        "retro_template": spec.template,
        "retro_due_after": spec.due_after,
        "retro_reminder_every": spec.reminder_every,
    }


async def rules_in_words(who: Visitor, playbook: Playbook) -> list[str]:
    """Each saved rule in words ("When stage Mitigation is entered, after 30m → post '…'")."""
    if not playbook.rules:
        return []
    names = await names_for(who, set(rule_user_ids(playbook.rules)))
    for channel_id in rule_channel_ids(playbook.rules):
        try:
            names[channel_id] = str((await who.svc.mattermost.get_channel(channel_id))["name"])
        except MattermostFailure as failure:
            if failure.retryable:
                raise
    return [describe_rule(rule, names) for rule in playbook.rules]


EMPTY_DRAFT: dict[str, Any] = {
    "title": "",
    "description": "",
    "create_public_incident": False,
    "reminder_minutes": "0",
    "channel_name_template": "",
    "members": "",
    "invited_users": "",
    "default_commander": "",
    "default_severity": "",
    "broadcast_channels": "",
    "checklists": [{"title": "Triage", "items": [{"title": "", "description": "", "command": ""}]}],
    "rules": "",
    "escalation": "",
    "fields": "",
    "retro_enabled": False,
    "retro_template": "",
    "retro_due_after": "",
    "retro_reminder_every": "",
}


async def _form(who: Visitor, team_id: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("playbook", None)
    context.setdefault("dry_run", None)
    context.setdefault("dry_run_last", DRY_RUN_DEFAULT)
    context["field_labels"] = {name: field_label(name) for name in context["errors"]}
    context["rule_words"] = await rules_in_words(who, context["playbook"]) if context["playbook"] else []
    context["severity_levels"] = await team_configuration.severity_levels(who.svc, team_id)
    context["retro_placeholders"] = list(PLACEHOLDERS)
    return await render_in_team(who, "playbook_edit.html", team_id, status_code, **context)


# ---------------------------------------------------------------------------- routes


@router.get("/teams/{team_id}/playbooks")
async def playbook_list(team_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    page = request.query_params.get("page", "0")
    params = PageParams(page=int(page) if page.isdigit() and len(page) < 6 else 0, per_page=50, direction=None)
    found = await playbooks.list_playbooks(who.svc, who.actor, team_id, sort="title", params=params)
    return await render_in_team(who, "playbooks.html", team_id, page=found)


@router.get("/teams/{team_id}/playbooks/new")
async def new_playbook(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    await playbooks.require_team(who.svc, who.actor, team_id)
    return await _form(who, team_id, draft=EMPTY_DRAFT)


@router.post("/teams/{team_id}/playbooks/new")
async def create_playbook(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    await playbooks.require_team(who.svc, who.actor, team_id)
    draft = parse_draft(who.form)
    spec, errors = await resolve(who, team_id, draft)
    if spec is not None:
        try:
            created = await playbooks.create_playbook(
                who.svc, who.actor, team_id, spec, idempotency_key=who.form.get("request_key") or None
            )
        except ServiceError as error:
            if error.status != 422:
                raise
            errors = form_errors(error.fields) or {"playbook": error.message}
        else:
            return redirect(who, f"/backstage/playbooks/{created.id}", f"Playbook {created.title!r} created.")
    return await _form(who, team_id, status_code=422, draft=draft, errors=errors)


@router.get("/playbooks/{playbook_id}")
async def edit_playbook(playbook_id: str, who: Visitor = Depends(visitor)) -> Response:
    playbook = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
    manages_webhooks = await webhooks.may_manage(who.svc, who.actor, OwnerKind.PLAYBOOK, playbook.id)
    return await _form(
        who, playbook.team_id, playbook=playbook, draft=await draft_of(who, playbook), manages_webhooks=manages_webhooks
    )


@router.post("/playbooks/{playbook_id}")
async def save_playbook(playbook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    current = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
    draft = parse_draft(who.form)
    version = who.form.get("version", "")
    edited = int(version) if version.isascii() and version.isdigit() and len(version) < 10 else 0
    spec, errors = await resolve(who, current.team_id, draft)
    if spec is not None:
        try:
            saved = await playbooks.update_playbook(who.svc, who.actor, playbook_id, spec, edited)
        except ServiceError as error:
            if error.status == 409:
                # Someone saved meanwhile: keep this draft, say so, and let a save replace theirs.
                latest = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
                return await _form(
                    who,
                    current.team_id,
                    status_code=409,
                    playbook=latest,
                    draft=draft,
                    conflict={"edited": edited, "current": latest.version, "message": error.message},
                )
            if error.status != 422:
                raise
            errors = form_errors(error.fields) or {"playbook": error.message}
        else:
            return redirect(who, f"/backstage/playbooks/{playbook_id}", f"Saved version {saved.version}.")
    shown = current.model_copy(update={"version": edited or current.version})
    return await _form(who, current.team_id, status_code=422, playbook=shown, draft=draft, errors=errors)


@router.post("/playbooks/{playbook_id}/dry-run")
async def try_playbook(playbook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """The editor's draft tried against the playbook's last ended incidents, shown above the
    editor with the draft as it was: nothing is saved."""
    current = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
    draft = parse_draft(who.form)
    version = who.form.get("version", "")
    edited = int(version) if version.isascii() and version.isdigit() and len(version) < 10 else 0
    wanted = who.form.get("dry_run_last", "")
    last = int(wanted) if wanted.isascii() and wanted.isdigit() and len(wanted) < 4 else DRY_RUN_DEFAULT
    last = min(max(last, 1), DRY_RUN_MAX)
    spec, errors = await resolve(who, current.team_id, draft)
    report = None
    if spec is not None:
        try:
            report = await dry_runs.dry_run_loaded(who.svc, who.actor, current, DryRunRequest(spec=spec, last=last))
        except ServiceError as error:
            if error.status != 422:
                raise
            errors = form_errors(error.fields) or {"playbook": error.message}
    shown = current.model_copy(update={"version": edited or current.version})
    return await _form(
        who,
        current.team_id,
        status_code=200 if report is not None else 422,
        playbook=shown,
        draft=draft,
        errors=errors,
        dry_run=report,
        dry_run_last=last,
        trying=True,
    )


@router.post("/playbooks/{playbook_id}/archive")
async def archive_playbook(playbook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    archived = await playbooks.archive_playbook(who.svc, who.actor, playbook_id)
    return redirect(who, f"/backstage/teams/{archived.team_id}/playbooks", f"Playbook {archived.title!r} archived.")


@router.get("/playbooks/{playbook_id}/history")
async def playbook_history(playbook_id: str, who: Visitor = Depends(visitor)) -> Response:
    playbook = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
    edits = await playbooks.playbook_history(who.svc, who.actor, playbook_id)
    names = await names_for(who, {e.editor_id for e in edits})
    return await render_in_team(
        who,
        "playbook_history.html",
        playbook.team_id,
        playbook=playbook,
        edits=list(reversed(edits)),
        names=names,
    )


@router.get("/playbooks/{playbook_id}/export")
async def export_playbook(playbook_id: str, who: Visitor = Depends(visitor)) -> Response:
    playbook = await playbooks.get_playbook(who.svc, who.actor, playbook_id)
    slug = re.sub(r"[^a-z0-9]+", "-", playbook.title.casefold()).strip("-") or "playbook"
    return Response(
        await export_yaml(who.svc, playbook),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{slug}.yaml"'},
    )


@router.get("/teams/{team_id}/playbooks/import")
async def import_page(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    await playbooks.require_team(who.svc, who.actor, team_id)
    return await render_in_team(who, "playbook_import.html", team_id, text="", errors={})


@router.post("/teams/{team_id}/playbooks/import")
async def import_playbook(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    await playbooks.require_team(who.svc, who.actor, team_id)
    text = who.form.get("yaml", "")
    try:
        document, lines = await parse_yaml_off_loop(text)
        spec = await resolve_document(who.svc, team_id, document, lines)
        created = await playbooks.create_playbook(
            who.svc, who.actor, team_id, spec, idempotency_key=who.form.get("request_key") or None
        )
    except ServiceError as error:
        if error.status != 422:
            raise
        return await render_in_team(
            who,
            "playbook_import.html",
            team_id,
            422,
            text=text,
            message=error.message,
            errors=error.fields,
        )
    return redirect(who, f"/backstage/playbooks/{created.id}", f"Playbook {created.title!r} imported.")
