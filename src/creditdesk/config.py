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
    # Behind a TLS-terminating proxy that uvicorn does not trust (--forwarded-allow-ips), the app sees
    # http:// and would send the session cookie without Secure: true forces it. False infers it from
    # the request's scheme.
    secure_cookies: bool = False
    # /metrics: with a token, callers send `Authorization: Bearer <token>`; without one it answers 404
    # unless metrics_public is true (a scraper on a private network).
    metrics_token: str | None = None
    metrics_public: bool = False
    # A request body not fully received this many seconds after its headers answers 408 (slow-body
    # clients hold a connection and a task). 0 turns the limit off.
    body_read_timeout_seconds: float = 60
    # `serve`: idle keep-alive connections are closed after this, and at most this many connections
    # and requests are served at once per worker (more get 503). 0 means no limit.
    keep_alive_timeout_seconds: int = 5
    limit_concurrency: int = 1000


@lru_cache
def get_settings() -> Settings:
    return Settings()
