"""Subcommands of `/incident`: how they are declared, parsed and listed in the help."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import ValidationError

from api.slash.slash_protocol import SlashReply, SlashRequest, ephemeral
from models.common import Actor
from models.pending_commands import RECEIVED
from service.container import Services
from service.errors import ServiceError, describe_fields, validation_fields

# A command Temporal took but did not answer in time: its outcome follows through response_url.
RECEIVED_HERE = f"{RECEIVED} The incident service is slow right now; you will see the outcome here."


class UsageError(Exception):
    """Bad arguments: the reply names the problem and shows the right usage."""


@dataclass(frozen=True)
class Context:
    request: SlashRequest
    svc: Services
    actor: Actor
    # Everything after the subcommand, as typed (newlines and apostrophes included).
    text: str

    @cached_property
    def args(self) -> list[str]:
        """The words of `text`, "quoted phrases" kept together."""
        return leading_words(self.text)[0]

    def leading(self, count: int) -> tuple[list[str], str]:
        """The first `count` words, and the rest as free text (a name, a title).

        The rest keeps what was typed, apostrophes included; only quotes around all of
        it are dropped, as people quote names as readily as playbook titles.
        """
        words, rest = leading_words(self.text, count)
        if len(rest) > 1 and rest[0] == rest[-1] == '"' and '"' not in rest[1:-1]:
            rest = rest[1:-1].strip()
        return words, rest


Handler = Callable[[Context], Awaitable[SlashReply]]


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    handler: Handler
    example: str = ""


@dataclass
class Registry:
    trigger: str = "incident"
    _commands: dict[str, Subcommand] = field(default_factory=dict)

    def command(self, name: str, *, usage: str, summary: str, example: str = "") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._commands[name] = Subcommand(name, usage, summary, handler, example)
            return handler

        return register

    def get(self, name: str) -> Subcommand | None:
        return self._commands.get(name)

    def usage(self, name: str) -> str:
        return f"`/{self.trigger} {self._commands[name].usage}`"

    def help_text(self) -> str:
        lines = [f"#### /{self.trigger} commands", "", "| Command | What it does |", "|---|---|"]
        lines += [f"| `/{self.trigger} {_cell(c.usage)}` | {_cell(c.summary)} |" for c in self._commands.values()]
        examples = [f"`/{self.trigger} {c.example}`" for c in self._commands.values() if c.example]
        if examples:
            lines += ["", "Examples: " + " · ".join(examples)]
        lines += ["", "Stages and items are numbered from 1, as shown by `/incident info`."]
        return "\n".join(lines)


# A "quoted phrase" or a bare word. Only double quotes group words: apostrophes are common in
# free text ("We're failing over") and must not be taken for quotes.
_WORD = re.compile(r'\s*(?:"([^"]*)"|([^\s"]\S*))')


def leading_words(text: str, count: int | None = None) -> tuple[list[str], str]:
    """Up to `count` words (all when None), and the text after them as typed, trimmed."""
    words: list[str] = []
    position = 0
    while (count is None or len(words) < count) and text[position:].strip():
        match = _WORD.match(text, position)
        if match is None:
            raise UsageError('Unbalanced quotes: close every " you open, e.g. "Database outage".')
        words.append(match.group(1) if match.group(1) is not None else match.group(2))
        position = match.end()
    return words, text[position:].strip()


async def dispatch(registry: Registry, request: SlashRequest, svc: Services, actor: Actor) -> SlashReply:
    try:
        words, rest = leading_words(request.text, 1)
    except UsageError as error:
        return ephemeral(str(error))
    if not words or words[0].lower() == "help":
        return ephemeral(registry.help_text())
    name = words[0].lower()
    subcommand = registry.get(name)
    if subcommand is None:
        return ephemeral(f"Unknown command `{words[0]}`.\n\n{registry.help_text()}")
    try:
        return await subcommand.handler(Context(request, svc, actor, rest))
    except UsageError as error:
        return ephemeral(f"{error}\nUsage: {registry.usage(name)}")
    except ValidationError as error:
        # An argument broke a limit of the command's model (e.g. an item title too long).
        # Worded as the REST API words it: one declaration of the limits, one sentence.
        return ephemeral(f"{describe_fields(validation_fields(error.errors()))}\nUsage: {registry.usage(name)}")
    except ServiceError as error:
        # Refusals (from the workflow or the access rules) reach the user verbatim.
        return ephemeral(error.message)


def _cell(text: str) -> str:
    """Table cells cannot contain a bare |."""
    return text.replace("|", "\\|")
