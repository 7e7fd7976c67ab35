"""The backstage's session: an encrypted cookie holding the person's Mattermost token.

The cookie is sealed with AES-GCM (`cryptography`) under a key derived from
`SIGNING_SECRET` with HKDF for this use alone: it reveals nothing (not the token, not who
signed in, not when) and cannot be altered. It is HttpOnly (no script reads it),
SameSite=Lax (not sent with cross-site form posts), Secure when `PUBLIC_URL` is https, and
scoped to `/backstage`. Each session has a random id; signing out records a hash of it in
Temporal (`service/session_sign_outs.py`), so every API process refuses the cookie from
then on. It carries a per-session CSRF token that every state-changing form sends back in
a hidden field, compared in constant time. The OAuth state and the flash message, which
hold nothing secret, are signed (`signing.Signer`), every payload naming its purpose.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Request, Response

from models.signed_out_sessions import SESSION_SECONDS
from signing import Signer

SESSION_COOKIE = "backstage_session"
STATE_COOKIE = "backstage_oauth"
FLASH_COOKIE = "backstage_flash"
PATH = "/backstage"
STATE_SECONDS = 10 * 60
NONCE_BYTES = 12


@dataclass(frozen=True)
class Session:
    session_id: str
    token: str = field(repr=False)
    user_id: str
    csrf: str
    expires_at: float


def _cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="lax", secure=secure)


@functools.lru_cache(maxsize=8)
def _cipher(signing_secret: str) -> AESGCM:
    """The session cookie's key: HKDF of the signing secret, bound to this one use, so no
    other use of the secret (signed dialog state, button context) can open or forge it."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"backstage session cookie").derive(
        signing_secret.encode()
    )
    return AESGCM(key)


def _seal(signing_secret: str, payload: dict[str, Any]) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _cipher(signing_secret).encrypt(nonce, json.dumps(payload).encode(), SESSION_COOKIE.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def _unseal(signing_secret: str, value: str | None) -> dict[str, Any] | None:
    """The payload of a cookie this app sealed, else None (altered, foreign, or garbage)."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        opened = _cipher(signing_secret).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], SESSION_COOKIE.encode())
        payload = json.loads(opened)
    except (ValueError, InvalidTag):
        return None
    return payload if isinstance(payload, dict) else None


def start_session(
    response: Response, signing_secret: str, *, token: str, user_id: str, expires_in: float | None, secure: bool
) -> Session:
    lifetime = min(SESSION_SECONDS, expires_in) if expires_in and expires_in > 0 else SESSION_SECONDS
    session = Session(
        session_id=secrets.token_urlsafe(32),
        token=token,
        user_id=user_id,
        csrf=secrets.token_urlsafe(24),
        expires_at=time.time() + lifetime,
    )
    payload = {"s": session.session_id, "t": token, "u": user_id, "c": session.csrf, "e": session.expires_at}
    _cookie(response, SESSION_COOKIE, _seal(signing_secret, payload), max_age=int(lifetime), secure=secure)
    return session


def read_session(request: Request, signing_secret: str) -> Session | None:
    """The session of the cookie, when this app made it and it has not expired. Whether it
    was signed out is Temporal's to say (`service.session_sign_outs.has_ended`)."""
    payload = _unseal(signing_secret, request.cookies.get(SESSION_COOKIE))
    if payload is None:
        return None
    try:
        session = Session(
            session_id=str(payload["s"]),
            token=str(payload["t"]),
            user_id=str(payload["u"]),
            csrf=str(payload["c"]),
            expires_at=float(payload["e"]),
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


# A path under /backstage and its query, in the characters a URL keeps as they are (no spaces,
# controls or backslashes, which browsers drop or read as slashes), without a fragment.
_INSIDE = re.compile(r"/backstage(?:/[\w.~!$&'()*+,;=:@%-]*)*(?:\?[\w.~!$&'()*+,;=:@%/?-]*)?", re.ASCII)
# A segment a browser takes for "." or ".." (also percent-encoded), which moves a path out of its folder.
_DOTS = re.compile(r"/(?:\.|%2e){1,2}(?=/|\?|$)", re.IGNORECASE)


def safe_next(path: str) -> str:
    """Only a path inside the backstage, as a browser will resolve it: never a redirect to
    another site, and never out of /backstage (`/backstage@evil`, `/backstage/../x`)."""
    where = path.split("?", 1)[0]
    if _INSIDE.fullmatch(path) and "//" not in where and not _DOTS.search(where):
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
