"""Conditional steps: when a playbook's stage or item applies to an incident.

A stage or item may carry `when:` (`StepCondition`): the severity levels it applies at
(`severity: [1, 2]`, also written `[sev1, SEV2]`), and custom fields' values it applies for
(`field: {region: [eu-west, eu-north]}`). Every part given must hold (AND); within a list, any
value does (OR). An incident without a severity does not match a severity condition, a field
without a value does not match a field condition. A stage's condition applies to each of its
items, together with the item's own (`combine`).

Pure: `condition_holds` decides, `workflows.incident_conditions` keeps an incident's checklist
in step with it, and `models.playbook` checks a playbook's conditions against its fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from models.common import Model
from models.custom_fields import FieldName, FieldOption, FieldSpec, FieldType, FieldValueError, parse_field_value
from models.severity import SEVERITY_LEVELS_MAX

if TYPE_CHECKING:
    from models.playbook import StageSpec

CONDITION_VALUES_MAX = 50
CONDITION_FIELDS_MAX = 20
_SEV = re.compile(r"^\s*sev\s*(\d{1,3})\s*$", re.IGNORECASE)


def _level(value: Any) -> Any:
    """A severity level as a playbook writes it: `2`, `"2"`, `"sev2"`, `"SEV 2"` -> 2."""
    if isinstance(value, bool):
        raise ValueError("must be a severity level: 1 to 10, or sev1 to sev10")
    if isinstance(value, str):
        found = _SEV.match(value) or re.match(r"^\s*(\d{1,3})\s*$", value)
        if found is None:
            raise ValueError(f"{value[:40]!r} is not a severity level: write 1 to 10, or sev1 to sev10")
        return int(found.group(1))
    return value


SeverityLevelNumber = Annotated[
    int,
    BeforeValidator(_level),
    Field(ge=1, le=SEVERITY_LEVELS_MAX),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": SEVERITY_LEVELS_MAX},
                {"type": "string", "pattern": "^[sS][eE][vV] ?[0-9]{1,2}$"},
            ],
            "description": "A severity level: 1 (the most severe) to 10, or sev1 to sev10",
        }
    ),
]
# A value is written as a select's option is (no Markdown, no mention): shown in posts as it is.
ConditionValues = Annotated[list[FieldOption], Field(min_length=1, max_length=CONDITION_VALUES_MAX)]


class StepCondition(Model):
    """When a stage or item applies: every part given holds (a severity listed, each field's value listed)."""

    severity: Annotated[list[SeverityLevelNumber], Field(max_length=SEVERITY_LEVELS_MAX)] = Field(
        default_factory=list,
        description="The severity levels it applies at (any of them); an incident without a severity does not match",
    )
    field: Annotated[dict[FieldName, ConditionValues], Field(max_length=CONDITION_FIELDS_MAX)] = Field(
        default_factory=dict,
        description="Custom fields' values it applies for: each field named must have one of its values listed",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> StepCondition:
        if not self.severity and not self.field:
            raise ValueError("a condition (`when`) needs a severity list, a field, or both")
        self.severity = sorted(set(self.severity))
        self.field = {
            name.strip(): list(dict.fromkeys(v.strip() for v in values)) for name, values in self.field.items()
        }
        return self

    def words(self) -> str:
        """`SEV1, SEV2`, `region eu-west or eu-north`, joined with `and`."""
        parts = []
        if self.severity:
            parts.append(", ".join(f"SEV{level}" for level in self.severity))
        for name, values in self.field.items():
            parts.append(f"{name} {' or '.join(values)}")
        return " and ".join(parts)


def condition_holds(condition: StepCondition | None, severity_level: int | None, field_values: dict[str, str]) -> bool:
    """Whether a step with this condition applies to an incident at this severity (None: none)
    with these field values (name -> canonical text; unset fields absent). No condition: it does."""
    if condition is None:
        return True
    if condition.severity and (severity_level is None or severity_level not in condition.severity):
        return False
    for name, values in condition.field.items():
        value = field_values.get(name)
        if value is None or value not in values:
            return False
    return True


def combine(stage: StepCondition | None, item: StepCondition | None) -> StepCondition | None:
    """The condition an item of a stage has: both hold (the severity levels in both lists; each
    field's values in both lists). None when neither has one. A ValueError when the two never
    hold together (a playbook is refused for it: `models.playbook`)."""
    if stage is None or item is None:
        return stage or item
    severity = stage.severity or item.severity
    if stage.severity and item.severity:
        severity = [level for level in stage.severity if level in item.severity]
        if not severity:
            raise ValueError("its severity levels and its stage's have none in common, so it would never apply")
    field = dict(stage.field)
    for name, values in item.field.items():
        if name in field:
            field[name] = [value for value in field[name] if value in values]
            if not field[name]:
                raise ValueError(f"its values of field {name!r} and its stage's have none in common")
        else:
            field[name] = list(values)
    return StepCondition(severity=severity, field=field)


def _normalise(condition: StepCondition, fields: dict[str, FieldSpec], where: str) -> list[str]:
    """What is wrong with a condition at `where` against the playbook's fields; a select field's
    values are rewritten as its options are declared (case does not count)."""
    problems = []
    declared = ", ".join(fields) or "none"
    for name, values in condition.field.items():
        spec = fields.get(name)
        if spec is None:
            problems.append(
                f"{where}: `when` names field {name!r}, which the playbook does not declare (its fields: {declared})"
            )
            continue
        if spec.type == FieldType.SELECT:
            options = {option.casefold(): option for option in spec.options}
            unknown = [value for value in values if value.casefold() not in options]
            if unknown:
                problems.append(
                    f"{where}: field {name!r} has no option {', '.join(repr(v) for v in unknown)} "
                    f"(its options: {', '.join(spec.options)})"
                )
                continue
            condition.field[name] = list(dict.fromkeys(options[value.casefold()] for value in values))
        elif spec.type == FieldType.USER:
            problems.append(
                f"{where}: `when` cannot name field {name!r}, a user field (name a select, number or text field)"
            )
        elif spec.type == FieldType.NUMBER:
            canonical = []
            for value in values:
                try:
                    canonical.append(parse_field_value(spec.model_copy(update={"required": False}), value))
                except FieldValueError as problem:
                    problems.append(f"{where}: {problem}")
            condition.field[name] = list(dict.fromkeys(canonical))
    return problems


def condition_problems(stages: Sequence[StageSpec], fields: Sequence[FieldSpec]) -> list[str]:
    """What is wrong with a playbook's conditions (`when`): a field it does not declare, a value
    that is not one of a select field's options, an item that could never apply within its stage.
    Normalises select values to the options as declared."""
    by_name = {spec.name: spec for spec in fields}
    problems: list[str] = []
    for stage_index, stage in enumerate(stages):
        stage_where = f"stage {stage_index + 1} ({stage.title!r})"
        if stage.when is not None:
            problems += _normalise(stage.when, by_name, stage_where)
        for item_index, item in enumerate(stage.items):
            if item.when is None:
                continue
            where = f"{stage_where} item {item_index + 1} ({item.title!r})"
            found = _normalise(item.when, by_name, where)
            problems += found
            if not found:
                try:
                    combine(stage.when, item.when)
                except ValueError as error:
                    problems.append(f"{where}: {error}")
    return problems


def when_text(condition: StepCondition | None) -> str:
    """A condition as the backstage editor writes it: `severity: 1, 2; region: eu-west, eu-north`."""
    if condition is None:
        return ""
    parts = []
    if condition.severity:
        parts.append("severity: " + ", ".join(str(level) for level in condition.severity))
    parts += [f"{name}: {', '.join(values)}" for name, values in condition.field.items()]
    return "; ".join(parts)


def read_when_text(text: str) -> dict[str, Any] | None:
    """`severity: sev1, sev2; region: eu-west` (or `sev1, sev2` alone) as the API body's `when`;
    None when empty. The values are checked by `StepCondition`; a ValueError when a part is not
    `name: values`."""
    severity: list[str] = []
    fields: dict[str, list[str]] = {}
    for part in filter(None, (piece.strip() for piece in text.split(";"))):
        name, colon, listed = part.partition(":")
        if not colon:
            name, listed = "severity", part
        name = name.strip().lower()
        values = [value.strip() for value in listed.split(",") if value.strip()]
        if not name or not values:
            raise ValueError(f"{part[:60]!r}: write `severity: 1, 2` or `<field>: <value>, <value>`, parts joined by ;")
        if name in ("severity", "sev"):
            severity += values
        else:
            fields.setdefault(name, []).extend(values)
    if not severity and not fields:
        return None
    return {"severity": severity, "field": fields}
