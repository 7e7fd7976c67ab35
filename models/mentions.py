"""Mentions in what people type, made harmless before the bot posts it.

Mattermost notifies a whole channel for `@channel`, `@here` and `@all`, and a group's
members for `@<group>`, in a post whose author may use them; the bot may. So when the bot
relays what a person typed (an incident name, a status update, a checklist item), a
mention it must not make is neutralised: an invisible WORD JOINER (U+2060) goes right
after its `@`. The text reads the same, but Mattermost's mention parser
(`server/channels/app/mention_parser_standard.go`) splits words at any character that is
not a letter, a number or one of `:.-_@`, so it sees a bare "@" and a plain word, and the
web app's highlighter matches neither.

Where an `@` can start a mention: at the start of a word, after `.`, `-` or `:` (the parser
splits again there), after a leading `_`, after a markdown backslash escape, and as a
character reference (`&#64;`, `&#x40;`, `&commat;`), which Mattermost's markdown parser
decodes into the text it scans. All of those are caught; an `@` right after an ASCII
letter or digit (`alice@example.com`) never starts one and is left alone, as is an `@`
followed by a space or a line break. Nothing else in the text changes, and neutralising twice changes
nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Collection

WORD_JOINER = "\u2060"
CHANNEL_WIDE = frozenset({"channel", "here", "all"})

# An "@" as Mattermost reads it: literal, or a character reference its markdown decodes;
# not after an ASCII letter or digit, nor before ASCII whitespace or a word joiner.
_AT = re.compile(rf"(?<![A-Za-z0-9])(?:@|&#0*64;|&#[xX]0*40;|&commat;)(?![ \t\n\r\f\v{WORD_JOINER}])")
# The rest of the word the parser reads after an "@", as far as it can name anyone. Names
# are ASCII (a word going on past a non-ASCII letter is no one's name) and at most 64
# characters: a word reaching 80 is looked at no further and its "@" is neutralised, so the
# work stays linear whatever the text.
_LONGEST_LOOKED_AT = 80
_WORD = re.compile(rf"[A-Za-z0-9_.:@-]{{0,{_LONGEST_LOOKED_AT}}}")
# What a Mattermost username or group name may be; anything else can be no one's.
_NAME = re.compile(r"[a-z0-9._-]+")
# Characters that decode into more of the word (a character reference, an escape).
_DECODED = ("&", "\\")


def neutralise_mentions(
    text: str, *, usernames: Collection[str] = (), channel_wide: bool = False, groups: bool = False
) -> str:
    """`text` with the mentions it may not make neutralised.

    Kept: mentions of `usernames` (lowercase), `@channel`/`@here`/`@all` when `channel_wide`,
    and every other `@name` (a group, or someone not in `usernames`) when `groups`. With
    the defaults, every mention is neutralised.
    """
    pieces: list[str] = []
    done = 0
    for at in _AT.finditer(text):
        pieces.append(text[done : at.end()])
        done = at.end()
        if at.group() != "@" or not all(
            _allowed(name, usernames, channel_wide, groups) for name in _names_looked_up(text, at.start())
        ):
            pieces.append(WORD_JOINER)
    pieces.append(text[done:])
    return "".join(pieces)


def _names_looked_up(text: str, at: int) -> list[str]:
    """The names (lowercase) Mattermost's parser may look up for the "@" at `at`, as a user, a
    group or a channel-wide mention; one empty name (no one's) when what follows may decode
    into more, or is too long to be a name.

    It looks up the word after the "@", then the word without each trailing `.`, `-`, `_` or
    `:` in turn (so "@alice." may also be a group called "alice."); in a word that does not
    begin with this "@" it splits at `.`, `-` and `:` first (so "x.@here.now" is `@here`).
    """
    word = _WORD.match(text, at + 1)
    assert word is not None  # it matches the empty string too
    name = word.group().lower()
    if not name or len(name) == _LONGEST_LOOKED_AT or text.startswith(_DECODED, word.end()):
        return [""]
    names = [name]
    while names[-1][-1] in ".-_:" and len(names[-1]) > 1:
        names.append(names[-1][:-1])
    if not _begins_word(text, at):
        names.append(re.split(r"[.:-]", name, maxsplit=1)[0])
    return names


def _begins_word(text: str, at: int) -> bool:
    """Whether the parser's word holding the "@" at `at` begins with it, once the `:.-_` it trims
    off a word's start are gone. Before them, only ASCII that neither is part of a word nor can
    end a decoded character (an escape, a character reference) ends the word for certain."""
    start = at
    while start > 0 and text[start - 1] in ":.-_":
        start -= 1
    return start == 0 or (text[start - 1].isascii() and not text[start - 1].isalnum() and text[start - 1] not in "@;\\")


def _allowed(name: str, usernames: Collection[str], channel_wide: bool, groups: bool) -> bool:
    if name in CHANNEL_WIDE:
        return channel_wide
    if not name:
        return False
    return groups or not _NAME.fullmatch(name) or name in usernames
