"""Settings from the environment (prefix CREDITDESK_) or a `.env` file in the working directory."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREDITDESK_", env_file=".env", extra="ignore")

    # A SQLite file in the working directory unless told otherwise; PostgreSQL URLs
    # (postgresql://user@host/db) work unchanged and are mapped to the psycopg 3 driver.
    database_url: str = "sqlite:///creditdesk.db"
    # Request bodies above this size are refused before they are parsed.
    max_body_bytes: int = 1_000_000
    # Idempotency keys are kept at least this long (the foundation promises 24 h).
    idempotency_retention_hours: int = 48
    # An in-flight idempotency key whose request died (crash) may be retried after this.
    idempotency_lock_seconds: int = 60
    secret_key: str = "change-me-in-production"
    # How often `serve` runs the background jobs (expiry, hold timeouts); 0 turns them off.
    jobs_interval_seconds: int = 30


@lru_cache
def get_settings() -> Settings:
    return Settings()
