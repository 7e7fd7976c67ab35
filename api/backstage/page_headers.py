"""Security headers on every backstage answer: pages, redirects, error pages and static files.

- No other site may frame a page (clickjacking): `frame-ancestors 'none'`, and
  `X-Frame-Options: DENY` for browsers that predate CSP level 2.
- Scripts, styles, images and fetches come from this app only (`default-src 'self'`): the
  pages have no inline script, style or event handler (the statistics page's data is a
  JSON block, which is not run), so a script injected into a page would not run either.
  Forms post here only.
- `nosniff`: a response is never run as a type other than the one it declares.
- `Referrer-Policy: same-origin`: incident ids and team ids in our URLs never leave in a
  `Referer` to another site (Mattermost, the Temporal Web UI).
- `Cache-Control: no-store` on everything but the static files: every page shows what one
  person may see (incidents, playbooks, statistics), and no shared cache, nor the browser's
  back button after signing out, may keep it.

A pure ASGI middleware rather than a dependency, so the answers no route renders (the
sign-in redirect, error pages, the request guard's 413 and 415) carry the headers too.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/backstage"
STATIC_PREFIX = "/backstage/static/"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
PAGE_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}


def is_backstage(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class BackstageHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_backstage(scope["path"]):
            await self.app(scope, receive, send)
            return
        added = SECURITY_HEADERS if scope["path"].startswith(STATIC_PREFIX) else PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
