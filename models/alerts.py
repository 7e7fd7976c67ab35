"""Alert webhook payloads, turned into one notification model.

Three senders reach us: Prometheus Alertmanager (webhook version "4"), Grafana's unified
alerting webhook contact point (Alertmanager's shape plus a few fields), and our own
generic JSON for everything else. Each body is validated in its sender's shape, ignoring
fields we do not use (both senders add fields over time), then mapped onto
`AlertNotification`, so routes, workflows and messages know one shape only.

Pure: no I/O, so workflows may import it. `parse_notification` raises `PayloadError` and
nothing else for any bytes, so the API can answer 400 with its message as it stands.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar, get_args

import re2  # type: ignore[import-untyped]
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from models.common import Model, utc

MAX_ALERTS = 1000
MAX_LABELS = 100
MAX_LABEL_NAME = 200
MAX_LABEL_VALUE = 4000
MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_GROUP_KEY = 512
MAX_LINKS = 20
MAX_REGEX = 200
# How many problems a refusal lists: enough to fix a payload, short enough to read.
_PROBLEMS_SHOWN = 3
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is our answer, not a line on stderr

AlertKind = Literal["alertmanager", "grafana", "generic"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)


class AlertStatus(StrEnum):
    """An alert's state, as all three senders name it (Grafana's `state`, "alerting" or "ok",
    says the same as its `status` and is not read)."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(Model):
    """One alert of a notification, whichever sender it came from."""

    # Alertmanager's (or Grafana's) own; else `labels_fingerprint` of the labels.
    fingerprint: str
    status: AlertStatus
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    # None while firing (Alertmanager sends Go's zero time then).
    ends_at: datetime | None = None
    # Only http(s) URLs are kept, since they end up as links in Mattermost; else "".
    generator_url: str = ""
    title: str
    # Generator, dashboard, panel, silence and runbook links, then the generic ones:
    # http(s) only, each once, in that order.
    links: list[str] = []


class AlertNotification(Model):
    """One webhook delivery: a group of alerts that an incident is opened or updated for."""

    kind: AlertKind
    # What groups deliveries into one incident: the sender's group key, else "labels:" and
    # a fingerprint of the group labels (generic: of its labels, or of its title).
    group_key: str
    status: AlertStatus
    # What names the incident (at most MAX_TITLE characters).
    title: str
    description: str = ""
    severity: str | None = None
    group_labels: dict[str, str] = {}
    common_labels: dict[str, str] = {}
    alerts: list[Alert]
    truncated_alerts: int = 0
    external_url: str = ""


class PayloadError(ValueError):
    """Why a webhook body was refused, in words that say what to fix (the API's 400 answer)."""


def parse_notification(kind: str, body: bytes) -> AlertNotification:
    """The notification in `body`, sent by a sender of `kind` (one of ALERT_KINDS)."""
    if kind not in ALERT_KINDS:
        raise PayloadError(f"unknown alert source {_quoted(kind)}: use one of {', '.join(ALERT_KINDS)}")
    data = _json_object(body)
    if kind == "generic":
        return _from_generic(_validated(_GenericAlert, data))
    if kind == "alertmanager":
        return _from_webhook("alertmanager", _validated(_AlertmanagerNotification, data))
    return _from_webhook("grafana", _validated(_WebhookNotification, data))


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id for a label set, whatever its order: 16 hex characters of a SHA-256."""
    return _digest(sorted(labels.items()))


def matches(match: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy every matcher of a route.

    A matcher's value is an exact string, or `/regex/` (a full match). A missing label
    never matches, except a regex that matches the empty string. A regex that does not
    compile (`validate_match` refuses those when a route is saved) matches nothing.
    """
    return all(_holds(expected, labels.get(name)) for name, expected in match.items())


def validate_match(match: Mapping[str, str]) -> None:
    """Raise ValueError naming the first matcher whose `/regex/` is too long or invalid."""
    for name, expected in match.items():
        pattern = _regex_source(expected)
        if pattern is not None:
            try:
                _compile(pattern)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None


# --- What the senders send ------------------------------------------------------------


def _clean(value: object) -> object:
    """Without NULs and lone surrogates (JSON allows "\\u0000" and "\\ud800"; Postgres, UTF-8
    and Mattermost do not)."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return value


def _moment(value: datetime | None) -> datetime | None:
    """UTC, or None for Go's zero time ("0001-01-01T00:00:00Z": Alertmanager's "not ended")."""
    if value is None or value.year == 1:
        return None
    try:
        return utc(value)
    except OverflowError:
        raise ValueError("must be a time between the years 1 and 9999 in UTC") from None


def _link(value: str) -> str:
    if not _http_url(value):
        raise ValueError("must be an http or https URL")
    return value


# Strings drop NULs and lone surrogates before their length limits apply.
_Clean = BeforeValidator(_clean)
Text = Annotated[str, _Clean]
LabelName = Annotated[str, StringConstraints(max_length=MAX_LABEL_NAME), _Clean]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE), _Clean]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Moment = Annotated[datetime | None, AfterValidator(_moment)]
Link = Annotated[str, StringConstraints(strip_whitespace=True), _Clean, AfterValidator(_link)]


class _Incoming(BaseModel):
    """A sender's shape: fields we do not use are ignored, since senders add fields over time."""

    model_config = ConfigDict(extra="ignore")


class _WebhookAlert(_Incoming):
    """An alert as Alertmanager sends it; the URL fields after `fingerprint` are Grafana's."""

    status: AlertStatus
    labels: Labels
    annotations: Labels = {}
    startsAt: Moment = None
    endsAt: Moment = None
    generatorURL: Text = ""
    fingerprint: Text = ""
    silenceURL: Text = ""
    dashboardURL: Text = ""
    panelURL: Text = ""


class _WebhookNotification(_Incoming):
    """Grafana's notification, and Alertmanager's apart from its version (Grafana sends "1")."""

    status: AlertStatus
    alerts: Annotated[list[_WebhookAlert], Field(min_length=1, max_length=MAX_ALERTS)]
    groupKey: Text = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Labels = {}
    externalURL: Text = ""
    # Grafana's templated title: the last resort for naming the incident.
    title: Text = ""


def _version_4(version: str) -> str:
    if version != "4":
        hint = ' (Grafana sends version "1": use the Grafana source)' if version == "1" else ""
        raise ValueError(f'Alertmanager webhook version "4" is expected, got {_quoted(version)}{hint}')
    return version


class _AlertmanagerNotification(_WebhookNotification):
    # Another version may mean another shape: refused rather than guessed at.
    version: Annotated[Text, AfterValidator(_version_4)]


class _GenericAlert(_Incoming):
    """Our documented JSON, for senders that are neither Alertmanager nor Grafana."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE), _Clean]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_DESCRIPTION), _Clean] = ""
    severity: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_LABEL_VALUE), _Clean] | None = None
    status: AlertStatus = AlertStatus.FIRING
    group_key: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_GROUP_KEY), _Clean] = ""
    labels: Labels = {}
    links: Annotated[list[Link], Field(max_length=MAX_LINKS)] = []


# --- Mapping onto our model -----------------------------------------------------------


def _from_webhook(kind: AlertKind, payload: _WebhookNotification) -> AlertNotification:
    first = payload.alerts[0]
    alertname = _first(
        payload.commonLabels.get("alertname"), payload.groupLabels.get("alertname"), first.labels.get("alertname")
    )
    title = _clip(
        _first(first.annotations.get("summary"), payload.commonAnnotations.get("summary"), alertname, payload.title)
        or "Alert",
        MAX_TITLE,
    )
    alerts = [
        Alert(
            fingerprint=alert.fingerprint.strip() or labels_fingerprint(alert.labels),
            status=alert.status,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.startsAt,
            ends_at=alert.endsAt,
            generator_url=_http_url(alert.generatorURL),
            title=_clip(_first(alert.annotations.get("summary"), alert.labels.get("alertname")), MAX_TITLE) or title,
            links=_links(
                alert.generatorURL,
                alert.dashboardURL,
                alert.panelURL,
                alert.silenceURL,
                alert.annotations.get("runbook_url", ""),
            ),
        )
        for alert in payload.alerts
    ]
    return AlertNotification(
        kind=kind,
        group_key=payload.groupKey.strip() or "labels:" + labels_fingerprint(payload.groupLabels),
        status=payload.status,
        title=title,
        description=_clip(
            _first(payload.commonAnnotations.get("description"), first.annotations.get("description")),
            MAX_DESCRIPTION,
        ),
        severity=_first(payload.commonLabels.get("severity"), first.labels.get("severity")) or None,
        group_labels=payload.groupLabels,
        common_labels=payload.commonLabels,
        alerts=alerts,
        truncated_alerts=payload.truncatedAlerts,
        external_url=_http_url(payload.externalURL),
    )


def _from_generic(payload: _GenericAlert) -> AlertNotification:
    # A label-less alert is known by its title, so its repeats still group together.
    identity = labels_fingerprint(payload.labels) if payload.labels else _digest(payload.title)
    alert = Alert(
        fingerprint=identity,
        status=payload.status,
        labels=payload.labels,
        title=payload.title,
        links=_links(*payload.links),
    )
    return AlertNotification(
        kind="generic",
        group_key=payload.group_key or "labels:" + identity,
        status=payload.status,
        title=payload.title,
        description=payload.description,
        severity=payload.severity or None,
        common_labels=payload.labels,
        alerts=[alert],
    )


def _first(*candidates: str | None) -> str:
    """The first candidate with more than whitespace, stripped; else ""."""
    return next((text.strip() for text in candidates if text and text.strip()), "")


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# A scheme Mattermost renders as a plain link, a host, and no spaces or control characters.
_HTTP_URL = re.compile(r"https?://[^\x00-\x20\x7f/?#]+[^\x00-\x20\x7f]*", re.IGNORECASE)


def _http_url(text: str) -> str:
    """`text` when it is an http(s) URL, else "" (never a javascript: or data: link)."""
    text = text.strip()
    return text if _HTTP_URL.fullmatch(text) else ""


def _links(*candidates: str) -> list[str]:
    return list(dict.fromkeys(url for url in map(_http_url, candidates) if url))


def _digest(value: object) -> str:
    # ASCII JSON: any string can be hashed (lone surrogates too), and a label set (an
    # array) never collides with a title (a string).
    canonical = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


# --- Refusals -------------------------------------------------------------------------


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise PayloadError(f"the body is not UTF-8 text: byte {error.start} cannot be decoded") from None
    except json.JSONDecodeError as error:
        raise PayloadError(f"the body is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise PayloadError("the body is nested too deeply to read") from None
    except ValueError as error:  # an integer of more than sys.get_int_max_str_digits() digits
        raise PayloadError(f"the body is not JSON we can read: {str(error).split(':')[0]}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, not {_json_type(data)}")
    return data


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        shown = "; ".join(map(_problem, problems[:_PROBLEMS_SHOWN]))
        more = len(problems) - _PROBLEMS_SHOWN
        raise PayloadError(shown + (f" (and {more} more problems)" if more > 0 else "")) from None
    except RecursionError:
        raise PayloadError("the body is nested too deeply to read") from None


# Pydantic's error types, in our words; `{…}` names a value of the error's context.
_WORDS = {
    "missing": "is required",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must not be empty",
    "too_long": "has too many entries: at most {max_length} are accepted",
    "greater_than_equal": "must be at least {ge}",
    "enum": "must be {expected}",
    "literal_error": "must be {expected}",
    "value_error": "{error}",
}


def _problem(error: ErrorDetails) -> str:
    # Pydantic quotes expected values 'so'; JSON bodies quote "so".
    context = {name: str(value).replace("'", '"') for name, value in error.get("ctx", {}).items()}
    if error["type"] == "value_error":
        context["error"] = str(error["ctx"]["error"])
    words = _WORDS.get(error["type"])
    what = words.format(**context) if words else error["msg"].replace("Input should", "must", 1)
    where = _location(error["loc"])
    return f"{where}: {what}" if where else what


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _location(loc: tuple[int | str, ...]) -> str:
    """`alerts[2].labels["a b"]`: where a problem is, as a path into the JSON body."""
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part == "[key]":  # the problem is the key itself
            where += " name"
        elif _NAME.fullmatch(part) and len(part) <= 40:
            where += f".{part}" if where else part
        else:
            where += f"[{_quoted(part)}]"
    return where


def _quoted(text: str) -> str:
    return json.dumps(_clip(str(_clean(text)), 40), ensure_ascii=False)


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    return "null" if value is None else "a number"


# --- Route matching ---------------------------------------------------------------------


def _holds(expected: str, value: str | None) -> bool:
    pattern = _regex_source(expected)
    if pattern is None:
        return value == expected
    compiled = _compiled(pattern)
    return compiled is not None and compiled.fullmatch(value or "") is not None


def _regex_source(expected: str) -> str | None:
    """The regex of a `/regex/` matcher value, or None for an exact value."""
    return expected[1:-1] if len(expected) >= 2 and expected[0] == expected[-1] == "/" else None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return _compile(pattern)
    except ValueError:
        return None


def _compile(pattern: str) -> Any:
    """RE2 (google-re2), not `re`: its matching takes time linear in the label's length whatever
    the pattern, so a route like `/(a|aa)*b/` cannot stall the intake (with `re` it can, for
    minutes). RE2 has no backreferences or lookarounds; a pattern using them is refused."""
    if len(pattern) > MAX_REGEX:
        raise ValueError(f"a regex must be at most {MAX_REGEX} characters, this one has {len(pattern)}")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except (re2.error, RecursionError, OverflowError, TypeError) as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error
        raise ValueError(f"/{_clip(pattern, 40)}/ is not a valid regular expression: {reason}") from None
