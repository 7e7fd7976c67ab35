"""The one gateway to Mattermost's REST API v4, used by the activities and the service."""
