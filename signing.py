"""Signed tokens for what Mattermost hands back to us without any credential.

Dialog submissions carry only the `state` we put in the dialog, and button clicks only
the `context` we put in the button. Both are signed with `SIGNING_SECRET` (HMAC-SHA256)
so nobody can forge a submission or a click for an incident they cannot touch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class Signer:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a signing secret is required")
        self._key = hashlib.sha256(("incident-response:" + secret).encode()).digest()

    def _mac(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).decode().rstrip("=")

    def sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        text = body.decode().rstrip("=")
        return f"{text}.{self._mac(text.encode())}"

    def verify(self, token: object) -> dict[str, Any] | None:
        """The payload when the token is authentic, else None."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        text, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(text.encode())):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None
