"""How a workflow refuses a command, and how the API recognises the refusal.

Validators raise `ApplicationError` with one of these types; the message is the
sentence the user reads. The API maps the type to an HTTP status and passes the
message on verbatim; the slash command shows it as an ephemeral reply.
"""

from __future__ import annotations

from enum import StrEnum

from temporalio.exceptions import ApplicationError


class Refusal(StrEnum):
    FORBIDDEN = "Forbidden"  # the caller may not do this (403)
    CONFLICT = "Conflict"  # the incident's current state does not allow it (409)
    INVALID = "Invalid"  # the request itself is wrong (422)
    NOT_FOUND = "NotFound"  # something it names does not exist (404)
    # The command would do something that needs a yes first (leave open items behind,
    # end the incident). `details[0]` says what to confirm; the caller asks and resends.
    CONFIRM = "ConfirmationRequired"


# A conflict's detail: the version that is the latest, when a change was made to an older one.
STALE_VERSION = "latest_version"


def refuse(kind: Refusal, message: str, *details: object) -> ApplicationError:
    return ApplicationError(message, *details, type=kind.value, non_retryable=True)


def forbidden(message: str) -> ApplicationError:
    return refuse(Refusal.FORBIDDEN, message)


def conflict(message: str) -> ApplicationError:
    return refuse(Refusal.CONFLICT, message)


def invalid(message: str, field: str | None = None) -> ApplicationError:
    """`field` names the input at fault, so a form can show the message beside it."""
    return refuse(Refusal.INVALID, message, *([{"field": field}] if field else []))


def invalid_fields(message: str, problems: dict[str, str]) -> ApplicationError:
    """Several inputs at fault, each with its problem (a form shows each beside its field)."""
    return refuse(Refusal.INVALID, message, {"fields": problems})


def not_found(message: str, field: str | None = None) -> ApplicationError:
    return refuse(Refusal.NOT_FOUND, message, *([{"field": field}] if field else []))


def confirm(message: str, **what: object) -> ApplicationError:
    return refuse(Refusal.CONFIRM, message, what)


# What an ended incident answers a command: its rules say it, and so does the service when
# the ended incident's workflow has closed and cannot be asked.
ENDED = "This incident has ended. Restart it first to make changes."
ALREADY_ENDED = "This incident has already ended."


def ended_refusal(command_name: str) -> str:
    return ALREADY_ENDED if command_name == "end_incident" else ENDED
