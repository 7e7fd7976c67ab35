"""`POST /mattermost/slash`: where Mattermost sends every `/incident ...` a user types."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from temporalio.service import RPCError

from api.dependencies import services
from api.http_errors import ErrorBody
from api.slash import incident_subcommands as incident_commands
from api.slash import playbook_subcommands as playbook_commands
from api.slash import schedule_subcommands as schedule_commands
from api.slash.slash_protocol import (
    SlashReply,
    SlashRequest,
    ephemeral,
    parse_form,
    presented_tokens,
    slash_request,
    token_is_valid,
)
from api.slash.slash_registry import RECEIVED_HERE, Registry, dispatch
from mattermost_client.gateway import MattermostFailure
from service.command_follow_ups import CommandPending, follow_up, watching_hand_over
from service.container import Services
from service.deadline import deadline
from service.errors import ServiceError, unauthorized
from service.unavailability import MATTERMOST_UNAVAILABLE, SERVICE_UNAVAILABLE, UNEXPECTED, rpc_error

log = logging.getLogger(__name__)
T = TypeVar("T")
router = APIRouter(tags=["mattermost"])
# Kept from the reply's time limit to find out whether Temporal answers at all.
PROBE_SECONDS = 0.4
NOT_SENT = (
    "The incident service is too slow right now: your command was not sent, and nothing was changed. "
    "Try again in a moment."
)
registry = Registry()
incident_commands.register(registry)
playbook_commands.register(registry)
schedule_commands.register(registry)

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
    return await within_deadline(svc, lambda: _run(svc, command), ephemeral)


async def _run(svc: Services, command: SlashRequest) -> SlashReply:
    actor = await svc.facts.caller_for_user_id(command.user_id)
    return await dispatch(registry, command, svc, actor)


async def within_deadline(
    svc: Services, run: Callable[[], Awaitable[T]], say: Callable[[str], T], received: str = RECEIVED_HERE
) -> T:
    """The command's reply, always an HTTP 200 within `SLASH_REPLY_SECONDS`, and always true.

    Mattermost shows a person nothing useful for a non-200 or a late answer, so failures
    are said in the reply (`say`: a slash reply, a dialog's error, a button's ephemeral
    text). A command that reached Temporal and is not answered yet is `received` ("Received,
    applying it…") with its outcome to follow; only one that provably did not is "not
    applied, try again": the service is unavailable, or slow before it could send it, or
    this incident's workflow is failing (tell an admin).
    """
    budget = svc.settings.slash_reply_seconds
    with watching_hand_over() as handed:
        try:
            with deadline(budget - PROBE_SECONDS):
                async with asyncio.timeout(budget - PROBE_SECONDS):
                    return await run()
        except CommandPending:
            return say(received)
        except ServiceError as error:
            if error.status == 401:
                raise
            return say(error.message)
        except RPCError as error:
            return say(rpc_error(error).message)
        except MattermostFailure as failure:
            log.warning("Mattermost failure in a slash command or callback: %s", failure.message)
            return say(MATTERMOST_UNAVAILABLE if failure.retryable else f"{failure.message}. Tell your admin.")
        except TimeoutError:
            if handed.pending is not None:
                follow_up(svc, handed.pending)
                return say(received)
            # Nothing reached Temporal: whether it answers tells an outage from slowness.
            if not await _temporal_answers(svc):
                return say(SERVICE_UNAVAILABLE)
            return say(NOT_SENT)
        except Exception:
            log.exception("slash command or callback failed")
            return say(UNEXPECTED)


async def _temporal_answers(svc: Services) -> bool:
    try:
        async with asyncio.timeout(PROBE_SECONDS - 0.05):
            await svc.temporal.service_client.check_health(timeout=timedelta(seconds=PROBE_SECONDS - 0.1))
    except Exception:  # any failure to answer is "not answering"
        return False
    return True
