"""The incident report to share: `GET /api/v1/incidents/{id}/report?format=json|md|pdf` on the real
stack, for whoever may see the incident, and the backstage's *Download*."""

from __future__ import annotations

import re

from tests.harness import World
from tests.integration.backstage_helpers import sign_in
from tests.integration.slash_helpers import Started, command, create_playbook, settled, start_incident
from tests.pdf_text import read_pdf

# Beyond Latin-1: the PDF's font shows it (the core fonts showed `?`).
UNICODE = "Ausfall Δ Łódź — 5 €"


async def reported(world: World, *, public: bool) -> Started:
    """An incident (its name beyond Latin-1) with an update, a checked item, a note starred as a key
    moment, ended; and a long timeline (many notes) so the PDF runs over several pages."""
    title = "Public outage" if public else "Secret outage"
    stage = {"title": "Work", "items": [{"title": "Fail | over"}, {"title": "Write it up"}]}
    await create_playbook(world, world.alice, title, checklists=[stage], create_public_incident=public)
    incident = await start_incident(world, world.alice, title, f"{title} now: {UNICODE}")
    await command(world, world.alice, "update identified Replica lag | cause found\n@channel all good", incident)
    await command(world, world.alice, "check 1", incident)
    starred = await command(world, world.alice, "note The certificate had expired", incident)
    note_id = re.search(r"Note (e[0-9]+)", starred)
    assert note_id, starred
    await command(world, world.alice, f"star {note_id[1]}", incident)
    base = f"/api/v1/incidents/{incident.id}"
    async with world.api(world.alice) as api:
        for n in range(150):
            answer = await api.post(f"{base}/notes", json={"text": f"Step {n}: looked at dashboard {n} | again"})
            assert answer.status_code == 200, answer.text
        assert (await api.post(f"{base}/end")).status_code == 200
    await settled(world, incident.id)
    return incident


async def test_the_report_in_json_markdown_and_pdf(world: World) -> None:
    incident = await reported(world, public=False)
    url = f"/api/v1/incidents/{incident.id}/report"
    async with world.api(world.alice) as api:
        as_json = await api.get(url)
        as_md = await api.get(url, params={"format": "md"})
        as_pdf = await api.get(url, params={"format": "pdf"})
        wrong = await api.get(url, params={"format": "docx"})
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["content-type"] == "application/json"
    report = as_json.json()
    assert report["name"] == f"Secret outage now: {UNICODE}"
    assert report["status"] == "ended"
    assert report["commander"] == world.alice.username
    assert report["status_updates"][0]["message"] == "Replica lag | cause found\n@channel all good"
    assert report["checklist"][0]["items"][0]["state"] == "done"
    assert [e["what"].split(" noted: ")[1] for e in report["key_moments"]] == ["The certificate had expired"]
    assert len(report["timeline"]) > 150
    assert report["retrospective"] is None  # its playbook has none

    assert as_md.status_code == 200
    assert as_md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert as_md.headers["content-disposition"] == f'attachment; filename="incident-{incident.id}-report.md"'
    md = as_md.text
    assert md.startswith("# Incident report: Secret outage now")
    assert "| Fail \\| over | done |" in md
    assert "@channel" not in md
    key_moments = md.split("## Key moments")[1].split("## Timeline")[0]
    assert "noted: The certificate had expired" in key_moments
    assert "Step 149: looked at dashboard 149 \\| again" in md

    assert as_pdf.status_code == 200
    assert as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.content.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page\b(?!s)", as_pdf.content)) > 1
    pdf = read_pdf(as_pdf.content)  # the text as a reader reads it, each character by its own glyph
    assert pdf.blank == {" "}
    assert pdf.pages[0].startswith(f"Incident report: Secret outage now: {UNICODE}\n")
    assert pdf.pages[-1].endswith(
        f"Incident report: Secret outage now: {UNICODE} - page {len(pdf.pages)}/{len(pdf.pages)}"
    )
    lines = "\n".join(pdf.pages).splitlines()
    assert "Fail | over" in lines
    assert "@channel all good" in lines  # the update's second line
    assert "Step 149: looked at dashboard 149 | again" in " ".join(lines)

    assert wrong.status_code == 422


async def test_the_report_is_for_those_who_may_see_the_incident(world: World) -> None:
    private = await reported(world, public=False)
    public = await reported(world, public=True)
    async with world.api(world.carol) as api:  # in the team, not in the private incident's channel
        hidden = await api.get(f"/api/v1/incidents/{private.id}/report", params={"format": "pdf"})
        missing = await api.get("/api/v1/incidents/zzzzzzzzzz/report", params={"format": "pdf"})
        shown = await api.get(f"/api/v1/incidents/{public.id}/report", params={"format": "md"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert shown.status_code == 200
    async with world.api(world.mallory) as api:  # outside the team
        outsider = await api.get(f"/api/v1/incidents/{public.id}/report")
    assert outsider.status_code == 404


async def test_the_backstage_downloads_the_report(world: World) -> None:
    incident = await reported(world, public=False)
    page = await sign_in(world, world.alice)
    shown = await page.get(f"/backstage/incidents/{incident.id}")
    link = f"/backstage/incidents/{incident.id}/report?format=pdf"
    assert f'href="{link}" download>Download report (PDF)</a>' in shown.text
    downloaded = await page.get(link)
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "application/pdf"
    assert downloaded.headers["content-disposition"] == f'attachment; filename="incident-{incident.id}-report.pdf"'
    assert downloaded.content.startswith(b"%PDF-")
    md = await page.get(f"/backstage/incidents/{incident.id}/report?format=md")
    assert md.text.startswith(f"# Incident report: Secret outage now: {UNICODE}\n")
    assert read_pdf(downloaded.content).pages[0].startswith(f"Incident report: Secret outage now: {UNICODE}\n")
    unknown = await page.get(f"/backstage/incidents/{incident.id}/report?format=docx")
    assert unknown.status_code == 422
    assert "A report is pdf, md or json" in unknown.text
    carol = await sign_in(world, world.carol)
    assert (await carol.get(link)).status_code == 404
    # Carol learns nothing from a format she may not have either: the same answer as for anyone.
    assert (await carol.get(f"/backstage/incidents/{incident.id}/report?format=docx")).status_code == 422
