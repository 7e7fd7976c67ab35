"""The playbook editor's *Try against past incidents*: the draft, as edited, tried against the
playbook's ended incidents and reported above the editor, without saving (`service.dry_runs`)."""

from __future__ import annotations

from typing import Any

from tests.harness import World, eventually
from tests.integration.backstage_helpers import csrf, sign_in, text
from tests.integration.slash_helpers import create_playbook
from tests.integration.test_playbook_dry_run import ended_incident, spec_of


def draft(world: World, title: str = "Dry run outage") -> dict[str, str]:
    """The editor's form with Mitigate left out: Triage (its two steps) and Verify."""
    return {
        "version": "1",
        "title": title,
        "members": world.alice.username,
        "checklists[0].title": "Triage",
        "checklists[0].items[0].title": "Page the DBA",
        "checklists[0].items[1].title": "Read the logs",
        "checklists[1].title": "Verify",
    }


async def test_the_editor_tries_the_draft_against_past_incidents_without_saving(world: World) -> None:
    playbook, incident = await ended_incident(world)
    url = f"/api/v1/playbooks/{playbook['id']}/dry-run"

    async def replayed() -> dict[str, Any]:
        answer = await world.api(world.alice).post(url, json={"spec": spec_of(playbook), "last": 5})
        body: dict[str, Any] = answer.json()
        return body

    await eventually(replayed, lambda body: len(body.get("incidents", [])) == 1, what="the ended incident listed")

    page = await sign_in(world, world.alice)
    editor = await page.get(f"/backstage/playbooks/{playbook['id']}")
    assert editor.status_code == 200
    assert 'id="dry-run"' in editor.text
    assert f'formaction="/backstage/playbooks/{playbook["id"]}/dry-run"' in editor.text
    assert 'id="dry-run-report"' not in editor.text

    tried = await page.post(
        f"/backstage/playbooks/{playbook['id']}/dry-run",
        data=draft(world) | {"csrf_token": csrf(editor), "dry_run_last": "5"},
    )
    assert tried.status_code == 200, text(tried)
    shown = text(tried)
    assert "This draft against the last 5 ended incident(s)" in shown
    assert "1 would have gone otherwise, 1 command(s) would have been refused" in shown
    assert f'href="/backstage/incidents/{incident.id}"' in tried.text
    assert "The proposed playbook has no stage 'Mitigate'." in shown
    assert "stage 'Mitigate', step 'Fail over'" in shown
    assert f"@{world.alice.username}" in shown
    # The report comes before the editor, which keeps the draft as it was.
    assert tried.text.index('id="dry-run-report"') < tried.text.index('class="playbook-form"')
    assert 'value="Verify"' in tried.text
    assert 'value="Mitigate"' not in tried.text
    # Nothing was saved.
    now = (await world.api(world.alice).get(f"/api/v1/playbooks/{playbook['id']}")).json()
    assert now["version"] == playbook["version"]
    assert [stage["title"] for stage in now["checklists"]] == ["Triage", "Mitigate", "Verify"]

    # The playbook as it is: no difference.
    same = {
        **draft(world),
        "checklists[1].title": "Mitigate",
        "checklists[1].items[0].title": "Fail over",
        "checklists[2].title": "Verify",
    }
    unchanged = await page.post(
        f"/backstage/playbooks/{playbook['id']}/dry-run", data=same | {"csrf_token": csrf(editor)}
    )
    assert unchanged.status_code == 200, text(unchanged)
    assert "0 would have gone otherwise, 0 command(s) would have been refused" in text(unchanged)
    assert "no difference" in text(unchanged)

    # A draft the editor would refuse is not tried: its errors are shown beside its inputs.
    untitled = await page.post(
        f"/backstage/playbooks/{playbook['id']}/dry-run", data=draft(world, title="") | {"csrf_token": csrf(editor)}
    )
    assert untitled.status_code == 422
    assert "The draft was not tried" in text(untitled)
    assert 'id="dry-run-report"' not in untitled.text


async def test_someone_who_may_not_edit_the_playbook_gets_not_found(world: World) -> None:
    playbook = await create_playbook(world, world.alice, title="Dry run outage")
    page = await sign_in(world, world.bob)
    listing = await page.get(f"/backstage/teams/{world.team_id}/incidents")
    refused = await page.post(
        f"/backstage/playbooks/{playbook['id']}/dry-run", data=draft(world) | {"csrf_token": csrf(listing)}
    )
    assert refused.status_code == 404
    assert "Try against" not in refused.text
