"""Settings from the environment (prefix CREDITDESK_) or a `.env` file in the working directory."""

from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The shipped placeholder: anyone who read the source can sign sessions with it, so `serve` refuses it.
DEFAULT_SECRET_KEY = "change-me-in-production"
MIN_SECRET_KEY_BYTES = 32
SECRET_KEY_HINT = ('Set CREDITDESK_SECRET_KEY (environment or .env) to a random value of at least '
                   f'{MIN_SECRET_KEY_BYTES} bytes, e.g. the output of: '
                   'python -c "import secrets; print(secrets.token_urlsafe(48))"')


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREDITDESK_", env_file=".env", extra="ignore")

    # A SQLite file in the working directory unless told otherwise; PostgreSQL URLs
    # (postgresql://user@host/db) work unchanged and are mapped to the psycopg 3 driver.
    database_url: str = "sqlite:///creditdesk.db"
    # The server's public URL (https://credits.example.com) when a proxy in front rewrites scheme or host:
    # signatures over the URL a caller used (HubSpot's v3 webhooks) are checked against it. Empty: the URL
    # as received.
    public_url: str = ""
    # Request bodies above this size are refused before they are parsed.
    max_body_bytes: int = 1_000_000
    # Idempotency keys are kept at least this long (the foundation promises 24 h).
    idempotency_retention_hours: int = 48
    # An in-flight idempotency key whose request died (crash) may be retried after this.
    idempotency_lock_seconds: int = 60
    secret_key: str = DEFAULT_SECRET_KEY
    # Back-office sessions end after this long without a request (and 12 h after login in any case).
    session_idle_minutes: int = 120
    # Login throttle, counted in the database so that it holds across worker processes and servers.
    # Failed logins per email (known or not, from any address), per client address, within the window;
    # and failed logins per minute for the whole installation (password spraying over many emails).
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_failure_window_seconds: int = 300
    login_failures_per_minute: int = 100
    # Password hashes computed at once (argon2 takes tens of MiB each); more logins wait this long for a
    # slot, then get 503 with Retry-After.
    login_hash_concurrency: int = 2
    login_hash_wait_seconds: float = 0.5
    # Reverse proxies (comma-separated IPs or networks) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed. Empty: the headers are ignored and the connecting address is the client.
    trusted_proxies: str = ""
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
    # Expiry emails (README "Expiry emails"): the SMTP server they go through. No host: no email is sent
    # (nothing is claimed either, so the emails go out once a host is set). The password is read from
    # here only, never stored in the database. STARTTLS upgrades a plain connection; SSL connects over
    # TLS from the start (usually port 465); at most one of the two.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "creditdesk@localhost"
    smtp_timeout_seconds: float = 30
    # A send-log row claimed (or being sent) by a job that died is taken over after this.
    email_lease_seconds: int = 300
    # Failed sends are retried after base * 2**(attempt-1) seconds, at most this many attempts in all.
    email_retry_base_seconds: int = 60
    email_max_attempts: int = 6
    # Outbound webhooks (README "Outbound webhooks") go to public addresses only: an endpoint whose host
    # resolves to a loopback, private or link-local address is refused (server-side request forgery).
    # True allows them (tests, or receivers on the same private network).
    webhooks_allow_private: bool = False


@lru_cache
def get_settings() -> Settings:
    return Settings()


def secret_key_problem(key: str) -> str | None:
    """Why this key must not sign sessions, or None when it may."""
    if key == DEFAULT_SECRET_KEY:
        return "CREDITDESK_SECRET_KEY is the shipped placeholder: anyone can forge back-office sessions with it."
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        return f"CREDITDESK_SECRET_KEY is shorter than {MIN_SECRET_KEY_BYTES} bytes."
    return None
