"""`python -m api`: serve the HTTP API with uvicorn (production entry point)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from api.app import create_app
from process_exit import exit_process
from settings import SettingsError, load_settings, require


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        require(
            settings,
            "temporal_address",
            "mattermost_url",
            "mattermost_bot_token",
            "mattermost_slash_token",
            "signing_secret",
        )
        app = create_app(settings)
    except SettingsError as error:
        print(error, file=sys.stderr)
        exit_process(2)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info", access_log=settings.access_log)
    exit_process(0)


if __name__ == "__main__":
    main()
