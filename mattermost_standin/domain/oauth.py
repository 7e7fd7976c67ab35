"""OAuth 2.0 provider: registered apps, authorization codes and the access tokens they buy.

Mattermost is an OAuth 2.0 provider (Integrations > OAuth 2.0 Applications): an app has
a client id (the app's id), a client secret and callback URLs; `/oauth/authorize` asks
the signed-in person to allow the app and redirects back with a one-use code, and
`/oauth/access_token` trades the code (with the app's secret) for an access token that
the v4 API accepts as `Authorization: Bearer`. The stand-in keeps the same rules: the
redirect URI must be one of the app's callback URLs, a code is used once within ten
minutes and only by the app and redirect URI it was issued for.
"""

from __future__ import annotations

import hmac

from mattermost_standin import errors
from mattermost_standin.errors import AppError
from mattermost_standin.store import Record, State, Store, new_id

CODE_SECONDS = 10 * 60
TOKEN_SECONDS = 30 * 24 * 3600


def register_app(store: Store, *, name: str, callback_urls: list[str], creator_id: str, homepage: str = "") -> Record:
    if not name or not callback_urls:
        raise errors.invalid_body_param("oauth_app", "name and callback_urls are required")
    now = store.now_ms()
    app: Record = {
        "id": new_id(),
        "creator_id": creator_id,
        "create_at": now,
        "update_at": now,
        "client_secret": new_id(),
        "name": name,
        "description": "",
        "icon_url": "",
        "callback_urls": list(callback_urls),
        "homepage": homepage or callback_urls[0],
        "is_trusted": False,
    }
    store.state.oauth_apps[app["id"]] = app
    return app


def find_app(state: State, client_id: str) -> Record | None:
    return state.oauth_apps.get(client_id)


def check_authorize(state: State, client_id: str, redirect_uri: str, response_type: str) -> Record:
    """The app, when the authorization request is one Mattermost would show a consent page for."""
    app = find_app(state, client_id)
    if app is None:
        raise AppError(404, "api.oauth.allow_oauth.database.app_error", "An error occurred finding the OAuth app.")
    if response_type != "code":
        raise AppError(400, "api.oauth.allow_oauth.bad_response.app_error", "Bad response_type in allow_oauth.")
    if redirect_uri not in app["callback_urls"]:
        raise AppError(
            400,
            "api.oauth.allow_oauth.redirect_callback.app_error",
            "invalid_request: Supplied redirect_uri did not match registered callback_url.",
        )
    return app


def issue_code(store: Store, *, client_id: str, user_id: str, redirect_uri: str) -> str:
    code = new_id()
    store.state.oauth_codes[code] = {
        "client_id": client_id,
        "user_id": user_id,
        "redirect_uri": redirect_uri,
        "expires_at": store.now_ms() + CODE_SECONDS * 1000,
    }
    return code


def _bad_grant(detail: str) -> AppError:
    return AppError(
        400, "api.oauth.get_access_token.bad_grant.app_error", "invalid_grant: Invalid or expired grant.", detail
    )


def _check_client(state: State, client_id: str, client_secret: str) -> Record:
    app = find_app(state, client_id)
    if app is None or not hmac.compare_digest(app["client_secret"].encode(), client_secret.encode()):
        raise AppError(
            403,
            "api.oauth.get_access_token.credentials.app_error",
            "invalid_client: The client credentials are invalid.",
        )
    return app


def exchange_code(store: Store, *, client_id: str, client_secret: str, code: str, redirect_uri: str) -> Record:
    """Trade a code for an access token (the code is spent whatever the outcome)."""
    _check_client(store.state, client_id, client_secret)
    grant = store.state.oauth_codes.pop(code, None)
    if grant is None or grant["expires_at"] < store.now_ms():
        raise _bad_grant("the code is unknown, used or expired")
    if grant["client_id"] != client_id or grant["redirect_uri"] != redirect_uri:
        raise _bad_grant("the code was issued to another app or redirect_uri")
    return _new_session(store, client_id, grant["user_id"])


def refresh(store: Store, *, client_id: str, client_secret: str, refresh_token: str) -> Record:
    _check_client(store.state, client_id, client_secret)
    old = next(
        (s for s in store.state.oauth_sessions.values() if s["refresh_token"] == refresh_token),
        None,
    )
    if old is None or old["client_id"] != client_id:
        raise _bad_grant("the refresh token is unknown")
    store.state.oauth_sessions.pop(old["token"], None)
    return _new_session(store, client_id, old["user_id"])


def _new_session(store: Store, client_id: str, user_id: str) -> Record:
    session: Record = {
        "token": new_id(),
        "refresh_token": new_id(),
        "client_id": client_id,
        "user_id": user_id,
        "expires_at": store.now_ms() + TOKEN_SECONDS * 1000,
    }
    store.state.oauth_sessions[session["token"]] = session
    return {
        "access_token": session["token"],
        "token_type": "bearer",
        "expires_in": TOKEN_SECONDS,
        "refresh_token": session["refresh_token"],
        "scope": "user",
    }
