"""Headless Chromium for the backstage's browser tests: Debian's `chromium`, driven by Playwright.

Playwright drives the browser installed at CHROMIUM_PATH (default /usr/bin/chromium); it
never downloads one. Without it these tests are skipped, saying how to enable them, except
in CI (`CI` set), where a missing browser fails them: CI must run them.
One browser for the whole session; each test gets its own context (cookies) and page.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_PRESENT = CHROMIUM.exists()
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENABLE = (
    "install Chromium to run the backstage's browser tests: `apt-get install -y chromium` "
    "(Debian; .ci/run does it), or set CHROMIUM_PATH to a Chromium executable"
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        if os.environ.get("CI"):
            pytest.fail(f"No Chromium at {CHROMIUM} in CI: {ENABLE}.")
        pytest.skip(f"No Chromium at {CHROMIUM}: {ENABLE}.")

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()
