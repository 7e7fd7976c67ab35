"""`make dev`: the whole system on this machine, in the foreground.

Starts (unless configured to use existing ones) the Temporal dev server persisted to
`.data/temporal.db` with its Web UI, and the Mattermost stand-in seeded with a demo
team; then the worker and the API (`devstack.stack`, the builder the tests and the
benchmarks use too). With the stand-in, it then makes sure the demo team has its shared
playbook and first incident (`devstack.demo_incident`). Ctrl-C stops everything in
reverse order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from devstack.demo_incident import DemoIncident, seed_demo_incident
from devstack.mm import USERS_FILE, users_table
from devstack.stack import LOOPBACK_NETWORKS, Stack, StackOptions, running_stack
from process_exit import exit_process
from process_logging import configure_logging
from settings import Settings, SettingsError, load_settings

DATA_DIR = Path(".data")
DEV_USERS = USERS_FILE


def signing_secret(settings: Settings) -> str:
    """SIGNING_SECRET, or one generated once and kept in .data (buttons on old posts keep working)."""
    if settings.signing_secret:
        return settings.signing_secret
    path = DATA_DIR / "signing-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def write_dev_users(world: dict[str, Any], url: str) -> None:
    """The demo users' ids and tokens, for `python -m devstack.mm --as <user>` and `... mm users`."""
    known = {
        "url": url,
        "team_id": world["team"]["id"],
        "team_name": world["team"]["name"],
        "users": {name: {"id": entry["user"]["id"], "token": entry["token"]} for name, entry in world["users"].items()},
    }
    DEV_USERS.write_text(json.dumps(known, indent=2))
    DEV_USERS.chmod(0o600)


def banner(stack: Stack, demo: DemoIncident | None) -> str:
    settings = stack.settings
    api = stack.api_url
    lines = [
        "",
        "Incident response is running. Ctrl-C stops everything.",
        f"  API:          {api}  (OpenAPI docs: {api}/docs)",
        f"  Backstage:    {api}/backstage  (sign in through Mattermost)",
        f"  Temporal:     {settings.temporal_address}",
    ]
    ui_url = stack.temporal_server.ui_url if stack.temporal_server is not None else None
    if ui_url:
        lines.append(f"  Web UI:       {ui_url}/namespaces/{settings.temporal_namespace}/workflows")
    world = stack.accounts.demo if stack.accounts is not None else None
    if world is None:
        lines.append(f"  Mattermost:   {settings.mattermost_url}")
        return "\n".join([*lines, "", f"Ready. Check: curl -s '{api}/readyz'"])
    mm = settings.mattermost_url
    team = world["team"]["id"]
    town_square = world["channels"]["town-square"]["id"]
    users = {name: {"id": entry["user"]["id"], "token": entry["token"]} for name, entry in world["users"].items()}
    lines += [
        f"  Mattermost:   {mm} (stand-in, state in {settings.standin_data_file})",
        f"  Demo team:    {world['team']['name']} ({team})",
        *users_table(users),
        f"  (also in {DEV_USERS}; `.venv/bin/python -m devstack.mm users` prints them again)",
    ]
    if demo is not None:
        lines += [
            "",
            f"The demo playbook {demo.playbook_title!r} is shared by the whole demo team, and its incident",
            f"{demo.incident_name!r} is public to the team: everyone sees it (`/incident list`), and",
            "alice, bob, carol and dave are in its channel, so each of them can work it.",
            f"  {api}/backstage/incidents/{demo.incident_id}",
        ]
    lines += [
        "",
        f"The stand-in's inspection routes (no token): {mm}/_standin/state (users, channels, counts),",
        f"  {mm}/_standin/channels/<channel id>/posts, {mm}/_standin/ephemeral?user_id=<id>,",
        f"  {mm}/_standin/dialogs?user_id=<id>, and {mm}/_standin/faults (POST to inject, DELETE to clear).",
        f"  A channel, read-only in the browser: {mm}/{world['team']['name']}/channels/town-square",
        "",
        'Act as a demo user from another terminal (README, "Using the stand-in by hand"):',
        "  .venv/bin/python -m devstack.mm slash --as bob '/incident list'",
        "",
        f"Open {api}/backstage and sign in as alice, bob, carol or dave (the stand-in asks who).",
        "",
        "Try a slash command as alice in ~town-square:",
        f"  curl -s {mm}/api/v4/commands/execute -H 'Authorization: Bearer {users['alice']['token']}' \\",
        "       -H 'Content-Type: application/json' \\",
        f'       -d \'{{"channel_id": "{town_square}", "command": "/incident help"}}\'',
        "",
        f"Ready. Check: curl -s '{api}/readyz'",
    ]
    return "\n".join(lines)


async def main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    DATA_DIR.mkdir(exist_ok=True)
    # Webhooks may go to a receiver on this machine too (besides the networks .env allows).
    networks = ",".join(n for n in (settings.webhook_allowed_networks, LOOPBACK_NETWORKS) if n)
    settings = settings.model_copy(
        update={"signing_secret": signing_secret(settings), "webhook_allowed_networks": networks}
    )
    options = StackOptions(persist=True, demo=True, log_dir=DATA_DIR)
    async with running_stack(settings, options) as stack:
        demo: DemoIncident | None = None
        world = stack.accounts.demo if stack.accounts is not None else None
        if world is not None:
            write_dev_users(world, stack.settings.mattermost_url)
            demo = await seed_demo_incident(stack.api_url, world)
        print(banner(stack, demo), flush=True)
        await stop.wait()
        print("\nStopping...", flush=True)


def run() -> None:
    code = 0
    try:
        settings = load_settings()
        configure_logging(settings)
        asyncio.run(main(settings))
    except SettingsError as error:
        print(error, file=sys.stderr)
        code = 2
    except OSError as error:
        print(f"Could not start the dev stack: {error}", file=sys.stderr)
        code = 1
    exit_process(code)


if __name__ == "__main__":
    run()
