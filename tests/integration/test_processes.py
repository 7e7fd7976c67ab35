"""The entry points as a user runs them: settings errors, `make dev`'s runner end to end."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.slash.slash_endpoint import AUTOCOMPLETE
from devstack.demo_incident import INCIDENT_NAME
from devstack.embedded_http import free_port
from tests.harness import Stack, eventually

PROJECT = Path(__file__).resolve().parents[2]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MATTERMOST_", "API_", "STANDIN_"))}
    env.update(values)
    return env


async def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"API_PORT": "eighty"}, "Invalid configuration: API_PORT: Input should be a valid integer"),
        ({"MATTERMOST_URL": "mattermost.local"}, "Invalid configuration: MATTERMOST_URL: Value error, must be"),
        ({"TEMPORAL_ADDRESS": "nohost"}, "Invalid configuration: TEMPORAL_ADDRESS: Value error, must be host:port"),
        ({}, "Missing configuration: set TEMPORAL_ADDRESS, MATTERMOST_URL, MATTERMOST_BOT_TOKEN, SIGNING_SECRET"),
    ],
)
async def test_worker_fails_at_start_with_one_line_naming_the_setting(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    code, _, err = await run([sys.executable, str(PROJECT / "worker.py")], tmp_path, clean_env(**env))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(expected)


async def test_api_entry_point_names_missing_settings(tmp_path: Path) -> None:
    code, _, err = await run([sys.executable, "-m", "api"], tmp_path, clean_env())
    assert code == 2
    assert err.strip() == (
        "Missing configuration: set TEMPORAL_ADDRESS, MATTERMOST_URL, MATTERMOST_BOT_TOKEN, MATTERMOST_SLASH_TOKEN, "
        "SIGNING_SECRET "
        "(see README, Configuration)"
    )


class DevStack:
    """`python -m devstack` (what `make dev` runs) as a child process."""

    def __init__(self, cwd: Path, ports: dict[str, int], **settings: str) -> None:
        self.cwd = cwd
        self.ports = ports
        self.settings = settings
        # Kept for the failure message: why a start failed.
        self._stderr = cwd / "devstack.stderr"
        self.process: asyncio.subprocess.Process | None = None
        self.banner = ""

    async def start(self) -> None:
        env = clean_env(**{name: str(port) for name, port in self.ports.items()}, **self.settings)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devstack",
            cwd=self.cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr.open("ab"),
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        while True:
            line = (await asyncio.wait_for(self.process.stdout.readline(), timeout=90)).decode()
            assert line, f"devstack exited early: {''.join(lines)}{self._stderr.read_text()[-2000:]}"
            lines.append(line)
            if line.startswith("Ready."):
                break
        self.banner = "".join(lines)

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), timeout=60)

    def token(self, user: str) -> str:
        # "name  user id  token": the ids are printed next to the tokens.
        match = re.search(rf"^\s+{user}\s+[a-z0-9]{{26}}\s+([a-z0-9]+)$", self.banner, re.MULTILINE)
        assert match, self.banner
        return match.group(1)

    @property
    def town_square(self) -> str:
        match = re.search(r'"channel_id": "([a-z0-9]{26})"', self.banner)
        assert match, self.banner
        return match.group(1)

    async def slash(self, text: str, channel_id: str | None = None, *, user: str = "alice") -> str:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"http://127.0.0.1:{self.ports['STANDIN_PORT']}/api/v4/commands/execute",
                headers={"Authorization": f"Bearer {self.token(user)}"},
                json={"channel_id": channel_id or self.town_square, "command": f"/incident {text}"},
            )
        response.raise_for_status()
        return str(response.json()["text"])


@pytest.mark.slow
async def test_dev_stack_runs_stops_cleanly_and_keeps_incidents(tmp_path: Path) -> None:
    ports = {
        "TEMPORAL_DEV_PORT": free_port(),
        "TEMPORAL_UI_PORT": free_port(),
        "STANDIN_PORT": free_port(),
        "API_PORT": free_port(),
    }
    first = DevStack(tmp_path, ports)
    await first.start()
    try:
        assert f"Web UI:       http://localhost:{ports['TEMPORAL_UI_PORT']}" in first.banner
        assert f"http://127.0.0.1:{ports['STANDIN_PORT']}/_standin/state" in first.banner
        assert "| `/incident start" in await first.slash("help")
        # The CLI finds the demo users make dev wrote down.
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack.mm", "--as", "bob", "--wait", "0.5", "slash", "/incident help",
            cwd=tmp_path, env=clean_env(), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await cli.communicate()
        assert cli.returncode == 0
        assert "| `/incident start" in out.decode()
        # ...and prints them again, as the banner did.
        users = await run([sys.executable, "-m", "devstack.mm", "users"], tmp_path, clean_env())
        assert users[0] == 0, users
        assert re.search(rf"^\s+alice\s+[a-z0-9]{{26}}\s+{first.token('alice')}$", users[1], re.MULTILINE), users
        # The demo team's first incident is public and shared: bob sees it, though alice made it.
        listed = await eventually(lambda: first.slash("list", user="bob"), lambda text: "(~inc-" in text)
        assert f"| {INCIDENT_NAME} (~inc-" in listed, listed
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {first.token('alice')}"}) as http:
            team_id = re.search(r"Demo team:\s+demo \(([a-z0-9]{26})\)", first.banner)
            assert team_id
            created = await http.post(
                "/api/v1/playbooks",
                json={"team_id": team_id.group(1), "title": "Outage", "checklists": [{"title": "Triage"}]},
            )
            assert created.status_code == 201, created.text
        # Lists (and titles) come from visibility, which follows a moment later.
        await eventually(lambda: first.slash("playbooks"), lambda text: "| Outage |" in text)
        assert "Starting incident" in await first.slash('start "Outage" Disk full')
        await eventually(lambda: first.slash("list"), lambda text: "Disk full (~inc-disk-full-" in text)
    finally:
        assert await first.stop() == 0
    # A readable log: libraries' INFO lines (httpx's, one per request to the stand-in) are off.
    assert "HTTP Request:" not in (tmp_path / "devstack.stderr").read_text()
    assert (tmp_path / ".data" / "temporal.db").exists()
    standin_state = json.loads((tmp_path / ".data" / "mattermost-standin.json").read_text())
    [command] = [c for c in _records(standin_state, "commands") if c["trigger"] == "incident"]
    assert {key: command[key] for key in AUTOCOMPLETE} == AUTOCOMPLETE

    second = DevStack(tmp_path, ports)
    await second.start()
    try:
        assert second.token("alice") == first.token("alice")
        listed = await eventually(lambda: second.slash("list"), lambda text: "Disk full" in text)
        assert "Disk full (~inc-disk-full-" in listed
        assert listed.count(INCIDENT_NAME) == 1, listed  # found again, not made again
    finally:
        assert await second.stop() == 0


def _records(state: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = state.get(kind, {})
    return list(found.values() if isinstance(found, dict) else found)


async def test_dev_stack_uses_configured_servers_and_starts_none(tmp_path: Path, stack: Stack) -> None:
    ports = {"TEMPORAL_DEV_PORT": free_port(), "STANDIN_PORT": free_port(), "API_PORT": free_port()}
    settings = stack.settings
    dev = DevStack(
        tmp_path,
        ports,
        TEMPORAL_ADDRESS=settings.temporal_address,
        MATTERMOST_URL=settings.mattermost_url,
        MATTERMOST_BOT_TOKEN=settings.mattermost_bot_token,
        MATTERMOST_SLASH_TOKEN="some-token",
    )
    await dev.start()
    try:
        assert f"Temporal:     {settings.temporal_address}" in dev.banner
        assert f"Mattermost:   {settings.mattermost_url}" in dev.banner
        assert "Web UI" not in dev.banner
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{ports['API_PORT']}/readyz")
            assert ready.json()["status"] == "ready"
            for name in ("TEMPORAL_DEV_PORT", "STANDIN_PORT"):
                with pytest.raises(httpx.ConnectError):
                    await http.get(f"http://127.0.0.1:{ports[name]}/")
    finally:
        assert await dev.stop() == 0
    assert not (tmp_path / ".data" / "temporal.db").exists()
    assert not (tmp_path / ".data" / "mattermost-standin.json").exists()
