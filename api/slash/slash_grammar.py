"""Reading a slash command's words by the grammar its command-table entry declares.

A grammar (see `models.command_table`) is the usage people read: `check [<stage>] <item>`,
`assign <stage> <item> <assignee:@user|@none>`, `update [[<status:a|b>] <message...>]`. Each
placeholder names the command field it fills; how a field's words are read is said once,
here, by the field's name (`READERS`): numbers as people count them, durations, choices,
@people and ~channels by name, free text. Words that do not fit the grammar are answered
with the entry's hint and the usage.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from api.slash import slash_arguments as arguments
from api.slash.slash_registry import UsageError, leading_words
from service.command_runner import ChannelRef, ScheduleRef, UserRef

Kind = Literal["word", "choice", "rest", "list", "flag", "option"]


@dataclass(frozen=True)
class Element:
    field: str
    kind: Kind
    optional: bool
    shown: str
    choices: tuple[str, ...] = ()


def _user(word: str) -> UserRef | None:
    return UserRef(username=arguments.username(word))


def _user_or_none(word: str) -> UserRef | None:
    return None if word.lower() == "@none" else _user(word)


def _channel(word: str) -> ChannelRef:
    return ChannelRef(name=arguments.channel_name(word))


def _user_or_schedule(word: str) -> UserRef | ScheduleRef:
    """`@bob` is a person; any other word names an on-call schedule of the team."""
    return UserRef(username=arguments.username(word)) if word.startswith("@") else ScheduleRef(name=word)


# How each field's words are read (a word, or each word of a list).
READERS: dict[str, Callable[[str], Any]] = {
    "stage": lambda word: arguments.number(word, "stage"),
    "item": lambda word: arguments.number(word, "item"),
    "seconds": arguments.duration,
    "commander": _user,
    "assignee": _user_or_none,
    "users": _user,
    "channels": _channel,
    "target": _user_or_schedule,
    # As typed (`30m`, `14:30`, `none`): the command's model reads it, so a refusal reads as REST's.
    "due": str,
    # A field's name as typed: the incident reads it against its fields (a refusal lists them).
    "name": str,
    "at": str,
    # Timeline events' ids, as the timeline shows them (`e12`).
    "note_id": str,
    "event_id": str,
}
# Free text at the end is kept as typed (lines, quotes and all), except a title: one line,
# spaces folded.
REST_TEXT: dict[str, Callable[[str], str]] = {
    "title": lambda text: " ".join(text.split()),
}
# `[`, `]`, `<field:shown...>`, `--name <field:shown>` (an option: the word after it), `--flag`.
_TOKEN = re.compile(r"\[|\]|<([a-z_]+)(?::([^>]*?))?(\.\.\.)?>|(--[a-z-]+) <([a-z_]+)(?::([^>]*?))?>|(--[a-z-]+)")


@cache
def elements(grammar: str) -> tuple[Element, ...]:
    """The placeholders of a grammar (after its subcommand word), in order."""
    found: list[Element] = []
    depth = 0
    for match in _TOKEN.finditer(grammar.split(maxsplit=1)[1] if " " in grammar else ""):
        bracket = match.group(0)
        if bracket == "[":
            depth += 1
        elif bracket == "]":
            depth -= 1
        elif match.group(5):
            found.append(Element(match.group(5), "option", True, match.group(4)))
        elif match.group(7):
            found.append(Element(match.group(7).removeprefix("--"), "flag", True, bracket))
        else:
            field, shown, many = match.group(1), match.group(2) or match.group(1), bool(match.group(3))
            choices = tuple(shown.split("|")) if field not in READERS and "|" in shown else ()
            kind: Kind = "choice" if choices else ("list" if many and field in READERS else "rest" if many else "word")
            found.append(Element(field, kind, depth > 0, shown, choices))
    return tuple(found)


def usage(grammar: str) -> str:
    """The grammar as people read it: placeholders show what to type, not the field they fill."""

    def shown(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group(5):
            return f"{match.group(4)} <{match.group(6) or match.group(5)}>"
        if not match.group(1):
            return token
        element = next(e for e in elements(grammar) if e.field == match.group(1))
        bare = element.kind == "choice" or element.shown.startswith(("@", "~"))
        text = element.shown + ("..." if match.group(3) else "")
        return text if bare else f"<{text}>"

    return _TOKEN.sub(shown, grammar)


def read(grammar: str, text: str, hint: str) -> dict[str, Any]:
    """The command fields the words of `text` fill, or a `UsageError` saying what is wrong."""
    parts = elements(grammar)
    if parts and parts[-1].kind == "rest":
        return _read_with_rest(parts, text, hint)
    words = leading_words(text)[0]
    values: dict[str, Any] = {}
    for flag in (e for e in parts if e.kind == "flag"):
        present = [w for w in words if w.lower() == f"--{flag.field}"]
        words = [w for w in words if w.lower() != f"--{flag.field}"]
        values[flag.field] = bool(present)
    positional = [e for e in parts if e.kind in ("word", "choice")]
    listed = next((e for e in parts if e.kind == "list"), None)
    required = sum(1 for e in positional if not e.optional)
    spare = len(words) - required - (1 if listed else 0)
    if spare < 0 or (spare > len(positional) - required and listed is None):
        raise UsageError(hint)
    for element in positional:
        if element.optional:
            if spare <= 0:
                continue
            spare -= 1
        values[element.field] = _word(element, words.pop(0), hint)
    if listed is not None:
        values[listed.field] = [READERS[listed.field](word) for word in words]
    return values


def _word(element: Element, word: str, hint: str) -> Any:
    if element.kind == "choice":
        if word.lower() not in element.choices:
            raise UsageError(hint)
        return word.lower()
    return READERS[element.field](word)


def _read_with_rest(parts: tuple[Element, ...], text: str, hint: str) -> dict[str, Any]:
    """Words first, then the free text at the end as typed (apostrophes, quotes and lines kept)."""
    values: dict[str, Any] = {}
    rest = text.strip()
    for element in parts[:-1]:
        if element.kind == "option":
            # `--at 14:30` before the text, when it is there.
            option = rest.split(maxsplit=2)
            if option and option[0].lower() == element.shown:
                if len(option) < 2:
                    raise UsageError(hint)
                values[element.field] = READERS[element.field](option[1])
                rest = option[2] if len(option) > 2 else ""
            continue
        if element.kind == "choice":
            # An optional choice is taken only when the first word is one; quotes mean nothing here.
            head = rest.split(maxsplit=1)[0] if rest.split() else ""
            if head.lower() in element.choices:
                values[element.field] = head.lower()
                rest = rest[len(head) :].strip()
            elif not element.optional:
                raise UsageError(hint)
            continue
        words, rest = leading_words(rest, 1)
        if not words:
            raise UsageError(hint)
        values[element.field] = READERS[element.field](words[0])
    last = parts[-1]
    if last.field == "title" and len(rest) > 1 and rest[0] == rest[-1] == '"' and '"' not in rest[1:-1]:
        rest = rest[1:-1].strip()  # a quoted title: the quotes are not part of it
    value = REST_TEXT.get(last.field, str)(rest)
    if not value.strip():
        if last.optional and not any(e.optional for e in parts[:-1]):
            return values  # an optional text of its own (`page <target> [<reason...>]`)
        raise UsageError(hint)
    values[last.field] = value
    return values
