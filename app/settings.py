"""chatver's settings: environment variables prefixed CHATVER_ (a .env file is read too)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./chatver.db"
_UNSAFE_KEYS = {"changethis", "admin", "secret", "password", "chatver"}


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased; the unit the allow-lists compare."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob chatver has. Validated once at start; unsafe values are refused."""

    model_config = SettingsConfigDict(
        env_prefix="CHATVER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    admin_key: str | None = None
    allowed_api_bases: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allow_mock_responses: bool = False
    allowed_webhook_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    cache_ttl_seconds: float = Field(default=2.0, ge=0, le=3600)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_level: str = "INFO"
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    llm_num_retries: int = Field(default=2, ge=0, le=10)
    # "httpx" routes provider calls through httpx (tests mock it with respx); aiohttp is LiteLLM's default.
    llm_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    # How often guarded rollouts are checked; 0 turns the controller off (tests drive it directly).
    rollout_check_seconds: float = Field(default=10.0, ge=0, le=3600)
    event_queue_max: int = Field(default=50_000, ge=100, le=10_000_000)
    shutdown_drain_seconds: float = Field(default=10.0, ge=0, le=600)
    # How often each gateway replica reports what it serves to the fleet view; 0 turns it off.
    fleet_report_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Console sign-ins last this long; the cookie-signing secret is made and kept in the database
    # unless set here (all replicas must then share it).
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    session_secret: str | None = Field(default=None, min_length=32, max_length=256)
    # Always mark the console cookie Secure (HTTPS only); requests that arrive over https get it anyway.
    # Set it behind a TLS-terminating proxy, where the app sees plain http.
    secure_cookies: bool = False

    @field_validator("allowed_api_bases", mode="before")
    @classmethod
    def _parse_api_bases(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [origin_of(str(v)) for v in value]
        return value

    @field_validator("allowed_webhook_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [str(v).lower() for v in value]
        return value

    @field_validator("admin_key")
    @classmethod
    def _refuse_weak_admin_key(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.lower() in _UNSAFE_KEYS or len(value) < 16:
            raise ValueError("CHATVER_ADMIN_KEY must be a random secret of at least 16 characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("CHATVER_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _redis_scheme(self) -> Settings:
        if self.redis_url == "":
            self.redis_url = None
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("CHATVER_REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return self

    @cached_property
    def allowed_api_base_set(self) -> frozenset[str]:
        return frozenset(self.allowed_api_bases)
