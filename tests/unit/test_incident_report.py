"""The incident report (the pure builder, its markdown, and its PDF), without Temporal.

The PDF's text is read back as a reader reads it (`tests.pdf_text`: each drawn character through
its font's ToUnicode map), with the glyph of the embedded font that draws it."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from fpdf import FPDF
from fpdf.fonts import TTFFont
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
from models.incident_report import IncidentReport, ReportRetrospective, build_report, cell, table, to_markdown
from models.mentions import WORD_JOINER
from models.retrospective import RetrospectiveStatus
from service.incident_reports import (
    FONT_DIR,
    FONT_FILES,
    PDF_CELL_LINES,
    PDF_CELL_MAX,
    _pdf_text,
    render,
    to_pdf,
)
from tests.pdf_text import outline_lengths, read_pdf
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
        note = AddNote(actor=actor(), text=f"Note {n} | ünïcode Łódź 日本 " + "word " * (n % 40))
        made.add_note(note, T0 + timedelta(seconds=n))
    made.add_note(AddNote(actor=actor(), text="x" * 4000), T0 + timedelta(hours=1))
    report = build_report(made.state, T0 + timedelta(hours=2))
    pdf = to_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type /Page\b(?!s)", pdf))
    assert pages > 5
    read = read_pdf(pdf)
    assert read.blank == {" "}
    text = read.pages
    assert len(text) == pages
    assert all(page.endswith(f"Incident report: DB down - page {n}/{pages}") for n, page in enumerate(text, 1))
    lines = "\n".join(text).splitlines()
    # Every note is there, its Latin-1 and Polish as written, the Japanese the font lacks as `�`.
    flowing = " ".join(lines) + " "
    for n in range(400):
        assert f"@alice noted: Note {n} | ünïcode Łódź � " + "word " * min(n % 40, 3) in flowing, n
    # The 4,000-character word is cut to the cell's 1,200, and wrapped at any character.
    first = lines.index(next(line for line in lines if line.startswith("@alice noted: xxx")))
    cut = lines[first : first + 1] + list(itertools.takewhile(lambda line: not line.strip("x…"), lines[first + 1 :]))
    assert len(cut) > 1
    assert "".join(cut) == "@alice noted: " + "x" * (PDF_CELL_MAX - 1 - len("@alice noted: ")) + "…"
    rendered = render(report, "pdf")
    assert (rendered.media_type, rendered.filename) == ("application/pdf", "incident-inc1-report.pdf")
    assert render(report, "md").media_type == "text/markdown; charset=utf-8"
    assert render(report, "json").body.startswith(b"{")


def test_the_pdf_shows_text_beyond_latin_1() -> None:
    name = "Ausfall Δ Łódź — 5 €"
    ongoing = build_report(incident().state, T0 + timedelta(hours=1))
    report = ongoing.model_copy(
        update={"name": name, "description": "Tokyo 東京 🔥🔥 says {nb}\tin Ελληνικά, кириллица, עברית\x07."}
    )
    read = read_pdf(to_pdf(report))
    assert read.blank == {" "}  # every other character is drawn by its own glyph, none as .notdef
    pages = read.pages
    lines = pages[0].splitlines()
    assert lines[0] == f"Incident report: {name}"
    # What the font lacks is one `�` a run, control characters too; the page alias is left alone.
    assert lines[1] == "Tokyo � � says {nb} in Ελληνικά, кириллица, עברית�."
    assert lines[lines.index("Ended") + 1] == "—"  # not yet: once shown as `?`
    assert [page.splitlines()[-1] for page in pages] == [
        f"Incident report: {name} - page {n}/{len(pages)}" for n in range(1, len(pages) + 1)
    ]


def the_fonts_characters() -> tuple[set[str], set[str]]:
    """The characters both of the report's faces (regular and bold) have a glyph for, but control
    characters; and those of them either face draws with no outline (spaces, joiners, blanks)."""
    pdf = FPDF()
    for style, name in FONT_FILES.items():
        pdf.add_font("Font", style, FONT_DIR / name)
    faces = [font for font in pdf.fonts.values() if isinstance(font, TTFFont)]
    both = set.intersection(*(set(face.cmap) for face in faces))
    shown = {code for code in both if code >= 0x20 and not 0x7F <= code < 0xA0}
    blank = set()
    for face in faces:
        lengths = outline_lengths(face.ttffile.read_bytes())
        blank |= {code for code in shown if not lengths[face.glyph_ids[code]]}
    return {chr(code) for code in shown}, {chr(code) for code in blank}


SHOWN, BLANK = the_fonts_characters()


# Lone surrogates too (no JSON the API reads has one, but the text may come from anywhere), and
# private-use and unassigned characters.
ODD_TEXT = st.lists(
    st.integers(0xD800, 0xDFFF).map(chr) | st.characters(categories=["Co", "Cn", "Cc"]) | st.characters()
).map("".join)


@settings(max_examples=300)
@given(st.text() | ODD_TEXT, st.integers(min_value=2, max_value=5000))
def test_the_pdf_s_text_is_only_what_the_font_shows(text: str, limit: int) -> None:
    shown = _pdf_text(text, limit)
    assert len(shown) <= limit
    assert set(shown) <= SHOWN | {"\n"}
    assert WORD_JOINER not in shown
    if set(text) <= SHOWN - {WORD_JOINER, "*"} and len(text) <= limit:
        assert shown == text


# Any text people may write, and the kinds that trouble a PDF most: control and format characters
# (bidi marks, joiners, line and paragraph separators), right-to-left scripts, what the font has no
# glyph for (emoji, CJK), long words with no space to break at, and many lines.
ANY_TEXT = st.one_of(
    st.text(),
    st.lists(st.text(max_size=8), min_size=40, max_size=300).map("\n".join),
    st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn"]), max_size=50),
    st.text(st.characters(min_codepoint=0x0590, max_codepoint=0x08FF), max_size=200),
    st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF) | st.sampled_from("日本語東京"), max_size=50),
    st.text(st.characters(categories=["L", "N", "S", "P"]), min_size=300, max_size=5000),
)


def with_texts(report: IncidentReport, texts: list[str]) -> IncidentReport:
    """`report` with people's words in every place the PDF shows them."""
    stage = report.checklist[0]
    items = [stage.items[0].model_copy(update={"title": texts[4], "assignee": texts[2]})]
    retrospective = ReportRetrospective(
        status=RetrospectiveStatus.DECLINED,
        version=1,
        due_at=T0,
        concluded_at=T0,
        concluded_by=texts[2],
        reason=texts[6],
        text=f"# {texts[0]}\n{texts[5]}\n## {texts[6]}\n{texts[1]}",
    )
    return report.model_copy(
        update={
            "name": texts[0],
            "description": texts[1],
            "commander": texts[2],
            "severity": texts[3],
            "status_updates": [report.status_updates[0].model_copy(update={"message": texts[3]})],
            "checklist": [stage.model_copy(update={"title": texts[5], "items": items})],
            "timeline": [event.model_copy(update={"what": texts[n % 7]}) for n, event in enumerate(report.timeline)],
            "retrospective": retrospective,
        }
    )


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def fpdf_warnings() -> Iterator[list[logging.LogRecord]]:
    """What fpdf2 warns of meanwhile (such as "Font ... is missing the following glyphs")."""
    handler, logger = Records(), logging.getLogger("fpdf")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@settings(max_examples=25, deadline=None)
@given(st.lists(ANY_TEXT, min_size=7, max_size=7))
def test_any_text_makes_a_pdf_whose_every_character_is_drawn(texts: list[str]) -> None:
    report = with_texts(build_report(ended_incident().state, T0 + timedelta(hours=1)), texts)
    with fpdf_warnings() as warned:
        pdf = to_pdf(report)
    assert [record.getMessage() for record in warned] == []
    assert pdf.startswith(b"%PDF-")
    read = read_pdf(pdf)  # fails on a character drawn as .notdef
    assert set("".join(read.pages)) <= SHOWN | {"\n"}
    assert read.blank <= BLANK  # drawn by its own glyph (none lost to another)
    assert read.pages[0].startswith("Incident report:")


def test_a_cell_of_many_lines_is_cut_to_fit_on_a_page() -> None:
    """fpdf2 refuses a table row taller than a page: a cell shows its first `PDF_CELL_LINES` lines."""
    made = incident()
    made.add_note(AddNote(actor=actor(), text="".join(f"line {n}\n" for n in range(80))), T0 + timedelta(seconds=1))
    report = build_report(made.state, T0 + timedelta(hours=1))
    narrow = report.model_copy(update={"timeline": [e.model_copy(update={"id": "Ω" * 1100}) for e in report.timeline]})
    for shown in (report, narrow):
        lines = "\n".join(read_pdf(to_pdf(shown)).pages).splitlines()
        first = lines.index("@alice noted: line 0")
        assert lines[first + 1 : first + PDF_CELL_LINES] == [f"line {n}" for n in range(1, PDF_CELL_LINES - 1)] + ["…"]
        assert f"line {PDF_CELL_LINES - 1}" not in lines
