"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`), run as a child process.

Tests that drive our webhook API want the payloads, headers, grouping, repeats and retries
of the real thing rather than our idea of them, so this starts the binary with a one-route
config whose only receiver is the webhook under test, and lets a test fire alerts into it
through Alertmanager's own v2 API. Secrets go into files (`credentials_file`,
`password_file`), so they appear neither in argv nor in the YAML.

What Alertmanager 0.25 was seen to do (by hand, with group_wait 1s, group_interval 2s,
repeat_interval 4s; these decide how long a test waits and what it must tolerate):

- Start-up: `/-/ready` answers 200 about 0.1 s after exec. `--cluster.listen-address=`
  (empty) works in 0.25: clustering is off, nothing gossips and no port is bound for it;
  without the flag every instance binds 0.0.0.0:9094, so parallel ones clash.
- Latency: an alert that opens a new group reaches the webhook group_wait after it was
  posted (1.0 s measured). A change to an existing group (another alert, a resolution) goes
  out at the group's next group_interval tick, so within group_interval (1.9 s measured).
- Repeats: while an alert stays firing, the same notification is sent again every
  repeat_interval, rounded up to a group_interval tick (4 s and 6 s apart were seen): a
  receiver must be idempotent, and a test must expect duplicates.
- A resolution goes out once (send_resolved); nothing followed it. A resolved
  alert that never fired sends nothing. An alert whose startsAt is not before its endsAt
  is refused with 400 "start time must be before end time".
- In the webhook body, a firing alert's endsAt is the zero time "0001-01-01T00:00:00Z",
  not the endsAt that was posted; `version` is "4", `groupKey` is like
  `{}:{alertname="Disk"}`, and `externalURL` is `--web.external-url` (set here to `url`).
- Retries: a 5xx answer or a refused connection is retried within the same flush with
  exponential backoff, the first retry about 0.5 s later, then about 1.5 times longer each
  time with jitter (gaps of 0.48, 0.52, 0.82, 1.9, 3.4 s were seen), until the flush's
  deadline of max(group_interval, 10 s) ("notify retry canceled after 7 attempts"); the next
  tick then starts over. Any other answer, 4xx and 429 included (its retrier retries only
  5xx), ends the flush at once ("unrecoverable error"), yet the alerts stay in the group and
  the whole notification was sent again at the next group_interval tick (seen with 400).
  Only a 2xx marks it sent, so it keeps coming while the alert lives. A group's flushes run
  one at a time: a receiver that keeps failing delays that group's later changes.
- Stopping: SIGTERM ends it within about a second (a few milliseconds when idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml

from devstack.embedded_http import free_port

STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
# Like Prometheus, which posts a firing alert with an endsAt a few evaluation intervals ahead
# and re-posts it while it lasts: an alert not re-posted resolves itself at endsAt.
FIRING_FOR = timedelta(minutes=5)


def alertmanager_binary() -> str | None:
    """The Alertmanager executable: `ALERTMANAGER_BIN`, else Debian's name, else upstream's."""
    return os.environ.get("ALERTMANAGER_BIN") or shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def alert(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    summary: str | None = None,
    resolved: bool = False,
    generator_url: str = "http://prometheus.example/graph",
    starts_at: datetime | None = None,
) -> dict[str, Any]:
    """One alert as `POST /api/v2/alerts` takes it, as Prometheus would post it.

    Firing: endsAt five minutes ahead. Resolved: endsAt a second ago, which Alertmanager reads
    as "resolved now". Alertmanager refuses an alert whose startsAt is not before its endsAt,
    so a resolved one starts a minute before it ended unless `starts_at` says otherwise (when
    it merges the resolution into the firing alert it keeps the earlier startsAt anyway).
    """
    now = datetime.now(UTC)
    ends = now - timedelta(seconds=1) if resolved else now + FIRING_FOR
    starts = starts_at or (ends - timedelta(minutes=1) if resolved else now)
    return {
        "labels": {"alertname": name, **(labels or {})},
        "annotations": {"summary": summary} if summary is not None else {},
        "startsAt": _timestamp(starts),
        "endsAt": _timestamp(ends),
        "generatorURL": generator_url,
    }


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alertmanager:
    """A private Alertmanager whose one route notifies `webhook_url` of every alert.

    Timings default short, for tests: the first notification comes a second after the alert,
    changes within two, repeats every four or so (see the module's notes).
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "4s",
        group_by: list[str] | None = None,
        binary: str | None = None,
    ) -> None:
        if bearer_token is not None and basic_auth is not None:
            raise ValueError("give bearer_token or basic_auth, not both (a webhook has one Authorization header)")
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.basic_auth = basic_auth
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.group_by = list(group_by) if group_by is not None else ["alertname"]
        self.binary = binary
        self.port: int | None = None
        self._directory: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        """The base URL of its HTTP API and UI (also its `externalURL` in payloads)."""
        if self.port is None:
            raise RuntimeError("Alertmanager is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path | None:
        """Its stdout and stderr, while it runs (the temporary directory goes with `stop`)."""
        return self._directory / "alertmanager.log" if self._directory else None

    def config(self, directory: Path) -> dict[str, Any]:
        """The configuration, naming the secret files in `directory` (written by `start`)."""
        http_config: dict[str, Any] = {}
        if self.bearer_token is not None:
            http_config["authorization"] = {"type": "Bearer", "credentials_file": str(directory / "bearer_token")}
        if self.basic_auth is not None:
            http_config["basic_auth"] = {
                "username": self.basic_auth[0],
                "password_file": str(directory / "basic_auth_password"),
            }
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True, "max_alerts": 0}
        if http_config:
            webhook["http_config"] = http_config
        return {
            "route": {
                "receiver": "webhook",
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": "webhook", "webhook_configs": [webhook]}],
        }

    def command(self, directory: Path) -> list[str]:
        binary = self.binary or alertmanager_binary()
        if binary is None:
            raise RuntimeError("Alertmanager is not installed: apt-get install -y prometheus-alertmanager")
        return [
            binary,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",  # no clustering: no gossip port, no waiting for peers
            "--log.level=warn",
        ]

    async def start(self) -> Self:
        """Write the config and secrets, start the binary, and return once `/-/ready` answers."""
        if self._process is not None:
            raise RuntimeError("Alertmanager is already running")
        directory = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self._directory = directory
        try:
            self._write_files(directory)
            self.port = free_port()
            with open(directory / "alertmanager.log", "ab") as log:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command(directory),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
                )
            self._http = httpx.AsyncClient(base_url=self.url, timeout=5.0, trust_env=False)
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    def _write_files(self, directory: Path) -> None:
        secrets = {
            "bearer_token": self.bearer_token,
            "basic_auth_password": self.basic_auth[1] if self.basic_auth else None,
        }
        for name, secret in secrets.items():
            if secret is not None:
                path = directory / name
                path.touch(mode=0o600)
                path.write_text(secret)
        config = yaml.safe_dump(self.config(directory), sort_keys=False)
        (directory / "alertmanager.yml").write_text(config)

    async def _wait_ready(self) -> None:
        assert self._process is not None
        assert self._http is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
        exited = asyncio.ensure_future(self._process.wait())
        last = "no answer yet"
        try:
            while not exited.done():
                try:
                    response = await self._http.get("/-/ready")
                except httpx.TransportError as error:
                    last = repr(error)
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                if loop.time() > deadline:
                    waited = f"{STARTUP_TIMEOUT_SECONDS:.0f}s (last: {last})"
                    raise RuntimeError(f"Alertmanager not ready after {waited}:\n{self.log_tail()}")
                # Ask again shortly (it is usually ready within 0.1 s), or at once if it exits.
                await asyncio.wait({exited}, timeout=0.05)
        finally:
            exited.cancel()
        raise RuntimeError(f"Alertmanager exited with {self._process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of its log, for failure messages."""
        if self.log_file is None or not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"

    async def fire(self, alerts: list[dict[str, Any]]) -> None:
        """Post alerts (see `alert`) as Prometheus does; a refusal raises with Alertmanager's reason."""
        if self._http is None:
            raise RuntimeError("Alertmanager is not started")
        response = await self._http.post("/api/v2/alerts", json=alerts)
        if response.is_error:
            raise RuntimeError(f"Alertmanager refused the alerts: {response.status_code} {response.text.strip()}")

    async def stop(self) -> None:
        """Terminate it (SIGTERM, then SIGKILL after a while) and remove its directory."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
