"""The backstage's session: a signed cookie holding the person's Mattermost token.

The cookie is signed with `SIGNING_SECRET` (`signing.Signer`), HttpOnly (no script reads
it), SameSite=Lax (not sent with cross-site form posts) and Secure when `PUBLIC_URL` is
https. It carries a per-session CSRF token that every state-changing form sends back in
a hidden field, compared in constant time. Every payload names its purpose, so a dialog
state or button context signed with the same secret is never taken for a session.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from signing import Signer

SESSION_COOKIE = "backstage_session"
STATE_COOKIE = "backstage_oauth"
FLASH_COOKIE = "backstage_flash"
PATH = "/backstage"
# A session lasts at most this long (or as long as Mattermost's token, if shorter).
SESSION_SECONDS = 12 * 3600
STATE_SECONDS = 10 * 60


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    csrf: str
    expires_at: float


def _cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="lax", secure=secure)


def start_session(
    response: Response, signer: Signer, *, token: str, user_id: str, expires_in: float | None, secure: bool
) -> Session:
    lifetime = min(SESSION_SECONDS, expires_in) if expires_in and expires_in > 0 else SESSION_SECONDS
    session = Session(token=token, user_id=user_id, csrf=secrets.token_urlsafe(24), expires_at=time.time() + lifetime)
    payload = {"kind": "backstage-session", "t": token, "u": user_id, "c": session.csrf, "e": session.expires_at}
    _cookie(response, SESSION_COOKIE, signer.sign(payload), max_age=int(lifetime), secure=secure)
    return session


def read_session(request: Request, signer: Signer) -> Session | None:
    payload = signer.verify(request.cookies.get(SESSION_COOKIE))
    if not payload or payload.get("kind") != "backstage-session":
        return None
    try:
        session = Session(
            token=str(payload["t"]), user_id=str(payload["u"]), csrf=str(payload["c"]), expires_at=float(payload["e"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    return session if session.expires_at > time.time() else None


def end_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="lax", secure=secure)


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())


# ---------------------------------------------------------------------------- OAuth state


def new_oauth_state(response: Response, signer: Signer, *, next_path: str, secure: bool) -> str:
    """The `state` sent to Mattermost: signed, short-lived, and bound to this browser by a
    nonce in a cookie, so a callback started elsewhere (login CSRF) is refused."""
    nonce = secrets.token_urlsafe(16)
    _cookie(response, STATE_COOKIE, nonce, max_age=STATE_SECONDS, secure=secure)
    return signer.sign({"kind": "backstage-oauth", "n": nonce, "next": next_path, "e": time.time() + STATE_SECONDS})


def check_oauth_state(request: Request, signer: Signer, state: str | None) -> str | None:
    """The path to go to after signing in, when `state` is ours, fresh and this browser's."""
    payload = signer.verify(state)
    nonce = request.cookies.get(STATE_COOKIE, "")
    if not payload or payload.get("kind") != "backstage-oauth" or not nonce:
        return None
    if not hmac.compare_digest(str(payload.get("n", "")).encode(), nonce.encode()):
        return None
    if float(payload.get("e", 0)) < time.time():
        return None
    return safe_next(str(payload.get("next", "")))


def clear_oauth_state(response: Response, *, secure: bool) -> None:
    response.delete_cookie(STATE_COOKIE, path=PATH, httponly=True, samesite="lax", secure=secure)


def safe_next(path: str) -> str:
    """Only a path inside the backstage: never an open redirect to another site."""
    if path.startswith(PATH) and not path.startswith("//") and "\\" not in path and "://" not in path:
        return path
    return PATH


# ---------------------------------------------------------------------------- flash


def set_flash(response: Response, signer: Signer, message: str, *, kind: str = "info", secure: bool) -> None:
    """A one-time message for the page a form redirects to (signed: nobody can plant text)."""
    payload: dict[str, Any] = {"kind": "backstage-flash", "m": message[:500], "k": kind}
    _cookie(response, FLASH_COOKIE, signer.sign(payload), max_age=60, secure=secure)


def read_flash(request: Request, signer: Signer) -> tuple[str, str] | None:
    payload = signer.verify(request.cookies.get(FLASH_COOKIE))
    if not payload or payload.get("kind") != "backstage-flash":
        return None
    return str(payload.get("m", "")), str(payload.get("k", "info"))


def clear_flash(response: Response, *, secure: bool) -> None:
    response.delete_cookie(FLASH_COOKIE, path=PATH, httponly=True, samesite="lax", secure=secure)
