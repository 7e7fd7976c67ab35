"""Custom fields: what a playbook asks of its incidents beyond name and severity.

A playbook declares its fields (`FieldSpec`): text, number, a single select among options,
or a user. An incident keeps each field's value as canonical text in
`IncidentState.field_values` (name -> value): a select keeps the option as the playbook
declares it, a number its canonical decimal text, a user the Mattermost user id, text the
trimmed text. A field without a value is absent from the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from models.common import Model, Trimmed, UserFact

FIELDS_MAX = 20
FIELD_NAME_MAX = 32
FIELD_LABEL_MAX = 64
FIELD_OPTIONS_MAX = 50
FIELD_OPTION_MAX = 64
FIELD_TEXT_MAX = 1000
FIELD_TEXT_DEFAULT_MAX = 200

# A field's name: what people type (`/incident field region eu-west`) and what filters use.
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*\Z")
# An option: printable, no Markdown or mention characters, no "=" (filters are name=value).
_OPTION = re.compile(r"^[\w][\w .+/()-]*\Z")


def _field_name(value: str) -> str:
    if not _FIELD_NAME.match(value):
        raise ValueError("must start with a lowercase letter and use only lowercase letters, digits and _")
    return value


def _option(value: str) -> str:
    if not _OPTION.match(value):
        raise ValueError("may only use letters, digits, spaces and - _ . + / ( ), starting with a letter or digit")
    return value


def number_as_text(value: object) -> object:
    """A JSON number is taken as its text (`{"value": 42}` as `"42"`); anything else as sent."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# A field's value as people give it (REST, dialog, forms): text, a number, or null (none).
FieldInput = Annotated[Annotated[str, Field(max_length=4000)] | None, BeforeValidator(number_as_text)]
# Fields' values by name. Unknown names are refused by the start rules naming the playbook's
# fields, so names are only bounded here.
FieldInputs = Annotated[dict[Annotated[str, Field(max_length=64)], FieldInput], Field(max_length=50)]
FieldName = Annotated[Trimmed, Field(min_length=1, max_length=FIELD_NAME_MAX), AfterValidator(_field_name)]
FieldOption = Annotated[Trimmed, Field(min_length=1, max_length=FIELD_OPTION_MAX), AfterValidator(_option)]


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    SELECT = "select"
    USER = "user"


class FieldSpec(Model):
    """One custom field of a playbook's incidents."""

    name: FieldName
    label: Trimmed = Field(default="", max_length=FIELD_LABEL_MAX, description="Shown to people; the name when empty")
    type: FieldType = FieldType.TEXT
    required: bool = False
    description: str = Field(default="", max_length=200)
    # select: the options, in the order they are offered.
    options: Annotated[list[FieldOption], Field(max_length=FIELD_OPTIONS_MAX)] = Field(default_factory=list)
    # number: the bounds, both included.
    min: float | None = None
    max: float | None = None
    # text: the longest value.
    max_length: int = Field(default=FIELD_TEXT_DEFAULT_MAX, ge=1, le=FIELD_TEXT_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == FieldType.SELECT:
            if not self.options:
                raise ValueError(f"field '{self.name}': a select field needs at least one option")
            keys = [option.casefold() for option in self.options]
            if len(set(keys)) != len(keys):
                raise ValueError(f"field '{self.name}': options must be distinct (case does not count)")
        elif self.options:
            raise ValueError(f"field '{self.name}': only a select field has options")
        if self.type != FieldType.NUMBER and (self.min is not None or self.max is not None):
            raise ValueError(f"field '{self.name}': only a number field has min and max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field '{self.name}': min is greater than max")
        return self

    @property
    def title(self) -> str:
        return self.label or self.name


# The longest value anyone may type for a field (a text field's own limit is checked after).
FIELD_INPUT_MAX = 4000
# Number fields: the longest number text read (digits, sign, point).
NUMBER_TEXT_MAX = 40
# A user field's value as typed: @username or username (Mattermost's username rules), or the
# user's id (what the start dialog's user select sends).
_USERNAME = re.compile(r"^[a-z0-9._-]{1,64}\Z")
# What clears a field (case does not count), besides an empty value and JSON null.
CLEAR_WORDS = frozenset({"", "none"})


class FieldValueError(ValueError):
    """A value a field cannot take; its message is the sentence the person reads."""


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range(spec: FieldSpec) -> str:
    if spec.min is not None and spec.max is not None:
        return f"a number from {_bound(spec.min)} to {_bound(spec.max)}"
    if spec.min is not None:
        return f"a number of at least {_bound(spec.min)}"
    if spec.max is not None:
        return f"a number of at most {_bound(spec.max)}"
    return "a number"


def takes(spec: FieldSpec) -> str:
    """What the field takes, in words: "one of eu-west, us-east", "a number from 0 to 10"..."""
    if spec.type == FieldType.SELECT:
        return "one of " + ", ".join(spec.options)
    if spec.type == FieldType.NUMBER:
        return _range(spec)
    if spec.type == FieldType.USER:
        return "a person, as @username"
    return f"text of up to {spec.max_length} characters"


def _quoted(text: str) -> str:
    """What was typed, quoted in a refusal: on one line, unprintable characters as ?, cut at 40."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in " ".join(text.split()))
    return f"'{shown if len(shown) <= 40 else shown[:39] + '…'}'"


def is_clearing(text: str | None) -> bool:
    """Whether the value asks to clear the field: none, empty, or JSON null."""
    return text is None or text.strip().casefold() in CLEAR_WORDS


def parse_field_value(spec: FieldSpec, text: str | None) -> str:
    """The canonical text of `text` as a value of `spec`, or "" when it clears the field.

    A select's value is the option as declared (matched whatever the case), a number's its
    canonical decimal text within the bounds, a text's the trimmed text within its length, a
    user's the username (without @, lower case) or id: the service resolves it to a person.
    Raises `FieldValueError` with the sentence to show; never anything else.
    """
    if is_clearing(text):
        if spec.required:
            raise FieldValueError(f"Field '{spec.name}' is required and cannot be cleared: give it {takes(spec)}.")
        return ""
    assert text is not None
    value = text.strip()
    if len(value) > FIELD_INPUT_MAX:
        raise FieldValueError(f"Field '{spec.name}' takes {takes(spec)}; this value is too long.")
    if spec.type == FieldType.SELECT:
        wanted = " ".join(value.split()).casefold()
        for option in spec.options:
            if option.casefold() == wanted:
                return option
        raise FieldValueError(
            f"{_quoted(value)} is not an option of field '{spec.name}': choose one of " + ", ".join(spec.options) + "."
        )
    if spec.type == FieldType.NUMBER:
        return _number(spec, value)
    if spec.type == FieldType.USER:
        username = value.removeprefix("@").casefold()
        if not _USERNAME.match(username):
            raise FieldValueError(f"{_quoted(value)} is not a username: field '{spec.name}' takes {takes(spec)}.")
        return username
    if len(value) > spec.max_length:
        raise FieldValueError(
            f"Field '{spec.name}' takes at most {spec.max_length} characters; this value has {len(value)}."
        )
    return value


def _number(spec: FieldSpec, value: str) -> str:
    refusal = FieldValueError(f"{_quoted(value)} is not {_range(spec)}: field '{spec.name}' takes {_range(spec)}.")
    if len(value) > NUMBER_TEXT_MAX or not _NUMBER.match(value):
        raise refusal
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise refusal from None
    if (spec.min is not None and number < Decimal(repr(float(spec.min)))) or (
        spec.max is not None and number > Decimal(repr(float(spec.max)))
    ):
        raise refusal
    canonical = format(number.normalize(), "f")
    if "." in canonical:
        canonical = canonical.rstrip("0").rstrip(".")
    return "0" if canonical in ("-0", "") else canonical


# A plain decimal: sign, digits, an optional fraction (no exponent, no NaN or infinity).
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)\Z")


def field_named(fields: list[FieldSpec], name: str) -> FieldSpec | None:
    """The field of that name (case does not count)."""
    wanted = name.strip().casefold()
    return next((spec for spec in fields if spec.name == wanted), None)


def unknown_field(fields: list[FieldSpec], name: str) -> str:
    """The sentence refusing a field the playbook does not declare."""
    shown = _quoted(name)
    if not fields:
        return f"There is no field {shown}: this incident's playbook declares no fields."
    return f"There is no field {shown}: this incident's fields are " + ", ".join(s.name for s in fields) + "."


def select_filter(fields: list[FieldSpec]) -> list[FieldSpec]:
    """The fields lists and statistics filter and break down by: the select fields."""
    return [spec for spec in fields if spec.type == FieldType.SELECT]


# A list or statistics filter on a field's value: `name=value` (a select field's option).
FILTER_MAX = 5
_FILTER = re.compile(r"^([a-z][a-z0-9_]{0,31})=(.{1,64})\Z")


def parse_field_filter(text: str) -> tuple[str, str]:
    """`name=value` read strictly (names as fields are named, values as options are written);
    raises `FieldValueError` for anything else, so nothing unchecked reaches a query."""
    match = _FILTER.match(text.strip())
    if match is None:
        raise FieldValueError(f"{_quoted(text)} is not a field filter: write name=value, e.g. region=eu-west.")
    name, value = match.group(1), " ".join(match.group(2).split())
    if not _OPTION.match(value):
        raise FieldValueError(f"{_quoted(value)} is not a field value a filter can match: use an option's name.")
    return name, value


def filter_words(name: str, value: str) -> str:
    """What a list asks of `IncidentFields` (a Text attribute: visibility matches its words) for a
    select field's value: the lower-case letters and digits of `name=value`, and nothing a full-text
    query could read as syntax. It finds every incident with the value (and perhaps a few more:
    the lists check each incident's own values after)."""
    return " ".join(re.findall(r"[a-z0-9]+", f"{name} {value}".casefold()))


def read_field(spec: FieldSpec, text: str | None, users: list[UserFact]) -> str:
    """`parse_field_value`, and for a user field the person it names among `users` (the people
    the service looked up): their id. Raises `FieldValueError` with the sentence to show."""
    value = parse_field_value(spec, text)
    if not value or spec.type != FieldType.USER:
        return value
    user = next((u for u in users if value in (u.username.casefold(), u.user_id.casefold())), None)
    if user is None:
        raise FieldValueError(f"There is no user @{value}: field '{spec.name}' takes {takes(spec)}.")
    if user.is_bot:
        raise FieldValueError(f"@{user.username} is a bot: field '{spec.name}' takes a person.")
    if not user.is_team_member:
        raise FieldValueError(f"@{user.username} is not in this team: field '{spec.name}' takes a person of the team.")
    return user.user_id


def shown_value(spec: FieldSpec | None, value: str, mention: Callable[[str], str]) -> str:
    """A value as people read it: a user field's person as @username, anything else as kept."""
    return mention(value) if spec is not None and spec.type == FieldType.USER else value


def user_reference(text: str | None) -> str:
    """The username or id a user field's value names ("" when it names none), for the service to look up."""
    if is_clearing(text):
        return ""
    assert text is not None
    name = text.strip().removeprefix("@").casefold()
    return name if _USERNAME.match(name) else ""


def field_terms(fields: list[FieldSpec], values: dict[str, str]) -> list[str]:
    """An incident's select fields' values as `name=value` (the option as declared): `IncidentFields`
    holds them, separated by spaces."""
    return [f"{spec.name}={values[spec.name]}" for spec in select_filter(fields) if spec.name in values]


def select_values(fields: list[FieldSpec], values: dict[str, str]) -> dict[str, str]:
    """The select fields' values (what the statistics break down by), in the playbook's order."""
    return {spec.name: values[spec.name] for spec in select_filter(fields) if spec.name in values}
