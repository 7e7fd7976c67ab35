"""The incident report (the pure builder, its markdown, and its PDF), without Temporal."""

from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from models.incident import EventType, IncidentStatus, ItemState
from models.incident_commands import (
    AddNote,
    AssignItem,
    EndIncident,
    PostStatusUpdate,
    SetItemState,
    StarEvent,
)
from models.incident_report import build_report, cell, table, to_markdown
from service.incident_reports import render, to_pdf
from tests.unit.test_incident_rules import T0, actor, fact, incident
from workflows.incident_rules import Incident


def table_cells(row: str) -> list[str]:
    """The cells of a markdown table row as a GFM reader splits them: at every pipe not escaped
    by a backslash (an escaped backslash escapes nothing)."""
    assert row.startswith("| ")
    assert row.endswith(" |")
    cells, current, escaped = [], "", False
    for char in row[1:-1]:
        if char == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += char
        escaped = char == "\\" and not escaped
    cells.append(current)
    return cells


@settings(max_examples=300)
@given(st.lists(st.text(), min_size=1, max_size=4))
def test_any_text_in_a_cell_keeps_the_tables_columns(texts: list[str]) -> None:
    rows = table(["a"] * len(texts), [texts])
    for row in (rows[0], rows[2]):
        assert "\n" not in row
        assert "\r" not in row
        assert len(row.splitlines()) == 1
        assert len(table_cells(row)) == len(texts)


@given(st.text())
def test_no_mention_in_a_cell_can_notify(text: str) -> None:
    shown = cell(text)
    assert not re.search(r"@(channel|here|all)\b", shown)
    assert "<" not in shown


def ended_incident() -> Incident:
    made = incident()
    t = T0
    made.assign_item(AssignItem(actor=actor(), stage=0, item=0, assignee=fact()), t + timedelta(minutes=1))
    made.set_item_state(SetItemState(actor=actor(), stage=0, item=0, state="done"), t + timedelta(minutes=2))
    made.post_status_update(
        PostStatusUpdate(actor=actor(), message="Failing over | to the replica\n@channel"), t + timedelta(minutes=3)
    )
    made.add_note(AddNote(actor=actor(), text="Root cause: cert"), t + timedelta(minutes=4))
    made.star_event(StarEvent(actor=actor(), event_id=made.state.timeline[-1].id), t + timedelta(minutes=5))
    made.end(EndIncident(actor=actor()), t + timedelta(minutes=10))
    return made


def test_the_report_holds_the_incident_as_it_ended() -> None:
    made = ended_incident()
    report = build_report(made.state, T0 + timedelta(hours=1))
    assert report.status == IncidentStatus.ENDED
    assert report.ended_at == T0 + timedelta(minutes=10)
    assert report.duration_seconds == report.time_to_resolution_seconds == 600
    assert report.commander == "alice"
    first = report.participants[0]
    assert (first.username, first.roles) == ("alice", ["commander", "reporter", "member", "acted"])
    assert ("bob", ["assignee"]) in [(p.username, p.roles) for p in report.participants]
    assert [u.message for u in report.status_updates] == ["Failing over | to the replica\n@channel"]
    item = report.checklist[0].items[0]
    assert (item.state, item.assignee) == (ItemState.DONE, "bob")
    assert [e.type for e in report.key_moments] == [EventType.NOTE_ADDED]
    assert report.key_moments[0].key_moment
    assert [e.id for e in report.timeline] == [e.id for e in made.state.timeline]
    assert report.retrospective is None  # its playbook has none


def test_the_markdown_has_every_section_and_its_tables_hold() -> None:
    report = build_report(ended_incident().state, T0 + timedelta(hours=1))
    md = to_markdown(report)
    for heading in ("# Incident report: DB down", "## Participants", "## Status updates", "## Checklist",
                    "## Key moments", "## Timeline"):  # fmt: skip
        assert heading in md.splitlines(), heading
    assert "> Failing over | to the replica" in md
    assert "@channel" not in md
    for row in (line for line in md.splitlines() if line.startswith("| ")):
        header_columns = {2, 4, 5}
        assert len(table_cells(row)) in header_columns, row
    key = md.split("## Key moments")[1].split("## Timeline")[0]
    assert "noted: Root cause: cert" in key
    assert " ★ |" in key


def test_a_long_timeline_makes_a_pdf_of_many_pages() -> None:
    made = incident()
    for n in range(400):
        note = AddNote(actor=actor(), text=f"Note {n} | ünïcode 日本 " + "word " * (n % 40))
        made.add_note(note, T0 + timedelta(seconds=n))
    made.add_note(AddNote(actor=actor(), text="x" * 4000), T0 + timedelta(hours=1))
    report = build_report(made.state, T0 + timedelta(hours=2))
    pdf = to_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type /Page\b(?!s)", pdf))
    assert pages > 5
    rendered = render(report, "pdf")
    assert (rendered.media_type, rendered.filename) == ("application/pdf", "incident-inc1-report.pdf")
    assert render(report, "md").media_type == "text/markdown; charset=utf-8"
    assert render(report, "json").body.startswith(b"{")
