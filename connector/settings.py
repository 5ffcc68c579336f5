"""Typed settings, read from the environment (prefix ``CONNECTOR_``, sections nested with ``__``).

Settings are loaded once, by :func:`load_settings`, in the composition root or the CLI, and
passed in; nothing reads them at import time. Secrets are :class:`~pydantic.SecretStr` so they
never print. A validation failure becomes a :class:`~connector.errors.ConfigurationError` whose
message names the environment variable and says what is wrong.

No Dataverse URL means *local mode*: an embedded emulator and a simulated SMS provider.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connector.errors import ConfigurationError

ENV_PREFIX = "CONNECTOR_"
NESTED_DELIMITER = "__"


def _split_csv(value: object) -> object:
    """Accept ``a,b,c`` (the natural form in an env var) as well as a JSON or Python list."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


class DataverseSettings(BaseModel):
    """How to reach and authenticate to Dataverse."""

    url: AnyHttpUrl | None = Field(
        default=None, description="Organization URL, e.g. https://contoso.crm.dynamics.com"
    )
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    certificate_path: Path | None = None
    certificate_password: SecretStr | None = None
    certificate_thumbprint: str | None = None
    token: SecretStr | None = Field(
        default=None, description="A static bearer token (the emulator accepts any)"
    )
    api_version: str = "v9.2"
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_concurrency: int = Field(
        default=16, ge=1, le=52, description="Requests in flight from one process"
    )
    fleet_max_concurrency: int = Field(
        default=32,
        ge=1,
        le=52,
        description="Requests in flight from every process sharing the state store "
        "(Dataverse refuses more than 52 per user)",
    )
    pace_start_per_second: float | None = Field(
        default=25.0,
        gt=0,
        description="The fleet's request rate before a 429 has taught it the limit (it "
        "doubles every 2 s while requests wait for it); none: unpaced until then",
    )
    pace_window_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Dataverse's sliding window for the request limit (documented: 300 s)",
    )
    max_retries: int = Field(default=5, ge=0, le=20)

    @model_validator(mode="after")
    def _credentials_complete(self) -> DataverseSettings:
        if self.url is None or self.token is not None:
            return self
        missing = [name for name in ("tenant_id", "client_id") if not getattr(self, name)]
        if missing:
            raise ValueError(
                "a Dataverse URL needs either a static token or tenant_id and client_id; "
                f"missing: {', '.join(missing)}"
            )
        if self.client_secret is None and self.certificate_path is None:
            raise ValueError("a Dataverse URL needs client_secret or certificate_path")
        return self

    @field_validator("certificate_path")
    @classmethod
    def _certificate_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no certificate file at {value}")
        return value

    @property
    def local_mode(self) -> bool:
        """No Dataverse URL: run against the embedded emulator."""
        return self.url is None


class TwilioSettings(BaseModel):
    """Default Twilio credentials (a configuration row may carry its own, encrypted)."""

    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr | None = None
    api_base_url: AnyHttpUrl | None = Field(
        default=None, description="Override of the REST API host (the local simulator)"
    )


class ApiSettings(BaseModel):
    """The connector's own REST API."""

    keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=10 * 1024 * 1024, description="Provider webhook bodies"
    )
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=100 * 1024 * 1024, description="API request bodies"
    )
    entra_issuer: str | None = Field(
        default=None,
        description="Issuer of accepted Entra ID user tokens "
        "(https://login.microsoftonline.com/<tenant id>/v2.0); unset: bearer tokens refused",
    )
    entra_audience: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted aud values: the API's client id (and api://)"
    )
    entra_jwks_url: str | None = Field(
        default=None, description="The tenant's key set; default: jwks_uri of the issuer's metadata"
    )
    entra_scope: str = Field(
        default="access_as_user",
        min_length=1,
        pattern=r"^\S+$",
        description="The delegated scope a user token must carry in scp (the API's exposed scope)",
    )

    entra_client_id: str | None = Field(
        default=None,
        description="Sign in with Microsoft (messages page): the web app registration's client id",
    )
    entra_client_secret: SecretStr | None = Field(
        default=None, description="Sign in with Microsoft: that registration's client secret"
    )
    entra_authority: str | None = Field(
        default=None,
        description="Sign in with Microsoft: the authority; default: the issuer without /v2.0",
    )

    def signin_authority(self) -> str | None:
        """The authority the messages page signs users in at (None: no Microsoft sign-in)."""
        if not (self.entra_issuer and self.entra_client_id and self.entra_client_secret):
            return None
        return self.entra_authority or self.entra_issuer.rstrip("/").removesuffix("/v2.0")

    def signin_scope(self) -> str:
        """The delegated scope the page asks for: ``api://<API client id>/<entra_scope>``."""
        audience = self.entra_audience[0]
        app_id_uri = audience if audience.startswith("api://") else f"api://{audience}"
        return f"{app_id_uri.rstrip('/')}/{self.entra_scope}"

    @field_validator("keys", "entra_audience", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _entra_needs_an_audience(self) -> ApiSettings:
        if self.entra_issuer and not self.entra_audience:
            raise ValueError("entra_issuer needs entra_audience (the API's client id)")
        if (self.entra_client_id is None) != (self.entra_client_secret is None):
            raise ValueError("entra_client_id and entra_client_secret go together")
        if self.entra_client_id and not self.entra_issuer:
            raise ValueError("entra_client_id (Sign in with Microsoft) needs entra_issuer")
        return self


class StateSettings(BaseModel):
    """Where the local state store lives (SQLite file by default, or PostgreSQL)."""

    url: str = "sqlite:///connector-state.db"

    @field_validator("url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class QueueSettings(BaseModel):
    """Where the task queue lives: a Redis server shared by a fleet, or (unset) a SQLite file
    beside the state store, for one machine."""

    url: str | None = Field(
        default=None,
        description="redis://[:password@]host:port/db (rediss:// for TLS); unset: SQLite queue",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


class ServerSettings(BaseModel):
    """Where `connector serve` listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    header_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a client has to send a request's headers"
    )
    stall_log_seconds: float | None = Field(
        default=None,
        gt=0,
        le=60,
        description="Log the event loop's stack (and the garbage collection meanwhile) when "
        "it is held longer than this; off by default (the lag histogram is always measured)",
    )
    cpu_slice_ms: float = Field(
        default=0.1,
        ge=0,
        le=100,
        description="The CPU slice `connector serve` asks Linux for (kernel 6.12 and later): "
        "short, so a webhook's thread runs as soon as it wakes when the CPUs are busy; 0 "
        "keeps the kernel's default (the kernel takes 0.1-100 ms)",
    )

    @field_validator("cpu_slice_ms")
    @classmethod
    def _kernel_range(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("a CPU slice is 0 (the kernel's default) or 0.1-100 ms")
        return value


class WorkerSettings(BaseModel):
    """How the worker takes journal rows."""

    threads: int = Field(default=2, ge=1, le=32)
    batch_size: int = Field(default=50, ge=1, le=500, description="Journal rows per $batch")
    lease_seconds: float = Field(
        default=60.0, ge=1, le=3600, description="How long a claimed row is held before retaken"
    )
    inbound_linger_seconds: float = Field(
        default=0.25,
        ge=0,
        le=5,
        description="How long a shallow journal waits (or until a full batch) so several "
        "inbound messages share one Dataverse $batch",
    )
    outbound_linger_seconds: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description="How long outbound changes wait so many share one Dataverse $batch",
    )
    dataverse_poll_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="How often outbound message rows created in Dataverse are polled for",
    )


class LogSettings(BaseModel):
    """Log level and rendering (JSON in production, readable on a terminal)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    """All of the connector's settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="ignore",
        validate_default=True,
    )

    public_base_url: AnyHttpUrl | None = Field(
        default=None,
        description="The URL providers reach us at; webhook signatures are checked against it",
    )
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    dataverse: DataverseSettings = Field(default_factory=DataverseSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_secret_keys(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, key in enumerate(value):
            try:
                Fernet(key.get_secret_value().encode())
            except (ValueError, TypeError):
                raise ValueError(
                    f"key #{index + 1} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    "make one with `connector config new-key`)"
                ) from None
        return value

    @property
    def local_mode(self) -> bool:
        """No Dataverse URL configured: embedded emulator and simulated provider."""
        return self.dataverse.local_mode


def env_var_name(location: tuple[int | str, ...]) -> str:
    """The environment variable behind a pydantic error location."""
    parts = [str(part).upper() for part in location if not isinstance(part, int)]
    return ENV_PREFIX + NESTED_DELIMITER.join(parts)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate settings, from ``env`` if given (tests) or the process environment.

    Raises :class:`ConfigurationError` listing every bad variable by name.
    """
    try:
        if env is None:
            return Settings(**overrides)
        with _environment(env):
            return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(error.get("loc", ()))
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(
                f"{env_var_name(location) if location else ENV_PREFIX + '*'}: {message}"
            )
        raise ConfigurationError(
            "invalid settings:\n  " + "\n  ".join(problems),
            details={"problems": problems},
        ) from None


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily replace the ``CONNECTOR_*`` variables of the process environment."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    for key in saved:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


MASK = "**********"
_SECRET_QUERY_VALUE = re.compile(r"(?i)((?:^|[&;])[^=&;]*(?:pass|secret|token|key)[^=&;]*=)[^&;]*")


def redact_url(value: str) -> str:
    """``value`` with the password of its user info and secret-named query values masked.

    A setting kept as a plain string can still hold a credential (a PostgreSQL URL's
    ``user:password@`` or ``?password=``); strings that are not URLs come back unchanged.
    """
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return MASK  # unparseable but URL-shaped: show nothing rather than a secret
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else netloc
    query = _SECRET_QUERY_VALUE.sub(lambda m: m.group(1) + MASK, parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as a plain dict with every secret shown as ``**********``.

    Secret fields are masked whole; every other string is passed through :func:`redact_url`,
    so credentials inside a URL-valued setting (``state.url``) are masked too.
    """
    dumped: dict[str, Any] = settings.model_dump(mode="json")

    def mask(value: Any, original: Any) -> Any:
        if isinstance(original, SecretStr):
            return MASK
        if isinstance(value, str):
            return redact_url(value)
        if isinstance(original, BaseModel):
            return {k: mask(value[k], getattr(original, k)) for k in value}
        if isinstance(original, list):
            return [mask(v, o) for v, o in zip(value, original, strict=True)]
        return value

    return {key: mask(dumped[key], getattr(settings, key)) for key in dumped}
