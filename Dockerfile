# The API and the worker: one image, two entry points (see README, "Running it for real").
#   API:    python -m api      (the default command; listens on API_HOST:API_PORT)
#   worker: python worker.py   (docker-compose.yml sets it for the `worker` service)

# ---- build: install the locked runtime dependencies into a virtualenv
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# The runtime lock (`make lock`): the versions the tests ran with, every file checked against its hash.
# Only the dependencies, so that a code change does not reinstall them.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock

# ---- runtime: the virtualenv and the source, run as an unprivileged user
FROM python:3.11.14-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    API_HOST=0.0.0.0 \
    API_PORT=8000
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root activities ./activities
COPY --chown=root:root api ./api
COPY --chown=root:root mattermost_client ./mattermost_client
COPY --chown=root:root service ./service
COPY --chown=root:root models ./models
COPY --chown=root:root workflows ./workflows
COPY --chown=root:root worker.py settings.py temporal_connection.py permissions.py signing.py process_exit.py process_logging.py \
     payload_sealing.py webhook_targets.py ./
# Bytecode compiled once here: the worker's sandbox imports the workflow modules again for every
# incident it loads, and with PYTHONDONTWRITEBYTECODE (and a read-only tree) Python would compile
# them from source each time (docs/performance.md, "Where it bent").
RUN python -m compileall -q activities api mattermost_client service models workflows worker.py settings.py \
    temporal_connection.py permissions.py signing.py process_exit.py process_logging.py payload_sealing.py webhook_targets.py
USER app
EXPOSE 8000
# Liveness of the API; the worker service replaces it with `python worker.py --check`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}/healthz\", timeout=4)"]
CMD ["python", "-m", "api"]
