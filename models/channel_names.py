"""Incident channel names: valid in Mattermost, unique, and the same on every retry."""

from __future__ import annotations

import re
import unicodedata

CHANNEL_NAME_MAX = 64
_CHANNEL_NAME = re.compile(r"^[a-z0-9]+([a-z\-\_0-9]+|(__)?)[a-z0-9]*$")


def slugify(text: str) -> str:
    """Lowercase ASCII letters and digits joined by '-'; other scripts drop out."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def channel_name_for(*, incident_id: str, name: str, template: str, date: str, playbook_title: str) -> str:
    """A valid, unique Mattermost channel name, derived deterministically.

    The incident id is always part of the name, so the name is unique per incident and a
    retried channel creation finds the channel it made before.
    """
    slug = slugify(name) or "incident"
    if template:
        rendered = template.format(name=slug, date=date, id=incident_id, playbook=slugify(playbook_title))
        if "{id}" not in template:
            rendered = f"{rendered}-{incident_id}"
    else:
        rendered = f"inc-{slug}-{incident_id}"
    rendered = re.sub(r"[^a-z0-9_-]+", "-", rendered.lower())
    rendered = re.sub(r"-{2,}", "-", rendered).strip("-_")
    if len(rendered) > CHANNEL_NAME_MAX:
        # Keep the unique id: cut the descriptive part.
        keep = CHANNEL_NAME_MAX - len(incident_id) - 1
        head = rendered.replace(incident_id, "").strip("-_")[:keep].strip("-_")
        rendered = f"{head}-{incident_id}" if head else incident_id
    if not _CHANNEL_NAME.match(rendered):
        rendered = f"inc-{incident_id}"
    return rendered
