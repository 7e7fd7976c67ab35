"""Files people write (playbooks, integrations as YAML): parsed safely, errors on their line.

Parsing is bounded before it starts: a text over YAML_MAX_CHARS, nesting deeper than
YAML_MAX_DEPTH (the composer recurses), more than YAML_MAX_NODES nodes, and aliases (a
few lines can expand to billions of nodes for the validator) are refused; PyYAML's event
parser is iterative, so that scan is safe. Every validation error names its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import yaml
from pydantic import BaseModel, ValidationError

from service.errors import ServiceError, field_path

# Far more than any document needs (a large playbook is a few kilobytes, 5 levels deep).
YAML_MAX_CHARS = 256 * 1024
YAML_MAX_DEPTH = 20
YAML_MAX_NODES = 20_000

D = TypeVar("D", bound=BaseModel)
Lines = dict[tuple[Any, ...], int]


@dataclass(frozen=True)
class DocumentKind:
    """What the file is, for the sentences that refuse it ("Invalid playbook file: ...")."""

    name: str
    # What its top level must be, said when it is not a mapping.
    expected: str


async def parse_off_loop(text: str, model: type[D], kind: DocumentKind) -> tuple[D, Lines]:
    """`parse_document` in a worker thread: parsing takes time, and the event loop serves everyone."""
    return await anyio.to_thread.run_sync(parse_document, text, model, kind)


def check_shape(text: str, kind: DocumentKind) -> None:
    if len(text) > YAML_MAX_CHARS:
        raise ServiceError(422, "validation_error", f"The {kind.name} file is longer than {YAML_MAX_CHARS} characters.")
    depth = nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _shape_error(event, "aliases (*name) are not supported; write the value out", kind)
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > YAML_MAX_NODES:
                raise _shape_error(event, f"more than {YAML_MAX_NODES} values", kind)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > YAML_MAX_DEPTH:
                raise _shape_error(event, f"nested deeper than {YAML_MAX_DEPTH} levels", kind)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _shape_error(event: yaml.Event, problem: str, kind: DocumentKind) -> ServiceError:
    mark = event.start_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return ServiceError(
        422, "validation_error", f"Invalid {kind.name} file: {where}{problem}.", {"yaml": where + problem}
    )


def parse_document(text: str, model: type[D], kind: DocumentKind) -> tuple[D, Lines]:
    """The document and the line of every node, or a 422 naming the line of each problem."""
    try:
        check_shape(text, kind)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ServiceError(
            422,
            "validation_error",
            f"Invalid YAML: {where}{error.problem or error}",
            {"yaml": f"{where}{error}"},
        ) from None
    except yaml.YAMLError as error:
        raise ServiceError(422, "validation_error", f"Invalid YAML: {error}") from None
    lines: Lines = {}
    if root is not None:
        _index_lines(root, (), lines)
    if not isinstance(data, dict):
        raise ServiceError(422, "validation_error", f"The YAML must be {kind.expected}")
    try:
        return model.model_validate(data), lines
    except ValidationError as error:
        raise located_error(error, lines, kind) from None


def located_error(error: ValidationError, lines: Lines, kind: DocumentKind) -> ServiceError:
    fields: dict[str, str] = {}
    for issue in error.errors():
        loc = tuple(issue["loc"])
        line = line_for(loc, lines)
        message = str(issue["msg"]).removeprefix("Value error, ")
        fields[field_path(loc)] = f"line {line}: {message}" if line else message
    listed = "; ".join(f"{name} ({problem})" for name, problem in fields.items())
    return ServiceError(422, "validation_error", f"The {kind.name} file is invalid: {listed}.", fields)


def line_for(loc: tuple[Any, ...], lines: Lines) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _index_lines(node: yaml.Node, path: tuple[Any, ...], lines: Lines) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            lines[(*path, name)] = key.start_mark.line + 1
            _index_lines(value, (*path, name), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines)
