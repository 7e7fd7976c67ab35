"""The web client's channel address, ``/{team_name}/channels/{channel_name}``, as a read-only page.

In a real Mattermost that address opens the channel in the web app, and the backstage
links there ("in Mattermost"). The stand-in has no web app, so it answers a minimal page
of the channel's posts instead: plain HTML, every value escaped, no script (its
Content-Security-Policy allows none). Like the ``/_standin/`` routes, it is a development
server's page and shows any channel to whoever can reach it.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from fastapi.responses import HTMLResponse, Response

from mattermost_standin.domain import channels, posts
from mattermost_standin.routing import Call, Router
from mattermost_standin.store import Record, State

router = Router()

_STYLE = (
    "body{font:15px system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#1f2329}"
    "article{border-top:1px solid #ddd;padding:.6rem 0}.meta{color:#5d6470;font-size:.85rem}"
    ".message{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0}"
    ".attachment{border-left:3px solid #ccc;padding-left:.6rem;white-space:pre-wrap}"
    ".button{display:inline-block;border:1px solid #aaa;border-radius:4px;padding:0 .4rem;margin:.2rem .2rem 0 0}"
)
# No script, no frames, no requests anywhere: only the inline style above.
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'"}


def _page(title: str, body: str, status: int = 200) -> Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - Mattermost stand-in</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(text, status_code=status, headers=_HEADERS)


def _when(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _attachments(post: Record) -> str:
    parts = []
    attachments = post["props"].get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        buttons = "".join(
            f'<span class="button">{html.escape(str(action.get("name", "")))}</span>'
            for action in attachment.get("actions") or []
            if isinstance(action, dict)
        )
        text = html.escape(str(attachment.get("text") or ""))
        parts.append(f'<div class="attachment">{text}{f"<div>{buttons}</div>" if buttons else ""}</div>')
    return "".join(parts)


def _post(state: State, post: Record) -> str:
    author = state.users.get(post["user_id"])
    name = f"@{author['username']}" if author else "(someone)"
    pinned = " · pinned" if post.get("is_pinned") else ""
    return (
        f'<article><div class="meta"><strong>{html.escape(name)}</strong> · {_when(post["create_at"])}{pinned}</div>'
        f'<div class="message">{html.escape(post["message"])}</div>{_attachments(post)}</article>'
    )


@router.get("/{team_name}/channels/{channel_name}", authenticated=False)
async def channel_page(call: Call) -> Response:
    state = call.state
    team_name, channel_name = call.params["team_name"], call.params["channel_name"]
    team = next((t for t in state.teams.values() if t["name"] == team_name), None)
    channel = channels.find_channel_by_name(state, team["id"], channel_name) if team else None
    if team is None or channel is None:
        missing = f"There is no channel ~{channel_name} in a team {team_name!r} on this stand-in."
        return _page("Channel not found", f"<h1>Channel not found</h1><p>{html.escape(missing)}</p>", 404)
    shown = posts.channel_posts(state, channel["id"])
    kind = "Private channel" if channel["type"] == "P" else "Public channel"
    details = "".join(
        f"<p>{label}: {html.escape(channel[key])}</p>"
        for label, key in (("Header", "header"), ("Purpose", "purpose"))
        if channel[key]
    )
    body = (
        f"<h1>~{html.escape(channel['display_name'] or channel['name'])}</h1>"
        f'<p class="meta">{kind} ~{html.escape(channel["name"])} of {html.escape(team["display_name"])} · '
        f"{len(shown)} posts, oldest first · read-only: the stand-in has no web client "
        "(act with <code>python -m devstack.mm</code>)</p>"
        f"{details}{''.join(_post(state, post) for post in shown) or '<p>No posts yet.</p>'}"
    )
    return _page(f"~{channel['display_name'] or channel['name']}", body)
