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


def refuse(kind: Refusal, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind.value, non_retryable=True)


def forbidden(message: str) -> ApplicationError:
    return refuse(Refusal.FORBIDDEN, message)


def conflict(message: str) -> ApplicationError:
    return refuse(Refusal.CONFLICT, message)


def invalid(message: str) -> ApplicationError:
    return refuse(Refusal.INVALID, message)


def not_found(message: str) -> ApplicationError:
    return refuse(Refusal.NOT_FOUND, message)
