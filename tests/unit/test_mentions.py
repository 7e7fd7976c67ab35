"""Neutralising mentions: what Mattermost would notify for, before and after."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.mentions import WORD_JOINER, neutralise_mentions
from tests.mattermost_mentions import mentions

MEMBERS = frozenset({"alice", "bob.smith"})
# Pieces hostile text is made of: mentions and their disguises, punctuation the parser
# splits or trims at, markdown escapes and character references, letters and marks.
_PIECES = [
    "@",
    "channel",
    "Channel",
    "CHANNEL",
    "here",
    "HeRe",
    "all",
    "alice",
    "bob.smith",
    "devs",
    "&#64;",
    "&#x40;",
    "&#X0040;",
    "&commat;",
    "&#99;",
    "&amp;",
    "\\",
    "*",
    "_",
    ".",
    "-",
    ":",
    "(",
    ")",
    "`",
    "~",
    " ",
    "\n",
    "\u00a0",
    "\u2028",
    "x",
    "7",
    "é",
    "e\u0301",
    "Å",
    WORD_JOINER,
]
texts = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=24).map("".join),
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=3)), max_size=16).map("".join),
)
# A neutralised "@": literal or as a character reference, followed by the joiner.
_NEUTRALISED = re.compile(f"(@|&#0*64;|&#[xX]0*40;|&commat;){WORD_JOINER}")


def _only_joiners_added(before: str, after: str) -> bool:
    """Whether `after` is `before` with word joiners inserted, each right after an "@"."""
    i = 0
    for j, char in enumerate(after):
        if i < len(before) and before[i] == char:
            i += 1
        elif char != WORD_JOINER or not _NEUTRALISED.search(after[: j + 1]):
            return False
    return i == len(before)


@pytest.mark.parametrize(
    "text",
    [
        "@channel db down",
        "@Channel",
        "@CHANNEL!",
        "@here.",
        "@here...",
        "(@all)",
        "**@channel**",
        "_@here_",
        "@channel:",
        ":@channel",
        "x.@here.now",
        "db-@all",
        "\\@channel",
        "&#64;channel",
        "&#x40;here",
        "&commat;all",
        "@&#99;hannel",
        "@here\\.",
        "> @here @all look",
        "`@channel`",
        "@devs please",
        "@bob.smith.",
    ],
)
def test_mentions_people_could_slip_past_are_neutralised(text: str) -> None:
    assert mentions(text).channel_wide or mentions(text).names  # each is a real mention
    neutral = neutralise_mentions(text, usernames=MEMBERS)
    assert mentions(neutral).channel_wide == set()
    assert mentions(neutral).names <= MEMBERS
    assert neutral.replace(WORD_JOINER, "") == text


@pytest.mark.parametrize("text", ["alice@channel.com", "mail ops@here.example", "meet @ 5", "a@b", "no mention"])
def test_e_mail_addresses_and_lone_at_signs_are_left_alone(text: str) -> None:
    assert neutralise_mentions(text) == text


def test_members_stay_mentioned_and_rights_keep_what_they_allow() -> None:
    text = "@alice, @Alice: @bob.smith @here @devs @alice."
    assert neutralise_mentions(text, usernames=MEMBERS) == (
        f"@alice, @Alice: @bob.smith @{WORD_JOINER}here @{WORD_JOINER}devs @{WORD_JOINER}alice."
    )
    assert neutralise_mentions(text, usernames=MEMBERS, channel_wide=True) == (
        f"@alice, @Alice: @bob.smith @here @{WORD_JOINER}devs @{WORD_JOINER}alice."
    )
    assert neutralise_mentions(text, usernames=MEMBERS, groups=True) == (
        f"@alice, @Alice: @bob.smith @{WORD_JOINER}here @devs @alice."
    )
    # "@here.devs" is `@here` where the parser splits it, and may be a group called "here.devs".
    assert neutralise_mentions("x.@here.devs", channel_wide=True) == f"x.@{WORD_JOINER}here.devs"
    assert neutralise_mentions("x.@here.devs", channel_wide=True, groups=True) == "x.@here.devs"


def test_a_word_too_long_to_be_a_name_is_neutralised_and_long_texts_take_linear_work() -> None:
    long_word = "@" + "a" * 100
    assert neutralise_mentions(long_word, usernames={"a" * 100}, groups=True) == f"@{WORD_JOINER}" + "a" * 100
    hostile = "x.@" * 20_000
    assert neutralise_mentions(hostile) == f"x.@{WORD_JOINER}" * 20_000


@given(texts)
def test_no_output_mentions_anyone(text: str) -> None:
    found = mentions(neutralise_mentions(text))
    assert found.channel_wide == set()
    assert found.names == set()


@given(texts, st.booleans(), st.booleans())
def test_only_what_is_allowed_stays_a_mention(text: str, channel_wide: bool, groups: bool) -> None:
    found = mentions(neutralise_mentions(text, usernames=MEMBERS, channel_wide=channel_wide, groups=groups))
    if not groups:
        assert found.names <= MEMBERS
    if not channel_wide:
        assert found.channel_wide == set()


@given(texts, st.booleans(), st.booleans())
def test_neutralising_changes_nothing_else_and_twice_is_once(text: str, channel_wide: bool, groups: bool) -> None:
    once = neutralise_mentions(text, usernames=MEMBERS, channel_wide=channel_wide, groups=groups)
    assert _only_joiners_added(text, once)
    assert neutralise_mentions(once, usernames=MEMBERS, channel_wide=channel_wide, groups=groups) == once
