"""Process configuration, read from environment variables or a `.env` file.

Every setting is documented in the README. A missing or malformed value stops the
process at start with one line that names the variable (see `load_settings`).
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Seconds = Annotated[float, Field(gt=0)]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(lambda value: value.strip().upper() if isinstance(value, str) else value),
]
Network = IPv4Network | IPv6Network


def parse_networks(text: str) -> list[Network]:
    """Comma-separated networks (`10.0.0.0/8, fd00::/8`; a bare address is its own /32 or /128,
    host bits are ignored); an error names the entry that is none."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not a network; write one such as 10.0.0.0/8 or fd00::/8") from None
    return networks


class Settings(BaseSettings):
    """All knobs of the worker, the API and the dev runner."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Temporal. An empty address means "start the embedded dev server" (make dev only).
    temporal_address: str = ""
    temporal_namespace: str = "default"
    temporal_task_queue: str = "incident-response"
    temporal_dev_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_db_file: Path = Path(".data/temporal.db")
    # The Temporal Web UI, for links in incident channel headers (empty: no link).
    temporal_ui_url: str = ""
    # An external cluster (Temporal Cloud or self-hosted with TLS). Unset TEMPORAL_TLS means
    # "on when an API key, a CA or a client certificate is given"; true/false force it.
    temporal_tls: bool | None = None
    temporal_tls_ca: str = ""
    temporal_tls_cert: str = ""
    temporal_tls_key: str = ""
    temporal_tls_server_name: str = ""
    temporal_api_key: str = ""

    # Mattermost. An empty URL means "start the local stand-in" (make dev only).
    mattermost_url: str = ""
    mattermost_bot_token: str = ""
    # The token Mattermost generated for the /incident command. A command is registered per
    # team, each with its own token: list them separated by commas.
    mattermost_slash_token: str = ""
    mattermost_request_timeout: Seconds = 10.0
    # The backstage's OAuth 2.0 app (Integrations > OAuth 2.0 Applications in Mattermost,
    # callback <PUBLIC_URL>/backstage/oauth/callback). Empty: the backstage cannot sign anyone in.
    mattermost_oauth_client_id: str = ""
    mattermost_oauth_client_secret: str = ""
    # Mattermost as people's browsers reach it (the OAuth consent page); empty: MATTERMOST_URL.
    mattermost_public_url: str = ""
    standin_port: int = Field(default=8065, ge=1, le=65535)
    standin_data_file: Path = Path(".data/mattermost-standin.json")

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Where Mattermost reaches this service (slash command, dialog and button callbacks).
    public_url: str = ""
    # Signs dialog `state` and button `context`, which Mattermost sends back without a token.
    signing_secret: str = ""
    # Earlier SIGNING_SECRETs, comma-separated: payloads sealed under them stay readable after a rotation.
    signing_secret_previous: str = ""
    # How long a resolved bearer token or a membership fact is trusted.
    auth_cache_seconds: Seconds = 30.0
    # Upper bound for an HTTP handler waiting on Temporal (updates, queries, starts).
    temporal_rpc_timeout_seconds: Seconds = 10.0
    # An incident the caller may not see answers 404 no sooner than this, like one that does
    # not exist, so the time taken does not reveal that a private incident exists.
    not_found_floor_seconds: float = Field(default=0.1, ge=0, le=5)
    # A slash command always gets its reply within this time (Mattermost waits 30 s at most,
    # people much less); slower work is reported as unavailability, never left hanging.
    slash_reply_seconds: float = Field(default=2.5, ge=1.0, le=25.0)
    # Largest request body accepted; larger ones are answered 413 before being read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # One log line per HTTP request (uvicorn's access log); off: only what goes wrong is logged.
    access_log: bool = False
    # Our own code's log level, and every library's (process_logging.py): libraries' INFO
    # lines (httpx logs one per request) are off unless asked for.
    log_level: LogLevel = "INFO"
    library_log_level: LogLevel = "WARNING"

    # Incident behaviour.
    reminder_min_seconds: int = Field(default=60, ge=1)
    activity_timeout_seconds: Seconds = 60.0
    # An effect's attempt that has not heartbeaten for this long is retried (its worker died):
    # activities heartbeat a few times as often, from beside the Mattermost calls they await.
    activity_heartbeat_seconds: float = Field(default=5.0, ge=1.0)
    activity_max_retry_interval_seconds: Seconds = 5.0
    effect_give_up_seconds: Seconds = 900.0
    # While the bot cannot post in an incident's channel, how soon it first tries again
    # (then twice as long each time, up to an hour; a new change tries at once).
    channel_access_recheck_seconds: Seconds = 60.0
    # How long an ended incident can be restarted in its own run (its workflow stays open,
    # idle, that long; then it closes). 0 closes it when it ends. See README, "Temporal Web UI".
    reopen_window_seconds: float = Field(default=604_800.0, ge=0, le=31_536_000)

    # Scale. Workflows a worker keeps in memory (past it, the least recently used one is
    # evicted and replayed from its history when it is next needed: docs/performance.md).
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    # How long a workflow task waits for the worker that has the incident in its cache before
    # any worker takes it (and replays the incident). After a worker dies, its incidents'
    # next commands wait this long once; a busy live worker keeps its tasks within it.
    worker_sticky_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Incidents one statistics shard of a team-month holds; a month with more spills into
    # continuation shards, so there is no limit per month (docs/performance.md).
    stats_shard_capacity: int = Field(default=10_000, ge=1, le=20_000)

    # Outgoing webhooks. Networks (comma-separated CIDRs) whose private or loopback addresses a
    # webhook may be sent to; empty: public addresses only. Link-local, cloud metadata and
    # other never-routable addresses are refused whatever it says (webhook_targets.py).
    webhook_allowed_networks: str = ""
    # A delivery the receiver has not accepted after this long is given up (and told in the channel).
    webhook_give_up_seconds: Seconds = 86400.0
    # The first retry's wait, then twice as long each time up to the maximum (a receiver's
    # Retry-After is honoured).
    webhook_retry_initial_seconds: Seconds = 5.0
    webhook_retry_max_seconds: Seconds = 3600.0
    # One attempt's limit: connecting, sending the event and reading the receiver's answer.
    webhook_attempt_timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @field_validator("mattermost_url", "public_url", "temporal_ui_url", "mattermost_public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http(s) URL such as https://mattermost.example.com")
        return value

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError("must be host:port such as temporal.example.com:7233")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value.strip()

    @field_validator("temporal_tls", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("temporal_tls_ca", "temporal_tls_cert", "temporal_tls_key")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value} (a PEM file path)")
        return value

    @model_validator(mode="after")
    def _client_certificate_pair(self) -> Settings:
        if bool(self.temporal_tls_cert) != bool(self.temporal_tls_key):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both for mTLS, or neither")
        if self.temporal_tls is False and (self.temporal_tls_ca or self.temporal_tls_cert):
            raise ValueError("TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CA / TEMPORAL_TLS_CERT: remove one")
        return self

    @model_validator(mode="after")
    def _webhook_retries(self) -> Settings:
        if self.webhook_retry_initial_seconds > self.webhook_retry_max_seconds:
            raise ValueError(
                "WEBHOOK_RETRY_INITIAL_SECONDS is above WEBHOOK_RETRY_MAX_SECONDS: lower the first or raise the second"
            )
        return self

    @property
    def temporal_uses_tls(self) -> bool:
        if self.temporal_tls is not None:
            return self.temporal_tls
        return bool(self.temporal_api_key or self.temporal_tls_ca or self.temporal_tls_cert)

    @property
    def previous_signing_secrets(self) -> list[str]:
        return [s.strip() for s in self.signing_secret_previous.split(",") if s.strip()]

    @property
    def webhook_networks(self) -> list[Network]:
        """WEBHOOK_ALLOWED_NETWORKS, parsed."""
        return parse_networks(self.webhook_allowed_networks)

    @property
    def slash_tokens(self) -> list[str]:
        return [token.strip() for token in self.mattermost_slash_token.split(",") if token.strip()]

    @property
    def mattermost_browser_url(self) -> str:
        """Where people's browsers reach Mattermost (for the OAuth sign-in)."""
        return self.mattermost_public_url or self.mattermost_url

    @property
    def api_public_url(self) -> str:
        """The base URL Mattermost uses to call us back."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the environment variable, not the Python field."""
    lines = []
    for issue in error.errors():
        # A rule across settings (a model validator) has no location; its message names them.
        lines.append(f"{str(issue['loc'][0]).upper()}: {issue['msg']}" if issue["loc"] else issue["msg"])
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's multi-line report into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(f"Invalid configuration: {describe_validation_error(error)}") from None


def require(settings: Settings, *names: str) -> None:
    """Fail with one line when a setting the caller cannot run without is empty."""
    missing = [name.upper() for name in names if not getattr(settings, name)]
    if missing:
        raise SettingsError(f"Missing configuration: set {', '.join(missing)} (see README, Configuration)")
