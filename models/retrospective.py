"""Retrospectives: what a playbook declares, the template's placeholders, and what an incident keeps.

A playbook may carry `retrospective: {template, due_after, reminder_every}` (`RetrospectiveSpec`).
When one of its incidents ends, the incident opens its retrospective from the template, with
the placeholders (`{{time_to_resolution}}`, ...) filled in from the incident's figures
(`workflows.incident_retrospective`); people edit it in the backstage (each save names the
version it was based on: a stale one is refused, 409), and the commander is reminded from
`due_after` after the end, every `reminder_every`, until it is published or declined.

Pure: no I/O. The incident's part (`Retrospective`) travels in its state, so its size is bounded:
the text (`TEXT_MAX`), and the history of edits (`HISTORY_KEPT` entries, the texts of the
newest `HISTORY_TEXTS_KEPT` of them).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from models.common import Model, Trimmed
from models.playbook_automation import Duration

# What a retrospective's text and its template may hold (characters).
TEXT_MAX = 20_000
TEMPLATE_MAX = TEXT_MAX
# A decline's reason.
REASON_MAX = 500
# The edits the incident remembers (newest), and how many of them keep their whole text.
HISTORY_KEPT = 50
HISTORY_TEXTS_KEPT = 5
# The summary a publication posts: the first section, at most this many lines and characters.
SUMMARY_LINES_MAX = 12
SUMMARY_CHARS_MAX = 1500

# What a retrospective's command and read answer before there is one.
NO_RETROSPECTIVE = "This incident has no retrospective: its playbook has none, or the incident has not ended yet."

# `{{name}}`, spaces inside the braces allowed.
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# Each placeholder a template may use, and what it becomes when the incident ends.
PLACEHOLDERS: dict[str, str] = {
    "name": "the incident's name",
    "severity": "its severity's name (or `none given`)",
    "commander": "its commander's username",
    "started_at": "when it started (UTC)",
    "ended_at": "when it ended (UTC)",
    "duration": "how long it lasted, start to end",
    "time_to_acknowledge": "from its first page to the first acknowledgement (`—`: nobody was paged, or acknowledged)",
    "time_to_first_update": "from its start to its first status update (or `—`: none was posted)",
    "time_to_resolution": "how long it was ongoing until it ended (restarts counted)",
    "key_moments": "a markdown list of the timeline events starred as key moments",
    "participants": "a markdown list of the people involved, with their roles",
}

DEFAULT_TEMPLATE = """# Retrospective: {{name}}

## Summary

What happened, whom it affected, and how it was resolved (a few sentences).

## Figures

| | |
|---|---|
| Severity | {{severity}} |
| Commander | {{commander}} |
| Started | {{started_at}} |
| Ended | {{ended_at}} |
| Time to acknowledge | {{time_to_acknowledge}} |
| Time to first update | {{time_to_first_update}} |
| Time to resolution | {{time_to_resolution}} |

## Key moments

{{key_moments}}

## Participants

{{participants}}

## What went well

## What went wrong

## Action items
"""


def placeholders_in(template: str) -> list[str]:
    """The placeholders a template uses, each once, in order of first use."""
    return list(dict.fromkeys(match[1] for match in _PLACEHOLDER.finditer(template)))


def unknown_placeholders(template: str) -> list[str]:
    return [name for name in placeholders_in(template) if name not in PLACEHOLDERS]


def fill(template: str, figures: dict[str, str]) -> str:
    """The template with each placeholder replaced by its figure (an unknown one is left as written)."""
    return _PLACEHOLDER.sub(lambda match: figures.get(match[1], match[0]), template)


class RetrospectiveSpec(Model):
    """A playbook's retrospective: opened from `template` when an incident ends, due `due_after`
    the end; its commander is reminded then and every `reminder_every` until it is published or declined."""

    template: str = Field(
        default="",
        max_length=TEMPLATE_MAX,
        description="Markdown, with placeholders filled in when the incident ends: "
        + ", ".join("`{{" + name + "}}`" for name in PLACEHOLDERS)
        + ". Empty: the default template (its sections: summary, figures, key moments, participants, "
        "what went well, what went wrong, action items).",
    )
    due_after: Duration = Field(default="5d", description="How long after the end it is due (1s to 30d: 5d, 36h)")
    reminder_every: Duration = Field(
        default="1d",
        description="How often the commander is reminded once it is due, until it is published or declined",
    )

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        unknown = unknown_placeholders(template)
        if unknown:
            named = ", ".join("{{" + name + "}}" for name in unknown)
            known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder(s) {named}; a template may use {known}")
        return template

    @property
    def effective_template(self) -> str:
        return self.template if self.template.strip() else DEFAULT_TEMPLATE


class RetrospectiveStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DECLINED = "declined"


class RetrospectiveEdit(Model):
    """One version of the retrospective: who made it, when (version 1: opened from the template)."""

    version: int
    author_id: str
    at: datetime
    # The whole text of this version (kept for the newest `HISTORY_TEXTS_KEPT`; None for older ones).
    text: str | None = None


class Retrospective(Model):
    """An incident's retrospective, from its opening at the end to its publication or decline."""

    status: RetrospectiveStatus = RetrospectiveStatus.DRAFT
    text: str
    version: int = 1
    opened_at: datetime
    due_at: datetime
    reminder_every_seconds: int
    # The next reminder (None once published or declined).
    next_reminder_at: datetime | None = None
    reminders_sent: int = 0
    history: list[RetrospectiveEdit] = Field(default_factory=list)
    # Who published or declined it, when, and why (a decline).
    concluded_at: datetime | None = None
    concluded_by: str | None = None
    reason: str = ""

    @property
    def is_open(self) -> bool:
        return self.status == RetrospectiveStatus.DRAFT

    def record_version(self, author_id: str, at: datetime) -> None:
        """Keep the current version in the history (bounded)."""
        self.history.append(RetrospectiveEdit(version=self.version, author_id=author_id, at=at, text=self.text))
        if len(self.history) > HISTORY_KEPT:
            del self.history[: len(self.history) - HISTORY_KEPT]
        for old in self.history[:-HISTORY_TEXTS_KEPT]:
            old.text = None


class RetrospectiveText(Model):
    """What a person saves: the new text, and the version it was based on (the one they opened)."""

    text: str = Field(max_length=TEXT_MAX, description="The retrospective's markdown")
    version: int = Field(
        ge=1,
        le=1_000_000_000,
        description="The version the text was based on (`GET .../retrospective` says the latest): when someone "
        "saved another since, the save is refused (409) and nothing changes",
    )


class DeclineReason(Model):
    reason: Trimmed = Field(min_length=1, max_length=REASON_MAX, description="Why this incident needs no retrospective")


def summary_of(text: str) -> str:
    """What a publication posts: the first section with any text (the title line left out), at
    most `SUMMARY_LINES_MAX` lines and `SUMMARY_CHARS_MAX` characters."""
    lines = text.replace("\r\n", "\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("#"):
            sections.append([])
            continue
        sections[-1].append(line)
    body: list[str] = next((s for s in sections if any(part.strip() for part in s)), [])
    kept = [part for part in body if part.strip()][:SUMMARY_LINES_MAX]
    summary = "\n".join(kept)
    if len(summary) > SUMMARY_CHARS_MAX:
        summary = summary[: SUMMARY_CHARS_MAX - 1].rstrip() + "…"
    return summary


class RetrospectiveVersion(Model):
    version: int
    author: str = Field(description="Who saved it: a username, or `system` (opened from the template)")
    at: datetime
    text: str | None = Field(description="Its whole text (kept for the newest versions only)")


class RetrospectiveView(Model):
    """An incident's retrospective as `GET /api/v1/incidents/{id}/retrospective` gives it."""

    incident_id: str
    incident_name: str
    status: RetrospectiveStatus
    text: str
    version: int = Field(description="The latest version: a save names the version it was based on")
    opened_at: datetime
    due_at: datetime
    next_reminder_at: datetime | None
    reminders_sent: int
    history: list[RetrospectiveVersion] = Field(description="The newest versions, newest last")
    concluded_at: datetime | None = Field(description="When it was published or declined")
    concluded_by: str | None = Field(description="Who published or declined it (a username)")
    reason: str = Field(description="Why it was declined")
    may_edit: bool = Field(description="Whether the caller may save a version (a member, while it is a draft)")
    may_conclude: bool = Field(description="Whether the caller may publish or decline it")
