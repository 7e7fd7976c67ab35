"""Custom search attributes: what the Web UI filters on and what lists read.

SQL visibility (the dev server's SQLite and PostgreSQL) allows at most 10 Keyword and 3
of every other type per namespace, so this set is deliberately small. Names are part
of the public interface (README shows Web UI queries with them).
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

INCIDENT_TEAM_ID = SearchAttributeKey.for_keyword("IncidentTeamId")
INCIDENT_STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
INCIDENT_COMMANDER_ID = SearchAttributeKey.for_keyword("IncidentCommanderId")
INCIDENT_PLAYBOOK_ID = SearchAttributeKey.for_keyword("IncidentPlaybookId")
INCIDENT_CHANNEL_ID = SearchAttributeKey.for_keyword("IncidentChannelId")
INCIDENT_STAGE = SearchAttributeKey.for_keyword("IncidentStage")
INCIDENT_STARTED_AT = SearchAttributeKey.for_datetime("IncidentStartedAt")
INCIDENT_ENDED_AT = SearchAttributeKey.for_datetime("IncidentEndedAt")
INCIDENT_MEMBER_IDS = SearchAttributeKey.for_keyword_list("IncidentMemberIds")
INCIDENT_NAME = SearchAttributeKey.for_text("IncidentName")
INCIDENT_PUBLIC = SearchAttributeKey.for_bool("IncidentPublic")
# Set on the runs a restart begins: only restarted incidents have more than one run that
# lists count, so list totals correct for those alone (service/incident_lists.py `newest_incidents`).
INCIDENT_RESTARTED = SearchAttributeKey.for_bool("IncidentRestarted")
# Who has open items assigned in an ongoing incident (`/incident todo` finds their incidents with
# it, then reads only those); unset while there are none, and once the incident ends.
INCIDENT_OPEN_ASSIGNEES = SearchAttributeKey.for_keyword_list("IncidentOpenAssignees")

# The incident's severity level (1 is the most severe; unset: none given): lists filter and sort by it.
INCIDENT_SEVERITY = SearchAttributeKey.for_int("IncidentSeverity")
# The incident's select fields' values, `name=value` separated by spaces (`models.custom_fields.field_terms`):
# lists narrow their reading with it. Text, not KeywordList: SQL visibility has three KeywordList
# attributes at most, all taken. Only select fields: other fields' values may be text people typed.
INCIDENT_FIELDS = SearchAttributeKey.for_text("IncidentFields")

PLAYBOOK_TEAM_ID = SearchAttributeKey.for_keyword("PlaybookTeamId")
PLAYBOOK_MEMBER_IDS = SearchAttributeKey.for_keyword_list("PlaybookMemberIds")
PLAYBOOK_TITLE = SearchAttributeKey.for_text("PlaybookTitle")

INTEGRATION_TEAM_ID = SearchAttributeKey.for_keyword("IntegrationTeamId")

SCHEDULE_TEAM_ID = SearchAttributeKey.for_keyword("ScheduleTeamId")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    INCIDENT_TEAM_ID,
    INCIDENT_STATUS,
    INCIDENT_COMMANDER_ID,
    INCIDENT_PLAYBOOK_ID,
    INCIDENT_CHANNEL_ID,
    INCIDENT_STAGE,
    INCIDENT_STARTED_AT,
    INCIDENT_ENDED_AT,
    INCIDENT_MEMBER_IDS,
    INCIDENT_NAME,
    INCIDENT_PUBLIC,
    INCIDENT_RESTARTED,
    INCIDENT_OPEN_ASSIGNEES,
    PLAYBOOK_TEAM_ID,
    PLAYBOOK_MEMBER_IDS,
    PLAYBOOK_TITLE,
    INTEGRATION_TEAM_ID,
    SCHEDULE_TEAM_ID,
    INCIDENT_SEVERITY,
    INCIDENT_FIELDS,
)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    return [f"--search-attribute={key.name}={_cli_type(key)}" for key in ALL]


def _cli_type(key: SearchAttributeKey[Any]) -> str:
    return {
        "KEYWORD": "Keyword",
        "KEYWORD_LIST": "KeywordList",
        "DATETIME": "Datetime",
        "TEXT": "Text",
        "BOOL": "Bool",
        "INT": "Int",
        "FLOAT": "Double",
    }[key.indexed_value_type.name]
