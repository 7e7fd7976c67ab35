"""The demo world the dev stack runs against: one team, four people, a bot and ``/incident``.

Seeding is a series of get-or-create steps, so it is idempotent: after a restart
from the data file it finds and returns the same team, users, tokens and command.
"""

from __future__ import annotations

import copy

from mattermost_standin import views
from mattermost_standin.domain import channels, commands, oauth, teams, users
from mattermost_standin.store import Record, Store

TEAM_NAME = "demo"
BOT_USERNAME = "incident-bot"
COMMAND_TRIGGER = "incident"
SEEDED_DESCRIPTION = "demo seed"
OAUTH_APP_NAME = "Incident backstage"
# (username, roles, first name, last name)
PEOPLE = (
    ("alice", "system_admin system_user", "Alice", "Anderson"),
    ("bob", "system_user", "Bob", "Brown"),
    ("carol", "system_user", "Carol", "Clark"),
    ("dave", "system_user", "Dave", "Davis"),
)


def _seed_token(store: Store, user_id: str) -> str:
    for token in store.state.tokens.values():
        if token["user_id"] == user_id and token["description"] == SEEDED_DESCRIPTION and token["is_active"]:
            return str(token["token"])
    return str(users.create_access_token(store, user_id, SEEDED_DESCRIPTION)["token"])


def _join(store: Store, team: Record, user_id: str) -> None:
    teams.add_team_member(store, team["id"], user_id)
    for name, _ in teams.DEFAULT_CHANNELS:
        channels.add_channel_member(store, channels.get_channel_by_name(store.state, team["id"], name), user_id)


def _oauth_app(store: Store, callback_url: str, creator_id: str) -> Record:
    app = next((a for a in store.state.oauth_apps.values() if a["name"] == OAUTH_APP_NAME), None)
    if app is None:
        return oauth.register_app(store, name=OAUTH_APP_NAME, callback_urls=[callback_url], creator_id=creator_id)
    app["callback_urls"] = [callback_url]
    app["homepage"] = callback_url
    return app


def seed_demo(store: Store, command_url: str, oauth_callback_url: str | None = None) -> Record:
    """Ensure the demo world exists and ``/incident`` points at ``command_url``; return it.

    With ``oauth_callback_url``, the backstage's OAuth 2.0 app is registered too (its
    ``id`` and ``client_secret`` are ``world["oauth_app"]``)."""
    state = store.state
    team = next((t for t in state.teams.values() if t["name"] == TEAM_NAME), None)
    if team is None:
        team = teams.create_team(store, name=TEAM_NAME, display_name="Demo Team")
    people: dict[str, Record] = {}
    for username, roles, first_name, last_name in PEOPLE:
        user = users.find_user_by_username(state, username) or users.create_user(
            store,
            username=username,
            email=f"{username}@demo.example.com",
            first_name=first_name,
            last_name=last_name,
            roles=roles,
        )
        _join(store, team, user["id"])
        people[username] = {
            "user": views.user_for(state, user, user),
            "token": _seed_token(store, user["id"]),
        }
    alice_id = people["alice"]["user"]["id"]
    bot_user = users.find_user_by_username(state, BOT_USERNAME)
    if bot_user is None:
        bot = users.create_bot(
            store,
            username=BOT_USERNAME,
            display_name="Incident Bot",
            description="Posts incident updates",
            owner_id=alice_id,
        )
        bot_user = state.users[bot["user_id"]]
    _join(store, team, bot_user["id"])
    command_fields = {
        "url": command_url,
        "auto_complete": True,
        "auto_complete_desc": "Declare and manage incidents",
        "auto_complete_hint": "[subcommand]",
        "display_name": "Incident",
        "description": "Incident response",
    }
    command = commands.find_command(state, team["id"], COMMAND_TRIGGER)
    if command is None:
        command = commands.register_command(
            store,
            team_id=team["id"],
            creator_id=alice_id,
            fields={"trigger": COMMAND_TRIGGER, "method": "P", **command_fields},
        )
    elif command["url"] != command_url:
        command = commands.update_command(store, command["id"], {"url": command_url})
    app = _oauth_app(store, oauth_callback_url, alice_id) if oauth_callback_url else None
    return {
        "oauth_app": copy.deepcopy(app),
        "team": views.team_for(state, team, state.users[alice_id]),
        "users": people,
        "bot": {
            "user": views.user_for(state, bot_user, bot_user),
            "token": _seed_token(store, bot_user["id"]),
        },
        "command": views.command_for(command, sanitized=False),
        "channels": {
            name: copy.deepcopy(channels.get_channel_by_name(state, team["id"], name))
            for name, _ in teams.DEFAULT_CHANNELS
        },
    }
