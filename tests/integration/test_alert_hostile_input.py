"""Hostile notifications at the alert intake: never a 5xx, never a failed workflow task, and
nothing an alert says notifies anyone or becomes a link other than http(s).

Hypothesis builds Alertmanager and generic notifications from hostile parts (mentions,
Markdown, `javascript:` links, control characters, huge and odd labels, many alerts, odd
group keys) and sends them from a worker thread while the stack runs on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType

from tests.fuzz import through_the_stack
from tests.harness import World
from tests.integration.slash_helpers import bot_posts
from tests.integration.test_alert_intake import make_integration, send, team_admin

pytestmark = pytest.mark.property

EXAMPLES = 60
# A Markdown link (an unescaped `](`) to anything but http(s): none may come from an alert.
UNSAFE_LINK = re.compile(r"(?<!\\)\]\((?!https?://)")
HOSTILE = st.sampled_from(
    [
        "@channel",
        "@here @all",
        "[click](javascript:alert(1))",
        "](http://evil.example)",
        "<script>alert(1)</script>",
        "\x00\x01\x7f",
        "\ud800",
        "`",
        "~town-square",
        "a" * 5000,
        "/incident end",
        "",
        " ",
        "\uff9f\uff65\u273f\u30fe\u2572(\uff61\u25d5\u203f\u25d5\uff61)\u2571\u273f",
        "javascript:alert(1)",
        "http://ok.example/a)b",
        '{}:{alertname="x"}',
    ]
)
TEXT = st.one_of(HOSTILE, st.text(max_size=60))
LABELS = st.dictionaries(st.one_of(HOSTILE, st.text(min_size=1, max_size=20)), TEXT, max_size=6)


@st.composite
def alertmanager_body(draw: st.DrawFn) -> dict[str, Any]:
    alerts = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "status": st.sampled_from(["firing", "resolved", "pending", ""]),
                    "labels": LABELS,
                    "annotations": st.dictionaries(st.sampled_from(["summary", "description", "runbook_url"]), TEXT),
                    "startsAt": st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "yesterday"]),
                    "endsAt": st.sampled_from(["0001-01-01T00:00:00Z", "2026-01-01T00:05:00Z", ""]),
                    "generatorURL": TEXT,
                    "fingerprint": TEXT,
                }
            ),
            min_size=0,
            max_size=30,
        )
    )
    return {
        "version": draw(st.sampled_from(["4", "3", 4])),
        "groupKey": draw(TEXT),
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "groupLabels": draw(LABELS),
        "commonLabels": draw(LABELS),
        "commonAnnotations": draw(st.dictionaries(st.sampled_from(["summary", "description"]), TEXT)),
        "externalURL": draw(TEXT),
        "alerts": alerts,
    }


@st.composite
def generic_body(draw: st.DrawFn) -> Any:
    body = {
        "title": draw(TEXT),
        "description": draw(TEXT),
        "severity": draw(TEXT),
        "status": draw(st.sampled_from(["firing", "resolved", "open"])),
        "group_key": draw(TEXT),
        "labels": draw(LABELS),
        "links": draw(st.lists(TEXT, max_size=4)),
    }
    return draw(st.one_of(st.just(body), st.just([body]), st.just("x"), st.just(None)))


@pytest.mark.parametrize("kind", ["alertmanager", "generic"])
async def test_hostile_notifications_never_fail_and_nothing_in_them_notifies_or_links_out(
    world: World, kind: str
) -> None:
    tess = team_admin(world)
    integration = await make_integration(world, tess, kind)
    http = httpx.Client(timeout=60, headers={"Authorization": f"Bearer {integration['token']}"})
    answers: list[int] = []
    incidents: set[str] = set()

    @through_the_stack(EXAMPLES, derandomize=True)
    @given(body=alertmanager_body() if kind == "alertmanager" else generic_body())
    def check(body: Any) -> None:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        answer = http.post(integration["url"], content=content, headers={"Content-Type": "application/json"})
        assert answer.status_code in (200, 400), (answer.status_code, answer.text[:300])
        answers.append(answer.status_code)
        if answer.status_code == 200:
            incidents.add(answer.json()["incident_id"])
        else:
            assert answer.json()["message"].startswith("The notification was refused: ")

    try:
        await asyncio.to_thread(check)
    finally:
        await asyncio.to_thread(http.close)
    assert 200 in answers  # the strategies reach past the parser
    client = world.stack.temporal
    failed: list[str] = []
    for incident_id in incidents:
        handle = client.get_workflow_handle(f"incident-{incident_id}")
        failed += [
            f"{incident_id}: {e.workflow_task_failed_event_attributes.failure.message}"
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
        state = await handle.query("get_state")
        for message in bot_posts(world, state["channel_id"]) if state.get("channel_id") else []:
            assert "@channel" not in message
            assert "@here" not in message
            assert not UNSAFE_LINK.search(message), message[:500]
    assert failed == []


async def test_notifications_as_large_as_the_api_takes_keep_the_incident_within_temporals_limits(
    world: World,
) -> None:
    """Six notifications of about 1 MB (MAX_BODY_BYTES), a thousand alerts each with long labels
    and links: each is split into updates under Temporal's payload limit, and what the incident
    keeps of the alerts is bounded, so its state (carried whole by continue-as-new and queries)
    stays well under the 2 MB Temporal refuses; no workflow task fails and every alert counts."""
    tess = team_admin(world)
    integration = await make_integration(world, tess, "alertmanager")
    limit = world.stack.settings.max_body_bytes
    sent = 0
    incident_id = ""
    for n in range(6):
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": "Big", "n": f"{n}-{i}", "blob": "x" * 700},
                "annotations": {"summary": "s" * 150},
                "startsAt": "2026-01-01T00:00:00Z",
                "generatorURL": "http://graph.example/" + "p" * 100,
                "fingerprint": f"{n}-{i}",
            }
            for i in range(1000)
        ]
        body = {"version": "4", "groupKey": "big", "status": "firing", "alerts": alerts}
        while len(raw := json.dumps(body).encode()) > limit - 1024:
            alerts.pop()
        answer = await send(world, integration, raw)
        assert answer.status_code == 200, answer.text[:300]
        sent += len(alerts)
        incident_id = answer.json()["incident_id"]
    handle = world.stack.temporal.get_workflow_handle(f"incident-{incident_id}")
    failed = [
        e async for e in handle.fetch_history_events() if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert failed == []
    state = await handle.query("get_state")
    assert len(json.dumps(state)) < 1_000_000
    source = state["source"]
    assert len(source["alerts"]) + len(source["others"]) == sent
    assert source["uncounted"] == 0
