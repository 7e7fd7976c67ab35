"""Subcommands of `/incident`: how they are declared, parsed and listed in the help."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from api.errors import ApiError
from api.services import Services
from api.slash.protocol import SlashReply, SlashRequest, ephemeral
from models.common import Actor


class UsageError(Exception):
    """Bad arguments: the reply names the problem and shows the right usage."""


@dataclass(frozen=True)
class Context:
    request: SlashRequest
    svc: Services
    actor: Actor
    args: list[str]


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


def split_arguments(text: str) -> list[str]:
    """Words, with "quoted phrases" kept together."""
    try:
        return shlex.split(text)
    except ValueError:
        raise UsageError('Unbalanced quotes: close every " you open, e.g. "Database outage".') from None


async def dispatch(registry: Registry, request: SlashRequest, svc: Services, actor: Actor) -> SlashReply:
    try:
        words = split_arguments(request.text)
    except UsageError as error:
        return ephemeral(str(error))
    if not words or words[0].lower() == "help":
        return ephemeral(registry.help_text())
    name = words[0].lower()
    subcommand = registry.get(name)
    if subcommand is None:
        return ephemeral(f"Unknown command `{words[0]}`.\n\n{registry.help_text()}")
    try:
        return await subcommand.handler(Context(request, svc, actor, words[1:]))
    except UsageError as error:
        return ephemeral(f"{error}\nUsage: {registry.usage(name)}")
    except ApiError as error:
        # Refusals (from the workflow or the access rules) reach the user verbatim.
        return ephemeral(error.message)


def _cell(text: str) -> str:
    """Table cells cannot contain a bare |."""
    return text.replace("|", "\\|")
