"""Activities: the only code that talks to Mattermost or Temporal from inside a workflow run."""
