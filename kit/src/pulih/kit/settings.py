"""Settings of one Pulih process, read from environment variables (pydantic-settings).

Defaults make ``pulih up`` work with no settings at all; ``PULIH_ENV=production`` refuses the
development secrets so that a real deployment cannot start with them by accident.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "pulih-development-only-secret-change-me"
DEFAULT_NATS_PORT = 14222
DEFAULT_STREAM_MAX_BYTES = 1024**3
"""1 GiB: decades of a regency's events (some 900,000 at ~1.2 KB stored), and small enough to be
reserved on a development machine (JetStream reserves a stream's ``max_bytes`` up front)."""
DEFAULT_STREAM_MAX_MSG_SIZE = 128 * 1024
"""128 KiB: Pulih's largest event (AggregateReported) is about 1 KB with its envelope, and its
largest message a dead letter, at most about 80 KB (a 64 KiB copy of the refused message)."""


class Settings(BaseSettings):
    """Everything a service reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    env: Literal["development", "production"] = Field("development", alias="PULIH_ENV")
    regency: str = Field("3301", alias="PULIH_REGENCY", pattern=r"^[0-9]{4}$")
    data_dir: Path = Field(Path(".pulih"), alias="PULIH_DATA_DIR")
    nats_url: str = Field(
        default_factory=lambda: f"nats://127.0.0.1:{os.environ.get('PULIH_NATS_PORT', DEFAULT_NATS_PORT)}",
        alias="NATS_URL",
        description="default: the embedded server of `pulih up` on PULIH_NATS_PORT (14222)",
    )
    database_url: str | None = Field(None, alias="DATABASE_URL")
    hub_url: str | None = Field(None, alias="PULIH_HUB_URL")
    jwt_secret: SecretStr = Field(
        SecretStr(DEV_JWT_SECRET),
        alias="PULIH_JWT_SECRET",
        description="development only: the seed of a development Ed25519 key pair; a service with no "
        "PULIH_JWKS_URL nor PULIH_OIDC_ISSUER accepts the tokens it signs. Refused when empty, and "
        "refused in production, where no service holds a signing key",
    )
    oidc_issuer: str | None = Field(
        None,
        alias="PULIH_OIDC_ISSUER",
        description="the OpenID Connect provider's issuer URL (e.g. https://sso.example/realms/pulih): "
        "tokens must carry it as iss, and the services verify them against its JWKS; required when "
        "PULIH_ENV=production",
    )
    oidc_audience: str = Field(
        "pulih",
        alias="PULIH_OIDC_AUDIENCE",
        description="what tokens must name in aud (the realm's audience)",
    )
    jwks_url: str | None = Field(
        None,
        alias="PULIH_JWKS_URL",
        description="the provider's JSON Web Key Set (https:// or file://); default: the jwks_uri of "
        "the issuer's .well-known/openid-configuration",
    )
    jwks_cache_seconds: float = Field(
        300,
        alias="PULIH_JWKS_CACHE_SECONDS",
        gt=0,
        description="how long the key set is used before it is fetched again",
    )
    jwks_min_refresh_seconds: float = Field(
        10,
        alias="PULIH_JWKS_MIN_REFRESH_SECONDS",
        ge=0,
        description="the shortest interval between two early fetches of the key set for a token "
        "naming an unknown kid (a rotated key)",
    )
    oidc_token_url: str | None = Field(
        None,
        alias="PULIH_OIDC_TOKEN_URL",
        description="the provider's token endpoint, for service-to-service client-credentials "
        "tokens; default: the issuer's, from its .well-known/openid-configuration",
    )
    oidc_dashboard_client_id: str = Field(
        "pulih-dashboard",
        alias="PULIH_OIDC_DASHBOARD_CLIENT_ID",
        description="the dashboard's public client (authorization code with PKCE)",
    )
    oidc_client_id: str | None = Field(
        None,
        alias="PULIH_OIDC_CLIENT_ID",
        description="this service's confidential client (client credentials)",
    )
    oidc_client_secret: SecretStr | None = Field(
        None, alias="PULIH_OIDC_CLIENT_SECRET", description="its secret"
    )
    master_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("PULIH_MASTER_KEY", "master_key"),
        description="base64 of 32 bytes; wraps every client's data key",
    )
    programme_file: Path | None = Field(None, alias="PULIH_PROGRAMME_FILE")
    reporting_mode: Literal["regency", "national"] = Field(
        "regency",
        alias="PULIH_REPORTING_MODE",
        description="national: the reporting service is the national office's view, on the hub",
    )
    federation_file: Path | None = Field(
        None,
        alias="PULIH_FEDERATION_FILE",
        description="the federation's list of regencies (deploy/federation.toml): their names, and "
        "which are expected to report; without it the national view knows those it has received",
    )
    relay_batch_size: int = Field(
        1024,
        alias="PULIH_RELAY_BATCH_SIZE",
        ge=1,
        le=10_000,
        description="outbox rows the relay reads, publishes (256 awaiting their PubAck at most) and "
        "marks at a time",
    )
    consumer_batch_size: int = Field(
        500,
        alias="PULIH_CONSUMER_BATCH_SIZE",
        ge=1,
        le=10_000,
        description="events a batch consumer fetches and applies in one transaction (its durable "
        "holds at most that many unacknowledged)",
    )
    relay_poll_seconds: float = Field(1.0, alias="PULIH_RELAY_POLL_SECONDS", gt=0)
    max_deliver: int = Field(8, alias="PULIH_MAX_DELIVER", ge=2, le=100)
    ack_wait_seconds: float = Field(
        10.0,
        alias="PULIH_ACK_WAIT_SECONDS",
        ge=1,
        le=300,
        description="how long JetStream waits for a consumer's ack before redelivering; a handler "
        "that runs longer says it is still working every third of it",
    )
    store_retry_max_seconds: float = Field(
        15.0,
        alias="PULIH_STORE_RETRY_MAX_SECONDS",
        gt=0,
        le=600,
        description="the longest pause between two probes of a failing store by a paused consumer",
    )
    handler_timeout_seconds: float = Field(
        30.0,
        alias="PULIH_HANDLER_TIMEOUT_SECONDS",
        gt=0,
        le=3600,
        description="the longest one attempt to apply a consumed event may take; one that overruns "
        "it is a store fault if the store cannot commit either (the consumer pauses), else a failure",
    )
    max_body_bytes: ByteSize = Field(
        ByteSize(1024**2),
        alias="PULIH_MAX_BODY_BYTES",
        ge=1024,
        description="the largest request body the API reads (e.g. 1MiB); a larger one is answered "
        "413 body_too_large without being read",
    )
    outreach_url: str = Field("http://127.0.0.1:8101", alias="PULIH_OUTREACH_URL")
    timezone: str = Field("Asia/Jakarta", alias="PULIH_TIMEZONE", description="the regency's time zone")
    clock: Literal["system", "manual"] = Field(
        "system",
        alias="PULIH_CLOCK",
        description="manual: the date stands still until an admin moves it (tests, simulator)",
    )
    clock_start: date | None = Field(None, alias="PULIH_CLOCK_START")
    scheduler_seconds: float = Field(60.0, alias="PULIH_SCHEDULER_SECONDS", gt=0)
    stream_max_bytes: ByteSize = Field(
        ByteSize(DEFAULT_STREAM_MAX_BYTES),
        alias="PULIH_STREAM_MAX_BYTES",
        ge=1024**2,
        description="the regency stream's size limit (e.g. 20GiB); when full it refuses new events, "
        "which wait in the outboxes, and never deletes stored ones",
    )
    stream_max_msg_size: ByteSize = Field(
        ByteSize(DEFAULT_STREAM_MAX_MSG_SIZE),
        alias="PULIH_STREAM_MAX_MSG_SIZE",
        ge=96 * 1024,
        le=1024**2,
        description="the largest message the regency stream stores (e.g. 128KiB); at least a dead "
        "letter's ~80 KB, at most the NATS server's max_payload",
    )
    stream_replicas: int | None = Field(
        None,
        alias="PULIH_STREAM_REPLICAS",
        ge=1,
        le=5,
        description="copies of the regency stream on a JetStream cluster (3 on a 3-node cluster); "
        "unset: a new stream gets 1 and an existing one keeps what an operator gave it",
    )
    nats_ca_file: Path | None = Field(
        None,
        alias="PULIH_NATS_CA_FILE",
        description="the CA certificate that signed the NATS server's (deploy/tls); none: the system's",
    )
    nats_cert_file: Path | None = Field(
        None, alias="PULIH_NATS_CERT_FILE", description="a client certificate, for a server that verifies"
    )
    nats_key_file: Path | None = Field(None, alias="PULIH_NATS_KEY_FILE", description="its private key")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Jakarta, Asia/Makassar)") from exc
        return value

    @model_validator(mode="after")
    def _client_certificate_with_its_key(self) -> Settings:
        if (self.nats_cert_file is None) != (self.nats_key_file is None):
            raise ValueError("PULIH_NATS_CERT_FILE and PULIH_NATS_KEY_FILE go together")
        return self

    @field_validator("jwt_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError(
                "PULIH_JWT_SECRET is empty: unset it (development then uses its default), or, in "
                "production, unset it and set PULIH_OIDC_ISSUER"
            )
        return value

    @model_validator(mode="after")
    def _no_development_secrets_in_production(self) -> Settings:
        if self.env == "production":
            # Production verifies the provider's tokens and signs none: a development key (any
            # secret's) would let every service holding it mint a facilitator's token.
            if self.jwt_secret.get_secret_value() != DEV_JWT_SECRET:
                raise ValueError(
                    "PULIH_JWT_SECRET is for development only: with PULIH_ENV=production unset it "
                    "and set PULIH_OIDC_ISSUER to the OpenID Connect provider's issuer URL"
                )
            if self.oidc_issuer is None:
                raise ValueError(
                    "PULIH_OIDC_ISSUER must be set when PULIH_ENV=production: the OpenID Connect "
                    "provider's issuer URL (e.g. https://sso.example/realms/pulih), whose tokens the "
                    "services verify against its JWKS (PULIH_JWKS_URL, default: discovered)"
                )
            if self.master_key is None:
                raise ValueError("PULIH_MASTER_KEY must be set when PULIH_ENV=production")
            if self.clock == "manual":
                raise ValueError("PULIH_CLOCK=manual is for development and tests, not production")
        return self

    def database_url_for(self, service: str) -> str:
        """The async SQLAlchemy URL of ``service``'s own database.

        ``DATABASE_URL`` wins; otherwise a SQLite file ``<data_dir>/<service>.db``. Plain
        ``postgresql://`` and ``sqlite://`` URLs get their async drivers.
        """
        url = self.database_url or f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"
        return async_driver_url(url)

    def master_key_bytes(self) -> bytes:
        """The 32-byte master key. In development it is created once under the data dir."""
        if self.master_key is not None:
            key = base64.b64decode(self.master_key.get_secret_value())
        else:
            path = self.data_dir / "master.key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(base64.b64encode(secrets.token_bytes(32)).decode())
            key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes (base64-encoded)")
        return key


def async_driver_url(url: str) -> str:
    """Give a database URL its asyncio driver (asyncpg, aiosqlite) unless it names one."""
    for plain, async_ in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_ + url[len(plain) :]
    return url
