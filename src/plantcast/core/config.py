"""Settings from the environment (prefix ``PLANTCAST_``); CLI flags override them."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from plantcast.core.dburl import DATABASE_URL_ENV, DEFAULT_DATABASE_URL, DEFAULT_SQLITE_PATH

__all__ = ["DEFAULT_SQLITE_PATH", "Settings", "load_settings"]


class Settings(BaseSettings):
    """Every setting has a default that works on a fresh machine; none holds a secret."""

    model_config = SettingsConfigDict(env_prefix="PLANTCAST_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices(*DATABASE_URL_ENV),
        description="SQLAlchemy-style URL; postgresql://user@host/db is mapped to psycopg 3.",
    )
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8501
    refresh_seconds: float = 5.0
    alert_budget: float = Field(
        default=2.0,
        ge=0,
        description="Alerts per 30 days per detector kind that data like a sensor's recent "
        "history may raise; thresholds are calibrated per sensor to stay within it.",
    )
    resolve_after: str = Field(
        default="2h", description="How long a signal stays normal before its alert resolves."
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Address of an existing Dask scheduler (tcp://HOST:8786) that fanned-out "
        "detection uses; unset: a LocalCluster of processes on this machine.",
    )
    # connect mqtt: the broker's user (none: anonymous) and, for mqtts://, a CA bundle.
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = Field(default=None, description="From the environment only.")
    mqtt_ca_file: str | None = Field(
        default=None, description="CA certificates for mqtts:// (unset: the system's)."
    )
    # connect opcua: asyncua's security string and the user (none: anonymous, no security).
    opcua_security: str | None = Field(
        default=None,
        description="Policy,Mode,client_cert,client_key[,server_cert], e.g. "
        "Basic256Sha256,SignAndEncrypt,cert.der,key.pem; unset: no security.",
    )
    opcua_username: str | None = None
    opcua_password: SecretStr | None = Field(default=None, description="From the environment only.")
    # Alert notifications (plantcast.notify): the SMTP server e-mail destinations go through.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = Field(default=None, description="From the environment only.")
    smtp_from: str = "plantcast@localhost"
    smtp_security: str = Field(
        default="starttls", description="starttls, ssl (SMTPS, port 465) or none (local relays)."
    )
    notify_backoff: str = Field(default="5s", description="First retry delay; doubles per try.")
    notify_max_backoff: str = Field(default="10min", description="Longest delay between tries.")
    notify_timeout: float = Field(default=10.0, description="Seconds a delivery may take.")


def load_settings(**overrides: object) -> Settings:
    """Environment first, then explicit overrides (None means 'not given')."""
    settings = Settings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=given) if given else settings
