"""What a command says and accepts never differs between faces, word for word.

For every command in the command table, a command its rules or its model refuse is sent
through each face the command has: typed as `/incident` in the incident's channel (when it
has a slash face), through REST, and through the backstage's form for it. Each face must
tell the person the same sentence, and nothing may change. A command added to the table
without a case here fails `test_every_command_in_the_table_has_a_case`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from models.command_table import COMMANDS
from models.incident import NOTE_MAX, STATUS_MESSAGE_MAX
from models.playbook import ITEM_TITLE_MAX
from tests.harness import World
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import Started, command, outage, settled, start_incident


@dataclass(frozen=True)
class Case:
    """One refused command: REST's method, path (under the incident) and body; the words typed
    after `/incident` (None: no slash face); the backstage form's fields; and in which of the
    two incidents it is sent (an ongoing one, or one that has ended)."""

    method: Literal["POST", "PUT", "DELETE"]
    path: str
    body: dict[str, Any] | None
    form: dict[str, str]
    typed: str | None = None
    incident: Literal["ongoing", "ended"] = "ongoing"
    # The page's form that sends it: a refusal of what was typed is shown beside it.
    form_id: str = "contract"


ITEM_9 = "/checklists/0/items/8"  # stage 1 has two items: there is no ninth
LONG_TITLE = "t" * (ITEM_TITLE_MAX + 1)
LONG_MESSAGE = "x" * (STATUS_MESSAGE_MAX + 1)
LONG_NOTE = "n" * (NOTE_MAX + 1)
EIGHT_DAYS = 8 * 86400


@dataclass(frozen=True)
class Notes:
    """What the ongoing incident has before the commands are sent: a note of Alice's, a note of
    hers she deleted, and its first event starred as a key moment."""

    kept: str = "e1"
    deleted: str = "e1"
    starred: str = "e1"


def cases(world: World, notes: Notes = Notes()) -> dict[str, Case]:
    alice = world.alice
    return {
        "end_incident": Case("POST", "/end", None, {}, "end", incident="ended"),
        "restart_incident": Case("POST", "/restart", None, {}, "restart"),
        "set_item_state": Case(
            "PUT", f"{ITEM_9}/state", {"state": "done"}, {"stage": "0", "item": "8", "state": "done"}, "check 1 9"
        ),
        "add_item": Case(
            "POST",
            "/checklists/0/items",
            {"title": LONG_TITLE},
            {"stage": "0", "title": LONG_TITLE},
            f"checkadd 1 {LONG_TITLE}",
            form_id="add-0",
        ),
        "remove_item": Case("DELETE", ITEM_9, None, {"stage": "0", "item": "8"}, "checkremove 1 9"),
        "assign_item": Case(
            "PUT",
            f"{ITEM_9}/assignee",
            {"assignee_id": None},
            {"stage": "0", "item": "8", "assignee_id": ""},
            "assign 1 9 @none",
        ),
        "edit_item": Case("PUT", ITEM_9, {"title": "Call"}, {"stage": "0", "item": "8", "title": "Call"}),
        "set_item_due": Case(
            "PUT", f"{ITEM_9}/due", {"due": "30m"}, {"stage": "0", "item": "8", "due": "30m"}, "due 1 9 30m"
        ),
        "move_item": Case(
            "POST",
            "/checklists/0/items/0/move",
            {"to_position": 5},
            {"stage": "0", "item": "0", "to_position": "5"},
        ),
        "run_item_command": Case("POST", "/checklists/0/items/0/run", None, {"stage": "0", "item": "0"}),
        "change_stage": Case("POST", "/stage", {"direction": "prev"}, {"direction": "prev"}, "stage prev"),
        "change_commander": Case(
            "POST", "/commander", {"user_id": alice.id}, {"user_id": alice.id}, f"commander @{alice.username}"
        ),
        "invite_members": Case(
            "POST", "/members", {"user_ids": [alice.id]}, {"user_ids": alice.id}, f"add @{alice.username}"
        ),
        "announce": Case(
            "POST",
            "/announcements",
            {"channel_ids": [world.town_square["id"]]},
            {"channel_ids": world.town_square["id"]},
            "announce ~town-square",
            incident="ended",
        ),
        "post_status_update": Case(
            "POST",
            "/status-updates",
            {"message": LONG_MESSAGE},
            {"message": LONG_MESSAGE},
            f"update {LONG_MESSAGE}",
            form_id="post-update",
        ),
        "set_reminder": Case(
            "POST",
            "/reminder",
            {"seconds": EIGHT_DAYS},
            {"seconds": str(EIGHT_DAYS)},
            "reminder 8d",
            form_id="reminder",
        ),
        "snooze_reminder": Case(
            "POST", "/reminder/snooze", {"seconds": EIGHT_DAYS}, {"seconds": str(EIGHT_DAYS)}, form_id="snooze"
        ),
        "add_note": Case(
            "POST", "/notes", {"text": LONG_NOTE}, {"text": LONG_NOTE}, f"note {LONG_NOTE}", form_id="note"
        ),
        "edit_note": Case(
            "PUT",
            f"/notes/{notes.kept}",
            {"text": LONG_NOTE},
            {"note_id": notes.kept, "text": LONG_NOTE},
            f"noteedit {notes.kept} {LONG_NOTE}",
            form_id=f"edit-{notes.kept}",
        ),
        "delete_note": Case(
            "DELETE",
            f"/notes/{notes.deleted}",
            None,
            {"note_id": notes.deleted},
            f"notedelete {notes.deleted}",
            form_id=f"delete-{notes.kept}",
        ),
        "star_event": Case(
            "POST",
            f"/timeline/{notes.starred}/star",
            None,
            {"event_id": notes.starred},
            f"star {notes.starred}",
            form_id=f"unstar-{notes.starred}",
        ),
        "unstar_event": Case(
            "DELETE",
            "/timeline/e1/star",
            None,
            {"event_id": "e1"},
            "unstar e1",
            incident="ended",
            form_id="star-e1",
        ),
        "page": Case(
            "POST", "/pages", {"user_id": alice.id}, {"user_id": alice.id}, f"page @{alice.username}", form_id="page"
        ),
        "set_severity": Case(
            "POST", "/severity", {"severity": "sev9"}, {"severity": "sev9"}, "severity sev9", form_id="severity-form"
        ),
        "set_field": Case(
            "PUT",
            "/fields/region",
            {"value": "mars"},
            {"name": "region", "value": "mars"},
            "field region mars",
            form_id="field-form-region",
        ),
        # Neither incident's playbook has a retrospective.
        "save_retrospective": Case(
            "PUT", "/retrospective", {"text": "Ours", "version": 1}, {"text": "Ours", "version": "1"}
        ),
        "publish_retrospective": Case("POST", "/retrospective/publish", None, {}, "retropublish", incident="ended"),
        "decline_retrospective": Case(
            "POST",
            "/retrospective/decline",
            {"reason": "A duplicate"},
            {"reason": "A duplicate"},
            "retrodecline A duplicate",
        ),
        "acknowledge_page": Case("POST", "/pages/nopage/acknowledge", None, {"page_id": "nopage"}, incident="ended"),
        "decline_page": Case("POST", "/pages/nopage/decline", None, {"page_id": "nopage"}, incident="ended"),
    }


def test_every_command_in_the_table_has_a_case() -> None:
    class Named:
        id = username = "x"

    class Anyone:
        alice = Named()
        town_square = {"id": "y"}

    assert set(cases(Anyone())) == {spec.name for spec in COMMANDS}  # type: ignore[arg-type]


async def noted(world: World, incident: Started) -> Notes:
    """Alice notes twice in `incident`, deletes the second note, and stars its first event."""
    base = f"/api/v1/incidents/{incident.id}"
    ids = []
    async with world.api(world.alice) as api:
        for text_ in ("Kept", "Deleted"):
            answer = await api.post(f"{base}/notes", json={"text": text_})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["message"].split()[1])
        assert (await api.delete(f"{base}/notes/{ids[1]}")).status_code == 200
        assert (await api.post(f"{base}/timeline/e1/star")).status_code == 200
    return Notes(kept=ids[0], deleted=ids[1], starred="e1")


async def backstage_says(page: httpx.AsyncClient, incident_id: str, name: str, case: Case) -> str:
    """What the backstage shows after its form for `name` is sent: the page it leads to (with
    its notice), or the page itself when the refusal is shown beside the form."""
    url = f"/backstage/incidents/{incident_id}"
    shown = await page.get(url)
    data = {"csrf_token": csrf(shown), "request_key": f"contract-{name}", "form": case.form_id, **case.form}
    answer = await page.post(f"{url}/commands/{name}", data=data)
    assert answer.status_code in (303, 409, 422), (name, answer.status_code)
    if answer.status_code == 303:
        return text(await page.get(answer.headers["location"]))
    return text(answer)


async def test_every_command_is_refused_in_the_same_words_by_every_face(world: World) -> None:
    # A reminder, so that the page offers to snooze it.
    # And a custom field, so that the page offers to set it.
    region = {"name": "region", "type": "select", "options": ["eu-west", "us-east"]}
    ongoing = await outage(world, reminder_timer_default_seconds=3600, fields=[region])
    ended: Started = await start_incident(world, world.alice, "Database outage", "Old outage")
    async with world.api(world.alice) as api:
        assert (await api.post(f"/api/v1/incidents/{ended.id}/end")).status_code == 200
    incidents = {"ongoing": ongoing, "ended": ended}
    notes = await noted(world, ongoing)
    before = {kind: await settled(world, incident.id) for kind, incident in incidents.items()}
    page = await sign_in(world, world.alice)
    async with world.api(world.alice) as api:
        for spec in COMMANDS:
            case = cases(world, notes)[spec.name]
            incident = incidents[case.incident]
            answer = await api.request(case.method, f"/api/v1/incidents/{incident.id}{case.path}", json=case.body)
            assert answer.status_code in (409, 422), (spec.name, answer.text)
            said = answer.json()["message"]
            assert said, spec.name
            if spec.slash is not None:
                assert case.typed is not None
                assert case.typed.split()[0] == spec.slash.name
                typed = await command(world, world.alice, case.typed, incident)
                assert typed.split("\nUsage:")[0] == said, spec.name
            else:
                assert case.typed is None, f"{spec.name} has no slash face"
            shown = await backstage_says(page, incident.id, spec.name, case)
            assert said in shown, (spec.name, said, shown[:600])
    for kind, incident in incidents.items():
        after = await settled(world, incident.id)
        assert after.timeline == before[kind].timeline, f"a refused command changed the {kind} incident"
