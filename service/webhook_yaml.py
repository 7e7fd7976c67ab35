"""Webhook subscriptions as code: an owner's subscriptions as a YAML file, and applying one.

The file lists each subscription's URL, events and description, never a secret. Applying
(import) matches subscriptions by URL: a listed URL that exists is changed to what the file
says, a new one is made (its secret is in the answer, shown once), and with `prune` the
ones the file does not list are deleted. Everything is checked first (the file's shape and
every URL's safety, each error on its line); nothing is applied unless all of it holds.
"""

from __future__ import annotations

import yaml

from models.common import Actor
from models.webhooks import (
    SUBSCRIPTIONS_MAX,
    ImportedWebhooks,
    OwnerKind,
    SubscriptionSpec,
    WebhooksDocument,
)
from service import webhook_subscriptions as subscriptions
from service.container import Services
from service.errors import ServiceError
from service.yaml_documents import DocumentKind, line_for, parse_off_loop
from webhook_targets import TargetRefused, vet_target

WEBHOOKS_FILE = DocumentKind("webhooks", "a mapping with webhooks: a list of url, events and description")


def _header(kind: OwnerKind, owner_id: str) -> str:
    path = f"/api/v1/{kind.value}s/{owner_id}/webhooks/import"
    return (
        f"# Webhook subscriptions of {kind.value} {owner_id} (secrets are never in this file).\n"
        f"# Apply with PUT {path} (add ?prune=true to delete the ones not listed).\n"
    )


async def export_yaml(svc: Services, actor: Actor, kind: OwnerKind, owner_id: str) -> str:
    listed = await subscriptions.list_subscriptions(svc, actor, kind, owner_id)
    document = WebhooksDocument(
        webhooks=[SubscriptionSpec(url=s.url, events=s.events, description=s.description) for s in listed]
    )
    body = document.model_dump(mode="json")
    return _header(kind, owner_id) + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def import_yaml(
    svc: Services, actor: Actor, kind: OwnerKind, owner_id: str, text: str, *, prune: bool
) -> ImportedWebhooks:
    """Make the owner's subscriptions what the file says (see the module's docstring)."""
    existing = {s.url: s for s in await subscriptions.list_subscriptions(svc, actor, kind, owner_id)}
    document, lines = await parse_off_loop(text, WebhooksDocument, WEBHOOKS_FILE)
    fields: dict[str, str] = {}
    for index, wanted in enumerate(document.webhooks):
        try:
            await vet_target(wanted.url, svc.settings.webhook_networks)
        except TargetRefused as refused:
            where = line_for(("webhooks", index, "url"), lines)
            fields[f"webhooks[{index}].url"] = f"line {where}: {refused}" if where else str(refused)
    if fields:
        listed = "; ".join(f"{name} ({problem})" for name, problem in fields.items())
        raise ServiceError(422, "validation_error", f"The webhooks file is invalid: {listed}.", fields)
    listed_urls = {w.url for w in document.webhooks}
    kept = [s for s in existing.values() if s.url in listed_urls or not prune]
    new = [w for w in document.webhooks if w.url not in existing]
    if len(kept) + len(new) > SUBSCRIPTIONS_MAX:
        raise ServiceError(
            422,
            "validation_error",
            f"Applying this file would make {len(kept) + len(new)} subscriptions; at most {SUBSCRIPTIONS_MAX} "
            "are allowed. Remove some, or apply it with prune=true to delete the ones it does not list.",
        )
    result = ImportedWebhooks()
    if prune:
        for gone in (s for s in existing.values() if s.url not in listed_urls):
            await subscriptions.delete_subscription(svc, actor, kind, owner_id, gone.id)
            result.deleted.append(gone.id)
    for wanted in document.webhooks:
        current = existing.get(wanted.url)
        if current is None:
            result.created.append(await subscriptions.create_subscription(svc, actor, kind, owner_id, wanted))
        elif (current.events, current.description) != (wanted.events, wanted.description):
            result.updated.append(
                await subscriptions.update_subscription(svc, actor, kind, owner_id, current.id, wanted)
            )
        else:
            result.unchanged.append(current.id)
    return result
