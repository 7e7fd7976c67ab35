"""Signing in and out, and the backstage's front door (the visitor's teams)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.backstage import backstage_oauth as oauth
from api.backstage import backstage_session as cookies
from api.backstage.backstage_common import Visitor, form_session, render, secure_cookies, templates, visitor
from api.dependencies import services
from mattermost_client.gateway import MattermostFailure
from service import session_sign_outs
from service.container import Services
from service.errors import ServiceError

router = APIRouter(prefix="/backstage", include_in_schema=False)
log = logging.getLogger(__name__)


@router.get("/login")
async def sign_in_page(
    request: Request,
    next: str = Query("/backstage", max_length=2000),
    signed_out: bool = False,
    svc: Services = Depends(services),
) -> Response:
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "next": cookies.safe_next(next),
            "configured": oauth.configured(svc.settings),
            "signed_out": signed_out,
            "callback": oauth.callback_url(svc.settings),
        },
    )


@router.get("/login/start")
async def start_sign_in(
    next: str = Query("/backstage", max_length=2000), svc: Services = Depends(services)
) -> Response:
    if not oauth.configured(svc.settings):
        raise ServiceError(
            503,
            "not_configured",
            "Signing in is not set up: set MATTERMOST_OAUTH_CLIENT_ID and MATTERMOST_OAUTH_CLIENT_SECRET "
            "(see the README, Backstage).",
        )
    response = RedirectResponse("/", status_code=302)
    state = cookies.new_oauth_state(response, svc.signer, next_path=cookies.safe_next(next), secure=secure_cookies(svc))
    response.headers["Location"] = oauth.authorize_url(svc.settings, state)
    return response


@router.get("/oauth/callback")
async def oauth_callback(
    request: Request,
    code: str | None = Query(None, max_length=512),
    state: str | None = Query(None, max_length=4096),
    error: str | None = Query(None, max_length=200),
    svc: Services = Depends(services),
) -> Response:
    next_path = cookies.check_oauth_state(request, svc.signer, state)
    if next_path is None:
        raise ServiceError(
            400,
            "bad_request",
            "This sign-in did not start here or took too long (its state does not match). Sign in again.",
        )
    if error or not code:
        raise ServiceError(401, "unauthorized", "Mattermost did not sign you in (access was denied). Sign in again.")
    grant = await oauth.exchange_code(svc.settings, code)
    actor = await svc.facts.caller_for_token(grant.access_token)
    response = RedirectResponse(next_path, status_code=303)
    secure = secure_cookies(svc)
    cookies.start_session(
        response,
        svc.settings.signing_secret,
        token=grant.access_token,
        user_id=actor.user_id,
        expires_in=grant.expires_in,
        secure=secure,
    )
    cookies.clear_oauth_state(response, secure=secure)
    return response


@router.post("/logout")
async def sign_out(session: cookies.Session = Depends(form_session), svc: Services = Depends(services)) -> Response:
    """End the session in every API process, then in Mattermost (the token stops working everywhere).

    Temporal's record is what ends it, so it comes first and alone decides: when Temporal
    cannot record it, nothing is done and the page says to try again; when Mattermost
    cannot end its session, the backstage's is over all the same.
    """
    await session_sign_outs.end_session(svc, session.session_id, session.expires_at)
    try:
        await svc.mattermost.logout(session.token)
    except MattermostFailure:
        log.warning("Mattermost did not end the session of user %s; the backstage ended its own", session.user_id)
    svc.facts.forget_token(session.token)
    response = RedirectResponse("/backstage/login?signed_out=true", status_code=303)
    cookies.end_session(response, secure=secure_cookies(svc))
    return response


@router.get("")
async def home(who: Visitor = Depends(visitor)) -> Response:
    teams = await who.teams()
    if len(teams) == 1:
        return RedirectResponse(f"/backstage/teams/{teams[0]['id']}/incidents", status_code=303)
    return await render(who, "home.html")
