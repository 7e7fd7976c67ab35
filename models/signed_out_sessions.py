"""Backstage sessions that were signed out, kept in Temporal until they would have expired anyway.

A backstage session is an encrypted cookie, which any API process behind a load balancer
accepts; signing out must end it in all of them, and Temporal is the only store they share.
So a sign-out is recorded in a `SignedOutSessionsWorkflow`, and every page view asks it
whether its session was ended. Only a hash of the session's random id is recorded: the
history holds nothing that signs anyone in, nor the Mattermost token.

An entry is needed only while its cookie could still be presented: it is pruned once its
session would have expired (plus `CLOCK_SKEW_SECONDS`), so a workflow holds at most the
sign-outs of the last `SESSION_SECONDS`. Sessions are spread over `SHARDS` workflows by the
first character of their hash, so each holds a sixteenth of them (about 46 bytes each,
carried through continue-as-new: some 10,000 sign-outs per shard within 12 hours stay
under Temporal's 512 KB payload warning).
"""

from __future__ import annotations

import hashlib

from pydantic import Field

from models.common import Model

# A session lasts at most this long (or as long as Mattermost's token, if shorter).
SESSION_SECONDS = 12 * 3600
# An entry outlives its session by this much, so an API process whose clock runs behind
# the worker's still finds it while that process would accept the cookie.
CLOCK_SKEW_SECONDS = 10 * 60
HASH_LENGTH = 32
SHARDS = "0123456789abcdef"
WORKFLOW_ID_PREFIX = "backstage-signed-out-sessions-"


def session_hash(session_id: str) -> str:
    """What is recorded of a session: 128 bits of SHA-256 of its random id (itself 256 bits),
    enough to tell sessions apart and useless for making a cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:HASH_LENGTH]


def signed_out_workflow_id(hashed: str) -> str:
    """The shard that records the session with this hash."""
    return WORKFLOW_ID_PREFIX + hashed[0]


class SignOut(Model):
    session_hash: str = Field(pattern=f"^[{SHARDS}]{{{HASH_LENGTH}}}$")
    # When the session would have expired anyway (Unix seconds).
    expires_at: int


class SignedOutSessions(Model):
    shard: str = Field(pattern=f"^[{SHARDS}]$")
    # Session hash -> Unix second after which the entry may be dropped. Seconds rather than
    # datetimes: the whole map is carried through continue-as-new, so its size matters.
    ended_until: dict[str, int] = Field(default_factory=dict)


def record_sign_out(state: SignedOutSessions, sign_out: SignOut, now: int) -> None:
    """Remember a signed-out session; never past the longest a session lasts, whatever it claims."""
    expires_at = min(sign_out.expires_at, now + SESSION_SECONDS)
    state.ended_until[sign_out.session_hash] = expires_at + CLOCK_SKEW_SECONDS


def prune_expired(state: SignedOutSessions, now: int) -> None:
    """Forget sessions no process would accept any more."""
    state.ended_until = {hashed: until for hashed, until in state.ended_until.items() if until > now}
