"""What every request handler needs, built once per process in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client

from mattermost_client.gateway import Mattermost
from service.deadline import call_budget, diagnosis_budget
from service.mattermost_facts import MattermostFacts
from settings import Settings
from signing import Signer


@dataclass
class Services:
    settings: Settings
    temporal: Client
    mattermost: Mattermost
    facts: MattermostFacts
    signer: Signer

    @property
    def rpc_timeout(self) -> timedelta:
        """Never let an HTTP request wait on Temporal longer than this (e.g. no worker running),
        nor past the request's deadline (see `api.deadline`)."""
        return timedelta(seconds=call_budget(self.settings.temporal_rpc_timeout_seconds))

    @property
    def diagnosis_timeout(self) -> timedelta:
        """How long finding out why a workflow did not answer may take."""
        return timedelta(seconds=diagnosis_budget(self.settings.temporal_rpc_timeout_seconds))
