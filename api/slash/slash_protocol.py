"""Mattermost's custom slash command protocol: the request it sends, the reply it expects."""

from __future__ import annotations

import hmac
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, Field

from service.errors import ServiceError

REQUIRED_FIELDS = ("team_id", "channel_id", "user_id", "command")


class SlashRequest(BaseModel):
    """The form fields Mattermost posts for a custom slash command."""

    token: str = ""
    team_id: str
    team_domain: str = ""
    channel_id: str
    channel_name: str = ""
    user_id: str
    user_name: str = ""
    command: str
    text: str = ""
    trigger_id: str = ""
    response_url: str = ""
    root_id: str = ""


class SlashReply(BaseModel):
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"
    text: str
    props: dict[str, Any] = Field(default_factory=dict)
    goto_location: str = ""
    extra_responses: list[dict[str, Any]] = Field(default_factory=list)


def ephemeral(text: str) -> SlashReply:
    return SlashReply(text=text)


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """Decode the urlencoded body, refusing anything Mattermost would not send."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise ServiceError(
            415,
            "unsupported_media_type",
            "Send the slash command as application/x-www-form-urlencoded, as Mattermost does.",
        )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise ServiceError(400, "bad_request", "The form body is not valid urlencoded UTF-8.") from None
    return {key: values[-1] for key, values in parsed.items()}


def presented_tokens(form: dict[str, str], authorization: str | None) -> list[str]:
    tokens = []
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "token" and value.strip():
            tokens.append(value.strip())
    if form.get("token"):
        tokens.append(form["token"])
    return tokens


def token_is_valid(presented: list[str], expected: list[str]) -> bool:
    """Constant-time comparison; every presented token (header, form) must be a known one."""
    if not expected or not presented:
        return False
    return all(_known(token, expected) for token in presented)


def _known(token: str, expected: list[str]) -> bool:
    # Compare against every configured token so the time taken reveals nothing.
    matches = [hmac.compare_digest(token.encode(), candidate.encode()) for candidate in expected]
    return any(matches)


def slash_request(form: dict[str, str]) -> SlashRequest:
    missing = [name for name in REQUIRED_FIELDS if not form.get(name)]
    if missing:
        raise ServiceError(
            400,
            "bad_request",
            f"Missing form field(s): {', '.join(missing)}. This endpoint expects Mattermost's slash "
            "command request (team_id, channel_id, user_id, command, text, ...).",
        )
    return SlashRequest.model_validate({k: v for k, v in form.items() if k in SlashRequest.model_fields})
