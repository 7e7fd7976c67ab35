"""Severity: a team's ordered levels, and the severity an incident has.

A team has 2 to 10 levels, level 1 the most severe (SEV1 to SEV4 until its admins change
them), each with a name, a description and a colour; they live in the team's settings
workflow (`workflows.team_settings_workflow`). An incident keeps its severity as the level's
number and the name the level had when it was set (`Severity`). The number is the identity:
the search attribute `IncidentSeverity`, list filters and sorting, and the statistics go by
it, and name it as the team names it now. The name is what the incident said at the time:
its timeline, posts, channel header and record keep it when a level is renamed later (the
next change of severity uses the new name).

`parse_severity` reads what people type, the same for every face: a level's number (`2`),
its name whatever the case, spaces, `-` and `_` (`sev2`, `SEV 2`, `critical`), or `sev<n>`
for level n when the team's own names are not of that form. Anything else is refused with
a sentence that lists the team's levels; no text makes it raise anything else.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema, field_validator

from models.common import Model, Trimmed, first_repeat

SEVERITY_LEVELS_MIN = 2
SEVERITY_LEVELS_MAX = 10
LEVEL_NAME_MAX = 32
LEVEL_DESCRIPTION_MAX = 200
# The longest severity a person may type (`/incident severity <text>`, REST, forms).
SEVERITY_TEXT_MAX = 64
# What filters and statistics call "no severity" (a level's number is 1 or more).
NO_SEVERITY = 0

# A level's name: letters, digits, spaces and - _ . + / ( ): no Markdown, no mention.
_NAME = re.compile(r"^\w[\w .+/()-]*$")
_SEPARATORS = re.compile(r"[\s_-]+")
_SEV_FORM = re.compile(r"^sev(\d{1,3})$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def name_key(text: str) -> str:
    """How a level's name is matched: case, spaces, `-` and `_` do not matter (`SEV 2` is `sev2`)."""
    return _SEPARATORS.sub("", text.casefold())


def _level_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("may only use letters, digits, spaces and - _ . + / ( ), starting with a letter or digit")
    key = name_key(value)
    if not key:
        raise ValueError("needs a letter or a digit")
    if key.isascii() and key.isdigit():
        raise ValueError("cannot be a number alone (numbers name levels by their place: 1 is the most severe)")
    return value


def _colour(value: str) -> str:
    if not _COLOUR.match(value):
        raise ValueError("must be a colour such as #d32f2f")
    return value.lower()


LevelName = Annotated[Trimmed, Field(min_length=1, max_length=LEVEL_NAME_MAX), AfterValidator(_level_name)]
Colour = Annotated[
    Trimmed,
    AfterValidator(_colour),
    WithJsonSchema({"type": "string", "pattern": _COLOUR.pattern, "description": "A colour: #rrggbb"}),
]


def _as_text(value: Any) -> Any:
    """A level may be sent as a number (`{"severity": 2}`), but never as a boolean."""
    if isinstance(value, bool):
        raise ValueError("must be a level's number or name")
    return str(value) if isinstance(value, int) else value


def _not_blank(value: str) -> str:
    # After a BeforeValidator pydantic checks `min_length` before stripping: "\r" would pass as "".
    if not value:
        raise ValueError("must name a level: its number or its name")
    return value


# What a person types to name a level (REST, slash, forms): read by `parse_severity`.
SeverityText = Annotated[
    str,
    BeforeValidator(_as_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SEVERITY_TEXT_MAX),
    AfterValidator(_not_blank),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": SEVERITY_TEXT_MAX},
                {"type": "integer"},
            ],
            "description": "A level: its number (1 is the most severe), `sev<n>`, or its name, in any case",
        }
    ),
]


class SeverityLevelSpec(Model):
    """One level as a team admin writes it; its number is its place in the list."""

    name: LevelName = Field(description="Unique in the team, whatever the case, spaces, - and _")
    description: str = Field(default="", max_length=LEVEL_DESCRIPTION_MAX, description="When to use this level")
    colour: Colour = Field(default="#6b7280", description="How the backstage shows it: #rrggbb")


class SeverityLevel(SeverityLevelSpec):
    """A level of the team: its number (1 is the most severe) and what its admins wrote."""

    level: int = Field(ge=1, le=SEVERITY_LEVELS_MAX)


class SeverityLevelsSpec(Model):
    """A team's levels as its admins write them (`PUT /api/v1/teams/{team_id}/severities`): the
    whole list, most severe first."""

    levels: list[SeverityLevelSpec] = Field(min_length=SEVERITY_LEVELS_MIN, max_length=SEVERITY_LEVELS_MAX)
    version: int | None = Field(
        default=None, ge=0, description="The version this edit started from: refused (409) if it changed since"
    )

    @field_validator("levels")
    @classmethod
    def _distinct_names(cls, levels: list[SeverityLevelSpec]) -> list[SeverityLevelSpec]:
        repeat = first_repeat([name_key(level.name) for level in levels])
        if repeat:
            first, later = repeat
            raise ValueError(
                f"level {later + 1} has the same name as level {first + 1} ({levels[later].name!r}); "
                "give every level its own name"
            )
        return levels


def numbered(specs: list[SeverityLevelSpec]) -> list[SeverityLevel]:
    """The levels with their numbers: their places, 1 first."""
    return [SeverityLevel(**dict(spec), level=place) for place, spec in enumerate(specs, start=1)]


DEFAULT_LEVELS: tuple[SeverityLevel, ...] = tuple(
    numbered(
        [
            SeverityLevelSpec(
                name="SEV1",
                description="Critical: a core service is down or data is at risk for many customers. "
                "All hands, page now.",
                colour="#c62828",
            ),
            SeverityLevelSpec(
                name="SEV2",
                description="Major: a core feature is broken or badly degraded for many customers.",
                colour="#ef6c00",
            ),
            SeverityLevelSpec(
                name="SEV3",
                description="Minor: some customers are affected, or a workaround exists.",
                colour="#f9a825",
            ),
            SeverityLevelSpec(
                name="SEV4",
                description="Low: little or no customer impact; a cosmetic problem or a near miss.",
                colour="#1565c0",
            ),
        ]
    )
)


class TeamSeverities(Model):
    """A team's levels as the API shows them (`GET /api/v1/teams/{team_id}/severities`)."""

    team_id: str
    levels: list[SeverityLevel]
    version: int = Field(description="0 until the team's admins first change them (the defaults)")
    updated_at: datetime | None = None
    updated_by: str | None = None


class Severity(Model):
    """An incident's severity: the level's number, and its name when it was set."""

    level: int = Field(ge=1, le=SEVERITY_LEVELS_MAX, description="1 is the most severe")
    name: str = Field(max_length=LEVEL_NAME_MAX, description="The level's name when the severity was set")


class SeverityUnknown(ValueError):
    """What a person typed names none of the team's levels; the message says so and lists them."""


def listed(levels: list[SeverityLevel]) -> str:
    """The team's levels in a sentence: `1 SEV1, 2 SEV2, 3 SEV3, 4 SEV4`."""
    return ", ".join(f"{level.level} {level.name}" for level in levels)


def parse_severity(text: str, levels: list[SeverityLevel]) -> SeverityLevel:
    """The team's level that `text` names (see the module's docstring), or `SeverityUnknown`."""
    typed = " ".join(str(text).split())[:SEVERITY_TEXT_MAX]
    choices = f"this team's levels are {listed(levels)}" if levels else "this team has no severity levels"
    if not typed:
        raise SeverityUnknown(f"Give a severity: a level's number or name ({choices}).")
    if typed.isascii() and typed.isdigit():
        number = int(typed[:3]) if len(typed) <= 3 else 0
        found = next((level for level in levels if level.level == number), None)
        if found is None:
            raise SeverityUnknown(f"There is no severity level {typed[:8]} in this team: {choices}.")
        return found
    key = name_key(typed)
    named = next((level for level in levels if name_key(level.name) == key), None)
    if named is not None:
        return named
    sev = _SEV_FORM.match(key)
    own_sev_names = any(_SEV_FORM.match(name_key(level.name)) for level in levels)
    if sev is not None and not own_sev_names:
        found = next((level for level in levels if level.level == int(sev.group(1))), None)
        if found is not None:
            return found
    raise SeverityUnknown(
        f"There is no severity {typed!r} in this team: {choices}. Give a level's number or name, "
        f"e.g. `{levels[-1].level if levels else 2}` or `{levels[-1].name if levels else 'SEV2'}`."
    )


def severity_of(level: SeverityLevel) -> Severity:
    """What an incident keeps of a level."""
    return Severity(level=level.level, name=level.name)
