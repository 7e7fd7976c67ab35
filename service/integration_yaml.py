"""Integrations as code: the YAML form of an integration, with line-numbered errors.

Playbooks appear by title and commanders by username, so a file reads well in review and
can be imported into another team; import resolves them in the target team. The token is
never in the file: an imported integration gets a new one, shown once in the answer.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field, ValidationError

from models.common import Actor, Model, Trimmed
from models.integration import (
    AUTO_END_MAX_MINUTES,
    MAX_MATCHERS,
    MAX_ROUTES,
    NAME_MAX,
    Integration,
    IntegrationKind,
    IntegrationRoute,
    IntegrationSpec,
)
from service.container import Services
from service.errors import ServiceError
from service.playbooks import usable_playbooks
from service.yaml_documents import DocumentKind, Lines, line_for, located_error, parse_off_loop

INTEGRATION_FILE = DocumentKind("integration", "a mapping with kind, name, playbook and routes")
FORMAT_HEADER = "# Alert integration. Import with POST /api/v1/integrations/import?team_id=<team>\n"


class RouteDocument(Model):
    match: dict[Trimmed, str] = Field(min_length=1, max_length=MAX_MATCHERS)
    playbook: str | None = None
    severity: str | None = None
    commander: str | None = None
    auto_end_after_minutes: int | None = Field(default=None, ge=1, le=AUTO_END_MAX_MINUTES)


class IntegrationDocument(Model):
    """The YAML schema (playbook titles and usernames instead of ids)."""

    kind: IntegrationKind
    name: str = Field(min_length=1, max_length=NAME_MAX)
    playbook: str | None = None
    routes: list[RouteDocument] = Field(default_factory=list, max_length=MAX_ROUTES)


async def export_yaml(svc: Services, actor: Actor, integration: Integration) -> str:
    titles = {p.id: p.title for p in await usable_playbooks(svc, actor, integration.team_id)}
    commanders = [r.commander_id for r in integration.routes if r.commander_id]
    users = {u["id"]: u["username"] for u in await svc.mattermost.get_users_by_ids(commanders)} if commanders else {}

    def playbook(playbook_id: str | None) -> str | None:
        return titles.get(playbook_id, playbook_id) if playbook_id else None

    document = IntegrationDocument(
        kind=integration.kind,
        name=integration.name,
        playbook=playbook(integration.playbook_id),
        routes=[
            RouteDocument(
                match=route.match,
                playbook=playbook(route.playbook_id),
                severity=route.severity,
                commander=users.get(route.commander_id, route.commander_id) if route.commander_id else None,
                auto_end_after_minutes=route.auto_end_after_minutes,
            )
            for route in integration.routes
        ],
    )
    body = document.model_dump(mode="json", exclude_none=True)
    return FORMAT_HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


async def parse_off_loop_integration(text: str) -> tuple[IntegrationDocument, Lines]:
    return await parse_off_loop(text, IntegrationDocument, INTEGRATION_FILE)


async def resolve_document(
    svc: Services, actor: Actor, team_id: str, document: IntegrationDocument, lines: Lines
) -> tuple[IntegrationKind, IntegrationSpec]:
    """Turn playbook titles and usernames into ids in the target team; what does not resolve
    (or is ambiguous) is an error on its line."""
    fields: dict[str, str] = {}
    by_title: dict[str, list[str]] = {}
    for summary in await usable_playbooks(svc, actor, team_id):
        by_title.setdefault(summary.title.casefold(), []).append(summary.id)

    def playbook_id(title: str | None, loc: tuple[Any, ...]) -> str | None:
        if title is None:
            return None
        found = by_title.get(title.strip().casefold(), [])
        if len(found) != 1:
            problem = "no playbook" if not found else f"{len(found)} playbooks"
            fields[".".join(str(p) for p in loc)] = f"line {line_for(loc, lines)}: {problem} titled {title!r}"
            return None
        return found[0]

    async def user_id(name: str | None, loc: tuple[Any, ...]) -> str | None:
        if name is None:
            return None
        user = await svc.facts.user_by_username(name.lstrip("@"))
        if user is None:
            fields[".".join(str(p) for p in loc)] = f"line {line_for(loc, lines)}: no user @{name.lstrip('@')}"
            return None
        return str(user["id"])

    default = playbook_id(document.playbook, ("playbook",))
    routes: list[dict[str, Any]] = []
    for n, route in enumerate(document.routes):
        routes.append(
            {
                "match": route.match,
                "playbook_id": playbook_id(route.playbook, ("routes", n, "playbook")),
                "severity": route.severity,
                "commander_id": await user_id(route.commander, ("routes", n, "commander")),
                "auto_end_after_minutes": route.auto_end_after_minutes,
            }
        )
    if fields:
        raise ServiceError(
            422, "validation_error", "The integration file names playbooks or people that do not exist.", fields
        )
    try:
        spec = IntegrationSpec(
            name=document.name,
            playbook_id=default,
            routes=[IntegrationRoute.model_validate(route) for route in routes],
        )
    except ValidationError as error:
        raise located_error(error, lines, INTEGRATION_FILE) from None
    return document.kind, spec
