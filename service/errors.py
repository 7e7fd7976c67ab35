"""Errors the service raises, each with the sentence a person reads and a status-like kind.

Every face renders them its own way: REST as `{"error", "message", "fields"}` with the
status, slash commands and dialogs as the message, the backstage as a page or a notice.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Raise anywhere below a route to answer with this status and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        # What a workflow's refusal said beyond its sentence (e.g. which stage to confirm).
        self.details = details or {}


def unauthorized(message: str) -> ServiceError:
    return ServiceError(401, "unauthorized", message)


def not_found(what: str) -> ServiceError:
    return ServiceError(404, "not_found", f"{what} not found.")


def invalid(message: str, fields: dict[str, str] | None = None) -> ServiceError:
    return ServiceError(422, "validation_error", message, fields)


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """`("body", "checklists", 1, "items", 0, "title")` -> `checklists[1].items[0].title`."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "form")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "request"


def validation_fields(errors: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for issue in errors:
        message = str(issue.get("msg", "is invalid")).removeprefix("Value error, ")
        fields.setdefault(field_path(issue.get("loc", ())), message)
    return fields


def describe_fields(fields: dict[str, str]) -> str:
    listed = "; ".join(f"{name}: {problem}" for name, problem in list(fields.items())[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return f"Invalid request: {listed}{more}."
