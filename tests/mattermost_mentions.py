"""What Mattermost's server takes as mentions in a post: its parser, ported for tests.

Ported from mattermost/mattermost `server/channels/app/mention_parser_standard.go`
(`ProcessText`, `checkForMention`, `checkForGroupMention`), for what notifies more than the
people a post names: `@channel`, `@here`, `@all`, and any other `@name` (a group has no
other form). The server scans the plain text of a post's markdown, in which character
references (`&#64;`) and backslash escapes are decoded; `mentions` scans the raw message
and the message decoded that way, so it finds all the server would, and more (it also
looks inside code spans). Every name it reports is one the server would look up as a
user or a group, with no channel's keywords to stop it early.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

_SYSTEM = {"@here", "@channel", "@all"}
_NAME = re.compile(r"[a-z0-9._-]+")
# A markdown backslash escape (ASCII punctuation) or a character reference, as the server's
# markdown parser decodes them (server/public/shared/markdown/inlines.go).
_DECODED = re.compile(r"\\([!-/:-@\[-`{-~])|&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]*);")


@dataclass
class Mentions:
    # "channel", "here", "all"
    channel_wide: set[str] = field(default_factory=set)
    # Every other name looked up (lowercase) that could be someone's username or a group's.
    names: set[str] = field(default_factory=set)


def mentions(message: str) -> Mentions:
    found = Mentions()
    for text in (message, _decoded(message)):
        _process(text, found)
    # Only lowercase letters, digits, ".", "-" and "_" make a username or a group's name, and
    # no one may be called "channel", "here" or "all".
    found.names = {name for name in found.names if _NAME.fullmatch(name)} - {name[1:] for name in _SYSTEM}
    return found


def _decoded(message: str) -> str:
    def decode(match: re.Match[str]) -> str:
        return match.group(1) or html.unescape(match.group())

    return _DECODED.sub(decode, message)


def _in_word(char: str) -> bool:
    """Go's `unicode.IsLetter || unicode.IsNumber`, or one of `:.-_@`."""
    return char in ":.-_@" or unicodedata.category(char)[0] in "LN"


def _words(text: str) -> list[str]:
    """`strings.FieldsFunc` at every character that cannot be part of a mention."""
    words, current = [], ""
    for char in text:
        if _in_word(char):
            current += char
        elif current:
            words.append(current)
            current = ""
    return [*words, current] if current else words


def _process(text: str, found: Mentions) -> None:
    for word in _words(text):
        if word[0] == ":" and word[-1] == ":":
            continue  # an emoji
        word = word.lstrip(":.-_")
        _check(word, found)
        stripped = word
        while stripped and stripped[-1] in ".-:_":
            stripped = stripped[:-1]
            _check(stripped, found)
        if word not in _SYSTEM and word.startswith("@"):
            potential = word[:-1] if word[-1] in ".-:" else word
            found.names.add(potential[1:].lower())
        elif any(char in word for char in ".-:"):
            for piece in (p for p in re.split(r"[.\-:]", word) if p):
                _check(piece, found)
                if piece not in _SYSTEM and piece.startswith("@"):
                    found.names.add(piece[1:].lower())


def _check(word: str, found: Mentions) -> None:
    """`checkForMention` and `checkForGroupMention`, without keywords."""
    if word.lower() in _SYSTEM:
        found.channel_wide.add(word.lower()[1:])
    if word.startswith("@") and len(word) > 1:
        found.names.add(word[1:].lower())
