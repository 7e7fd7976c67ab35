"""``python -m mattermost_standin``: run the stand-in on its own, e.g. for a dev stack.

    python -m mattermost_standin --port 8065 --data-file .data/mattermost-standin.json \
        --seed-demo http://127.0.0.1:8000/mattermost/command

With ``--seed-demo`` the demo world is ensured and its tokens printed as JSON.
Stops cleanly (saving the data file) on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path

from mattermost_standin.server import StandIn


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mattermost_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8065)
    parser.add_argument("--data-file", type=Path, help="load the world from, and save it to, this JSON file")
    parser.add_argument("--site-url", help="the SiteURL (default: http://HOST:PORT)")
    parser.add_argument("--seed-demo", metavar="COMMAND_URL", help="ensure the demo world, /incident -> COMMAND_URL")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    standin = StandIn(site_url=args.site_url, data_file=args.data_file)
    await standin.start(host=args.host, port=args.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        if args.seed_demo:
            world = standin.seed_demo(command_url=args.seed_demo)
            tokens = {name: person["token"] for name, person in world["users"].items()}
            tokens[world["bot"]["user"]["username"]] = world["bot"]["token"]
            print(json.dumps({"team_id": world["team"]["id"], "tokens": tokens}, indent=2), flush=True)
        print(
            f"Mattermost stand-in listening on {standin.url} (controls: {standin.url}/_standin/state)",
            flush=True,
        )
        await stopping.wait()
    finally:
        await standin.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The server leaves logging to its process: uvicorn's start-up and per-request lines stay out.
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    asyncio.run(_serve(_arguments(argv)))


if __name__ == "__main__":
    main()
