"""Outgoing webhooks, per playbook and per team: the list, a new one, editing one, a new
secret, deleting one, its deliveries and sending an event again.

Both owners have the same pages (one declaration, `_owner_pages`, as the REST routes do):
`/backstage/playbooks/{id}/webhooks` for the people who may edit the playbook,
`/backstage/teams/{id}/webhooks` for the team's admins. Whoever may not manage them reads the
service's "not found", word for word as for anything that does not exist. The secret signs
every delivery: it is shown once, in the page that answers the form that made it (creating
the webhook, rotating its secret), never in a URL, a redirect or a log, and the backstage's
`Cache-Control: no-store` keeps that page out of every cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from api.backstage.backstage_common import Visitor, form_visitor, redirect, render_in_team, visitor
from api.dependencies import conceal_existence
from models.webhooks import (
    ALL_EVENTS,
    INCIDENT_EVENTS,
    ImportedWebhooks,
    OwnerKind,
    SubscriptionPublic,
    SubscriptionSpec,
    SubscriptionView,
)
from service import playbooks, webhook_yaml
from service import webhook_subscriptions as webhooks
from service.errors import ServiceError, validation_fields
from service.pagination import PageParams

DELIVERIES_PER_PAGE = 50
EMPTY_DRAFT: dict[str, Any] = {"url": "", "events": [], "custom_events": "", "description": ""}
# The path segment of each owner's pages, and how a page names the owner.
OWNER_PATHS = {OwnerKind.PLAYBOOK: "playbooks", OwnerKind.TEAM: "teams"}


@dataclass(frozen=True)
class Owner:
    """Whose webhooks a page shows (the visitor may manage them: the service said so)."""

    kind: OwnerKind
    id: str
    team_id: str
    # The playbook's title; empty for a team (its header names it).
    title: str

    @property
    def base(self) -> str:
        return f"/backstage/{OWNER_PATHS[self.kind]}/{self.id}/webhooks"


@dataclass(frozen=True)
class Shown:
    """A webhook just made, or just given a new secret: its secret is in `view` this once (None
    when the same form was sent again: the first answer showed it)."""

    view: SubscriptionView
    created: bool


async def owner_of(who: Visitor, kind: OwnerKind, owner_id: str) -> Owner:
    """The owner, if the visitor may manage its webhooks; else the service's "not found"."""
    owner, team_id = await webhooks.owner_for(who.svc, who.actor, kind, owner_id)
    title = ""
    if kind == OwnerKind.PLAYBOOK:
        title = (await playbooks.get_playbook(who.svc, who.actor, owner.id)).title
    return Owner(kind=kind, id=owner.id, team_id=team_id, title=title)


def custom_events(events: list[str]) -> str:
    """The events a subscription names beyond the incident events and "*", as the form's text."""
    return ", ".join(e for e in events if e != ALL_EVENTS and e not in INCIDENT_EVENTS)


def draft_of(subscription: SubscriptionPublic) -> dict[str, Any]:
    return {
        "url": subscription.url,
        "events": [e for e in subscription.events if e == ALL_EVENTS or e in INCIDENT_EVENTS],
        "custom_events": custom_events(subscription.events),
        "description": subscription.description,
    }


def parse_draft(who: Visitor) -> dict[str, Any]:
    """The form as typed: the URL, the events ticked, the custom types (comma-separated), the note."""
    ticked = [e for e in who.form_lists.get("events", []) if e == ALL_EVENTS or e in INCIDENT_EVENTS]
    return {
        "url": who.form.get("url", "").strip(),
        "events": list(dict.fromkeys(ticked)),
        "custom_events": who.form.get("custom_events", "").strip(),
        "description": who.form.get("description", "").strip(),
    }


def spec_of(draft: dict[str, Any]) -> tuple[SubscriptionSpec | None, dict[str, str]]:
    """The draft as the API body, or the problems, keyed by form input."""
    typed = [e.strip() for e in draft["custom_events"].split(",") if e.strip()]
    try:
        spec = SubscriptionSpec.model_validate(
            {"url": draft["url"], "events": [*draft["events"], *typed], "description": draft["description"]}
        )
    except ValidationError as invalid:
        errors: dict[str, str] = {}
        for name, problem in validation_fields(invalid.errors()).items():
            key = name.split("[", 1)[0]
            if key == "events" and typed and not draft["events"] and "at least 1" not in problem:
                key = "custom_events"
            errors.setdefault(key, problem)
        if "events" in errors and "at least 1" in errors["events"]:
            errors["events"] = "choose at least one event, or All events"
        return None, errors
    return spec, {}


def _owner_pages(kind: OwnerKind) -> APIRouter:
    router = APIRouter(
        prefix=f"/backstage/{OWNER_PATHS[kind]}/{{owner_id}}/webhooks",
        include_in_schema=False,
        dependencies=[Depends(conceal_existence)],
    )

    async def page(who: Visitor, owner: Owner, name: str, status_code: int = 200, **context: Any) -> Response:
        return await render_in_team(
            who,
            name,
            owner.team_id,
            status_code,
            owner=owner,
            incident_events=INCIDENT_EVENTS,
            all_events=ALL_EVENTS,
            **context,
        )

    async def list_page(
        who: Visitor,
        owner: Owner,
        status_code: int = 200,
        *,
        shown: Shown | None = None,
        draft: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        message: str = "",
        imported: ImportedWebhooks | None = None,
        yaml_text: str = "",
        yaml_errors: dict[str, str] | None = None,
    ) -> Response:
        listed = await webhooks.list_subscriptions(who.svc, who.actor, kind, owner.id)
        if shown is not None:
            public = SubscriptionPublic.model_validate(shown.view.model_dump(exclude={"secret"}))
            listed = [s for s in listed if s.id != public.id] + [public]
            listed.sort(key=lambda s: (s.created_at, s.id))
        return await page(
            who,
            owner,
            "webhooks.html",
            status_code,
            items=listed,
            shown=shown,
            draft=draft or EMPTY_DRAFT,
            errors=errors or {},
            message=message,
            imported=imported,
            yaml_text=yaml_text,
            yaml_errors=yaml_errors or {},
        )

    async def edit_page(
        who: Visitor,
        owner: Owner,
        subscription: SubscriptionPublic,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        context.setdefault("draft", draft_of(subscription))
        context.setdefault("errors", {})
        context.setdefault("message", "")
        return await page(who, owner, "webhook_edit.html", status_code, webhook=subscription, **context)

    @router.get("")
    async def webhook_list(owner_id: str, who: Visitor = Depends(visitor)) -> Response:
        return await list_page(who, await owner_of(who, kind, owner_id))

    @router.post("")
    async def create_webhook(owner_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        """Make one; the answer is the page showing its secret, this once."""
        owner = await owner_of(who, kind, owner_id)
        draft = parse_draft(who)
        spec, errors = spec_of(draft)
        if spec is None:
            return await list_page(who, owner, 422, draft=draft, errors=errors)
        try:
            made = await webhooks.create_subscription(
                who.svc, who.actor, kind, owner.id, spec, idempotency_key=who.form.get("request_key") or None
            )
        except ServiceError as error:
            if error.status != 422:
                raise
            return await list_page(who, owner, 422, draft=draft, errors=error.fields, message=error.message)
        return await list_page(who, owner, 201, shown=Shown(made, created=True))

    # Before `/{webhook_id}`: routes match in order.
    @router.get("/export")
    async def export_webhooks(owner_id: str, who: Visitor = Depends(visitor)) -> Response:
        """The subscriptions as a YAML file (never their secrets), to keep in a repository."""
        owner = await owner_of(who, kind, owner_id)
        text = await webhook_yaml.export_yaml(who.svc, who.actor, kind, owner.id)
        filename = f"webhooks-{kind.value}-{owner.id}.yaml"
        return Response(
            text, media_type="application/yaml", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )

    @router.post("/import")
    async def import_webhooks(owner_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        """Apply a YAML file (matched by URL); new ones' secrets are shown this once."""
        owner = await owner_of(who, kind, owner_id)
        text = who.form.get("yaml", "")
        prune = who.form.get("prune") == "1"
        try:
            imported = await webhook_yaml.import_yaml(who.svc, who.actor, kind, owner.id, text, prune=prune)
        except ServiceError as error:
            if error.status != 422:
                raise
            return await list_page(
                who,
                owner,
                422,
                yaml_text=text,
                yaml_errors=error.fields or {"yaml": error.message},
            )
        return await list_page(who, owner, imported=imported)

    @router.get("/{webhook_id}")
    async def edit_webhook(owner_id: str, webhook_id: str, who: Visitor = Depends(visitor)) -> Response:
        owner = await owner_of(who, kind, owner_id)
        subscription = await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        return await edit_page(who, owner, subscription)

    @router.post("/{webhook_id}")
    async def save_webhook(owner_id: str, webhook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        owner = await owner_of(who, kind, owner_id)
        subscription = await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        draft = parse_draft(who)
        spec, errors = spec_of(draft)
        if spec is None:
            return await edit_page(who, owner, subscription, 422, draft=draft, errors=errors)
        try:
            await webhooks.update_subscription(who.svc, who.actor, kind, owner.id, webhook_id, spec)
        except ServiceError as error:
            if error.status != 422:
                raise
            return await edit_page(
                who, owner, subscription, 422, draft=draft, errors=error.fields, message=error.message
            )
        return redirect(who, owner.base, f"Webhook to {spec.url} saved.")

    @router.post("/{webhook_id}/secret")
    async def rotate_secret(owner_id: str, webhook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        """A new secret, shown in the answer only; the previous one also signs for a day."""
        owner = await owner_of(who, kind, owner_id)
        rotated = await webhooks.rotate_secret(who.svc, who.actor, kind, owner.id, webhook_id)
        return await list_page(who, owner, shown=Shown(rotated, created=False))

    @router.get("/{webhook_id}/delete")
    async def confirm_delete(owner_id: str, webhook_id: str, who: Visitor = Depends(visitor)) -> Response:
        owner = await owner_of(who, kind, owner_id)
        subscription = await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        return await page(who, owner, "webhook_delete.html", webhook=subscription)

    @router.post("/{webhook_id}/delete")
    async def delete_webhook(owner_id: str, webhook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        """Deletes once confirmed (`confirmed=1`, which the confirmation's button sends); else asks."""
        owner = await owner_of(who, kind, owner_id)
        subscription = await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        if who.form.get("confirmed") != "1":
            return await page(who, owner, "webhook_delete.html", 409, webhook=subscription)
        await webhooks.delete_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        return redirect(
            who, owner.base, f"Webhook to {subscription.url} deleted: nothing more is sent to it, not even what waited."
        )

    @router.get("/{webhook_id}/deliveries")
    async def deliveries(owner_id: str, webhook_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
        """What was sent to it, newest first (the last 1,000), a page at a time."""
        owner = await owner_of(who, kind, owner_id)
        subscription = await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        asked = request.query_params.get("page", "0")
        params = PageParams(
            page=int(asked) if asked.isascii() and asked.isdigit() and len(asked) < 6 else 0,
            per_page=DELIVERIES_PER_PAGE,
            direction=None,
        )
        found = await webhooks.deliveries(who.svc, who.actor, kind, owner.id, webhook_id, params)
        return await page(who, owner, "webhook_deliveries.html", webhook=subscription, page=found)

    @router.post("/{webhook_id}/deliveries")
    async def redeliver(owner_id: str, webhook_id: str, who: Visitor = Depends(form_visitor)) -> Response:
        """Send one event again (`and_later=1`: it and every later one of its incident)."""
        owner = await owner_of(who, kind, owner_id)
        await webhooks.get_subscription(who.svc, who.actor, kind, owner.id, webhook_id)
        asked = who.form.get("page", "")
        back = f"{owner.base}/{webhook_id}/deliveries"
        if asked.isascii() and asked.isdigit() and 0 < len(asked) < 6 and int(asked) > 0:
            back += f"?page={int(asked)}"
        try:
            queued = await webhooks.redeliver(
                who.svc,
                who.actor,
                kind,
                owner.id,
                webhook_id,
                who.form.get("event_id", ""),
                and_later=who.form.get("and_later") == "1",
            )
        except ServiceError as error:
            return redirect(who, back, error.message, kind="error")
        return redirect(who, back, f"Queued {queued} event{'' if queued == 1 else 's'} again.")

    return router


routers = tuple(_owner_pages(kind) for kind in OWNER_PATHS)
