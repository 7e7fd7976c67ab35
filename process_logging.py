"""How every process logs: our own code at `LOG_LEVEL`, libraries at `LIBRARY_LOG_LEVEL`.

Libraries are quiet by default because their INFO lines drown everything else: httpx logs
one per request, so a worker or `make dev` talking to Mattermost printed a line for every
post, edit and membership check. Our code's INFO lines (a worker starting, shutting
down) stay.

uvicorn's loggers are configured here too, never by the servers: every server in this
project is created with `log_config=None, log_level=None`, because a uvicorn server that
configures logging does it for the whole process (`make dev` runs the stand-in and the API
in one). The access log is a process-wide logger as well (`uvicorn.access`), on at INFO
when `ACCESS_LOG` asks for it.
"""

from __future__ import annotations

import logging

from settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The top-level names our modules log under (`logging.getLogger(__name__)` and the named
# loggers), and the SDK's loggers that carry only what our workflows and activities log.
OWN_LOGGERS = (
    "activities",
    "api",
    "devstack",
    "mattermost_client",
    "mattermost_standin",
    "service",
    "worker",
    "temporalio.workflow",
    "temporalio.activity",
)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.library_log_level, format=FORMAT, force=True)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if settings.access_log else logging.WARNING)
