"""Parsing `/incident` arguments: numbers, durations, @mentions and ~channels.

Only what a person can type on a keyboard is accepted: ASCII digits of sane length (no
superscripts, no 5,000-digit numbers), names that could be Mattermost usernames or
channel names. Anything else is a usage error before any lookup is made, so no typed
value ever reaches a Mattermost request path unchecked.
"""

from __future__ import annotations

import re

from api.slash.slash_registry import UsageError

# Matched whole (`fullmatch`: `$` would also match before a trailing newline) and ASCII only
# (`\d` and `str.isdigit()` accept superscripts and other scripts' digits that int() refuses).
_NUMBER = re.compile(r"[0-9]{1,6}", re.ASCII)
_DURATION = re.compile(r"([0-9]{1,9})[ \t]*(s|sec|m|min|h|hr|d)?", re.ASCII)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, None: 60}
# Mattermost usernames: lowercase letters, digits, '.', '-' and '_', starting with a letter, 3-22 long
# (accepted case-insensitively, as the client's autocomplete may capitalise).
_USERNAME = re.compile(r"@([A-Za-z][A-Za-z0-9._-]{0,63})", re.ASCII)
_CHANNEL = re.compile(r"~([A-Za-z0-9_-]{1,64})", re.ASCII)


def number(value: str, what: str) -> int:
    """A 1-based number as people count, returned 0-based."""
    if not _NUMBER.fullmatch(value) or int(value) < 1:
        raise UsageError(f"The {what} must be a number from 1, as shown by `/incident info` (got {value[:20]!r}).")
    return int(value) - 1


def duration(value: str) -> int:
    """Seconds from `15m`, `1h`, `90` (minutes), `off`."""
    if value.lower() in ("off", "0", "none"):
        return 0
    match = _DURATION.fullmatch(value.lower())
    if not match:
        raise UsageError(f"{value[:20]!r} is not a duration; use e.g. 15m, 1h, 4h or off.")
    # The bounds are the command model's (one declaration, one sentence through slash and REST).
    return int(match.group(1)) * _UNITS[match.group(2)]


def username(mention: str) -> str:
    """`@Name` -> `name`; anything that cannot be a Mattermost username is refused here."""
    return _named(mention, "@", _USERNAME, "Name people with @username", "There is no user {}.")


def channel_name(mention: str) -> str:
    """`~Name` -> `name`; anything that cannot be a Mattermost channel name is refused here."""
    return _named(
        mention,
        "~",
        _CHANNEL,
        "Name channels with ~channel-name",
        "There is no channel {} that you can see in this team.",
    )


def _named(mention: str, sigil: str, pattern: re.Pattern[str], how: str, missing: str) -> str:
    """The name in a mention, lowercased."""
    if not mention.startswith(sigil) or len(mention) < 2:
        raise UsageError(f"{how} (got {_shown(mention)!r}).")
    match = pattern.fullmatch(mention)
    if not match:
        raise UsageError(missing.format(_shown(mention)))
    return match.group(1).lower()


def _shown(typed: str, limit: int = 80) -> str:
    """What the person typed, echoed as typed but cut short: it may be megabytes long."""
    return typed if len(typed) <= limit else typed[:limit] + "…"
