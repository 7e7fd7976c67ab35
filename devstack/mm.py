"""`python -m devstack.mm`: use the stand-in by hand, as a Mattermost client would.

Type a slash command as a demo user and see the reply, the follow-up replies and any
dialog it opened; submit that dialog; click a button (or pick a menu option) under a
post; list a channel's posts with their buttons. Everything goes through the stand-in's
real v4 routes as that user (`/commands/execute`, `/actions/dialogs/submit`,
`/posts/{id}/actions/{id}`, `/channels/{id}/posts`), so the API sees exactly what a real
Mattermost sends and the user reads only what Mattermost would let them read; what the
user would see pop up (ephemeral replies, dialogs) is read from the stand-in's inspection
routes (`/_standin/...`).

`make dev` writes the demo users, their ids and tokens to `.data/dev-users.json`, which
`--as <username>` reads and `users` prints; `--token` and `--url` work against any
stand-in. Options go anywhere on the line.

    python -m devstack.mm users
    python -m devstack.mm slash --as alice '/incident start "Database outage" DB down'
    python -m devstack.mm slash --as alice --channel inc-db-down-1a2b3c4d5e '/incident info'
    python -m devstack.mm dialog --as alice message="Failing over" status=Identified
    python -m devstack.mm posts --as bob --channel inc-db-down-1a2b3c4d5e
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
    def __init__(self, url: str, token: str, user_id: str) -> None:
        self.url = url.rstrip("/")
        self.user_id = user_id
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
        """A channel the user can see, by name (with or without ~) in one of their teams, or by id."""
        name = name.removeprefix("~")
        teams: list[dict[str, Any]] = self.call("GET", "/api/v4/users/me/teams")
        for team in teams:
            found = self.http.get(f"/api/v4/teams/{team['id']}/channels/name/{name}")
            if found.status_code == 200:
                return str(found.json()["id"])
        if self.http.get(f"/api/v4/channels/{name}").status_code == 200:
            return name
        raise Failure(f"You cannot see a channel {name!r}: there is none in your teams, or it is private to others.")

    def posts(self, channel_id: str, last: int) -> list[dict[str, Any]]:
        """The channel's newest `last` posts (at most 200), oldest first, as the user reads them."""
        page: dict[str, Any] = self.call("GET", f"/api/v4/channels/{channel_id}/posts?per_page={min(last, 200)}")
        return [page["posts"][post_id] for post_id in reversed(page["order"])]

    def seen(self) -> tuple[int, int]:
        return len(self.ephemeral()), len(self.dialogs())

    def ephemeral(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/_standin/ephemeral?user_id={self.user_id}")
        return found

    def dialogs(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", f"/_standin/dialogs?user_id={self.user_id}")
        return found

    def follow_ups(self, since: tuple[int, int], wait: float, *, shown: str | None = None) -> None:
        """Print the ephemeral replies and dialogs that appear for the user within `wait` seconds.

        `shown` is a reply already printed (a slash command's own, which Mattermost also
        shows as an ephemeral post): it is not printed again.
        """
        replies, dialogs = since
        deadline = time.monotonic() + wait
        while True:
            for entry in self.ephemeral()[replies:]:
                replies += 1
                if shown is not None and entry["post"]["message"] == shown:
                    shown = None
                    continue
                print(f"\n[reply] {entry['post']['message']}")
            for opened in self.dialogs()[dialogs:]:
                dialogs += 1
                show_dialog(opened)
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)


def option_value(options: list[dict[str, Any]], given: str) -> str:
    """The value of the option `given` names by its label (as the person sees it) or its value."""
    by_label = {str(o.get("text", "")): str(o["value"]) for o in options}
    return by_label.get(given, given)


def show_dialog(opened: dict[str, Any]) -> None:
    dialog = opened["dialog"]
    print(f"\n[dialog] {dialog.get('title', '')} (callback {dialog.get('callback_id', '')})")
    if dialog.get("introduction_text"):
        print(f"  {dialog['introduction_text']}")
    for element in dialog.get("elements", []):
        options = ", ".join(json.dumps(str(o.get("text") or o["value"])) for o in element.get("options") or [])
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
            labels = ", ".join(json.dumps(str(o.get("text") or o["value"])) for o in options[:5])
            kind = f" menu of {len(options)}: {labels}" if options else ""
            print(f"  [{action['id']}] {action['name']}{kind}")


def cmd_slash(args: argparse.Namespace) -> None:
    client = client_for(args)
    channel = client.channel_id(args.channel)
    since = client.seen()
    reply = client.call("POST", "/api/v4/commands/execute", {"channel_id": channel, "command": args.command})
    text = reply.get("text") or ""
    print(text or "(no text: see below)")
    client.follow_ups(since, args.wait, shown=text or None)


def cmd_dialog(args: argparse.Namespace) -> None:
    client = client_for(args)
    waiting = [d for d in client.dialogs() if not d.get("submitted")]
    if not waiting:
        raise Failure("No dialog is open for this user: run a command that opens one first.")
    opened = waiting[-1]
    elements = {str(e["name"]): e for e in opened["dialog"].get("elements", [])}
    submission: dict[str, str] = {}
    for pair in args.fields:
        name, sep, value = pair.partition("=")
        if not sep:
            raise Failure(f"Give fields as name=value (got {pair!r}).")
        submission[name] = option_value(elements.get(name, {}).get("options") or [], value)
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


def cmd_posts(args: argparse.Namespace) -> None:
    client = client_for(args)
    for post in client.posts(client.channel_id(args.channel), args.last):
        show_post(post)


def cmd_click(args: argparse.Namespace) -> None:
    client = client_for(args)
    posts = client.posts(client.channel_id(args.channel), 200)
    if args.post:
        posts = [p for p in posts if p["id"] == args.post]
    # The newest post with that button: the live checklist, a reminder...
    for post in reversed(posts):
        for attachment in post.get("props", {}).get("attachments") or []:
            for action in attachment.get("actions") or []:
                if args.button in (action["id"], action["name"]):
                    since = client.seen()
                    body = None
                    if args.option:
                        body = {"selected_option": option_value(action.get("options") or [], args.option)}
                    client.call("POST", f"/api/v4/posts/{post['id']}/actions/{action['id']}", body)
                    print(f"Clicked [{action['id']}] {action['name']} on post {post['id']}.")
                    client.follow_ups(since, args.wait)
                    return
    raise Failure(f"No post in that channel has a button {args.button!r}; `posts` lists them.")


def known_users(users_file: Path) -> dict[str, Any]:
    known: dict[str, Any] = json.loads(users_file.read_text()) if users_file.exists() else {}
    return known


def users_table(users: dict[str, dict[str, str]]) -> list[str]:
    """The demo users with their ids and tokens, as `make dev`'s banner and `users` print them."""
    return [
        "  Demo users:   name     user id                     token",
        *(f"                {name:<8} {user['id']}  {user['token']}" for name, user in users.items()),
    ]


def cmd_users(args: argparse.Namespace) -> None:
    known = known_users(args.users_file)
    if not known:
        raise Failure(f"No {args.users_file}: run `make dev` first (it writes the demo users there).")
    print(f"  Mattermost:   {known['url']} (stand-in)")
    print(f"  Demo team:    {known.get('team_name', '')} ({known['team_id']})")
    print("\n".join(users_table(known["users"])))


def common_options(*, top: bool) -> argparse.ArgumentParser:
    """The options every subcommand takes, wherever they are on the line: given before the
    subcommand they are the top parser's; after it, the subcommand's (whose defaults are
    suppressed, so they never overwrite what came before)."""
    options = argparse.ArgumentParser(add_help=False)

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    options.add_argument("--as", dest="user", default=default("alice"), help="demo user (from .data/dev-users.json)")
    options.add_argument("--token", default=default(None), help="a personal access token instead of --as")
    options.add_argument("--url", default=default(None), help="the stand-in's URL (default: the one make dev wrote)")
    options.add_argument("--users-file", type=Path, default=default(USERS_FILE), help=argparse.SUPPRESS)
    options.add_argument(
        "--wait", type=float, default=default(1.5), help="seconds to watch for follow-ups (default 1.5)"
    )
    return options


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m devstack.mm", description=__doc__.split("\n\n")[0], parents=[common_options(top=True)]
    )
    sub = top.add_subparsers(dest="action", required=True)

    def subcommand(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, parents=[common_options(top=False)])

    users = subcommand("users", "the demo users, their ids and tokens (from .data/dev-users.json)")
    users.set_defaults(run=cmd_users)
    slash = subcommand("slash", "type a slash command")
    slash.add_argument("--channel", default="town-square")
    slash.add_argument("command", help="e.g. '/incident info'")
    slash.set_defaults(run=cmd_slash)
    dialog = subcommand("dialog", "submit the newest open dialog")
    dialog.add_argument("fields", nargs="*", help="name=value (a choice by its label or its value)")
    dialog.add_argument("--cancel", action="store_true")
    dialog.set_defaults(run=cmd_dialog)
    posts = subcommand("posts", "a channel's posts with their buttons")
    posts.add_argument("--channel", default="town-square")
    posts.add_argument("--last", type=int, default=10)
    posts.set_defaults(run=cmd_posts)
    click = subcommand("click", "click a button (or pick a menu option) under a post")
    click.add_argument("--channel", default="town-square")
    click.add_argument("--post", help="the post (default: the newest one with that button)")
    click.add_argument("--option", help="for a menu: the option's label or value")
    click.add_argument("button", help="the button's id or name, as `posts` shows them")
    click.set_defaults(run=cmd_click)
    return top


def client_for(args: argparse.Namespace) -> Client:
    known = known_users(args.users_file)
    url = args.url or known.get("url")
    if not url:
        raise Failure(f"Give --url, or run `make dev` first (it writes {args.users_file}).")
    if args.token:
        me = httpx.get(f"{url}/api/v4/users/me", headers={"Authorization": f"Bearer {args.token}"}, timeout=10)
        if me.status_code != 200:
            raise Failure("The stand-in does not accept this token.")
        return Client(url, args.token, me.json()["id"])
    user = known.get("users", {}).get(args.user)
    if user is None:
        raise Failure(f"No demo user {args.user!r} in {args.users_file}; give --token instead.")
    return Client(url, user["token"], user["id"])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except Failure as failure:
        print(failure, file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(f"Could not reach the stand-in: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
