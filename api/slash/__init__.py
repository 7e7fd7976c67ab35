"""The `/incident` slash command: Mattermost's protocol, the parser, the subcommands."""
