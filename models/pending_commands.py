"""A command Temporal accepted but had not answered when its caller had to reply.

The person was told "Received, applying it…"; `CommandOutcomeWorkflow` makes sure the
command gets its real outcome (applied once, or refused and why) and tells them: through
the slash command's `response_url`, or as a direct message from the bot (dialogs and
buttons have no `response_url`). A REST client repeats its request with the same
Idempotency-Key to read the outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from models.common import Model

# Mattermost accepts replies through a command's response_url for 30 minutes.
FOLLOW_UP_SECONDS = 30 * 60
RECEIVED = "Received, applying it…"


class LateReply(Model):
    """Where the outcome goes: a slash command's `response_url`, or a direct message to a person."""

    response_url: str = ""
    user_id: str = ""


class PendingCommand(Model):
    incident_id: str
    # The Update that carries the command ("open_incident" for a start, answered once the
    # incident's workflow exists), and its id: sending it again with the same id applies it
    # at most once, and answers with the first outcome.
    update: str
    update_id: str = Field(min_length=1, max_length=256)
    # The command as sent (JSON), or None for a start.
    command: dict[str, Any] | None = None
    # What the person asked, as the reply names it (e.g. "`/incident check 2`").
    asked: str = ""
    reply: LateReply | None = None
    received_at: datetime
    # After this the outcome is not waited for any more (and Mattermost takes no late reply).
    expires_at: datetime


class CommandOutcome(Model):
    # "applied", "refused" (the incident's rules said no, or it has ended), "not_applied"
    # (it never reached the incident: a start that was not made), "unknown" (still no answer
    # when the follow-up gave up).
    result: str
    message: str


class TellOutcome(Model):
    reply: LateReply
    text: str


def outcome_text(pending: PendingCommand, outcome: CommandOutcome) -> str:
    """What the person reads about their pending command."""
    about = f"{pending.asked}: " if pending.asked else ""
    if outcome.result == "applied":
        return f"{about}{outcome.message}"
    if outcome.result == "refused":
        return f"{about}not applied. {outcome.message}"
    if outcome.result == "not_applied":
        return f"{about}not applied: {outcome.message} Nothing was changed; try again."
    return f"{about}still no answer from the incident after 30 minutes. {outcome.message}"
