"""`POST /mattermost/slash`: where Mattermost sends every `/incident ...` a user types."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.errors import ErrorBody, unauthorized
from api.services import Services, services
from api.slash import incident_commands, playbook_commands
from api.slash.protocol import (
    SlashReply,
    SlashRequest,
    parse_form,
    presented_tokens,
    slash_request,
    token_is_valid,
)
from api.slash.registry import Registry, dispatch

router = APIRouter(tags=["mattermost"])
registry = Registry()
incident_commands.register(registry)
playbook_commands.register(registry)

# How the command is registered in Mattermost (System Console > Integrations > Slash Commands).
AUTOCOMPLETE = {
    "trigger": registry.trigger,
    "auto_complete": True,
    "auto_complete_hint": "[command]",
    "auto_complete_desc": "Run incidents: start, info, update, check, stage, commander, end. Try help.",
    "display_name": "Incident response",
    "description": "Start and drive incidents as durable Temporal workflows",
}

_FORM_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": SlashRequest.model_json_schema()}},
    }
}


@router.post(
    "/mattermost/slash",
    response_model=SlashReply,
    summary="Mattermost custom slash command endpoint",
    description="Verifies the command token (form field `token` or `Authorization: Token ...`) and runs "
    "the subcommand. Replies are Mattermost command responses.",
    openapi_extra=_FORM_SCHEMA,
    responses={
        400: {"model": ErrorBody, "description": "Not a slash command request"},
        401: {"model": ErrorBody, "description": "Wrong or missing command token"},
        415: {"model": ErrorBody, "description": "Not form-encoded"},
    },
)
async def slash_command(request: Request, svc: Services = Depends(services)) -> SlashReply:
    form = parse_form(await request.body(), request.headers.get("content-type", ""))
    tokens = presented_tokens(form, request.headers.get("authorization"))
    if not token_is_valid(tokens, svc.settings.slash_tokens):
        raise unauthorized("Invalid or missing slash command token.")
    command = slash_request(form)
    actor = await svc.facts.caller_for_user_id(command.user_id)
    return await dispatch(registry, command, svc, actor)
