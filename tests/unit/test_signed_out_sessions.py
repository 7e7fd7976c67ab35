"""Pure parts of ending backstage sessions: what the record keeps, and the sealed cookie."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.backstage import backstage_session as cookies
from models.signed_out_sessions import (
    CLOCK_SKEW_SECONDS,
    SESSION_SECONDS,
    SignedOutSessions,
    SignOut,
    prune_expired,
    record_sign_out,
    session_hash,
    signed_out_workflow_id,
)

NOW = 1_800_000_000


def test_a_sign_out_is_kept_until_its_session_would_have_expired_and_no_longer() -> None:
    state = SignedOutSessions(shard="a")
    soon, claimed_forever = session_hash("soon"), session_hash("forever")
    record_sign_out(state, SignOut(session_hash=soon, expires_at=NOW + 60), NOW)
    record_sign_out(state, SignOut(session_hash=claimed_forever, expires_at=NOW + 10 * SESSION_SECONDS), NOW)
    assert state.ended_until == {
        soon: NOW + 60 + CLOCK_SKEW_SECONDS,
        claimed_forever: NOW + SESSION_SECONDS + CLOCK_SKEW_SECONDS,
    }
    prune_expired(state, NOW + 60 + CLOCK_SKEW_SECONDS)
    assert list(state.ended_until) == [claimed_forever]


def test_the_record_holds_a_hash_sharded_by_its_first_character() -> None:
    hashed = session_hash("a random session id")
    assert len(hashed) == 32
    assert "random" not in hashed
    assert signed_out_workflow_id(hashed) == f"backstage-signed-out-sessions-{hashed[0]}"


def request_with(cookie: str) -> Request:
    header = f"{cookies.SESSION_COOKIE}={cookie}".encode()
    return Request({"type": "http", "method": "GET", "path": "/backstage", "headers": [(b"cookie", header)]})


def sealed_session(secret: str) -> tuple[cookies.Session, str]:
    response = Response()
    session = cookies.start_session(response, secret, token="tok", user_id="u1", expires_in=None, secure=False)
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    return session, value


def test_the_cookie_opens_only_with_its_own_secret_and_unaltered() -> None:
    session, value = sealed_session("secret one")
    assert cookies.read_session(request_with(value), "secret one") == session
    assert cookies.read_session(request_with(value), "secret two") is None
    middle = len(value) // 2
    altered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    for garbage in ("", "x", value[:20], altered, "é" * 40):
        assert cookies.read_session(request_with(garbage), "secret one") is None
