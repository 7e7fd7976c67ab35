"""What the alert tests share: the real Alertmanager's binary (or why it is missing)."""

from __future__ import annotations

import os

import pytest

from devstack.alertmanager import alertmanager_binary

INSTALL = "apt-get install -y prometheus-alertmanager"


def require_alertmanager() -> str:
    """The binary; without it the test is skipped, saying how to install it, except in CI (`CI`
    set, as `.ci/run` does), where a missing binary fails it, as tests/browser does for Chromium."""
    binary = alertmanager_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"prometheus-alertmanager is not installed in CI: {INSTALL}")
        pytest.skip(f"prometheus-alertmanager is not installed: {INSTALL}")
    return binary
