"""All configuration in one object: ``SHOPCHAT_*`` environment variables over ``shopchat.toml``.

Build it once at the edge (CLI, app factory, tests) and pass it down; nothing
else reads ``os.environ``.
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.identity import MIN_SECRET_BYTES

__all__ = ["PROJECT_DIR", "Settings", "load_settings"]

#: The checkout: config.yml, bot/, data/ and the default var/ and models/ live here.
PROJECT_DIR = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration of the gateway, the stack and the CLI."""

    model_config = SettingsConfigDict(env_prefix="SHOPCHAT_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface the gateway (the public port) binds to.")
    port: int = Field(8080, ge=0, le=65535, description="The gateway's public port.")
    rasa_port: int = Field(5005, ge=0, le=65535, description="Rasa's port, on loopback only.")
    action_port: int = Field(5055, ge=0, le=65535, description="Action server port, loopback.")
    rasa_token: SecretStr | None = Field(
        None,
        description="Token for Rasa's HTTP API. No default: `shopchat up` makes a random "
        "one per run when unset.",
    )
    project_dir: Path = Field(PROJECT_DIR, description="Where config.yml, bot/ and data/ live.")
    var_dir: Path = Field(Path("var"), description="SQLite files (relative to project_dir).")
    models_dir: Path = Field(Path("models"), description="Trained models (relative).")
    model: Path | None = Field(None, description="Model archive to serve; default: latest trained.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra page origins allowed to open websockets (the shop's own "
        "domains). The gateway's own origin is always allowed.",
    )
    public_origins: list[str] = Field(
        default_factory=list,
        description="The origins browsers reach the gateway at, e.g. "
        "[\"https://chat.shop.example\"] behind a proxy: its own pages (the console, the "
        "demo shop) may open sockets from these. Default: http://localhost:PORT and "
        "http://127.0.0.1:PORT, and http://HOST:PORT when bound to a named interface. Never "
        "taken from the request's Host header, which a DNS-rebinding page controls.",
    )
    handshake_timeout: float = Field(
        10.0, gt=0,
        description="Seconds a new chat socket has to send its hello, and a console "
        "socket its auth frame; then it is closed.",
    )
    http_timeout: float = Field(
        15.0, gt=0,
        description="Seconds an HTTP client has to send a request's headers, and a JSON "
        "body; also how long an idle keep-alive connection stays open.",
    )
    rasa_timeout: float = Field(30.0, gt=0, description="Seconds to wait for one Rasa turn.")
    rasa_replicas: int = Field(
        1, ge=1, le=16,
        description="Rasa servers `shopchat up` starts, each with its own action server "
        "(on rasa_port+i and action_port+i); more than one needs database_url and redis_url.",
    )
    rasa_urls: list[str] = Field(
        default_factory=list,
        description="The Rasa servers the gateway sends turns to, round-robin over the "
        "healthy ones. Empty: the ones `shopchat up` starts (rasa_port, rasa_port+1, ...).",
    )
    action_urls: list[str] = Field(
        default_factory=list,
        description="The action server of each Rasa server, in rasa_urls' order (or one for "
        "all), for the gateway's health check. Empty: action_port, action_port+1, ...",
    )
    rasa_health_interval: float = Field(
        2.0, gt=0,
        description="With several Rasa servers: seconds between the gateway's health checks "
        "of each; one that fails is left out until it answers again.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host:port/db. Set (with redis_url): Rasa's "
        "tracker store is this database (schema rasa). The gateway still uses SQLite.",
    )
    redis_url: SecretStr | None = Field(
        None, description="redis://[:password@]host:port/db. Set: Rasa's lock store.",
    )
    rasa_sql_pool_size: int = Field(
        2, ge=1, le=50,
        description="Postgres connections each Rasa server keeps open (SQL_POOL_SIZE).",
    )
    rasa_sql_max_overflow: int = Field(
        2, ge=0, le=100,
        description="Postgres connections each Rasa server may open beyond its pool "
        "(SQL_MAX_OVERFLOW).",
    )
    support_email: str = Field(
        "support@example.com", description="Shown when no person can take the chat."
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
    kb_warm_up: bool = Field(
        False,
        description="Load the embedding model when the action server starts, before it "
        "answers its health check (set by `shopchat up`), so the first FAQ question does "
        "not wait for it.",
    )
    agent_session_hours: float = Field(
        12.0, gt=0, description="How long an agent's console login lasts."
    )
    agent_capacity: int = Field(
        3, ge=1, le=100, description="Default number of chats an agent handles at once."
    )
    queue_auto_assign: bool = Field(
        True,
        description="Give queued chats to the least-busy online agent; off: agents claim "
        "chats from the queue themselves.",
    )
    queue_claim_timeout: float = Field(
        60.0, gt=0,
        description="Seconds a queued chat may wait before every online agent is alerted.",
    )
    queue_max_wait: float = Field(
        300.0, gt=0,
        description="Seconds after which a queued shopper is offered to leave a message "
        "instead: once they waited that long, or at once when the queue's estimate for "
        "their place is that long.",
    )
    queue_tick: float = Field(1.0, gt=0, description="How often the queue timers are checked.")
    presence_grace: float = Field(
        10.0, ge=0,
        description="Seconds an agent stays online after their last console socket closes "
        "(a reload or a short network drop does not take them off the rota).",
    )
    average_handle_seconds: float = Field(
        240.0, gt=0,
        description="Assumed length of an agent chat until enough chats were closed to measure it.",
    )
    shop_backend: Literal["sqlite", "http"] = Field(
        "sqlite",
        description="Where orders, products and returns come from: the built-in SQLite "
        "store (var/shop.db, demo data loaded on first start) or a shop's REST API.",
    )
    shop_api_url: str | None = Field(
        None, description="Base URL of the shop's REST API (shop_backend = \"http\")."
    )
    shop_api_token: SecretStr | None = Field(
        None, description="Bearer token for the shop's REST API."
    )
    shop_api_timeout: float = Field(5.0, gt=0, description="Seconds per shop API request.")
    demo_data: bool = Field(
        True,
        description="Load the demo shop's customers, products and orders into an empty "
        "SQLite store on start.",
    )
    identity_secret: SecretStr | None = Field(
        None,
        description="Shared secret (at least 32 bytes) the shop's backend signs customer "
        "identities with: HS256 JSON Web Tokens, see the README. No default: without it "
        "identities are ignored; `shopchat up` "
        "makes a random one per run for the demo shop.",
    )
    demo_identity: bool = Field(
        False,
        description="Serve /demo/identity, where the demo shop's pages get the demo "
        "customer's signed identity. `shopchat up` turns it on only together with its own "
        "per-run secret; never with a shop's real secret.",
    )
    identity_max_ttl: float = Field(
        86400.0, gt=0,
        description="Longest validity (seconds) accepted for a signed identity.",
    )
    heldout_path: Path = Field(
        Path("tests/data/heldout_intents.csv"),
        description="Labelled messages (text,intent) a new model is measured on before it "
        "goes live (relative to project_dir).",
    )
    max_accuracy_drop: float = Field(
        0.02, ge=0, le=1,
        description="A new model whose held-out accuracy is more than this below the live "
        "model's is not activated.",
    )
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="URLs that receive conversation events (queued, assigned, closed, CSAT, "
        "offline ticket) as signed JSON POSTs; see docs/webhooks.md.",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key the webhook signatures are made with."
    )
    webhook_max_attempts: int = Field(8, ge=1, le=30, description="Deliveries tried per event.")
    webhook_retry_base: float = Field(
        2.0, gt=0, description="Seconds before the first retry; doubled after each failure."
    )
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds per webhook request.")
    smtp_host: str | None = Field(
        None, description="The SMTP server mail is sent through. Unset: no mail is sent, "
        "and agents cannot answer tickets by email.",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="The SMTP server's port.")
    smtp_username: str | None = Field(None, description="SMTP sign-in name, if it needs one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: bool = Field(
        True, description="Upgrade the connection with STARTTLS (required: refuse to send "
        "over a server that does not offer it).",
    )
    smtp_tls: bool = Field(
        False, description="Implicit TLS from the first byte (usually port 465); "
        "smtp_starttls is then not used.",
    )
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds per SMTP conversation.")
    mail_from: str | None = Field(
        None, description="The From of every mail, e.g. 'Trailhead support "
        "<help@shop.example>'; needed with smtp_host.",
    )
    mail_reply_to: str | None = Field(
        None, description="The mailbox replies come back to; each ticket's reply address "
        "is its local part plus '+TOKEN' (reply+TOKEN@domain). Unset: mail_from's address.",
    )
    mail_max_attempts: int = Field(10, ge=1, le=30, description="Sends tried per mail.")
    mail_retry_base: float = Field(
        30.0, gt=0, description="Seconds before a mail's first retry; doubled after each "
        "failure.",
    )
    transcript_interval: float = Field(
        600.0, ge=0, description="Seconds between two transcripts of one conversation "
        "mailed at the shopper's request.",
    )
    transcript_daily_limit: int = Field(
        3, ge=0, description="Transcripts mailed to one address in 24 hours, whatever the "
        "conversation (0: the transcript button is off).",
    )
    inbound_mail_secret: SecretStr | None = Field(
        None, description="Shared secret of the inbound mail endpoint's HMAC-SHA256 "
        "signature (at least 32 bytes). Unset: the endpoint is off.",
    )
    inbound_mail_max_bytes: int = Field(
        5_000_000, ge=10_000, description="Largest raw message the inbound mail endpoint "
        "takes, in bytes.",
    )
    order_updates_recent_days: float = Field(
        14.0, gt=0, description="A shop's order update is posted in the customer's "
        "conversation when one verifiably theirs (signed customer, or the order proved by "
        "its email) was active within this many days.",
    )
    order_updates_by_email: bool = Field(
        False, description="Mail an order update to the order's address when no recent "
        "conversation of the customer's can take it (needs smtp_host).",
    )
    retention_days: float | None = Field(
        None, gt=0,
        description="Delete conversations (transcripts, tickets, KB log, Rasa tracker) last "
        "active more than this many days ago; checked at start and daily. Unset: keep.",
    )
    return_window_days: int = Field(30, ge=0, description="Days after delivery to return.")
    member_return_window_days: int = Field(
        60, ge=0, description="Return window for Trailhead Club members."
    )
    max_failed_lookups: int = Field(
        5, ge=1, description="Failed order lookups in one conversation before the bot "
        "stops trying and offers a person.",
    )

    @field_validator("identity_secret", "rasa_token", "shop_api_token", "webhook_secret",
                     "smtp_password", "inbound_mail_secret", "database_url", "redis_url",
                     mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        # SHOPCHAT_IDENTITY_SECRET= (set but empty) must not become a secret anyone can guess.
        return None if value == "" else value

    @field_validator("identity_secret")
    @classmethod
    def _long_enough_for_hs256(cls, value: SecretStr | None) -> SecretStr | None:
        # Refused at start, not token by token: PyJWT would only warn, and every
        # shopper's identity would then be ignored without anyone noticing why.
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"identity_secret (SHOPCHAT_IDENTITY_SECRET) must be at least "
                             f"{MIN_SECRET_BYTES} bytes for HS256; make one with: python -c "
                             "'import secrets; print(secrets.token_urlsafe(32))'")
        return value

    @field_validator("public_origins", "allowed_origins")
    @classmethod
    def _bare_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*":
                continue
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port], "
                                 "e.g. https://shop.example (no path, no trailing slash)")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {url!r} must start with http:// or https://")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = urlsplit(value.get_secret_value())
            if url.scheme not in ("postgresql", "postgres") or not url.hostname \
                    or not url.path.strip("/"):
                raise ValueError("database_url (SHOPCHAT_DATABASE_URL) must look like "
                                 "postgresql://user:password@host:5432/dbname")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = urlsplit(value.get_secret_value())
            if url.scheme != "redis" or not url.hostname:
                raise ValueError("redis_url (SHOPCHAT_REDIS_URL) must look like "
                                 "redis://[:password@]host:6379/0 (rediss:// is not supported "
                                 "for Rasa's lock store)")
            try:
                int(url.path.strip("/") or 0)
                _ = url.port
            except ValueError:
                raise ValueError("redis_url (SHOPCHAT_REDIS_URL): the port and the database "
                                 "(the path) must be numbers") from None
        return value

    @field_validator("rasa_urls", "action_urls")
    @classmethod
    def _server_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")) or url.endswith("/"):
                raise ValueError(f"{url!r} must be http(s)://host:port, without a trailing "
                                 "slash")
        return value

    @model_validator(mode="after")
    def _replicas_share_storage(self) -> Settings:
        if (self.database_url is None) != (self.redis_url is None):
            raise ValueError("set database_url (SHOPCHAT_DATABASE_URL) and redis_url "
                             "(SHOPCHAT_REDIS_URL) together: Rasa keeps its trackers in the "
                             "one and its conversation locks in the other")
        if self.rasa_replicas > 1 and self.database_url is None:
            raise ValueError("rasa_replicas > 1 needs database_url (SHOPCHAT_DATABASE_URL) and "
                             "redis_url (SHOPCHAT_REDIS_URL): the replicas share their "
                             "conversations through them")
        if len(self.action_urls) not in (0, 1, len(self.rasa_replica_urls)):
            raise ValueError("action_urls must name one action server for all Rasa servers "
                             "or one for each of rasa_urls")
        return self

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("webhook_urls need a webhook_secret (SHOPCHAT_WEBHOOK_SECRET) so "
                             "receivers can check the signature")
        return self

    @field_validator("inbound_mail_secret")
    @classmethod
    def _long_enough_for_hmac(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"inbound_mail_secret (SHOPCHAT_INBOUND_MAIL_SECRET) must be at "
                             f"least {MIN_SECRET_BYTES} bytes; make one with: python -c "
                             "'import secrets; print(secrets.token_urlsafe(32))'")
        return value

    @model_validator(mode="after")
    def _mail_is_complete(self) -> Settings:
        if self.smtp_host and not self.mail_from:
            raise ValueError("smtp_host needs mail_from (SHOPCHAT_MAIL_FROM), the address "
                             "mail is sent from")
        if self.order_updates_by_email and not self.smtp_host:
            raise ValueError("order_updates_by_email needs smtp_host (SHOPCHAT_SMTP_HOST) "
                             "and mail_from to send the mail")
        for name in ("mail_from", "mail_reply_to"):
            value = getattr(self, name)
            if value is not None and "@" not in parseaddr(value)[1]:
                raise ValueError(f"{name} {value!r} is not an email address")
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be one of debug, info, warning, error")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("SHOPCHAT_CONFIG", PROJECT_DIR / "shopchat.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    def _under_project(self, path: Path) -> Path:
        return path if path.is_absolute() else self.project_dir / path

    @property
    def var_path(self) -> Path:
        return self._under_project(self.var_dir)

    @property
    def models_path(self) -> Path:
        return self._under_project(self.models_dir)

    @property
    def gateway_db(self) -> Path:
        return self.var_path / "gateway.db"

    @property
    def tracker_db(self) -> Path:
        return self.var_path / "tracker.db"

    @property
    def kb_articles_path(self) -> Path:
        return self.project_dir / "data" / "kb"

    @property
    def kb_index_path(self) -> Path:
        return self.models_path / "kb"

    @property
    def kb_log_db(self) -> Path:
        return self.var_path / "kb.db"

    @property
    def shop_db(self) -> Path:
        return self.var_path / "shop.db"

    @property
    def shop_demo_data_path(self) -> Path:
        return self.project_dir / "data" / "shop"

    @property
    def canned_responses_path(self) -> Path:
        return self.project_dir / "data" / "console" / "canned.yml"

    @property
    def rasa_url(self) -> str:
        """The (first) Rasa server."""
        return self.rasa_replica_urls[0]

    @property
    def action_url(self) -> str:
        """The (first) action server."""
        return self.action_replica_urls[0]

    @property
    def rasa_replica_urls(self) -> list[str]:
        """Every Rasa server the gateway talks to (``rasa_url`` is the first)."""
        if self.rasa_urls:
            return list(self.rasa_urls)
        return [f"http://127.0.0.1:{self.rasa_port + i}" for i in range(self.rasa_replicas)]

    @property
    def action_replica_urls(self) -> list[str]:
        """The action server of each of ``rasa_replica_urls``, in the same order."""
        count = len(self.rasa_replica_urls)
        if len(self.action_urls) == 1:
            return self.action_urls * count
        if self.action_urls:
            return list(self.action_urls)
        return [f"http://127.0.0.1:{self.action_port + i}" for i in range(count)]

    @property
    def public_url(self) -> str:
        if self.public_origins:
            return self.public_origins[0]
        host = "localhost" if self.host in _ANY_OR_LOOPBACK else self.host
        return f"http://{host}:{self.port}"

    @property
    def own_origins(self) -> frozenset[str]:
        """Origins of the gateway's own pages (see ``public_origins``)."""
        if self.public_origins:
            return frozenset(self.public_origins)
        hosts = {"localhost", "127.0.0.1", "[::1]"}
        if self.host not in _ANY_OR_LOOPBACK:
            hosts.add(f"[{self.host}]" if ":" in self.host else self.host)
        return frozenset(f"http://{host}:{self.port}" for host in hosts)


#: Bind addresses under which the gateway is reached as localhost.
_ANY_OR_LOOPBACK = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "localhost"})


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and ``shopchat.toml``, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
