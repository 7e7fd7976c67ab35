"""The Alertmanager harness (`devstack.alertmanager`) against the real binary.

The tests that drive our webhook API with Alertmanager trust this harness to deliver what a
production Alertmanager would: a version 4 payload with a groupKey, the configured
Authorization header, a resolution for the same group, and a retry after a 5xx. A small
receiver served in the test loop records every delivery and wakes the waiting test.

Without the binary these tests are skipped, saying how to install it, except in CI (`CI`
set, as `.ci/run` does), where a missing binary fails them, as tests/browser does for Chromium.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devstack.alertmanager import Alertmanager, alert
from mattermost_standin.serve import BackgroundServer
from tests.integration.alert_helpers import require_alertmanager

# Generous for a loaded machine: with the harness's timings a delivery takes one to two seconds.
DELIVERY_TIMEOUT = 15.0


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    payload: dict[str, Any]
    answered: int

    @property
    def alertnames(self) -> set[str]:
        return {item["labels"]["alertname"] for item in self.payload["alerts"]}


class WebhookReceiver:
    """Records every webhook call; answers 500 to as many as `fail_next` asked, then 204."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.failures_left = 0
        self.url = ""
        self._arrived = asyncio.Condition()
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    def reset(self) -> None:
        self.deliveries.clear()
        self.failures_left = 0

    def fail_next(self, count: int) -> None:
        self.failures_left = count

    async def _hook(self, request: Request) -> Response:
        payload = await request.json()
        answered = 204
        if self.failures_left > 0:
            self.failures_left -= 1
            answered = 500
        async with self._arrived:
            self.deliveries.append(Delivery(dict(request.headers), payload, answered))
            self._arrived.notify_all()
        return Response(status_code=answered)

    async def wait_for(self, accept: Callable[[list[Delivery]], bool], *, what: str) -> list[Delivery]:
        """The deliveries so far, once `accept` takes them; woken by each arrival, bounded."""
        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: accept(self.deliveries)), DELIVERY_TIMEOUT)
            except TimeoutError:
                seen = [(d.answered, d.payload.get("status"), d.payload.get("groupKey")) for d in self.deliveries]
                raise AssertionError(f"no {what} within {DELIVERY_TIMEOUT}s; received {seen}") from None
            return list(self.deliveries)


@pytest.fixture(scope="module")
def alertmanager_installed() -> str:
    return require_alertmanager()


@pytest.fixture(scope="module")
async def receiver_server() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = BackgroundServer(receiver.app)
    port = await server.start("127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    yield receiver
    await server.stop()


@pytest.fixture
def receiver(alertmanager_installed: str, receiver_server: WebhookReceiver) -> Iterator[WebhookReceiver]:
    receiver_server.reset()
    yield receiver_server
    receiver_server.reset()


def of(name: str, status: str) -> Callable[[list[Delivery]], bool]:
    return lambda deliveries: any(d.payload["status"] == status and name in d.alertnames for d in deliveries)


async def test_a_firing_alert_then_its_resolution_reach_the_webhook_with_the_bearer_token(
    receiver: WebhookReceiver,
) -> None:
    labels = {"severity": "page", "service": "db"}
    async with Alertmanager(receiver.url, bearer_token="tok-3f9a") as alertmanager:
        assert alertmanager.log_file is not None
        assert "tok-3f9a" not in (alertmanager.log_file.parent / "alertmanager.yml").read_text()
        await alertmanager.fire([alert("DiskFull", labels=labels, summary="disk full")])

        firing = (await receiver.wait_for(of("DiskFull", "firing"), what="firing notification"))[0]
        assert firing.answered == 204
        assert firing.headers["authorization"] == "Bearer tok-3f9a"
        assert firing.payload["version"] == "4"
        assert firing.payload["status"] == "firing"
        assert firing.payload["groupKey"] == '{}:{alertname="DiskFull"}'
        assert firing.payload["externalURL"] == alertmanager.url
        [fired] = firing.payload["alerts"]
        assert fired["status"] == "firing"
        assert fired["labels"] == {"alertname": "DiskFull", **labels}
        assert fired["annotations"] == {"summary": "disk full"}
        assert fired["generatorURL"] == "http://prometheus.example/graph"

        await alertmanager.fire([alert("DiskFull", labels=labels, summary="disk full", resolved=True)])
        deliveries = await receiver.wait_for(of("DiskFull", "resolved"), what="resolved notification")
        resolved = next(d for d in deliveries if d.payload["status"] == "resolved")
        assert resolved.headers["authorization"] == "Bearer tok-3f9a"
        assert resolved.payload["groupKey"] == firing.payload["groupKey"]
        [ended] = resolved.payload["alerts"]
        assert ended["status"] == "resolved"
        assert ended["fingerprint"] == fired["fingerprint"]


async def test_basic_auth_reaches_the_webhook(receiver: WebhookReceiver) -> None:
    async with Alertmanager(receiver.url, basic_auth=("alertmanager", "s3cret:with/colon")) as alertmanager:
        await alertmanager.fire([alert("QueueBacklog")])
        delivery = (await receiver.wait_for(of("QueueBacklog", "firing"), what="firing notification"))[0]

    scheme, _, encoded = delivery.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "alertmanager:s3cret:with/colon"


async def test_a_webhook_answering_500_gets_the_notification_again(receiver: WebhookReceiver) -> None:
    receiver.fail_next(1)
    async with Alertmanager(receiver.url, bearer_token="tok-retry") as alertmanager:
        await alertmanager.fire([alert("Flaky")])
        first, second = (await receiver.wait_for(lambda d: len(d) >= 2, what="retried notification"))[:2]

    assert (first.answered, second.answered) == (500, 204)
    assert second.payload["groupKey"] == first.payload["groupKey"] == '{}:{alertname="Flaky"}'
    assert second.payload["alerts"] == first.payload["alerts"]
    assert second.headers["authorization"] == "Bearer tok-retry"


async def test_a_refused_alert_raises_with_alertmanagers_reason(alertmanager_installed: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        Alertmanager("http://127.0.0.1:9/hook", bearer_token="t", basic_auth=("u", "p"))
    async with Alertmanager("http://127.0.0.1:9/hook") as alertmanager:
        backwards = alert("Backwards") | {"endsAt": "2000-01-01T00:00:00Z"}
        with pytest.raises(RuntimeError, match="start time must be before end time"):
            await alertmanager.fire([backwards])
