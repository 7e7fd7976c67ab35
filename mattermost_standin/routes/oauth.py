"""``/oauth/authorize`` and ``/oauth/access_token``: Mattermost as an OAuth 2.0 provider.

On the real server the person is already signed in to Mattermost, and the consent page
only asks whether to allow the app. The stand-in has no web sign-in, so its consent page
also asks who is signing in (a username, from the people it lists: the stand-in has no
passwords; it is a development server). A test passes it by submitting the form, as a browser would:
``POST /oauth/authorize`` with ``username`` and ``allow=1``.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mattermost_standin.domain import oauth, users
from mattermost_standin.errors import AppError, invalid_body_param
from mattermost_standin.routing import Call, Router, json_response

router = Router()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {app} - Mattermost stand-in</title>
<style>body{{font:16px system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}}
input,button{{font:inherit;padding:.5rem;margin:.25rem 0}}input{{width:100%;box-sizing:border-box}}
.error{{color:#b00020}}</style></head>
<body><main><h1>Authorize {app}</h1>
<p><strong>{app}</strong> would like to access your Mattermost account ({homepage}).</p>
{error}
<form method="post" action="/oauth/authorize">
<input type="hidden" name="client_id" value="{client_id}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="response_type" value="code">
<label for="username">Sign in to the stand-in as (username)</label>
<input id="username" name="username" value="{username}" autocomplete="username" list="people" required autofocus>
<datalist id="people">{options}</datalist>
<p>People on this stand-in:</p>
<ul>{people}</ul>
<button type="submit" name="allow" value="1">Allow</button>
<button type="submit" name="allow" value="0" formnovalidate>Deny</button>
</form></main></body></html>"""


def _people(call: Call) -> list[tuple[str, str]]:
    """Who can sign in here (no bots, no deactivated accounts): (username, full name), by username."""
    people = [u for u in call.state.users.values() if not u.get("is_bot") and not u["delete_at"]]
    return sorted((u["username"], f"{u['first_name']} {u['last_name']}".strip()) for u in people)


def _page(call: Call, params: dict[str, str], app_name: str, homepage: str, error: str = "") -> Response:
    people = _people(call)
    text = _PAGE.format(
        options="".join(f'<option value="{html.escape(username)}">' for username, _ in people),
        people="".join(
            f"<li><strong>{html.escape(username)}</strong>{f' ({html.escape(name)})' if name else ''}</li>"
            for username, name in people
        ),
        app=html.escape(app_name),
        homepage=html.escape(homepage),
        client_id=html.escape(params.get("client_id", "")),
        redirect_uri=html.escape(params.get("redirect_uri", "")),
        state=html.escape(params.get("state", "")),
        username=html.escape(params.get("username", "")),
        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
    )
    return HTMLResponse(text, status_code=400 if error else 200)


def _redirect(redirect_uri: str, **values: str) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(values)}", status_code=302)


@router.get("/oauth/authorize", authenticated=False)
async def authorize_page(call: Call) -> Response:
    params = dict(call.request.query_params)
    app = oauth.check_authorize(
        call.state, params.get("client_id", ""), params.get("redirect_uri", ""), params.get("response_type", "")
    )
    return _page(call, params, app["name"], app["homepage"])


@router.post("/oauth/authorize", authenticated=False)
async def authorize(call: Call) -> Response:
    params = dict(parse_qsl((await call.request.body()).decode("utf-8", "replace")))
    app = oauth.check_authorize(
        call.state, params.get("client_id", ""), params.get("redirect_uri", ""), params.get("response_type", "code")
    )
    state = params.get("state", "")
    if params.get("allow") != "1":
        return _redirect(params["redirect_uri"], error="access_denied", state=state)
    user = users.find_user_by_username(call.state, params.get("username", "").strip().lstrip("@").lower())
    if user is None or user["delete_at"] or user.get("is_bot"):
        return _page(call, params, app["name"], app["homepage"], "There is no such user; check the username.")
    code = oauth.issue_code(call.store, client_id=app["id"], user_id=user["id"], redirect_uri=params["redirect_uri"])
    return _redirect(params["redirect_uri"], code=code, state=state)


@router.post("/api/v4/users/logout", authenticated=False)
async def logout(call: Call) -> Response:
    """Ends the session the token is: an OAuth access token stops authenticating at once.

    (A personal access token is no session of its own and stays valid, as its owner made it.)
    """
    header = call.request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and token.strip():
        call.state.oauth_sessions.pop(token.strip(), None)
    return json_response({"status": "OK"})


@router.post("/oauth/access_token", authenticated=False)
async def access_token(call: Call) -> Response:
    params = dict(parse_qsl((await call.request.body()).decode("utf-8", "replace")))
    grant_type = params.get("grant_type", "")
    client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
    if grant_type == "authorization_code":
        if not params.get("code"):
            raise invalid_body_param("code")
        token = oauth.exchange_code(
            call.store,
            client_id=client_id,
            client_secret=client_secret,
            code=params["code"],
            redirect_uri=params.get("redirect_uri", ""),
        )
    elif grant_type == "refresh_token":
        token = oauth.refresh(
            call.store, client_id=client_id, client_secret=client_secret, refresh_token=params.get("refresh_token", "")
        )
    else:
        raise AppError(
            400, "api.oauth.get_access_token.bad_grant.app_error", "invalid_request: Bad grant_type.", grant_type
        )
    return json_response(token)
