"""The incident commands, declared once: what each is and how every face reaches it.

A command is its model (`models.incident_commands`: the fields a person gives, with their
limits, and the command the workflow takes), its rule and effect (`Incident.check_<rule>`
and `Incident.<rule>` in `workflows.incident_rules`), and one entry here. From this table:
- the workflow registers one Update (with its validator) per entry (`workflows.incident_workflow`);
- the REST API registers one route per `Rest` face, with its OpenAPI operation (`api.rest.command_routes`);
- `/incident` parses a `Slash` face's grammar, dispatches, and lists it in `/incident help`
  (`api.slash.slash_grammar`, `api.slash.slash_registry`);
- buttons on bot posts (`buttons`), dialogs, and the backstage's forms send the same command.

Adding a command costs its model, its rule and its entry (tests aside).

A slash grammar is the usage people read, with each placeholder naming the command field it
fills: `<field>`, `<field:shown as>`, `[...]` optional, `<field...>` the rest of the text or
every remaining word, `--flag` a boolean field, `@user`/`~channel` people and channels (by
name), `a|b` a choice. `api.slash.slash_grammar` says how each field's words are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.common import Model
from models.incident_commands import (
    AcknowledgePage,
    AddItem,
    AddNote,
    Announce,
    AnnounceBody,
    AssigneeBody,
    AssignItem,
    ChangeCommander,
    ChangeStage,
    CommanderChange,
    DeclinePage,
    DeclineRetrospective,
    DeleteNote,
    EditItem,
    EditNote,
    EndIncident,
    FieldValueFields,
    IncidentCommand,
    InviteMembers,
    ItemDueFields,
    ItemEditFields,
    ItemFields,
    ItemMove,
    ItemStateChange,
    MembersBody,
    MoveItem,
    NoteEditFields,
    NoteFields,
    PageSomeone,
    PostStatusUpdate,
    PublishRetrospective,
    ReminderFields,
    RemoveItem,
    RestartIncident,
    RunItemCommand,
    SaveRetrospective,
    SetField,
    SetItemDue,
    SetItemState,
    SetReminder,
    SetSeverity,
    SeverityFields,
    SnoozeFields,
    SnoozeReminder,
    StageMove,
    StarEvent,
    StatusUpdateFields,
    UnstarEvent,
)
from models.paging import PageFields
from models.retrospective import DeclineReason, RetrospectiveText

ITEMS = "/{incident_id}/checklists/{stage}/items"


@dataclass(frozen=True)
class Rest:
    """A route under `/api/v1/incidents`; path parameters `stage` and `item` are command fields."""

    method: Literal["POST", "PUT", "DELETE"]
    path: str
    description: str
    # The JSON body: the fields a person gives (None: the route takes no body).
    body: type[Model] | None = None
    tag: Literal["incidents", "checklists"] = "incidents"


@dataclass(frozen=True)
class Confirm:
    """What asks for a yes when the workflow answers `ConfirmationRequired`, and what the yes resends."""

    title: str
    submit: str
    # Fields the confirmed command is sent again with.
    resend: Mapping[str, Any]
    # The confirmation names the stage it was given for (the workflow refuses it once the
    # incident has moved on).
    from_stage: bool = False
    # Said instead of a dialog when Mattermost sent no trigger id.
    without_dialog: str = ""


@dataclass(frozen=True)
class Slash:
    grammar: str
    summary: str
    # The reply when the words do not fit the grammar (followed by the usage).
    hint: str
    # "You can only <where> from within the incident's channel."
    where: str
    example: str = ""
    # Fields the subcommand always sends (e.g. `check` toggles).
    preset: Mapping[str, Any] = field(default_factory=dict)
    confirm: Confirm | None = None
    # Without arguments: show something instead (`commander`), or open the command's dialog.
    when_empty: Literal["dialog", "show_commander", "show_severity", "show_fields"] | None = None

    @property
    def name(self) -> str:
        return self.grammar.split()[0]


@dataclass(frozen=True)
class Ref:
    """A command field naming people or channels, resolved by the service to the facts the
    workflow's rules need. REST and forms name them by id (`rest_field`); slash commands by
    @username and ~channel-name. A `target` is a person or an on-call schedule (REST: `user_id`
    or `schedule_id`; slash: @username or the schedule's name)."""

    kind: Literal["user", "users", "channels", "target"]
    rest_field: str
    optional: bool = False


@dataclass(frozen=True)
class CommandSpec:
    name: str  # the Update's name
    command: type[IncidentCommand]
    rest: Rest
    slash: Slash | None = None
    refs: Mapping[str, Ref] = field(default_factory=dict)
    # Actions of buttons on bot posts (the live checklist, reminders) that send this command.
    buttons: tuple[str, ...] = ()
    # Sent with update-with-start: a restart may need a new run of the incident's workflow.
    starts_a_run: bool = False
    # After the incident recorded it, the item's slash command is executed as the caller.
    runs_item_command: bool = False
    # The rule's name in `Incident`, when it is not the command's.
    rule_name: str = ""
    # The command carries the team's severity levels (`levels`), which the service reads.
    severity_levels: bool = False
    # The command's `value` may name a person (a user field): the service looks them up (`users`).
    value_names_user: bool = False

    @property
    def rule(self) -> str:
        """`Incident.check_<rule>` decides, `Incident.<rule>` applies."""
        return self.rule_name or self.name


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "end_incident",
        EndIncident,
        Rest("POST", "/{incident_id}/end", "End the incident: the channel and broadcast channels are told, "
             "and its workflow completes."),
        Slash("end", "End the incident (asks for confirmation)", hint="", where="end an incident",
              preset={"confirmed": False},
              confirm=Confirm("End incident?", "End incident", resend={"confirmed": True})),
        rule_name="end",
    ),
    CommandSpec(
        "restart_incident",
        RestartIncident,
        Rest("POST", "/{incident_id}/restart", "Reopen an ended incident, with its whole state and timeline."),
        Slash("restart", "Reopen an ended incident", hint="", where="restart an incident"),
        starts_a_run=True,
        rule_name="restart",
    ),
    CommandSpec(
        "set_item_state",
        SetItemState,
        Rest("PUT", ITEMS + "/{item}/state", "Set an item's state: open, in_progress or done.",
             body=ItemStateChange, tag="checklists"),
        Slash("check [<stage>] <item>", "Mark an item done, or open again (active stage unless you name one)",
              hint="Name the item (and optionally the stage first).", where="check items", example="check 2",
              preset={"state": "toggle"}),
        buttons=("set_item", "pick_item"),
    ),
    CommandSpec(
        "add_item",
        AddItem,
        Rest("POST", ITEMS, "Add an item to a stage (at `position`, or at the end).", body=ItemFields,
             tag="checklists"),
        Slash("checkadd <stage> <title...>", "Add an item to a stage",
              hint="Name the stage and the new item's title.", where="edit the checklist"),
    ),
    CommandSpec(
        "remove_item",
        RemoveItem,
        Rest("DELETE", ITEMS + "/{item}", "Remove an item from a stage.", tag="checklists"),
        Slash("checkremove <stage> <item>", "Remove an item", hint="Name the stage and the item.",
              where="edit the checklist"),
    ),
    CommandSpec(
        "assign_item",
        AssignItem,
        Rest("PUT", ITEMS + "/{item}/assignee", "Assign an item to a member of the incident channel, or unassign it.",
             body=AssigneeBody, tag="checklists"),
        Slash("assign <stage> <item> <assignee:@user|@none>", "Assign an item (@none unassigns)",
              hint="Name the stage, the item and the person.", where="assign items"),
        refs={"assignee": Ref("user", "assignee_id", optional=True)},
    ),
    CommandSpec(
        "set_item_due",
        SetItemDue,
        Rest("PUT", ITEMS + "/{item}/due", "Give an item a due time (`30m` from now, `14:30` in your Mattermost "
             "time zone, else UTC), or clear it (`none`). When it passes with the item still open, the item is "
             "flagged overdue and its assignee (else the commander) gets a direct message, once.",
             body=ItemDueFields, tag="checklists"),
        Slash("due <stage> <item> <due:30m|14:30|none>", "Set when an item is due: in 30m, at 14:30, or none",
              hint="Name the stage, the item and when it is due.", where="set due times", example="due 1 2 30m"),
    ),
    CommandSpec(
        "edit_item",
        EditItem,
        Rest("PUT", ITEMS + "/{item}", "Rename an item or change its description or command (fields left out stay).",
             body=ItemEditFields, tag="checklists"),
    ),
    CommandSpec(
        "move_item",
        MoveItem,
        Rest("POST", ITEMS + "/{item}/move", "Move an item to another position within its stage.", body=ItemMove,
             tag="checklists"),
    ),
    CommandSpec(
        "run_item_command",
        RunItemCommand,
        Rest("POST", ITEMS + "/{item}/run", "Run the item's slash command as the caller, in the incident channel, "
             "and record that it ran.\n\nThe incident records the run first (its rules decide whether you may); "
             "then the command runs as you. If Mattermost refuses to run it, the answer says so (502).",
             tag="checklists"),
        runs_item_command=True,
    ),
    CommandSpec(
        "change_stage",
        ChangeStage,
        Rest("POST", "/{incident_id}/stage", "Move to the next or previous stage, or to a given one.\n\n"
             "Moving past open items needs `force` (otherwise 409 `confirmation_required`); with\n"
             "`from_stage`, the move is refused if the incident is no longer at that stage.", body=StageMove),
        Slash("stage <direction:next|prev> [--force]", "Move to the next or previous stage",
              hint="Say `next` or `prev`.", where="change stages", example="stage next",
              confirm=Confirm("Items still open", "Move on", resend={"force": True}, from_stage=True,
                              without_dialog="Type `/incident stage next --force` to move on.")),
        buttons=("next_stage",),
    ),
    CommandSpec(
        "change_commander",
        ChangeCommander,
        Rest("POST", "/{incident_id}/commander", "Make another member of the incident channel the commander.",
             body=CommanderChange),
        Slash("commander [<commander:@user>]", "Show or change the commander", hint="Name one person.",
              where="see or change the commander", when_empty="show_commander"),
        refs={"commander": Ref("user", "user_id")},
    ),
    CommandSpec(
        "invite_members",
        InviteMembers,
        Rest("POST", "/{incident_id}/members", "Invite team members to the incident channel.", body=MembersBody),
        Slash("add <users:@user...>", "Invite people to the incident channel", hint="Name at least one person.",
              where="invite people", example="add @bob"),
        refs={"users": Ref("users", "user_ids")},
    ),
    CommandSpec(
        "announce",
        Announce,
        Rest("POST", "/{incident_id}/announcements", "Announce the incident in channels the caller can post to.",
             body=AnnounceBody),
        Slash("announce <channels:~channel...>", "Announce the incident in other channels",
              hint="Name at least one channel.", where="announce an incident"),
        refs={"channels": Ref("channels", "channel_ids")},
    ),
    CommandSpec(
        "post_status_update",
        PostStatusUpdate,
        Rest("POST", "/{incident_id}/status-updates", "Post a status update to the channel and broadcast channels; "
             "resets the reminder.", body=StatusUpdateFields),
        Slash("update [[<status:investigating|identified|monitoring|resolved>] <message...>]",
              "Post a status update (resets the reminder); without a message, a dialog asks for it",
              hint="Write the update's message.", where="post status updates",
              example="update identified Failing over to the replica", when_empty="dialog"),
        # The reminders' and the checklist's *Post update* opens the dialog.
        buttons=("post_update",),
    ),
    CommandSpec(
        "set_reminder",
        SetReminder,
        Rest("POST", "/{incident_id}/reminder", "Set the status update reminder's interval (0 turns it off).",
             body=ReminderFields),
        Slash("reminder <seconds:15m|1h|4h|off>", "Change the status update reminder",
              hint="Give one interval, or off.", where="change the reminder", example="reminder 1h"),
    ),
    CommandSpec(
        "snooze_reminder",
        SnoozeReminder,
        Rest("POST", "/{incident_id}/reminder/snooze", "Postpone the next status update reminder.", body=SnoozeFields),
        buttons=("snooze",),
    ),
    CommandSpec(
        "add_note",
        AddNote,
        Rest("POST", "/{incident_id}/notes", "Add a note to the incident's timeline (also after it ended).",
             body=NoteFields),
        Slash("note [--at <at:HH:MM>] <text...>", "Add a note to the timeline (--at back-dates it, your time zone)",
              hint="Write the note (after `--at HH:MM` to back-date it).", where="add notes",
              example="note --at 14:05 Rolled back deploy 4412"),
    ),
    CommandSpec(
        "edit_note",
        EditNote,
        Rest("PUT", "/{incident_id}/notes/{note_id}", "Change the text of a note you wrote (it keeps its id and "
             "place; the edit is on the timeline).", body=NoteEditFields),
        Slash("noteedit <note_id:id> <text...>", "Change a note you wrote (its id is on the timeline)",
              hint="Name the note by its id (such as e12), then its new text.", where="edit notes",
              example="noteedit e12 Rolled back deploys 4412 and 4413"),
    ),
    CommandSpec(
        "delete_note",
        DeleteNote,
        Rest("DELETE", "/{incident_id}/notes/{note_id}", "Delete a note you wrote: its text is gone from every view; "
             "the deletion is on the timeline."),
        Slash("notedelete <note_id:id>", "Delete a note you wrote", hint="Name the note by its id (such as e12).",
              where="delete notes", example="notedelete e12"),
    ),
    CommandSpec(
        "star_event",
        StarEvent,
        Rest("POST", "/{incident_id}/timeline/{event_id}/star", "Star a timeline event as a key moment (the report "
             "and the retrospective list them)."),
        Slash("star <event_id:id>", "Star a timeline event as a key moment", hint="Name the event by its id "
              "(such as e12: `/incident timeline` shows them).", where="star key moments", example="star e12"),
    ),
    CommandSpec(
        "unstar_event",
        UnstarEvent,
        Rest("DELETE", "/{incident_id}/timeline/{event_id}/star", "The event is no longer a key moment."),
        Slash("unstar <event_id:id>", "Unstar a key moment", hint="Name the event by its id (such as e12).",
              where="unstar key moments", example="unstar e12"),
    ),
    CommandSpec(
        "save_retrospective",
        SaveRetrospective,
        Rest("PUT", "/{incident_id}/retrospective", "Save a new version of the incident's retrospective (markdown), "
             "based on `version`: when someone saved another version since, it is refused (409) and nothing "
             "changes. Members of the incident channel, while it is a draft.", body=RetrospectiveText),
    ),
    CommandSpec(
        "publish_retrospective",
        PublishRetrospective,
        Rest("POST", "/{incident_id}/retrospective/publish", "Publish the retrospective: its summary (the first "
             "section) is posted to the incident channel and the broadcast channels, webhooks get "
             "`incident.retrospective_published`, and the reminders stop. The commander, or a member of the "
             "playbook, in the incident channel."),
        Slash("retropublish", "Publish the retrospective (its summary is posted here and in the broadcast channels)",
              hint="", where="publish the retrospective"),
    ),
    CommandSpec(
        "decline_retrospective",
        DeclineRetrospective,
        Rest("POST", "/{incident_id}/retrospective/decline", "Decline the retrospective (this incident needs "
             "none), with the reason: the reminders stop. The commander, or a member of the playbook, in the "
             "incident channel.", body=DeclineReason),
        Slash("retrodecline <reason...>", "Decline the retrospective, saying why (its reminders stop)",
              hint="Say why this incident needs no retrospective.", where="decline the retrospective",
              example="retrodecline A duplicate of the earlier outage"),
    ),
    CommandSpec(
        "set_severity",
        SetSeverity,
        Rest("POST", "/{incident_id}/severity", "Set the incident's severity: a level of the team by its number "
             "(`2`), `sev2` or its name, in any case. Also after the incident ended, to correct it.",
             body=SeverityFields),
        Slash("severity [<severity...>]", "Set the severity (a level's number or name); without one, show it",
              hint="Give a level's number or name, e.g. `severity 2` or `severity sev2`.",
              where="change the severity", example="severity sev2", when_empty="show_severity"),
        severity_levels=True,
    ),
    CommandSpec(
        "set_field",
        SetField,
        Rest("PUT", "/{incident_id}/fields/{name}", "Set one of the incident's custom fields (its playbook declares "
             "them): a select's option (any case), a number within its bounds, text, or a person (`@username`); "
             "`none`, empty or null clears a field that is not required. Also after the incident ended.",
             body=FieldValueFields),
        Slash("field <name> <value...>", "Set a custom field (`none` clears it); without arguments, list them",
              hint="Name the field and its value, e.g. `field region eu-west` (`field region none` clears it).",
              where="change fields", example="field region eu-west", when_empty="show_fields"),
        value_names_user=True,
    ),
    CommandSpec(
        "page",
        PageSomeone,
        Rest("POST", "/{incident_id}/pages", "Page a person (`user_id`), or the people on call in a schedule "
             "(`schedule_id`), now: a direct message from the bot with *Acknowledge* and *Decline* buttons.",
             body=PageFields),
        Slash("page <target:@user|schedule> [<reason...>]", "Page a person or an on-call schedule now",
              hint="Name one person (@name) or one schedule, then the reason if you like.", where="page people",
              example="page @bob the database is down"),
        refs={"target": Ref("target", "user_id")},
    ),
    CommandSpec(
        "acknowledge_page",
        AcknowledgePage,
        Rest("POST", "/{incident_id}/pages/{page_id}/acknowledge", "Acknowledge a page sent to you: the "
             "escalation stops and you are added to the incident channel. Only the person paged may."),
        buttons=("page_ack",),
    ),
    CommandSpec(
        "decline_page",
        DeclinePage,
        Rest("POST", "/{incident_id}/pages/{page_id}/decline", "Decline a page sent to you: the escalation "
             "moves on to the next tier at once. Only the person paged may."),
        buttons=("page_decline",),
    ),
)  # fmt: skip

BY_NAME: dict[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}
BY_BUTTON: dict[str, CommandSpec] = {action: spec for spec in COMMANDS for action in spec.buttons}
BY_SLASH: dict[str, CommandSpec] = {spec.slash.name: spec for spec in COMMANDS if spec.slash}
BY_COMMAND: dict[type[IncidentCommand], CommandSpec] = {spec.command: spec for spec in COMMANDS}


def update_name(command: IncidentCommand) -> str:
    """The name of the Update that carries `command`."""
    return BY_COMMAND[type(command)].name
