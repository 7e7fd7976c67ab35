"""The retrospective's page: its markdown in a text area with a live preview, its versions, and
publish and decline.

Saving posts the text with the version it was based on (a hidden field) through the same
service as `PUT /api/v1/incidents/{id}/retrospective` (`save_retrospective`, decided by the
incident's rules). When someone saved another version meanwhile, the page answers 409: it says
so, shows the newer version beside the text that was typed (kept in the text area), and a save
from there is based on the newer one. The preview is the server's rendering
(`service.retrospectives.to_html`: HTML people type is shown as text), fetched as the text
changes by the backstage's script; the page works without it (the preview then shows the saved
text). Publish and decline are command forms (`command_forms`), like every incident control.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render, visitor
from api.dependencies import conceal_existence
from models.command_table import BY_NAME
from models.refusals import STALE_VERSION
from models.retrospective import TEXT_MAX, RetrospectiveView
from service import incident_access as incidents
from service import integrations, retrospectives
from service.command_follow_ups import CommandPending
from service.command_runner import run_command
from service.errors import ServiceError, describe_fields, validation_fields
from service.idempotency import new_key, scoped

router = APIRouter(prefix="/backstage", include_in_schema=False)

# What the page says when the version it was opened at is no longer the latest.
CHANGED = (
    "The retrospective changed since you opened it: reload it, or merge your text with the newer version below "
    "and save again."
)


def _page(incident_id: str) -> str:
    return f"/backstage/incidents/{incident_id}/retrospective"


async def page_response(who: Visitor, incident_id: str, *, status_code: int = 200, **extra: Any) -> Response:
    access = await incidents.load(who.svc, who.actor, incident_id)
    view: RetrospectiveView = retrospectives.view_of(access.state, access.actor)
    draft = extra.pop("draft", None)
    return await render(
        who,
        "retrospective.html",
        status_code=status_code,
        retro=view,
        state=access.state,
        team={"id": access.state.team_id, "display_name": access.state.team_name},
        manages_integrations=await integrations.may_manage(who.svc, who.actor, access.state.team_id),
        text=view.text if draft is None else draft,
        preview=retrospectives.to_html(view.text if draft is None else draft),
        newer_html=retrospectives.to_html(view.text) if draft is not None else "",
        text_max=TEXT_MAX,
        **extra,
    )


@router.get("/incidents/{incident_id}/retrospective", dependencies=[Depends(conceal_existence)])
async def retrospective_page(incident_id: str, who: Visitor = Depends(visitor)) -> Response:
    return await page_response(who, incident_id)


@router.post("/incidents/{incident_id}/retrospective", dependencies=[Depends(conceal_existence)])
async def save_retrospective(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    spec = BY_NAME["save_retrospective"]
    text = who.form.get("text", "").replace("\r\n", "\n")
    asked = {"text": [text], "version": [who.form.get("version", "")]}
    request = scoped(who.actor.user_id, f"{spec.name}:{incident_id}", who.form.get("request_key") or new_key(), asked)
    try:
        result = await run_command(
            who.svc, spec, who.actor, incident_id, {"text": text, "version": who.form.get("version", "")},
            request=request,
        )  # fmt: skip
    except ValidationError as invalid:
        problem = describe_fields(validation_fields(invalid.errors()))
        return await page_response(who, incident_id, status_code=422, error=problem, draft=text)
    except ServiceError as error:
        if error.status in (401, 404):
            raise
        stale = error.status == 409 and STALE_VERSION in error.details
        return await page_response(
            who, incident_id, status_code=error.status, error=CHANGED if stale else error.message, draft=text,
            stale=stale,
        )  # fmt: skip
    except CommandPending:
        return redirect(who, _page(incident_id), "Received; the page shows the new version once it is saved.")
    return redirect(who, _page(incident_id), result.message)


@router.post("/incidents/{incident_id}/retrospective/preview", dependencies=[Depends(conceal_existence)])
async def preview(incident_id: str, who: Visitor = Depends(form_visitor)) -> Response:
    """The text as the page shows it, for the live preview (for whoever may see the incident)."""
    await incidents.load(who.svc, who.actor, incident_id)
    text = who.form.get("text", "")[: TEXT_MAX + 1]
    return HTMLResponse(retrospectives.to_html(text), headers={"Cache-Control": "no-store"})
