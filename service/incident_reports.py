"""The incident report to share, in the format asked for: JSON, markdown or PDF.

The report is one model (`models.incident_report.IncidentReport`), built from the incident's
state by a pure function, for whoever may see the incident (`incidents.load`: anyone else is
told it does not exist). Markdown is rendered by `models.incident_report.to_markdown`; the PDF
here, with fpdf2: pure Python (no system libraries), maintained, with tables whose headings
repeat on every page, wrapped cells and automatic page breaks.

The PDF's font is DejaVu Sans (regular and bold), shipped in `service/fonts/` with its licence
and embedded as the subset the report uses (fpdf2 subsets it: about 25 KB), so it shows Latin,
Greek, Cyrillic, Hebrew, Arabic, signs such as `—` and `€`, and the rest of the font's about
5,800 characters. A run of characters the font has no glyph for (CJK, emoji, control characters)
is shown as one `�`, where fpdf2 would leave a gap and log a warning; a line break stays one. The
text is not shaped (that needs HarfBuzz, `uharfbuzz`): right-to-left text is drawn left to right,
Arabic letters unjoined. The JSON and markdown have every character as written.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Literal

from fpdf import FPDF, FontFace
from fpdf.enums import MethodReturnValue, WrapMode
from fpdf.fonts import TTFFont

from models.common import Actor
from models.incident_report import (
    EVENT_HEADINGS,
    ITEM_HEADINGS,
    PARTICIPANT_HEADINGS,
    IncidentReport,
    ReportEvent,
    ReportRetrospective,
    build_report,
    event_row,
    fact_rows,
    item_rows,
    participant_rows,
    retrospective_status,
    to_markdown,
    when,
)
from models.mentions import WORD_JOINER
from service import incident_access as incidents
from service.container import Services

ReportFormat = Literal["json", "md", "pdf"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "pdf": "application/pdf",
}
# A table cell of the PDF shows at most this much of one text, and at most this many lines of it (a
# row must fit on a page: fpdf2 refuses a taller one); the JSON and the markdown have it whole.
PDF_CELL_MAX = 1200
PDF_CELL_LINES = 50
PDF_TABLE_FONT_SIZE = 8
# DejaVu Sans 2.37 (https://dejavu-fonts.github.io/), the files as Debian's fonts-dejavu-core 2.37-6
# ships them, unmodified; its licence (Bitstream Vera's, with the Arev fonts') is fonts/LICENSE.
# Package data (pyproject.toml), so every install has them. Italic is never used, so not shipped.
FONT_DIR = Path(__file__).parent / "fonts"
FONT = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
# What a run of characters the font cannot show is shown as.
NOT_SHOWN = "\ufffd"
# The footer's total of pages: a placeholder `_pdf_text` never leaves in people's words (it holds a
# control character), so a note that says `{nb}` (fpdf2's default) is not shown as the page count.
# As long as "{nb}", so the footer is laid out for up to three digits, as before.
PAGES_ALIAS = "\x00nb\x00"


@dataclass(frozen=True)
class RenderedReport:
    body: bytes
    media_type: str
    filename: str


async def incident_report(svc: Services, actor: Actor, incident_id: str) -> IncidentReport:
    """The report of an incident the actor may see (else `incidents.load` says it does not exist)."""
    access = await incidents.load(svc, actor, incident_id)
    return build_report(access.state, datetime.now(UTC))


async def rendered_report(svc: Services, actor: Actor, incident_id: str, fmt: ReportFormat) -> RenderedReport:
    """The report in `fmt`, rendered off the event loop (a long timeline's PDF takes a while)."""
    report = await incident_report(svc, actor, incident_id)
    return await asyncio.to_thread(render, report, fmt)


def render(report: IncidentReport, fmt: ReportFormat) -> RenderedReport:
    name = f"incident-{report.id}-report.{fmt}"
    if fmt == "md":
        body = to_markdown(report).encode()
    elif fmt == "pdf":
        body = to_pdf(report)
    else:
        body = report.model_dump_json(indent=2).encode()
    return RenderedReport(body, MEDIA_TYPES[fmt], name)


# ---------------------------------------------------------------------------- PDF


def _add_fonts(pdf: FPDF) -> None:
    for style, name in FONT_FILES.items():
        pdf.add_font(FONT, style, FONT_DIR / name)


@dataclass(frozen=True)
class _FontCoverage:
    not_shown: re.Pattern[str]  # a run of characters not every face has a glyph for (the line break excepted)
    widest: float  # the widest glyph's advance, in em


@cache
def _coverage() -> _FontCoverage:
    """What the font shows: only what every face of it has a glyph for (so neither bold nor regular
    text can lose a character), control characters never."""
    pdf = FPDF()
    _add_fonts(pdf)
    faces = [font for font in pdf.fonts.values() if isinstance(font, TTFFont)]
    both = set.intersection(*(set(face.cmap) for face in faces))
    shown = {code for code in both if code >= 0x20 and not 0x7F <= code < 0xA0} | {ord("\n")}
    ranges: list[str] = []
    for first in sorted(code for code in shown if code - 1 not in shown):
        last = first
        while last + 1 in shown:
            last += 1
        ranges.append(f"\\U{first:08x}-\\U{last:08x}")
    widest = max(max(face.cw.values()) for face in faces) / 1000
    return _FontCoverage(re.compile(f"[^{''.join(ranges)}]+"), widest)


def _pdf_text(text: str, limit: int = PDF_CELL_MAX) -> str:
    """Text the report's font shows as written: markdown's emphasis and the mention guards taken
    out, tabs as spaces, any line break as `\\n`, at most `limit` characters, and each run of
    characters the font has no glyph for (emoji, CJK, control characters) as one `�`."""
    plain = text.replace(WORD_JOINER, "").replace("**", "")
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    plain = plain.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _coverage().not_shown.sub(NOT_SHOWN, plain)


def _cell_text(pdf: FPDF, text: str, width: float) -> str:
    """`_pdf_text` of a table cell `width` wide, cut to its first `PDF_CELL_LINES` lines. Only a
    text that might be longer is laid out to count them (each line holds at least `per_line`)."""
    shown = _pdf_text(text)
    per_line = max(1, int((width - 2) / (_coverage().widest * PDF_TABLE_FONT_SIZE / pdf.k)))
    if shown.count("\n") + 1 + len(shown) // per_line <= PDF_CELL_LINES:
        return shown
    lines = pdf.multi_cell(
        width, 4, shown, padding=1, wrapmode=WrapMode.CHAR, dry_run=True, output=MethodReturnValue.LINES
    )
    assert isinstance(lines, list)
    if len(lines) <= PDF_CELL_LINES:
        return shown
    return "\n".join(lines[: PDF_CELL_LINES - 1]) + "\n…"


class _ReportPdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._title = title
        _add_fonts(self)
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_creator("incident-response-temporal")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.cell(0, 6, f"{self._title[:80]} - page {self.page_no()}/{PAGES_ALIAS}", align="C")


def _heading(pdf: FPDF, text: str, size: int = 14) -> None:
    pdf.ln(3)
    pdf.set_font(FONT, style="B", size=size)
    pdf.multi_cell(0, size * 0.5, _pdf_text(text, 300), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font(FONT, size=9)


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, size=9)
    pdf.multi_cell(0, 4.5, _pdf_text(text, 4000), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _table(pdf: FPDF, headings: list[str], rows: Iterable[list[str]], widths: tuple[int, ...]) -> None:
    """A table as wide as the page, its columns in the proportions of `widths`."""
    pdf.set_font(FONT, size=PDF_TABLE_FONT_SIZE)
    column_widths = [pdf.epw * width / sum(widths) for width in widths]
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
        line_height=4,
        text_align="LEFT",
        v_align="TOP",
        padding=1,
        repeat_headings=1,
        wrapmode="CHAR",
    ) as table:
        heading = table.row()
        for text in headings:
            heading.cell(text)
        for values in rows:
            row = table.row()
            for text, width in zip(values, column_widths, strict=True):
                row.cell(_cell_text(pdf, text, width))


def to_pdf(report: IncidentReport) -> bytes:
    pdf = _ReportPdf(f"Incident report: {_pdf_text(report.name, 100)}".replace("\n", " "))  # the footer's one line
    pdf.alias_nb_pages(PAGES_ALIAS)
    pdf.add_page()
    _heading(pdf, f"Incident report: {report.name}", 16)
    if report.description:
        _paragraph(pdf, report.description)
    _table(pdf, ["", ""], fact_rows(report), (50, 130))
    _heading(pdf, "Participants")
    _table(pdf, PARTICIPANT_HEADINGS, participant_rows(report), (60, 120))
    _heading(pdf, "Status updates")
    if report.status_updates_posted > len(report.status_updates):
        _paragraph(pdf, f"The newest {len(report.status_updates)} of {report.status_updates_posted} updates.")
    rows = [[when(u.at), u.author, u.status.value if u.status else "", u.message] for u in report.status_updates]
    if rows:
        _table(pdf, ["Time", "Author", "Status", "Update"], rows, (32, 25, 23, 100))
    else:
        _paragraph(pdf, "None were posted.")
    _heading(pdf, "Checklist")
    for number, stage in enumerate(report.checklist, start=1):
        _heading(pdf, f"{number}. {stage.title}" + (" (active)" if stage.active else ""), 11)
        items = item_rows(stage)
        if items:
            _table(pdf, ITEM_HEADINGS, items, (70, 22, 24, 32, 32))
        else:
            _paragraph(pdf, "No items.")
    _heading(pdf, "Key moments")
    events_widths = (32, 20, 14, 114)  # "Since start" on one line
    if report.key_moments:
        _table(pdf, EVENT_HEADINGS, (_event_row(e) for e in report.key_moments), events_widths)
    else:
        _paragraph(pdf, "None were starred.")
    _heading(pdf, "Timeline")
    _table(pdf, EVENT_HEADINGS, (_event_row(e) for e in report.timeline), events_widths)
    if report.retrospective is not None:
        _retrospective(pdf, report.retrospective)
    pdf.ln(2)
    _paragraph(pdf, f"Generated {when(report.generated_at)}.")
    return bytes(pdf.output())


def _retrospective(pdf: FPDF, retro: ReportRetrospective) -> None:
    """Its status, then its markdown as text: headings bold, every other line as written."""
    _heading(pdf, "Retrospective")
    _paragraph(pdf, retrospective_status(retro))
    for part in retro.text.replace("\r\n", "\n").split("\n"):
        if part.startswith("#"):
            _heading(pdf, part.lstrip("#").strip() or " ", 11)
        elif part.strip():
            _paragraph(pdf, part)


def _event_row(event: ReportEvent) -> list[str]:
    return event_row(event, " (key)")
