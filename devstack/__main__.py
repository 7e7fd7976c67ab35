"""`make dev`: the whole system on this machine, in the foreground.

Starts (unless configured to use existing ones) the Temporal dev server persisted to
`.data/temporal.db` with its Web UI, and the Mattermost stand-in seeded with a demo
team; then the worker and the API. Ctrl-C stops everything in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.app import create_app
from api.slash.slash_endpoint import AUTOCOMPLETE
from devstack.embedded_http import EmbeddedServer, serve
from devstack.temporal_dev_server import TemporalDevServer, prepare_namespace
from process_exit import exit_process
from settings import Settings, SettingsError, load_settings, require
from temporal_connection import connect
from worker import running_worker

log = logging.getLogger("devstack")
DATA_DIR = Path(".data")
DEV_USERS = DATA_DIR / "dev-users.json"


@dataclass
class Running:
    """What is up, stopped in reverse order."""

    stoppers: list[Any] = field(default_factory=list)

    async def stop_all(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await stop()


def signing_secret(settings: Settings) -> str:
    """SIGNING_SECRET, or one generated once and kept in .data (buttons on old posts keep working)."""
    if settings.signing_secret:
        return settings.signing_secret
    path = DATA_DIR / "signing-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def start_stack(settings: Settings, running: Running) -> dict[str, Any]:
    DATA_DIR.mkdir(exist_ok=True)
    info: dict[str, Any] = {}
    api_url = settings.api_public_url

    # Temporal: the embedded dev server unless TEMPORAL_ADDRESS points at one.
    if settings.temporal_address:
        client = await connect(settings)
        await prepare_namespace(client, settings.temporal_namespace, set_retention=False)
        info["temporal"] = settings.temporal_address
    else:
        server = TemporalDevServer(
            port=settings.temporal_dev_port,
            ui_port=settings.temporal_ui_port,
            db_file=settings.temporal_db_file,
            namespace=settings.temporal_namespace,
            log_file=DATA_DIR / "temporal.log",
        )
        client = await server.start()
        running.stoppers.append(server.stop)
        settings = settings.model_copy(
            update={
                "temporal_address": server.address,
                "temporal_ui_url": settings.temporal_ui_url or server.ui_url,
            }
        )
        info["temporal"] = server.address
        info["web_ui"] = server.ui_url

    # Mattermost: the stand-in unless MATTERMOST_URL points at a real server.
    if settings.mattermost_url:
        require(settings, "mattermost_bot_token", "mattermost_slash_token")
        info["mattermost"] = settings.mattermost_url
    else:
        from mattermost_standin import StandIn

        standin = StandIn(data_file=settings.standin_data_file)
        await standin.start(host="127.0.0.1", port=settings.standin_port)
        running.stoppers.append(standin.stop)
        world = standin.seed_demo(
            command_url=f"{api_url}/mattermost/slash", oauth_callback_url=f"{api_url}/backstage/oauth/callback"
        )
        standin.update_command(world["command"]["id"], url=f"{api_url}/mattermost/slash", **AUTOCOMPLETE)
        settings = settings.model_copy(
            update={
                "mattermost_url": standin.url,
                "mattermost_bot_token": world["bot"]["token"],
                "mattermost_slash_token": world["command"]["token"],
                # The backstage signs people in through the stand-in's OAuth app.
                "mattermost_oauth_client_id": world["oauth_app"]["id"],
                "mattermost_oauth_client_secret": world["oauth_app"]["client_secret"],
            }
        )
        info["mattermost"] = f"{standin.url} (stand-in, state in {settings.standin_data_file})"
        info["world"] = world
        write_dev_users(world, standin.url)

    settings = settings.model_copy(update={"signing_secret": signing_secret(settings)})

    worker = contextlib.AsyncExitStack()
    await worker.enter_async_context(running_worker(client, settings))
    running.stoppers.append(worker.aclose)

    api: EmbeddedServer = await serve(
        create_app(settings, temporal=client),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=settings.access_log,
    )
    running.stoppers.append(api.stop)
    info["api"] = api_url
    return info


def write_dev_users(world: dict[str, Any], url: str) -> None:
    """The demo users' ids and tokens, for `python -m devstack.mm --as <user>`."""
    known = {
        "url": url,
        "team_id": world["team"]["id"],
        "users": {name: {"id": entry["user"]["id"], "token": entry["token"]} for name, entry in world["users"].items()},
    }
    DEV_USERS.write_text(json.dumps(known, indent=2))
    DEV_USERS.chmod(0o600)


def banner(info: dict[str, Any]) -> str:
    lines = [
        "",
        "Incident response is running. Ctrl-C stops everything.",
        f"  API:          {info['api']}  (OpenAPI docs: {info['api']}/docs)",
        f"  Backstage:    {info['api']}/backstage  (sign in through Mattermost)",
        f"  Temporal:     {info['temporal']}",
    ]
    if info.get("web_ui"):
        lines.append(f"  Web UI:       {info['web_ui']}/namespaces/default/workflows")
    lines.append(f"  Mattermost:   {info['mattermost']}")
    world = info.get("world")
    if world:
        mm = info["mattermost"].split(" ")[0]
        alice = world["users"]["alice"]["token"]
        team = world["team"]["id"]
        town_square = world["channels"]["town-square"]["id"]
        lines += [
            f"  Demo team:    {world['team']['name']} ({team})",
            "  Demo users:   name     user id                     token",
        ]
        lines += [
            f"                {name:<8} {entry['user']['id']}  {entry['token']}"
            for name, entry in world["users"].items()
        ]
        lines += [
            "",
            f"The stand-in's inspection routes (no token): {mm}/_standin/state (users, channels, counts),",
            f"  {mm}/_standin/channels/<channel id>/posts, {mm}/_standin/ephemeral?user_id=<id>,",
            f"  {mm}/_standin/dialogs?user_id=<id>, and {mm}/_standin/faults (POST to inject, DELETE to clear).",
            "",
            'Act as a demo user from another terminal (README, "Using the stand-in by hand"):',
            "  .venv/bin/python -m devstack.mm slash --as alice '/incident help'",
            "",
            f"Open {info['api']}/backstage and sign in as alice, bob, carol or dave (the stand-in asks who).",
            "",
            "Try a slash command as alice in ~town-square:",
            f"  curl -s {mm}/api/v4/commands/execute -H 'Authorization: Bearer {alice}' \\",
            "       -H 'Content-Type: application/json' \\",
            f'       -d \'{{"channel_id": "{town_square}", "command": "/incident help"}}\'',
        ]
    lines += ["", f"Ready. Check: curl -s '{info['api']}/readyz'"]
    return "\n".join(lines)


async def main() -> None:
    settings = load_settings()
    running = Running()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        info = await start_stack(settings, running)
        print(banner(info), flush=True)
        await stop.wait()
        print("\nStopping...", flush=True)
    finally:
        await running.stop_all()


def run() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = 0
    try:
        asyncio.run(main())
    except SettingsError as error:
        print(error, file=sys.stderr)
        code = 2
    except OSError as error:
        print(f"Could not start the dev stack: {error}", file=sys.stderr)
        code = 1
    exit_process(code)


if __name__ == "__main__":
    run()
