"""Trigger ids: what lets an integration open a dialog for the user who acted.

Built like the real server's (base64 of ``client_id:user_id:millis:signature``) and
checked the same way, with the same error ids; the signature is an HMAC with the
state's secret instead of an ECDSA key. The channel and team the user acted in are
remembered per trigger so an opened dialog can be recorded with its context, which
on the real server only the user's client knows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from mattermost_standin.errors import AppError
from mattermost_standin.store import Store, new_id


def _sign(secret: str, data: str) -> str:
    digest = hmac.new(secret.encode(), data.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def issue(store: Store, user_id: str, *, channel_id: str, team_id: str) -> tuple[str, str]:
    """A fresh ``(client_trigger_id, trigger_id)``: the integration gets the second, the client the first."""
    client_id = new_id()
    data = f"{client_id}:{user_id}:{store.now_ms()}:"
    trigger_id = base64.b64encode((data + _sign(store.state.secret, data)).encode()).decode()
    store.state.trigger_contexts[client_id] = {"channel_id": channel_id, "team_id": team_id}
    return client_id, trigger_id


def _invalid(error_id: str, message: str) -> AppError:
    return AppError(400, f"interactive_message.decode_trigger_id.{error_id}", message)


def verify(store: Store, trigger_id: str, timeout_seconds: float) -> tuple[str, str]:
    """``(client_trigger_id, user_id)`` of a valid trigger id, else the server's 400 error."""
    try:
        decoded = base64.b64decode(trigger_id, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid(
            "base64_decode_failed", "Failed to decode base64 for trigger ID for interactive dialog."
        ) from None
    parts = decoded.split(":")
    if len(parts) != 4:
        raise _invalid("missing_data", "Trigger ID missing required data for interactive dialog.")
    client_id, user_id, millis, signature = parts
    issued_at = int(millis) if millis.isdigit() else 0
    if store.now_ms() - issued_at > timeout_seconds * 1000:
        raise _invalid(
            "expired",
            f"Trigger ID for interactive dialog is expired. Trigger IDs live for a maximum of {timeout_seconds:g}s.",
        )
    try:
        base64.b64decode(signature, validate=True)
    except binascii.Error:
        raise _invalid(
            "base64_decode_failed_signature",
            "Failed to decode base64 signature of trigger ID for interactive dialog.",
        ) from None
    expected = _sign(store.state.secret, f"{client_id}:{user_id}:{millis}:")
    if not hmac.compare_digest(signature, expected):
        raise _invalid(
            "verify_signature_failed", "Signature verification failed for trigger ID for interactive dialog."
        )
    return client_id, user_id
