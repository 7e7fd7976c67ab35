"""Integrations, per team: the list, a new one, a new token, deleting one, and its deliveries.

Only the team's admins (and system admins) see these pages, as the service decides
(`service.integrations`, the functions the REST routes call): someone outside the team
reads "Team not found." or "Integration not found." word for word as for anything else
they may not see, and a member who is not an admin is told who can. The token is the
integration's credential: it is shown once, in the page that answers the form that made it
(creating the integration, rotating its token), never in a URL, a redirect or a log, and
the backstage's `Cache-Control: no-store` keeps that page out of every cache. Routes are
edited through the REST API (or YAML) for now; the page says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, templates, visitor
from api.dependencies import conceal_existence
from models.integration import IntegrationKind, IntegrationSpec, IntegrationView, summarize
from models.playbook import PlaybookSummary
from service import integrations, playbooks
from service.errors import ServiceError, validation_fields

router = APIRouter(prefix="/backstage", include_in_schema=False)

# What each kind is, as the form offers it.
KINDS = {
    IntegrationKind.ALERTMANAGER: "Prometheus Alertmanager",
    IntegrationKind.GRAFANA: "Grafana",
    IntegrationKind.GENERIC: "Any JSON sender (generic)",
}
FIELDS = ("kind", "name", "playbook_id")
EMPTY_DRAFT = {"kind": IntegrationKind.ALERTMANAGER.value, "name": "", "playbook_id": ""}


@dataclass(frozen=True)
class Shown:
    """An integration just made, or just given a new token: its token is in `view` this once
    (None when the same form was sent again: the first answer showed it)."""

    view: IntegrationView
    created: bool


def to_the_second(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["to_the_second"] = to_the_second


def _titles(usable: list[PlaybookSummary]) -> dict[str, str]:
    return {p.id: p.title for p in usable}


async def _list_page(
    who: Visitor,
    team_id: str,
    status_code: int = 200,
    *,
    shown: Shown | None = None,
    draft: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
) -> Response:
    """The team's integrations and the form for a new one (the service refuses whoever may not see them)."""
    listed = await integrations.list_integrations(who.svc, who.actor, team_id)
    usable = await playbooks.usable_playbooks(who.svc, who.actor, team_id)
    if shown is not None:
        listed = [s for s in listed if s.id != shown.view.id] + [summarize(shown.view)]
        listed.sort(key=lambda s: (s.name.casefold(), s.id))
    return await render_in_team(
        who,
        "integrations.html",
        team_id,
        status_code,
        manages_integrations=True,
        items=listed,
        urls={s.id: integrations.hook_url(who.svc, s.id) for s in listed},
        playbooks=usable,
        titles=_titles(usable),
        kinds=KINDS,
        shown=shown,
        draft=draft or EMPTY_DRAFT,
        errors=errors or {},
        message=message,
    )


@router.get("/teams/{team_id}/integrations")
async def integration_list(team_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await _list_page(who, team_id)


@router.post("/teams/{team_id}/integrations")
async def create_integration(team_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """Make one; the answer is the page showing its URL and token, this once."""
    asked = {name: who.form.get(name, "").strip() for name in FIELDS}
    errors: dict[str, str] = {}
    kind = next((k for k in KINDS if k.value == asked["kind"]), None)
    if kind is None:
        errors["kind"] = "choose what sends the alerts: " + ", ".join(KINDS.values())
    spec: IntegrationSpec | None = None
    try:
        spec = IntegrationSpec.model_validate({"name": asked["name"], "playbook_id": asked["playbook_id"] or None})
    except ValidationError as invalid:
        errors.update(validation_fields(invalid.errors()))
    if kind is None or spec is None:
        return await _list_page(who, team_id, 422, draft=asked, errors=errors)
    try:
        made = await integrations.create_integration(
            who.svc, who.actor, team_id, kind, spec, idempotency_key=who.form.get("request_key") or None
        )
    except ServiceError as error:
        if error.status != 422:
            raise
        return await _list_page(who, team_id, 422, draft=asked, errors=error.fields, message=error.message)
    return await _list_page(who, team_id, 201, shown=Shown(made, created=True))


@router.post("/integrations/{integration_id}/token", dependencies=[Depends(conceal_existence)])
async def rotate_token(integration_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """A new token, shown in the answer only; the old one stopped working."""
    rotated = await integrations.rotate_token(who.svc, who.actor, integration_id)
    return await _list_page(who, rotated.team_id, shown=Shown(rotated, created=False))


async def _one_page(who: Visitor, name: str, view: IntegrationView, status_code: int = 200, **context: Any) -> Response:
    usable = await playbooks.usable_playbooks(who.svc, who.actor, view.team_id)
    return await render_in_team(
        who,
        name,
        view.team_id,
        status_code,
        manages_integrations=True,
        integration=view,
        titles=_titles(usable),
        kinds=KINDS,
        **context,
    )


@router.get("/integrations/{integration_id}/deliveries", dependencies=[Depends(conceal_existence)])
async def deliveries(integration_id: str, who: Visitor = Depends(visitor)) -> Response:
    """The last notifications received, newest first, and what became of each."""
    view = await integrations.get_integration(who.svc, who.actor, integration_id)
    received = await integrations.deliveries(who.svc, who.actor, integration_id)
    return await _one_page(who, "integration_deliveries.html", view, deliveries=received)


@router.get("/integrations/{integration_id}/delete", dependencies=[Depends(conceal_existence)])
async def confirm_delete(integration_id: str, who: Visitor = Depends(visitor)) -> Response:
    view = await integrations.get_integration(who.svc, who.actor, integration_id)
    return await _one_page(who, "integration_delete.html", view)


@router.post("/integrations/{integration_id}/delete", dependencies=[Depends(conceal_existence)])
async def delete_integration(integration_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """Deletes once confirmed (`confirmed=1`, which the confirmation's button sends); else asks."""
    view = await integrations.get_integration(who.svc, who.actor, integration_id)
    if who.form.get("confirmed") != "1":
        return await _one_page(who, "integration_delete.html", view, 409)
    await integrations.delete_integration(who.svc, who.actor, integration_id)
    return redirect(
        who,
        f"/backstage/teams/{view.team_id}/integrations",
        f"Integration {view.name!r} deleted: its URL takes no more alerts. The incidents it opened go on.",
    )
