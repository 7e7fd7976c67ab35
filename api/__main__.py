"""`python -m api`: serve the HTTP API with uvicorn (production entry point)."""

from __future__ import annotations

import sys

import uvicorn

from api.app import create_app
from process_exit import exit_process
from process_logging import configure_logging
from settings import SettingsError, load_settings, require


def main() -> None:
    try:
        settings = load_settings()
        configure_logging(settings)
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
    # Logging, the access log included, is the process's (process_logging), not uvicorn's.
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None, log_level=None)
    exit_process(0)


if __name__ == "__main__":
    main()
