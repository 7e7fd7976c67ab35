"""The issue's alert storm: many alerts in many groups within a minute, sent as Alertmanager sends them.

"10,000 alerts in 100 groups arriving within a minute open exactly 100 incidents, no
notification is lost (each alert is on its incident's timeline once), and slash commands on
other incidents stay within their usual latency while it happens."

One Alertmanager integration; each alert group is an aggregation group of Alertmanager's:
its notifications are sent one after another (the next one waits until the previous was
answered, retries included), each carrying every alert of the group so far (10 notifications
of growing size for 100 alerts), and the last one is sent once more, as Alertmanager repeats
it. The groups' notifications are spread over the storm's seconds, at most 32 requests in
flight (Alertmanager's HTTP client to one receiver). An answer of 5xx (503: Temporal did not
answer in time) or no answer is sent again with the same body after a pause, as Alertmanager
retries; a 4xx is not (Alertmanager drops the notification), so it is a lost notification.

While the storm is being sent, and then while its incidents settle, a person's `/incident
check N` is timed on an incident of another team, on a new connection each time, as
`outside()` in `bench/__main__.py` times it quietly.

Afterwards everything is counted from Temporal: the incidents the intake named (one per
group), the team's incident workflows (`count_workflows`, to catch an extra incident nobody
was told of), and, from each incident's state, each of its group's alerts as one
`alert_firing` timeline event. A wrong count fails `make bench` (`wrong`), as an untrue
answer does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from api.slash.slash_registry import RECEIVED_HERE
from bench.timing import summary
from devstack.worlds import World, eventually, make_world, slash_form
from models.incident import EventType, IncidentState, incident_workflow_id
from workflows.incident_workflow import IncidentWorkflow

# Requests in flight at once, as one Alertmanager's HTTP client to one receiver may have.
IN_FLIGHT = 32
# Notifications per group: each carries the group's alerts so far (the last one is repeated).
NOTIFICATIONS = 10
# Alertmanager's retries: an exponential pause, and a notification given up after this long.
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0)
GIVE_UP_SECONDS = 300.0
# Between two timed slash commands (so the probe is a person typing, not a load of its own).
PROBE_PAUSE = 0.1
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class Notification:
    group: int
    at: float  # seconds after the storm's start
    body: bytes
    repeat: bool = False


@dataclass
class Group:
    n: int
    fingerprints: list[str]
    notifications: list[Notification]
    answers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    lost: list[str] = field(default_factory=list)
    answer_seconds: list[float] = field(default_factory=list)
    # The first answers of each status but 200, as sent (what the sender was told).
    examples: dict[str, list[str]] = field(default_factory=dict)


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def plan(alerts: int, groups: int, seconds: float, began: datetime) -> list[Group]:
    """Every group's notifications, their bodies and when each is due.

    A group's notifications come one step apart (the storm's seconds over the notifications
    and the repeat), the groups' first ones spread over the first step."""
    step = seconds / (NOTIFICATIONS + 1)
    planned = []
    for g in range(groups):
        size = alerts // groups + (1 if g < alerts % groups else 0)
        offset = step * g / groups
        name = f"StormAlert{g:03}"
        stages = max(1, min(NOTIFICATIONS, size))
        alerts_so_far: list[dict[str, Any]] = []
        fingerprints: list[str] = []
        notifications: list[Notification] = []
        for k in range(stages):
            at = offset + k * step
            for i in range(len(alerts_so_far), -(-size * (k + 1) // stages)):
                labels = {"alertname": name, "instance": f"node-{i:03}:9100", "job": "node", "severity": "critical"}
                fingerprints.append(_fingerprint(labels))
                alerts_so_far.append(
                    {
                        "status": "firing",
                        "labels": labels,
                        "annotations": {
                            "summary": f"Storm {g}: disk almost full on node-{i:03}",
                            "description": f"node-{i:03}:9100 has less than 5% of its disk left.",
                        },
                        "startsAt": (began + timedelta(seconds=at)).isoformat().replace("+00:00", "Z"),
                        "endsAt": GO_ZERO_TIME,
                        "generatorURL": f"http://prometheus.example:9090/graph?g0.expr=disk_free{{g={g}}}",
                        "fingerprint": fingerprints[-1],
                    }
                )
            body = {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="{name}"}}',
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "incident-response",
                "groupLabels": {"alertname": name},
                "commonLabels": {"alertname": name, "job": "node", "severity": "critical"},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.example:9093",
                "alerts": list(alerts_so_far),
            }
            notifications.append(Notification(g, at, json.dumps(body).encode()))
        last = notifications[-1]
        notifications.append(Notification(g, offset + NOTIFICATIONS * step, last.body, repeat=True))
        planned.append(Group(g, fingerprints, notifications))
    return planned


async def deliver(
    http: aiohttp.ClientSession, url: str, note: Notification, gate: asyncio.Semaphore, tally: Tally
) -> dict[str, Any] | None:
    """Send one notification until it is taken (200) or given up (4xx, or retried too long)."""
    first = time.perf_counter()
    attempt = 0
    while True:
        async with gate:
            began = time.perf_counter()
            try:
                async with http.post(url, data=note.body) as response:
                    text = await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as error:
                status, text = "no answer", repr(error).encode()
            tally.answer_seconds.append(time.perf_counter() - began)
        tally.statuses[status] += 1
        if status == "200":
            answer: dict[str, Any] = json.loads(text)
            return answer
        told = tally.examples.setdefault(status, [])
        if len(told) < 3:
            told.append(text[:300].decode(errors="replace"))
        retry = status == "no answer" or status.startswith("5")
        if not retry or time.perf_counter() - first > GIVE_UP_SECONDS:
            tally.lost.append(f"group {note.group}: {status} {text[:200]!r}")
            return None
        tally.retries += 1
        await asyncio.sleep(RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)])
        attempt += 1


async def send_group(
    http: aiohttp.ClientSession, url: str, group: Group, start: float, gate: asyncio.Semaphore, tally: Tally
) -> None:
    """One aggregation group: its notifications in order, each when due and not before the last was answered."""
    for note in group.notifications:
        delay = start + note.at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        answer = await deliver(http, url, note, gate, tally)
        if answer is not None:
            group.answers.append(answer)


async def team_admin(world: World) -> Any:
    admin = world.new_user("stormadmin", in_team=False)
    world.standin.add_team_member(world.team_id, admin.id, roles="team_user team_admin")
    world.standin.add_channel_member(world.town_square["id"], admin.id)
    return admin


async def person_incident(world: World) -> tuple[str, dict[str, Any]]:
    """An incident a person started (a playbook of 20 steps), and its channel, once it exists."""
    api = world.api(world.alice)
    book = await world.create_playbook(world.alice, "Storm bystander", steps=[f"Step {n}" for n in range(20)])
    started = await api.post(
        "/api/v1/incidents", json={"team_id": world.team_id, "name": "Bystander", "playbook_id": book["id"]}
    )
    assert started.status_code == 201, started.text
    incident_id = str(started.json()["id"])

    async def record() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
        return body

    ready = await eventually(record, lambda r: r["channel_id"] is not None and len(r["member_ids"]) >= 1)
    channel = world.standin.get_channel(str(ready["channel_id"]))
    assert channel is not None
    return incident_id, channel


class Probe:
    """`/incident check N` typed again and again on a person's incident, each on a new connection."""

    def __init__(self, world: World, channel: dict[str, Any]) -> None:
        self.world = world
        self.channel = channel
        self.samples: dict[str, list[float]] = {}
        self.phase = "quiet"
        self.pending = 0
        self.failed: list[str] = []
        self.stopped = asyncio.Event()
        self._n = 0

    async def once(self, http: aiohttp.ClientSession) -> None:
        world, n = self.world, self._n
        self._n += 1
        form = slash_form(world, world.alice, f"check {n % 20 + 1}", channel=self.channel, trigger_id=f"storm-{n}")
        phase = self.phase
        began = time.perf_counter()
        try:
            async with http.post("/mattermost/slash", data=form) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            self.failed.append(f"no answer: {error!r}")
            return
        self.samples.setdefault(phase, []).append(time.perf_counter() - began)
        if response.status != 200:
            self.failed.append(f"{response.status} {body[:200]!r}")
        elif json.loads(body).get("text") == RECEIVED_HERE:
            self.pending += 1

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=self.world.stack.api_url,
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def quietly(self, rounds: int) -> None:
        async with self.client() as http:
            for _ in range(rounds):
                await self.once(http)

    async def run(self) -> None:
        async with self.client() as http:
            while not self.stopped.is_set():
                await self.once(http)
                await asyncio.sleep(PROBE_PAUSE)


def alerts_firing(state: IncidentState) -> Counter[str]:
    return Counter(str(e.details["fingerprint"]) for e in state.timeline if e.type == EventType.ALERT_FIRING)


async def incident_state(world: World, incident_id: str) -> IncidentState:
    handle = world.stack.temporal.get_workflow_handle(incident_workflow_id(incident_id))
    state: IncidentState = await handle.query(IncidentWorkflow.get_state)
    return state


def settled(state: IncidentState, expected: list[str]) -> bool:
    """Every alert recorded, the channel made, and every post and edit carried out."""
    return state.channel_id is not None and not state.outbox and len(alerts_firing(state)) >= len(expected)


async def storm(world: World, alerts: int = 10_000, groups: int = 100, seconds: float = 60) -> dict[str, Any]:
    stack = world.stack
    admin = await team_admin(world)
    book = await world.create_playbook(admin, "Node disks", steps=["Find the full disks", "Free space", "Confirm"])
    made = await world.api(admin).post(
        "/api/v1/integrations",
        json={"team_id": world.team_id, "kind": "alertmanager", "name": "Storm", "playbook_id": book["id"]},
    )
    assert made.status_code == 201, made.text
    integration = made.json()
    bystanders = make_world(stack)
    _, channel = await person_incident(bystanders)
    probe = Probe(bystanders, channel)
    await probe.quietly(50)  # the same probe before the storm, on the same incident

    planned = plan(alerts, groups, seconds, datetime.now(UTC))
    tally = Tally()
    gate = asyncio.Semaphore(IN_FLIGHT)
    headers = {"Authorization": f"Bearer {integration['token']}", "Content-Type": "application/json"}
    probe.phase = "storm"
    probing = asyncio.create_task(probe.run())
    async with aiohttp.ClientSession(
        headers=headers,
        connector=aiohttp.TCPConnector(limit=IN_FLIGHT),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as http:
        start = time.perf_counter()
        await asyncio.gather(*(send_group(http, integration["url"], g, start, gate, tally) for g in planned))
        sent = time.perf_counter() - start

    # Settling: every incident has its alerts, its channel and its posts.
    probe.phase = "settling"
    named = {g.n: {str(a["incident_id"]) for a in g.answers} for g in planned}
    incident_ids = sorted({i for ids in named.values() for i in ids})
    expected = {g.n: g.fingerprints for g in planned}
    group_of = {i: g for g, ids in named.items() for i in ids}
    states: dict[str, IncidentState] = {}
    unsettled = set(incident_ids)
    settle_deadline = time.perf_counter() + 600
    while unsettled and time.perf_counter() < settle_deadline:
        for incident_id in sorted(unsettled):
            states[incident_id] = await incident_state(world, incident_id)
            if settled(states[incident_id], expected[group_of[incident_id]]):
                unsettled.discard(incident_id)
        if unsettled:
            await asyncio.sleep(1.0)
    settled_after = time.perf_counter() - start
    probe.stopped.set()
    await probing

    # Counting, from Temporal.
    query = f"WorkflowType = 'IncidentWorkflow' AND IncidentTeamId = '{world.team_id}'"
    with contextlib.suppress(AssertionError):  # visibility lags a little behind; a short count is reported
        await eventually(
            lambda: stack.temporal.count_workflows(query), lambda c: c.count >= len(incident_ids), timeout=30
        )
    await asyncio.sleep(2)  # an extra incident would be visible by now too
    counted = await stack.temporal.count_workflows(query)
    problems: list[str] = []
    recorded_once = missing = repeated = extra = 0
    for g in planned:
        if len(named[g.n]) != 1:
            problems.append(f"group {g.n}: answers named {len(named[g.n])} incidents {sorted(named[g.n])[:3]}")
    for incident_id in incident_ids:
        state = states.get(incident_id) or await incident_state(world, incident_id)
        fingerprints = expected[group_of[incident_id]]
        seen = alerts_firing(state)
        recorded_once += sum(1 for f in fingerprints if seen[f] == 1)
        missing += sum(1 for f in fingerprints if seen[f] == 0)
        repeated += sum(1 for f in fingerprints if seen[f] > 1)
        extra += sum(n for f, n in seen.items() if f not in set(fingerprints))
        if state.channel_id is None or state.outbox:
            unsettled_note = f"channel {state.channel_id}, {len(state.outbox)} effects pending"
            problems.append(f"incident {incident_id}: not settled ({unsettled_note})")
    if counted.count != groups:
        problems.append(f"{counted.count} incident workflows in the team for {groups} groups")
    if len(incident_ids) != groups:
        problems.append(f"the answers named {len(incident_ids)} incidents for {groups} groups")
    if recorded_once != alerts:
        problems.append(
            f"{recorded_once} of {alerts} alerts recorded once ({missing} missing, {repeated} more than once)"
        )
    if extra:
        problems.append(f"{extra} alert_firing events for alerts not sent")
    if tally.lost:
        problems.append(f"{len(tally.lost)} notifications lost: {tally.lost[:3]}")
    if probe.failed:
        problems.append(f"{len(probe.failed)} slash commands failed during the storm: {probe.failed[:3]}")
    answers = {
        "200": tally.statuses["200"],
        "503": tally.statuses["503"],
        "other": sum(n for s, n in tally.statuses.items() if s not in ("200", "503")),
    }
    opened = sum(1 for g in planned for a in g.answers if a.get("opened"))
    await world.close()
    await bystanders.close()
    return {
        "alert_storm": {
            "alerts": alerts,
            "groups": groups,
            "seconds": seconds,
            "notifications": sum(len(g.notifications) for g in planned),
            "answers": answers,
            "statuses": dict(sorted(tally.statuses.items())),
            "answers_told": tally.examples,
            "retries": tally.retries,
            "lost_notifications": len(tally.lost),
            "answers_opened": opened,
            "incidents_named": len(incident_ids),
            "incidents_counted": counted.count,
            "alerts_recorded_once": recorded_once,
            "alerts_missing": missing,
            "alerts_repeated": repeated,
            "send_seconds": round(sent, 1),
            "settle_seconds": round(settled_after, 1),
            "intake_answer": summary(tally.answer_seconds),
            "slash_check_before": summary(probe.samples.get("quiet", [])),
            "slash_check_storm": summary(probe.samples.get("storm", [])),
            "slash_check_settling": summary(probe.samples.get("settling", [])),
            "slash_pending_replies": probe.pending,
            "problems": problems,
        }
    }


# During the storm, a person's `/incident check` p50 may be at most this many times its quiet p50.
SLASH_TARGET = 1.5


def verdicts(results: dict[str, Any]) -> list[str]:
    figures = results.get("alert_storm")
    if figures is None:
        return []
    lines = []
    if figures["problems"]:
        lines.append("alert_storm: WRONG: " + "; ".join(figures["problems"]))
    else:
        lines.append(
            f"alert_storm: {figures['incidents_counted']} incidents for {figures['groups']} groups, "
            f"{figures['alerts_recorded_once']} alerts each recorded once OK "
            f"(sent in {figures['send_seconds']} s, settled after {figures['settle_seconds']} s; "
            f"answers {figures['answers']})"
        )
    during = figures["slash_check_storm"]
    quiet = results.get("outside_slash_check") or figures["slash_check_before"]
    if during.get("n"):
        ratio = during["p50_ms"] / quiet["p50_ms"]
        figures["slash_ratio_to_quiet"] = round(ratio, 2)
        lines.append(
            f"alert_storm slash check: p50 {during['p50_ms']} ms, p95 {during['p95_ms']} ms during the storm "
            f"= {ratio:.2f}x the quiet outside_slash_check (p50 {quiet['p50_ms']} ms, p95 {quiet['p95_ms']} ms), "
            f"target <= {SLASH_TARGET:g}x {'OK' if ratio <= SLASH_TARGET else 'MISSED'}"
        )
    return lines


def wrong(results: dict[str, Any]) -> list[str]:
    """What the storm counted wrong (incidents, alerts, lost notifications): these fail the run."""
    figures = results.get("alert_storm")
    return list(figures["problems"]) if figures else []
