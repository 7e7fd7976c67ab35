"""Idempotency keys, scoped once for every caller: REST routes, slash commands, dialogs, buttons.

A key a client sends (`Idempotency-Key`, Mattermost's `trigger_id`, a dialog's signed
state) is only meaningful for that caller and that action: alice's key never touches
bob's request, and one key on two different actions makes two requests. So the update
id sent to Temporal is derived from (caller, action, key), and the request carries a
fingerprint of what was asked. The incident workflow remembers the requests it applied
(across runs), so a resend returns the first answer; a reused key whose fingerprint
differs is refused with 422, as payment APIs do.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from models.incident_commands import RequestKey
from service.errors import ServiceError


def fingerprint(body: Any) -> str:
    """A stable digest of what a request asked for (JSON-able values or pydantic models)."""
    if hasattr(body, "model_dump"):
        body = body.model_dump(mode="json")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def new_key() -> str:
    """A key for a request its caller sent none for: every command can be asked about again
    (a pending one's outcome is read by repeating it with this key)."""
    return f"auto-{secrets.token_hex(12)}"


def scoped(caller_id: str, action: str, key: str, body: Any = None) -> RequestKey:
    """The request key for `key` sent by `caller_id` for `action`."""
    digest = hashlib.sha256(f"{caller_id}\x00{action}\x00{key}".encode()).hexdigest()[:40]
    return RequestKey(id=f"{action}:{digest}", fingerprint=fingerprint(body))


def check_replay(request: RequestKey | None, answered_fingerprint: str) -> None:
    """Refuse a reused key whose first request asked for something else."""
    if request is not None and answered_fingerprint and answered_fingerprint != request.fingerprint:
        raise ServiceError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request. Send a new key for a new request; "
            "resend the same request unchanged to get its first answer.",
        )
