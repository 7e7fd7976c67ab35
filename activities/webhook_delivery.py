"""Delivering an incident's webhooks: one attempt per activity call, signed, to a vetted address.

The incident's webhooks workflow keeps the retry schedule (durable timers, the receiver's
`Retry-After`, the give-up time) and runs `deliver_webhook` with `maximum_attempts=1`: each
call is one attempt, and what it came to is its result (`DeliveryAttempt`). Only a Temporal
error while reading the target fails the activity, which the workflow counts as an attempt to
retry.

Each attempt reads the subscription's URL and secrets from its owner's workflow (a query:
never in the incident's history), vets the URL again (`webhook_targets.vet_target`: a host
that now resolves somewhere unsafe is refused, not retried) and connects to an address it
vetted, never to a fresh DNS answer: the request goes to the IP literal, with the real host
in `Host` and, over https, in the TLS server name, so the certificate is checked against the
name people gave. Redirects are not followed (their target was never vetted), proxies from
the environment are not used, and at most `RESPONSE_READ_BYTES` of an answer is read.

Bodies are signed as the Standard Webhooks spec says (https://www.standardwebhooks.com):
`webhook-id` is the event's id (the same on every retry, so receivers can drop repeats),
`webhook-timestamp` the attempt's time, and `webhook-signature` one signature per secret
(the current one, and the previous one while a rotation overlaps), space-separated.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

import httpx
from standardwebhooks import Webhook
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.attempts import current_attempt
from models.webhooks import (
    BODY_MAX_BYTES,
    RESPONSE_READ_BYTES,
    AttemptOutcome,
    DeliverWebhook,
    DeliveryAttempt,
    TargetForDelivery,
)
from webhook_targets import Network, TargetRefused, TargetUnresolved, VettedTarget, vet_target

USER_AGENT = "incident-response-webhooks/1"
# The owner's query that answers a subscription's URL and secrets (None: it was deleted).
TARGET_QUERY = "target_for_delivery"
# Reading the target from the owner's workflow takes at most this (then the activity fails).
# With `webhook_targets.RESOLVE_TIMEOUT_SECONDS`, what an attempt may take besides the receiver
# (its `timeout`): the workflow's start-to-close timeout leaves room for both.
QUERY_TIMEOUT_SECONDS = 5.0
# How often an attempt heartbeats while it waits (unless the worker's `EffectAttempts` does).
HEARTBEAT_SECONDS = 1.0
# A receiver's answer is kept as the last error in at most this many characters, on one line.
EXCERPT_CHARS = 200
# A receiver's Retry-After is honoured up to this (a week): a bigger one is taken as this.
RETRY_AFTER_MAX_SECONDS = 7 * 86400.0
# Retried besides 5xx: Request Timeout and Too Many Requests. Every other 4xx is a refusal.
RETRY_STATUSES = frozenset({408, 429})


class WebhookDelivery:
    """The delivery activity, bound to the worker's Temporal client; registered on the worker."""

    def __init__(self, client: Client, *, allowed_networks: Sequence[Network], attempt_timeout_seconds: float) -> None:
        self._client = client
        self._allowed = tuple(allowed_networks)
        self._timeout = attempt_timeout_seconds

    @activity.defn
    async def deliver_webhook(self, request: DeliverWebhook) -> DeliveryAttempt:
        """One attempt to deliver one event to one subscription (see the module's docstring)."""
        async with _heartbeating():
            target = await self._target(request)
            if target is None:
                return DeliveryAttempt(outcome=AttemptOutcome.GONE, error="the subscription was deleted")
            try:
                vetted = await vet_target(target.url, self._allowed)
            except TargetUnresolved as unresolved:
                # DNS may come back: the schedule tries again until it gives up.
                return DeliveryAttempt(outcome=AttemptOutcome.RETRY, error=unresolved.message, url=target.url)
            except TargetRefused as refused:
                return DeliveryAttempt(outcome=AttemptOutcome.REFUSED, error=refused.message, url=target.url)
            sent = await send_signed(vetted, request.event_id, request.body, target.secrets, timeout=self._timeout)
            # Named by its URL on the incident's timeline when it is refused or given up.
            return sent.model_copy(update={"url": target.url})

    async def _target(self, request: DeliverWebhook) -> TargetForDelivery | None:
        """The subscription's URL and secrets, from its owner; None once it is deleted. Queried
        by name: an activity never imports a workflow."""
        handle = self._client.get_workflow_handle(request.owner_workflow_id)
        try:
            answer = await handle.query(
                TARGET_QUERY,
                request.subscription_id,
                result_type=TargetForDelivery,
                rpc_timeout=timedelta(seconds=QUERY_TIMEOUT_SECONDS),
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None  # the owner's workflow is gone, and its subscriptions with it
            raise
        # A None answer arrives as None (Temporal's null payload) whatever the result type.
        return None if answer is None else TargetForDelivery.model_validate(answer)

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [self.deliver_webhook]


async def send_signed(
    target: VettedTarget,
    event_id: str,
    body: str,
    secrets: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 - the attempt's whole limit, told in its error; it bounds httpx's too
    tls: ssl.SSLContext | None = None,
) -> DeliveryAttempt:
    """POST `body` to the target's vetted addresses (the next one only when one cannot be
    connected to), signed with each secret, within `timeout` seconds in all; what it came to.
    `tls`: the certificates to trust (default: httpx's, certifi or SSL_CERT_FILE)."""
    data = body.encode()
    if len(data) > BODY_MAX_BYTES:
        error = f"the event's body is {len(data)} bytes, over the limit of {BODY_MAX_BYTES // 1024} KiB"
        return DeliveryAttempt(outcome=AttemptOutcome.REFUSED, error=error)
    if not secrets:
        return DeliveryAttempt(outcome=AttemptOutcome.REFUSED, error="the subscription has no secret to sign with")
    stamp = int(time.time())
    signed_at = datetime.fromtimestamp(stamp, UTC)
    signatures = [Webhook(secret).sign(msg_id=event_id, timestamp=signed_at, data=data) for secret in secrets]
    headers = {
        "host": target.host_header,
        "webhook-id": event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join(dict.fromkeys(signatures)),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # What is read of the answer is kept as it came: no compressed bytes to decode.
        "accept-encoding": "identity",
    }
    try:
        async with asyncio.timeout(timeout):
            return await _post(target, data, headers, limit=timeout, tls=tls or _default_tls())
    except TimeoutError:
        return DeliveryAttempt(outcome=AttemptOutcome.RETRY, error=_timed_out(timeout))


async def _post(
    target: VettedTarget, data: bytes, headers: dict[str, str], *, limit: float, tls: ssl.SSLContext
) -> DeliveryAttempt:
    # A client per attempt: a pooled connection made for one host name must never carry
    # another's request (the pool knows connections by address, not by TLS server name).
    async with httpx.AsyncClient(follow_redirects=False, timeout=limit, verify=tls, trust_env=False) as client:
        unreachable: httpx.TransportError | None = None
        for address in target.addresses:
            try:
                return await _exchange(client, target, address, data, headers)
            except httpx.ConnectError as error:
                if _tls_error(error) is not None:
                    return _failed(error, limit)
                unreachable = error  # this address cannot be reached: the next one may be
            except httpx.TransportError as error:
                return _failed(error, limit)
    return _failed(unreachable, limit)


async def _exchange(
    client: httpx.AsyncClient, target: VettedTarget, address: str, data: bytes, headers: dict[str, str]
) -> DeliveryAttempt:
    url = httpx.URL(target.url).copy_with(host=address)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    async with client.stream("POST", url, content=data, headers=headers, extensions=extensions) as response:
        head = await _read_at_most(response, RESPONSE_READ_BYTES)
    return attempt_for_answer(response.status_code, response.headers, head, reason=response.reason_phrase)


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The first `limit` bytes of the answer; the rest is never read (the connection is closed)."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return bytes(kept)


def attempt_for_answer(
    status: int, headers: httpx.Headers, head: bytes, *, reason: str = "", now: datetime | None = None
) -> DeliveryAttempt:
    """What an answer means: 2xx accepted; 3xx refused (redirects are not followed); 408, 429
    and 5xx retried (after `Retry-After` when given); any other 4xx refused."""
    if 200 <= status < 300:
        return DeliveryAttempt(outcome=AttemptOutcome.ACCEPTED, status=status)
    if 300 <= status < 400:
        location = excerpt(headers.get("location", "").encode(), limit=100)
        where = f" (a redirect to {location})" if location else " (a redirect)"
        error = f"answered {status}{where}; redirects are not followed: give the final URL"
        return DeliveryAttempt(outcome=AttemptOutcome.REFUSED, status=status, error=error)
    said = excerpt(head) or reason or _phrase(status)
    if status in RETRY_STATUSES or 500 <= status < 600:
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
        return DeliveryAttempt(outcome=AttemptOutcome.RETRY, status=status, error=said, retry_after_seconds=retry_after)
    if 400 <= status < 500:
        return DeliveryAttempt(outcome=AttemptOutcome.REFUSED, status=status, error=said)
    return DeliveryAttempt(outcome=AttemptOutcome.RETRY, status=status, error=f"answered an unknown status {status}")


def excerpt(raw: bytes, *, limit: int = EXCERPT_CHARS) -> str:
    """`raw` as one printable line of at most `limit` characters."""
    text = "".join(char if char.isprintable() else " " for char in raw.decode("utf-8", errors="replace"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` in seconds from `now` (delta-seconds or an HTTP-date), never negative,
    at most RETRY_AFTER_MAX_SECONDS; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) <= 10 else RETRY_AFTER_MAX_SECONDS
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), RETRY_AFTER_MAX_SECONDS)


def _failed(error: httpx.TransportError | None, timeout: float) -> DeliveryAttempt:
    return DeliveryAttempt(outcome=AttemptOutcome.RETRY, error=_network_error(error, timeout))


def _network_error(error: httpx.TransportError | None, timeout: float) -> str:
    """A failure to talk to the receiver, in a few words."""
    if error is None:
        return "no address to connect to"
    if isinstance(error, httpx.TimeoutException):
        return _timed_out(timeout)
    tls = _tls_error(error)
    if tls is not None:
        if isinstance(tls, ssl.SSLCertVerificationError):
            return excerpt(f"TLS: the receiver's certificate was not accepted ({tls.verify_message})".encode())
        reason = (tls.reason or str(tls)).lower().replace("_", " ")
        return excerpt(f"TLS: {reason}".encode())
    causes = list(_causes(error))
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "connection refused"
    if any(isinstance(cause, ConnectionResetError) for cause in causes):
        return "connection reset"
    if any(isinstance(cause, TimeoutError) for cause in causes):
        return _timed_out(timeout)
    if isinstance(error, httpx.RemoteProtocolError):
        return excerpt(f"the receiver broke the exchange: {error}".encode())
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return excerpt(cause.strerror[:1].lower().encode() + cause.strerror[1:].encode())
    return excerpt((str(error) or type(error).__name__).encode())


def _tls_error(error: BaseException) -> ssl.SSLError | None:
    return next((cause for cause in _causes(error) if isinstance(cause, ssl.SSLError)), None)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, and so on (httpx wraps httpcore's, which wraps the OS's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _timed_out(timeout: float) -> str:
    return f"timed out after {timeout:g} s"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default trust (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), made once."""
    return httpx.create_ssl_context()


@asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the attempt waits, so that a worker that dies mid-request is noticed
    within the heartbeat timeout. The worker's `EffectAttempts` interceptor already beats for
    an activity scheduled with a heartbeat timeout; otherwise this beats every second."""
    if _beaten_by_the_worker():
        yield
        return
    beating = asyncio.create_task(_beat())
    try:
        yield
    finally:
        beating.cancel()
        await asyncio.wait([beating])


def _beaten_by_the_worker() -> bool:
    try:
        return current_attempt().heartbeats
    except LookupError:
        return False


async def _beat() -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        activity.heartbeat()
