"""`python -m devstack.mm`: use the stand-in by hand, as a Mattermost client would.

Type a slash command as a demo user and see the reply, the follow-up replies and any
dialog it opened; submit that dialog; click a button (or pick a menu option) under a
post; list a channel's posts with their buttons. Everything goes through the stand-in's
real v4 routes (`/commands/execute`, `/actions/dialogs/submit`, `/posts/{id}/actions/{id}`),
so the API sees exactly what a real Mattermost sends; what the user would see appear
(ephemeral replies, dialogs) is read from the stand-in's inspection routes (`/_standin/...`).

`make dev` writes the demo users, their ids and tokens to `.data/dev-users.json`, which
`--as <username>` reads; `--token` and `--url` work against any stand-in.

    python -m devstack.mm slash --as alice '/incident start "Database outage" DB down'
    python -m devstack.mm slash --as alice --channel inc-db-down-1a2b3c4d5e '/incident info'
    python -m devstack.mm dialog --as alice message="Failing over" status=identified
    python -m devstack.mm posts --as alice --channel inc-db-down-1a2b3c4d5e
    python -m devstack.mm click --as alice --channel inc-db-down-1a2b3c4d5e item0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

USERS_FILE = Path(".data/dev-users.json")


class Failure(Exception):
    """What went wrong, said to the person at the terminal."""


class Client:
    def __init__(self, url: str, token: str, user_id: str, team_id: str) -> None:
        self.url = url.rstrip("/")
        self.user_id = user_id
        self.team_id = team_id
        self.http = httpx.Client(base_url=self.url, timeout=40, headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise Failure(f"Mattermost answered {response.status_code} to {method} {path}: {message}")
        return response.json() if response.content else None

    def channel_id(self, name: str) -> str:
        """A channel of the user's team by name (with or without ~), or an id."""
        name = name.removeprefix("~")
        channels: dict[str, str] = self.call("GET", "/_standin/state")["channels"]
        for key, channel_id in channels.items():
            if key.split("/", 1)[1] == name or channel_id == name:
                return channel_id
        raise Failure(f"There is no channel {name!r}; see {self.url}/_standin/state for every channel.")

    def seen(self) -> tuple[int, int]:
        return len(self.ephemeral()), len(self.dialogs())

    def ephemeral(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/_standin/ephemeral?user_id={self.user_id}")
        return found

    def dialogs(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/_standin/dialogs?user_id={self.user_id}")
        return found

    def follow_ups(self, since: tuple[int, int], wait: float) -> None:
        """Print the ephemeral replies and dialogs that appear for the user within `wait` seconds."""
        replies, dialogs = since
        deadline = time.monotonic() + wait
        while True:
            for entry in self.ephemeral()[replies:]:
                replies += 1
                print(f"\n[reply] {entry['post']['message']}")
            for opened in self.dialogs()[dialogs:]:
                dialogs += 1
                show_dialog(opened)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)


def show_dialog(opened: dict[str, Any]) -> None:
    dialog = opened["dialog"]
    print(f"\n[dialog] {dialog.get('title', '')} (callback {dialog.get('callback_id', '')})")
    if dialog.get("introduction_text"):
        print(f"  {dialog['introduction_text']}")
    for element in dialog.get("elements", []):
        options = ", ".join(str(o["value"]) for o in element.get("options") or [])
        choices = f" one of: {options}" if options else ""
        optional = " (optional)" if element.get("optional") else ""
        print(f"  {element['name']}={element.get('type', 'text')}{optional}{choices}")
    print(
        f"  submit: python -m devstack.mm dialog [name=value ...]  (button: {dialog.get('submit_label') or 'Submit'})"
    )


def show_post(post: dict[str, Any]) -> None:
    pinned = " (pinned)" if post.get("is_pinned") else ""
    print(f"--- post {post['id']}{pinned}\n{post['message']}")
    for attachment in post.get("props", {}).get("attachments") or []:
        if attachment.get("text"):
            print(f"  {attachment['text']}")
        for action in attachment.get("actions") or []:
            options = action.get("options") or []
            kind = f" menu of {len(options)}: " + ", ".join(o["value"] for o in options[:5]) if options else ""
            print(f"  [{action['id']}] {action['name']}{kind}")


def cmd_slash(client: Client, args: argparse.Namespace) -> None:
    channel = client.channel_id(args.channel)
    since = client.seen()
    reply = client.call("POST", "/api/v4/commands/execute", {"channel_id": channel, "command": args.command})
    print(reply.get("text") or "(no text: see below)")
    client.follow_ups(since, args.wait)


def cmd_dialog(client: Client, args: argparse.Namespace) -> None:
    waiting = [d for d in client.dialogs() if not d.get("submitted")]
    if not waiting:
        raise Failure("No dialog is open for this user: run a command that opens one first.")
    opened = waiting[-1]
    submission: dict[str, str] = {}
    for pair in args.fields:
        name, sep, value = pair.partition("=")
        if not sep:
            raise Failure(f"Give fields as name=value (got {pair!r}).")
        submission[name] = value
    since = client.seen()
    answer = client.call(
        "POST",
        "/api/v4/actions/dialogs/submit",
        {
            "url": opened["url"],
            "channel_id": opened["channel_id"],
            "team_id": opened["team_id"],
            "callback_id": opened["dialog"].get("callback_id", ""),
            "state": opened["dialog"].get("state", ""),
            "submission": submission,
            "cancelled": args.cancel,
        },
    )
    if answer and (answer.get("error") or answer.get("errors")):
        print(f"The dialog stays open: {json.dumps(answer, ensure_ascii=False)}")
    else:
        print("Submitted.")
    client.follow_ups(since, args.wait)


def _posts(client: Client, channel: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.call("GET", f"/_standin/channels/{channel}/posts")
    return found


def cmd_posts(client: Client, args: argparse.Namespace) -> None:
    for post in _posts(client, client.channel_id(args.channel))[-args.last :]:
        show_post(post)


def cmd_click(client: Client, args: argparse.Namespace) -> None:
    posts = _posts(client, client.channel_id(args.channel))
    if args.post:
        posts = [p for p in posts if p["id"] == args.post]
    # The newest post with that button: the live checklist, a reminder...
    for post in reversed(posts):
        for attachment in post.get("props", {}).get("attachments") or []:
            for action in attachment.get("actions") or []:
                if args.button in (action["id"], action["name"]):
                    since = client.seen()
                    body = {"selected_option": args.option} if args.option else None
                    client.call("POST", f"/api/v4/posts/{post['id']}/actions/{action['id']}", body)
                    print(f"Clicked [{action['id']}] {action['name']} on post {post['id']}.")
                    client.follow_ups(since, args.wait)
                    return
    raise Failure(f"No post in that channel has a button {args.button!r}; `posts` lists them.")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m devstack.mm", description=__doc__.split("\n\n")[0])
    top.add_argument("--as", dest="user", default="alice", help="demo user (from .data/dev-users.json)")
    top.add_argument("--token", help="a personal access token instead of --as")
    top.add_argument("--url", help="the stand-in's URL (default: the one make dev wrote down)")
    top.add_argument("--users-file", type=Path, default=USERS_FILE, help=argparse.SUPPRESS)
    top.add_argument("--wait", type=float, default=1.5, help="seconds to watch for follow-ups (default 1.5)")
    sub = top.add_subparsers(dest="action", required=True)
    slash = sub.add_parser("slash", help="type a slash command")
    slash.add_argument("--channel", default="town-square")
    slash.add_argument("command", help="e.g. '/incident info'")
    slash.set_defaults(run=cmd_slash)
    dialog = sub.add_parser("dialog", help="submit the newest open dialog")
    dialog.add_argument("fields", nargs="*", help="name=value")
    dialog.add_argument("--cancel", action="store_true")
    dialog.set_defaults(run=cmd_dialog)
    posts = sub.add_parser("posts", help="a channel's posts with their buttons")
    posts.add_argument("--channel", default="town-square")
    posts.add_argument("--last", type=int, default=10)
    posts.set_defaults(run=cmd_posts)
    click = sub.add_parser("click", help="click a button (or pick a menu option) under a post")
    click.add_argument("--channel", default="town-square")
    click.add_argument("--post", help="the post (default: the newest one with that button)")
    click.add_argument("--option", help="for a menu: the option's value")
    click.add_argument("button", help="the button's id or name, as `posts` shows them")
    click.set_defaults(run=cmd_click)
    return top


def client_for(args: argparse.Namespace) -> Client:
    known: dict[str, Any] = json.loads(args.users_file.read_text()) if args.users_file.exists() else {}
    url = args.url or known.get("url")
    if not url:
        raise Failure(f"Give --url, or run `make dev` first (it writes {args.users_file}).")
    if args.token:
        me = httpx.get(f"{url}/api/v4/users/me", headers={"Authorization": f"Bearer {args.token}"}, timeout=10)
        if me.status_code != 200:
            raise Failure("The stand-in does not accept this token.")
        return Client(url, args.token, me.json()["id"], known.get("team_id", ""))
    user = known.get("users", {}).get(args.user)
    if user is None:
        raise Failure(f"No demo user {args.user!r} in {args.users_file}; give --token instead.")
    return Client(url, user["token"], user["id"], known.get("team_id", ""))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(client_for(args), args)
    except Failure as failure:
        print(failure, file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(f"Could not reach the stand-in: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
